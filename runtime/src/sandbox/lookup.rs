//! `wasi:sockets/ip-name-lookup`, provided by ward instead of wasmtime-wasi.
//!
//! wasmtime-wasi resolves any name once lookups are on, and has no hook to
//! filter them. But a query name is data leaving the host (a plugin allowed
//! only `api.example.com` could send `<secret>.attacker.example` to the
//! resolver), and an answer is a map of names the host can see. So ward
//! shadows that one interface in the linker: a name that no `network.allow`
//! entry grants is `access-denied` without a query, and a granted name's
//! answers pass the same classification as a connect (loopback, private and
//! link-local addresses only when listed; see `net.rs`). IP literals are
//! returned as they are, as wasmtime-wasi does: no query, nothing learnt.
//!
//! The interface keeps wasmtime-wasi's `network` and `pollable` resources;
//! only its own `resolve-address-stream` is ward's type.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime::{bail, Result};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network as WasiNetwork, Pollable};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use super::net::LookupRefusal;
use super::outbound::Network;

/// The interface as wasmtime-wasi 48 names it in the linker (guests importing
/// any 0.2.x version are matched to it).
pub const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// What a lookup needs from a store.
pub struct LookupCtx<'a> {
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
    /// The calling plugin's network capability.
    pub network: &'a Arc<Network>,
}

/// Replaces wasmtime-wasi's `ip-name-lookup` in `linker`, which must already
/// hold WASI 0.2. `get` finds a store's [`LookupCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LookupCtx<'_>,
) -> Result<()> {
    // Defining the resource without shadowing must fail: it proves the
    // interface is there under this name, so the shadowing below replaces
    // it rather than adding a second one that guests would never see.
    let probe = linker.instance(INTERFACE)?.resource(
        "resolve-address-stream",
        ResourceType::host::<Lookup>(),
        |_, _| Ok(()),
    );
    if probe.is_ok() {
        bail!("wasmtime-wasi does not define {INTERFACE}; update sandbox::lookup::INTERFACE");
    }
    linker.allow_shadowing(true);
    let result = define(linker, get);
    linker.allow_shadowing(false);
    result
}

fn define<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LookupCtx<'_>,
) -> Result<()> {
    let mut i = linker.instance(INTERFACE)?;
    i.resource(
        "resolve-address-stream",
        ResourceType::host::<Lookup>(),
        move |mut store, rep| {
            get(store.data_mut())
                .table
                .delete(Resource::<Lookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    i.func_wrap(
        "resolve-addresses",
        move |mut store, (network, name): (Resource<WasiNetwork>, String)| {
            let cx = get(store.data_mut());
            // The network handle is the capability to call this; check it.
            cx.table.get(&network)?;
            Ok((match start(cx.network, &name) {
                Ok(lookup) => Ok(cx.table.push(lookup)?),
                Err(code) => Err(code),
            },))
        },
    )?;
    i.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        move |mut store, (this,): (Resource<Lookup>,)| {
            let lookup = get(store.data_mut()).table.get_mut(&this)?;
            Ok((lookup.next(),))
        },
    )?;
    i.func_wrap(
        "[method]resolve-address-stream.subscribe",
        move |mut store, (this,): (Resource<Lookup>,)| {
            let pollable: Resource<DynPollable> =
                wasmtime_wasi::p2::subscribe(get(store.data_mut()).table, this)?;
            Ok((pollable,))
        },
    )?;
    Ok(())
}

/// Starts looking up `name` for `network`'s plugin, or refuses it.
fn start(network: &Arc<Network>, name: &str) -> Result<Lookup, ErrorCode> {
    if let Some(ip) = ip_literal(name) {
        return Ok(Lookup::Ready(Ok(vec![ip].into_iter())));
    }
    let query = match network.policy().lookup_name(name) {
        Ok(query) => query,
        Err(refusal) => {
            let shown: String = name
                .chars()
                .take(256)
                .flat_map(char::escape_debug)
                .collect();
            match refusal {
                LookupRefusal::NotGranted => network.refused(
                    format_args!("name lookup of {shown}"),
                    format_args!("no entry of `network.allow` grants this name"),
                    Some(&format!("{shown}:PORT")),
                ),
                LookupRefusal::Invalid => network.refused(
                    format_args!("name lookup of \"{shown}\""),
                    format_args!("it is not a valid host name"),
                    None,
                ),
            }
            return Err(ErrorCode::AccessDenied);
        }
    };
    let network = network.clone();
    Ok(Lookup::Pending(wasmtime_wasi::runtime::spawn(async move {
        let answer = tokio::net::lookup_host((query.as_str(), 0))
            .await
            .map_err(|e| {
                tracing::debug!("looking up {query}: {e}");
                ErrorCode::NameUnresolvable
            })?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for ip in answer.map(|a| a.ip().to_canonical()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if let Some(bad) = ips
            .iter()
            .find(|ip| !network.policy().allows_resolved(&query, **ip))
        {
            network.refused_answer(format_args!("name lookup of {query}"), &query, *bad, None);
            return Err(ErrorCode::AccessDenied);
        }
        Ok(ips)
    })))
}

/// An IP address written as a name, as wasmtime-wasi accepts it.
fn ip_literal(name: &str) -> Option<IpAddr> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A lookup in flight or answered: the guest's `resolve-address-stream`.
pub enum Lookup {
    /// The resolver has not answered yet.
    Pending(AbortOnDropJoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
    /// The addresses not yet handed out, or why there are none.
    Ready(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl Lookup {
    /// `resolve-next-address`: the next address, `none` at the end, or
    /// `would-block` while the resolver works.
    fn next(&mut self) -> Result<Option<IpAddress>, ErrorCode> {
        if let Lookup::Pending(task) = self {
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(task).poll(&mut cx) {
                Poll::Ready(answer) => *self = Lookup::Ready(answer.map(Vec::into_iter)),
                Poll::Pending => return Err(ErrorCode::WouldBlock),
            }
        }
        match self {
            Lookup::Ready(Ok(ips)) => Ok(ips.next().map(IpAddress::from)),
            Lookup::Ready(Err(code)) => Err(*code),
            Lookup::Pending(_) => unreachable!("resolved above"),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {
        if let Lookup::Pending(task) = self {
            let answer = task.await;
            *self = Lookup::Ready(answer.map(Vec::into_iter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::net::NetPolicy;

    fn network(entries: &[&str]) -> Arc<Network> {
        Arc::new(Network::new("test", NetPolicy::parse(entries).unwrap()))
    }

    async fn answer(network: &Arc<Network>, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        let mut lookup = start(network, name)?;
        lookup.ready().await;
        let mut ips = Vec::new();
        while let Some(ip) = lookup.next()? {
            ips.push(match ip {
                IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
            });
        }
        Ok(ips)
    }

    #[tokio::test]
    async fn ungranted_and_invalid_names_are_refused_without_a_query() {
        let net = network(&["api.example.com:443"]);
        for name in ["c2VjcmV0.attacker.example", "localhost", "a b", ""] {
            assert!(
                matches!(start(&net, name), Err(ErrorCode::AccessDenied)),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn ip_literals_come_back_as_they_are() {
        let net = network(&["api.example.com:443"]);
        assert_eq!(
            answer(&net, "10.1.2.3").await.unwrap(),
            ["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            answer(&net, "[::1]").await.unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn a_granted_name_answering_loopback_needs_the_address_listed() {
        let refused = answer(&network(&["localhost:8080"]), "localhost").await;
        assert!(
            matches!(refused, Err(ErrorCode::AccessDenied)),
            "{refused:?}"
        );
        let listed = network(&["localhost:8080", "127.0.0.1:8080", "[::1]:8080"]);
        let ips = answer(&listed, "LocalHost.").await.unwrap();
        assert!(ips.contains(&"127.0.0.1".parse().unwrap()), "{ips:?}");
    }

    #[test]
    fn the_interface_name_is_wasmtime_wasi_s() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<Store>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        add_to_linker(&mut linker, Store::lookup).unwrap();
    }

    struct Store {
        table: ResourceTable,
        wasi: wasmtime_wasi::WasiCtx,
        network: Arc<Network>,
    }

    impl Store {
        fn lookup(&mut self) -> LookupCtx<'_> {
            LookupCtx {
                table: &mut self.table,
                network: &self.network,
            }
        }
    }

    impl wasmtime_wasi::WasiView for Store {
        fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
            wasmtime_wasi::WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }
}

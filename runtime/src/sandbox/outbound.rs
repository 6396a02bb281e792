//! Network: where the `[network] allow` list is enforced, for wasi:http and
//! wasi:sockets alike.
//!
//! Guards against a guest reaching hosts it was not granted, and against a
//! granted name being pointed at the host's own services: every outgoing HTTP
//! request is checked by name, its name is resolved here, and each resolved
//! address is checked again (loopback, private and link-local addresses only
//! when listed literally). Plain-HTTP requests then connect to the checked
//! address itself, so a second DNS answer cannot swap it; HTTPS connects by
//! name, where the certificate check binds the connection to that name.

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http_body_util::BodyExt;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::net::NetPolicy;

/// Applies the socket half of the policy to a WASI context: TCP, UDP and
/// name lookups exist only when something is allowed, and every connect and
/// send is checked against the allow list. The guest resolves names itself
/// over wasi:sockets, so ward cannot tell which name an address came from:
/// sockets reach only addresses listed literally (and public addresses of
/// listed names through wasi:http, which resolves names here).
pub fn apply_sockets(builder: &mut WasiCtxBuilder, policy: &Arc<NetPolicy>) {
    let enabled = !policy.is_empty();
    builder
        .allow_tcp(enabled)
        .allow_udp(enabled)
        .allow_ip_name_lookup(enabled);
    let policy = policy.clone();
    builder.socket_addr_check(move |addr, usage| {
        let allowed = match usage {
            // The implicit bind before a connect or send: an ephemeral port
            // on the wildcard address. A plugin never listens or serves.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                addr.ip().is_unspecified() && addr.port() == 0
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            _ => policy.allows_addr(None, addr),
        };
        Box::pin(async move { allowed })
    });
}

/// The wasi:http hooks of one call.
pub struct HttpHooks {
    policy: Arc<NetPolicy>,
}

impl HttpHooks {
    /// Hooks enforcing `policy`.
    pub fn new(policy: Arc<NetPolicy>) -> Self {
        Self { policy }
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let policy = self.policy.clone();
        Box::new(async move {
            let request = check(&policy, request).await?;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// Checks a request against the policy, resolving its host; returns the
/// request to send (for plain HTTP, addressed to the checked IP).
async fn check(
    policy: &NetPolicy,
    mut request: http::Request<WasiBody>,
) -> Result<http::Request<WasiBody>, HttpError> {
    let uri = request.uri();
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if !policy.allows_host(&host, port) {
        tracing::warn!("http request to {host}:{port} refused: not in [network] allow");
        return Err(HttpError::HttpRequestDenied);
    }
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => {
            return Err(HttpError::DnsError {
                rcode: Some("address not available".into()),
                info_code: None,
            })
        }
    };
    if addrs.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    if let Some(bad) = addrs.iter().find(|a| !policy.allows_addr(Some(&host), **a)) {
        tracing::warn!(
            "http request to {host}:{port} refused: it resolves to {bad}, which is not allowed"
        );
        return Err(HttpError::DestinationIpProhibited);
    }
    if !tls {
        let authority: Authority = addrs[0]
            .to_string()
            .parse()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let mut parts = request.uri().clone().into_parts();
        parts.authority = Some(authority);
        *request.uri_mut() =
            http::Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    }
    Ok(request)
}

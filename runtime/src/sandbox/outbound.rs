//! Network: where the `[network] allow` list is enforced, for wasi:http,
//! wasi:sockets and name lookups alike (the list itself is `net.rs`).
//!
//! Guards against a guest reaching hosts it was not granted, and against a
//! granted name being pointed at the host's own services. Every outgoing
//! HTTP request is checked by name, its name is resolved here, once, each
//! resolved address is checked again (loopback, private and link-local
//! addresses only when listed literally), and the connection goes to a
//! checked address: a second DNS answer never gets a say. HTTPS then
//! verifies the certificate against the name the guest asked for. Sockets
//! connect by address and reach only listed addresses; name lookups
//! (`lookup.rs`) answer only for granted names.
//!
//! Every refusal is logged once, here, naming the plugin, what was refused
//! and why, and the `network.allow` entry that would allow it.
//!
//! HTTP connections are kept alive and reused within one plugin: each
//! [`Network`] (built at load, so a reload with a new policy starts afresh)
//! owns a pool of idle connections, and two plugins never share one. A
//! connection is pooled under its destination as the guest named it: the
//! scheme, the host (for HTTPS the name its certificate was verified for)
//! and the port. Every request is checked by name against the allow list
//! before the pool is looked at, and a pooled connection was opened only to
//! an address checked for that very name and port under the same policy,
//! which never changes for a `Network`: reusing it reaches nothing a new
//! connection could not. Keying by name rather than by resolved address
//! saves a DNS lookup per reused request, and a later DNS answer never
//! redirects an open connection. A connection goes back to the pool once
//! its response was read to the end (one dropped midway is closed); at most
//! [`IDLE_PER_DESTINATION`] per destination and [`IDLE_PER_PLUGIN`] per
//! plugin are kept, each for at most [`IDLE_TIMEOUT`]. `WARD_HTTP_POOL=off`
//! in ward's environment turns reuse off (every request opens and closes its
//! own connection, as before there was a pool): the benchmarks' baseline,
//! and a way to rule the pool out when a server mishandles keep-alive.
//!
//! The pool is a small one of hyper `SendRequest`s rather than
//! hyper-util's legacy `Client`: that client's connector sees only a URI, so
//! it could not apply each request's own connect timeout (wasi:http request
//! options) nor hand back ward's refusals as the wasi:http errors the guest
//! expects, and it would resolve the name before consulting its pool.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::net::{AddrClass, NetPolicy};

/// One plugin's network capability, built once at load: its allow list, and
/// its name for refusals that say whose they were and how to allow them.
#[derive(Debug)]
pub struct Network {
    plugin: Arc<str>,
    policy: NetPolicy,
    /// The plugin's idle HTTP connections.
    pool: Arc<Pool>,
}

impl Network {
    /// The capability of plugin `plugin` (whose policy file is
    /// `PLUGIN.toml`) under `policy`.
    pub fn new(plugin: impl Into<Arc<str>>, policy: NetPolicy) -> Self {
        Self {
            plugin: plugin.into(),
            policy,
            pool: Arc::default(),
        }
    }

    /// The allow list.
    pub fn policy(&self) -> &NetPolicy {
        &self.policy
    }

    /// Logs a refusal: `what` was refused because `why`; `entry`, when some
    /// entry would allow it, is the one to suggest.
    pub(crate) fn refused(
        &self,
        what: fmt::Arguments<'_>,
        why: fmt::Arguments<'_>,
        entry: Option<&str>,
    ) {
        let plugin = &self.plugin;
        match entry {
            Some(entry) => tracing::warn!(
                plugin = %plugin,
                "{what} refused: {why}; to allow it, add \"{entry}\" to `network.allow` in {plugin}.toml"
            ),
            None => tracing::warn!(plugin = %plugin, "{what} refused: {why}"),
        }
    }

    /// Logs that `host` resolved to `ip`, which is not allowed for it on
    /// `port` (`None`: a lookup, on no port yet).
    pub(crate) fn refused_answer(
        &self,
        what: fmt::Arguments<'_>,
        host: &str,
        ip: IpAddr,
        port: Option<u16>,
    ) {
        let entry = match port {
            Some(port) => SocketAddr::new(ip, port).to_string(),
            None if ip.is_ipv6() => format!("[{ip}]:PORT"),
            None => format!("{ip}:PORT"),
        };
        self.refused(
            what,
            format_args!(
                "{host} resolves to {ip}, {}, which a host name never reaches unless the address is listed",
                AddrClass::of(ip)
            ),
            Some(&entry),
        );
    }
}

/// Applies the socket half of the policy to a WASI context: TCP and UDP
/// exist only when something is allowed, and every connect and send is
/// checked against the allow list. Sockets connect by address, so they reach
/// only addresses listed literally. Name lookups are ward's own (`lookup.rs`):
/// wasmtime-wasi's resolver stays off, whatever the linker holds.
pub fn apply_sockets(builder: &mut WasiCtxBuilder, network: &Arc<Network>) {
    let enabled = !network.policy.is_empty();
    builder
        .allow_tcp(enabled)
        .allow_udp(enabled)
        .allow_ip_name_lookup(false);
    let network = network.clone();
    builder.socket_addr_check(move |addr, usage| {
        let allowed = match usage {
            // The implicit bind before a connect or send: an ephemeral port
            // on the wildcard address. A plugin never listens or serves.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                addr.ip().is_unspecified() && addr.port() == 0
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            _ => network.policy.allows_addr(None, addr),
        };
        if !allowed {
            refuse_socket(&network, addr, usage);
        }
        Box::pin(async move { allowed })
    });
}

fn refuse_socket(network: &Network, addr: SocketAddr, usage: SocketAddrUse) {
    let (what, outward) = match usage {
        SocketAddrUse::TcpConnect => ("TCP connect to", true),
        SocketAddrUse::UdpSend => ("UDP send to", true),
        SocketAddrUse::UdpReceive => ("UDP datagram from", true),
        SocketAddrUse::TcpBind => ("TCP bind on", false),
        SocketAddrUse::TcpListen => ("TCP listen on", false),
        SocketAddrUse::TcpAccept => ("TCP accept from", false),
        SocketAddrUse::UdpBind => ("UDP bind on", false),
    };
    if outward {
        network.refused(
            format_args!("{what} {addr}"),
            format_args!("sockets reach only addresses listed in `network.allow`"),
            Some(&addr.to_string()),
        )
    } else {
        network.refused(
            format_args!("{what} {addr}"),
            format_args!("plugins connect out; they never bind a chosen address, listen or accept"),
            None,
        )
    }
}

/// The wasi:http hooks of one call.
pub struct HttpHooks {
    network: Arc<Network>,
}

impl HttpHooks {
    /// Hooks enforcing `network`.
    pub fn new(network: Arc<Network>) -> Self {
        Self { network }
    }

    /// The plugin's network capability. Every store holds exactly one set of
    /// hooks, so ward's name lookup (`lookup.rs`) finds the capability here.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let network = self.network.clone();
        // A CLIENT span, a child of the guest call's (telemetry.rs).
        let span = crate::telemetry::http_span(request.method(), request.uri());
        Box::new(crate::telemetry::http_request(span, async move {
            let response = send(&network, request, options, system_resolver).await?;
            // The connection's I/O runs on a task of its own (see `open`),
            // which outlives the call when the connection is pooled.
            let io = std::future::ready(Ok(()));
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        }))
    }
}

/// Resolves with the host's resolver.
async fn system_resolver(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host.as_str(), port))
        .await?
        .collect())
}

/// Where a checked request goes: only to these addresses, each checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// The addresses the host resolved to, every one allowed, tried in order.
    addrs: Vec<SocketAddr>,
    /// For HTTPS, the name the certificate must be valid for: the host the
    /// guest asked for, never the address.
    tls: Option<ServerName<'static>>,
}

/// A request's destination, allowed by name: the host as the guest wrote it
/// (without brackets), its port and scheme.
#[derive(Debug)]
struct Dest {
    https: bool,
    host: String,
    port: u16,
    /// `host:port` (`[ip]:port` for IPv6), for messages.
    authority: String,
}

/// What a pooled connection is reused for: scheme, host (for HTTPS, the name
/// its certificate was verified for) and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    https: bool,
    host: String,
    port: u16,
}

impl Dest {
    fn scheme(&self) -> &'static str {
        if self.https {
            "HTTPS"
        } else {
            "HTTP"
        }
    }

    fn key(&self) -> Key {
        Key {
            https: self.https,
            host: self.host.to_ascii_lowercase(),
            port: self.port,
        }
    }
}

/// Checks a request's destination by name, before any lookup and before any
/// pooled connection is used.
fn check_name(network: &Network, uri: &http::Uri) -> Result<Dest, HttpError> {
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let raw = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let host = raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = if raw.starts_with('[') {
        format!("{raw}:{port}")
    } else {
        format!("{host}:{port}")
    };
    let dest = Dest {
        https,
        host,
        port,
        authority,
    };
    if !network.policy.allows_host(&dest.host, port) {
        network.refused(
            format_args!("{} request to {}", dest.scheme(), dest.authority),
            format_args!("no entry of `network.allow` grants it"),
            Some(&dest.authority),
        );
        return Err(HttpError::HttpRequestDenied);
    }
    Ok(dest)
}

/// Resolves `dest` (allowed by name) with `resolve` and checks every address
/// it gives. The [`Target`] holds the checked addresses, and [`open`]
/// connects to nothing else.
async fn resolve_checked<R, F>(
    network: &Network,
    dest: &Dest,
    resolve: R,
) -> Result<Target, HttpError>
where
    R: FnOnce(String, u16) -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let (host, port) = (&dest.host, dest.port);
    let addrs = match resolve(host.clone(), port).await {
        Ok(addrs) if !addrs.is_empty() => addrs,
        Ok(_) => return Err(HttpError::DestinationNotFound),
        Err(_) => {
            return Err(HttpError::DnsError {
                rcode: Some("address not available".into()),
                info_code: None,
            })
        }
    };
    if let Some(bad) = addrs
        .iter()
        .find(|a| !network.policy.allows_addr(Some(host), **a))
    {
        network.refused_answer(
            format_args!("{} request to {}", dest.scheme(), dest.authority),
            host,
            bad.ip(),
            Some(port),
        );
        return Err(HttpError::DestinationIpProhibited);
    }
    let tls = match dest.https {
        true => Some(server_name(&host.to_ascii_lowercase())?),
        false => None,
    };
    Ok(Target { addrs, tls })
}

/// Checks a request's destination against the policy: its host by name, then
/// every address `resolve` gives for it.
#[cfg(test)]
async fn route<R, F>(network: &Network, uri: &http::Uri, resolve: R) -> Result<Target, HttpError>
where
    R: FnOnce(String, u16) -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let dest = check_name(network, uri)?;
    resolve_checked(network, &dest, resolve).await
}

/// The name TLS verifies: an IP literal as an address, else the host name.
fn server_name(host: &str) -> Result<ServerName<'static>, HttpError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::from(ip)),
        Err(_) => Ok(ServerName::try_from(host)?.to_owned()),
    }
}

/// The TLS client of every HTTPS request: the stack and roots
/// wasmtime-wasi-http uses (rustls with ring, the Mozilla roots of
/// webpki-roots), built once.
static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports rustls' default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Connects to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(HttpError::Connect(
        last.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()),
    ))
}

/// A request's timeouts: 600 s each by default, as wasmtime-wasi-http's own
/// sender (the plugin's `limits.timeout` ends the call sooner).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// For TCP, TLS and the HTTP handshake, each.
    connect: Duration,
    /// From sending the request to the response's head.
    first_byte: Duration,
    /// Between two chunks of the response body.
    between_bytes: Duration,
}

impl Timeouts {
    fn new(options: Option<&RequestOptions>) -> Self {
        let pick = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.and_then(pick).unwrap_or(Duration::from_secs(600))
        };
        Self {
            connect: pick(|o| o.connect_timeout),
            first_byte: pick(|o| o.first_byte_timeout),
            between_bytes: pick(|o| o.between_bytes_timeout).max(Duration::from_nanos(1)),
        }
    }
}

/// Sends `request` for `network` over HTTP/1.1: checked by name first, then
/// over an idle connection to the same destination if the plugin has one,
/// else over a new connection to an address `resolve` gave and the policy
/// allows. Follows `wasmtime_wasi_http::default_send_request`, except that
/// it connects to the checked address instead of resolving the authority
/// again, and keeps the connection for the plugin's next request.
async fn send<R, F>(
    network: &Network,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    resolve: R,
) -> Result<http::Response<ResponseBody>, HttpError>
where
    R: FnOnce(String, u16) -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let timeouts = Timeouts::new(options.as_ref());
    // Every request, pooled connection or not.
    let dest = check_name(network, request.uri())?;
    let key = dest.key();

    // The request line carries only the path: scheme and authority go to a
    // proxy, and the Host header (set by wasmtime-wasi-http) names the host.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    while let Some(mut conn) = network.pool.take(&key) {
        match exchange(&mut conn, request, timeouts, true).await {
            Ok(response) => return Ok(lend(response, conn, &network.pool, key, timeouts)),
            // Closed while idle: the request never left, try the next one.
            Err(Failed::Unsent(unsent)) => request = unsent,
            Err(Failed::Error(e)) => return Err(e),
        }
    }
    let target = resolve_checked(network, &dest, resolve).await?;
    let mut conn = open(target, timeouts.connect).await?;
    match exchange(&mut conn, request, timeouts, false).await {
        Ok(response) => Ok(lend(response, conn, &network.pool, key, timeouts)),
        Err(Failed::Error(e)) => Err(e),
        Err(Failed::Unsent(_)) => Err(HttpError::ConnectionTerminated),
    }
}

/// Opens a connection to `target`, within `timeout` for TCP (and TLS) and
/// again for the HTTP handshake. Its I/O runs on a task of its own, which
/// ends when the connection closes or its [`Conn`] is dropped.
async fn open(target: Target, timeout: Duration) -> Result<Conn, HttpError> {
    let stream = tokio::time::timeout(timeout, async {
        let tcp = connect(&target.addrs).await?;
        Ok::<Box<dyn Stream>, HttpError>(match target.tls {
            Some(name) => Box::new(TLS.connect(name, tcp).await.map_err(HttpError::Tls)?),
            None => Box::new(tcp),
        })
    })
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    let (sender, connection) = tokio::time::timeout(
        timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("outgoing HTTP connection ended: {e}");
        }
    });
    Ok(Conn {
        sender,
        driver: driver.abort_handle(),
    })
}

/// Why [`exchange`] got no response.
enum Failed {
    /// The connection closed before the request was sent: here it is back.
    Unsent(http::Request<WasiBody>),
    Error(HttpError),
}

/// Sends `request` over `conn` and waits for the response's head. A
/// `reused` connection must first be ready again (a pooled one may have
/// been closed by the server, or still be finishing its last exchange).
async fn exchange(
    conn: &mut Conn,
    request: http::Request<WasiBody>,
    timeouts: Timeouts,
    reused: bool,
) -> Result<http::Response<Incoming>, Failed> {
    if reused {
        let wait = timeouts.connect.min(READY_WAIT);
        match tokio::time::timeout(wait, conn.sender.ready()).await {
            Ok(Ok(())) => {}
            _ => return Err(Failed::Unsent(request)),
        }
    }
    match tokio::time::timeout(timeouts.first_byte, conn.sender.try_send_request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(mut e)) => match e.take_message() {
            Some(request) if reused => Err(Failed::Unsent(request)),
            _ => Err(Failed::Error(e.into_error().into())),
        },
        Err(_) => Err(Failed::Error(HttpError::ConnectionReadTimeout)),
    }
}

/// The response, whose body holds `conn` until it is read to the end, then
/// gives it back to `pool`.
fn lend(
    response: http::Response<Incoming>,
    conn: Conn,
    pool: &Arc<Pool>,
    key: Key,
    timeouts: Timeouts,
) -> http::Response<ResponseBody> {
    let mut between = tokio::time::interval(timeouts.between_bytes);
    between.reset();
    let lent = Lent {
        conn,
        pool: Arc::downgrade(pool),
        key,
    };
    response.map(|incoming| ResponseBody {
        incoming,
        between,
        lent: Some(lent),
    })
}

/// A response body that fails when no bytes arrive for the request's
/// between-bytes timeout, and gives its connection back to the pool once
/// read to the end.
struct ResponseBody {
    incoming: Incoming,
    between: tokio::time::Interval,
    /// The connection, until the body ends.
    lent: Option<Lent>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some(lent) = self.lent.take() {
                    lent.give_back();
                }
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => Err(HttpError::HttpResponseTimeout),
            Poll::Ready(Some(Err(e))) => Err(e.into()),
            Poll::Ready(Some(Ok(frame))) => {
                self.between.reset();
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Pending => {
                ready!(self.between.poll_tick(cx));
                Err(HttpError::ConnectionReadTimeout)
            }
        };
        // A failed exchange closes its connection.
        self.lent = None;
        Poll::Ready(Some(polled))
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // With nothing left to read (no body, or all of it read), the
        // connection can carry another request; dropped midway, it closes.
        if let Some(lent) = self.lent.take() {
            if self.incoming.is_end_stream() {
                lent.give_back();
            }
        }
    }
}

/// Idle connections kept per destination (scheme, host, port) of a plugin.
pub const IDLE_PER_DESTINATION: usize = 4;
/// Idle connections kept per plugin, over all its destinations.
pub const IDLE_PER_PLUGIN: usize = 32;
/// How long a connection may stay idle before ward closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a pooled connection may take to be ready again (its I/O task
/// finishing the last exchange) before a new connection is opened instead.
const READY_WAIT: Duration = Duration::from_secs(1);

/// Whether connections are reused: `WARD_HTTP_POOL=off` (or `0`) turns it off.
static POOLING: LazyLock<bool> =
    LazyLock::new(|| !matches!(std::env::var("WARD_HTTP_POOL").as_deref(), Ok("off" | "0")));

/// An open HTTP/1.1 connection: dropping it closes it.
struct Conn {
    sender: SendRequest<WasiBody>,
    /// The task running its I/O.
    driver: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A connection lent to one response, and where it goes back.
struct Lent {
    conn: Conn,
    pool: Weak<Pool>,
    key: Key,
}

impl Lent {
    fn give_back(self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.put(self.key, self.conn);
        }
    }
}

/// One plugin's idle connections, by destination.
#[derive(Default)]
struct Pool {
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Per destination, oldest first.
    by_key: HashMap<Key, Vec<Parked>>,
    /// Whether a task closes connections idle for [`IDLE_TIMEOUT`].
    reaping: bool,
}

struct Parked {
    conn: Conn,
    since: Instant,
}

impl Parked {
    fn usable(&self, now: Instant) -> bool {
        now.duration_since(self.since) < IDLE_TIMEOUT && !self.conn.sender.is_closed()
    }
}

impl Idle {
    fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    /// Drops the connections idle too long or closed by their server.
    fn purge(&mut self, now: Instant) {
        self.by_key.retain(|_, list| {
            list.retain(|p| p.usable(now));
            !list.is_empty()
        });
    }

    /// The longest idle connection's key.
    fn oldest(&self) -> Option<(&Key, Instant)> {
        self.by_key
            .iter()
            .filter_map(|(key, list)| Some((key, list.first()?.since)))
            .min_by_key(|(_, since)| *since)
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently parked usable connection to `key`, if any.
    fn take(&self, key: &Key) -> Option<Conn> {
        let mut idle = self.lock();
        let list = idle.by_key.get_mut(key)?;
        let now = Instant::now();
        let mut found = None;
        while let Some(parked) = list.pop() {
            if parked.usable(now) {
                found = Some(parked.conn);
                break;
            }
        }
        if list.is_empty() {
            idle.by_key.remove(key);
        }
        found
    }

    /// Parks `conn`, whose last response was read to the end, for the next
    /// request to `key`, within the bounds; or drops (closes) it.
    fn put(self: &Arc<Self>, key: Key, conn: Conn) {
        if !*POOLING || conn.sender.is_closed() {
            return;
        }
        // Nothing would close it once idle: close it now.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let now = Instant::now();
        let mut idle = self.lock();
        idle.purge(now);
        let list = idle.by_key.entry(key).or_default();
        if list.len() >= IDLE_PER_DESTINATION {
            list.remove(0);
        }
        list.push(Parked { conn, since: now });
        if idle.len() > IDLE_PER_PLUGIN {
            if let Some((key, _)) = idle.oldest() {
                let key = key.clone();
                if let Some(list) = idle.by_key.get_mut(&key) {
                    list.remove(0);
                    if list.is_empty() {
                        idle.by_key.remove(&key);
                    }
                }
            }
        }
        if !idle.reaping {
            idle.reaping = true;
            runtime.spawn(reap(Arc::downgrade(self)));
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.lock().len())
            .finish()
    }
}

/// Closes `pool`'s connections once idle for [`IDLE_TIMEOUT`]; ends when
/// none is left, or the plugin is gone.
async fn reap(pool: Weak<Pool>) {
    loop {
        let wake = {
            let Some(pool) = pool.upgrade() else {
                return;
            };
            let mut idle = pool.lock();
            idle.purge(Instant::now());
            match idle.oldest() {
                Some((_, since)) => since + IDLE_TIMEOUT,
                None => {
                    idle.reaping = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(wake.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn network(entries: &[&str]) -> Network {
        Network::new("test", NetPolicy::parse(entries).unwrap())
    }

    /// A resolver answering `answer` for every name, recording what it was
    /// asked.
    fn fake<'a>(
        answer: &'static [&'static str],
        asked: &'a std::sync::Mutex<Vec<String>>,
    ) -> impl FnOnce(String, u16) -> std::future::Ready<io::Result<Vec<SocketAddr>>> + 'a {
        move |host, port| {
            asked.lock().unwrap().push(format!("{host}:{port}"));
            let addrs = answer
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                .collect();
            std::future::ready(Ok(addrs))
        }
    }

    #[tokio::test]
    async fn the_connect_target_is_the_checked_address_and_tls_keeps_the_name() {
        let net = network(&["api.example.com:443"]);
        let asked = std::sync::Mutex::new(Vec::new());
        let uri: http::Uri = "https://API.example.com/v1?q=1".parse().unwrap();
        let target = route(
            &net,
            &uri,
            fake(&["93.184.216.34", "2606:2800:220:1::1"], &asked),
        )
        .await
        .unwrap();
        assert_eq!(*asked.lock().unwrap(), ["API.example.com:443"]);
        assert_eq!(
            target,
            Target {
                addrs: vec![
                    "93.184.216.34:443".parse().unwrap(),
                    "[2606:2800:220:1::1]:443".parse().unwrap()
                ],
                tls: Some(ServerName::try_from("api.example.com").unwrap()),
            }
        );
        // Plain HTTP: the same addresses, no TLS name.
        let net = network(&["api.example.com"]);
        let uri: http::Uri = "http://api.example.com:8080/".parse().unwrap();
        let target = route(&net, &uri, fake(&["93.184.216.34"], &asked))
            .await
            .unwrap();
        assert_eq!(target.addrs, ["93.184.216.34:8080".parse().unwrap()]);
        assert_eq!(target.tls, None);
    }

    #[tokio::test]
    async fn a_name_answering_loopback_or_private_is_refused_for_both_schemes() {
        let net = network(&["rebind.example"]);
        for url in ["http://rebind.example/", "https://rebind.example/"] {
            let uri: http::Uri = url.parse().unwrap();
            let asked = std::sync::Mutex::new(Vec::new());
            // One public and one loopback answer: refused as a whole.
            let err = route(&net, &uri, fake(&["93.184.216.34", "127.0.0.1"], &asked))
                .await
                .unwrap_err();
            assert!(
                matches!(err, HttpError::DestinationIpProhibited),
                "{url}: {err}"
            );
            let err = route(&net, &uri, fake(&["10.0.0.1"], &asked))
                .await
                .unwrap_err();
            assert!(
                matches!(err, HttpError::DestinationIpProhibited),
                "{url}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn an_ungranted_host_is_refused_before_any_lookup() {
        let net = network(&["api.example.com:443"]);
        let asked = std::sync::Mutex::new(Vec::new());
        for url in [
            "https://c2VjcmV0.attacker.example/",
            "http://api.example.com/",
            "https://127.0.0.1/",
        ] {
            let uri: http::Uri = url.parse().unwrap();
            let err = route(&net, &uri, fake(&["93.184.216.34"], &asked))
                .await
                .unwrap_err();
            assert!(matches!(err, HttpError::HttpRequestDenied), "{url}: {err}");
        }
        assert!(asked.lock().unwrap().is_empty(), "{asked:?}");
    }

    /// End to end on loopback: a checked route to a listed address is where
    /// the TCP connection goes, and the TLS handshake names the host the
    /// guest asked for (its ClientHello carries it as SNI), not the address.
    #[tokio::test]
    async fn https_connects_to_the_checked_address_with_the_original_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hello = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            buf.truncate(n);
            buf
        });
        // The name is granted, and the address it "resolves" to is listed.
        let entry = format!("127.0.0.1:{port}");
        let net = network(&["api.example.com", &entry]);
        let asked = std::sync::Mutex::new(Vec::new());
        let uri: http::Uri = format!("https://api.example.com:{port}/").parse().unwrap();
        let request = http::Request::get(uri)
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap();
        let sent = send(&net, request, None, fake(&["127.0.0.1"], &asked));
        let (sent, hello) = tokio::join!(sent, hello);
        let hello = hello.unwrap();
        assert_eq!(hello.first(), Some(&0x16), "not a TLS handshake: {hello:?}");
        assert!(
            hello.windows(15).any(|w| w == b"api.example.com"),
            "the ClientHello does not name api.example.com"
        );
        assert!(
            sent.is_err(),
            "no TLS server answered, yet the request succeeded"
        );
    }

    /// A loopback HTTP/1.1 server that keeps connections alive, counting the
    /// connections it accepted and those that ended. `/close` answers with
    /// `connection: close`, `/drop` closes without saying so, `/big` sends
    /// 1 MiB; any other path a short text.
    struct Site {
        port: u16,
        accepted: Arc<std::sync::atomic::AtomicUsize>,
        ended: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Site {
        async fn start() -> Self {
            use std::sync::atomic::Ordering::SeqCst;
            use tokio::io::AsyncWriteExt;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let site = Site {
                port,
                accepted: Arc::default(),
                ended: Arc::default(),
            };
            let (accepted, ended) = (site.accepted.clone(), site.ended.clone());
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    accepted.fetch_add(1, SeqCst);
                    let ended = ended.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        'requests: loop {
                            let end = loop {
                                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                    break i + 4;
                                }
                                let mut chunk = [0u8; 4096];
                                match socket.read(&mut chunk).await {
                                    Ok(0) | Err(_) => break 'requests,
                                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                                }
                            };
                            let head: Vec<u8> = buf.drain(..end).collect();
                            let head = String::from_utf8_lossy(&head);
                            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                            let (close, body) = match path.as_str() {
                                "/close" => ("connection: close\r\n", "bye".to_string()),
                                "/drop" => ("", "dropped".to_string()),
                                "/big" => ("", "x".repeat(1 << 20)),
                                _ => ("", format!("hello from {path}")),
                            };
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{close}content-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if socket.write_all(response.as_bytes()).await.is_err()
                                || matches!(path.as_str(), "/close" | "/drop")
                            {
                                break;
                            }
                        }
                        drop(socket);
                        ended.fetch_add(1, SeqCst);
                    });
                }
            });
            site
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        fn accepted(&self) -> usize {
            self.accepted.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn ended(&self) -> usize {
            self.ended.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// A plugin's network allowed to reach this site only.
        fn plugin(&self, name: &str) -> Network {
            let entry = format!("127.0.0.1:{}", self.port);
            Network::new(name, NetPolicy::parse(&[entry.as_str()]).unwrap())
        }
    }

    /// Waits (at most 10 s) until `done`.
    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..2000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting until {what}");
    }

    fn get_request(url: &str) -> http::Request<WasiBody> {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        http::Request::get(uri)
            .header(http::header::HOST, host)
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    /// GETs `url` for `net`'s plugin and reads the whole body.
    async fn get(net: &Network, url: &str) -> Result<String, HttpError> {
        let response = send(net, get_request(url), None, system_resolver).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(body.to_vec()).unwrap())
    }

    // On two workers, as ward runs: the connection's I/O task and the
    // request's may run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_plugins_sequential_requests_share_a_connection_and_plugins_never_share() {
        let site = Site::start().await;
        let (a, b) = (site.plugin("a"), site.plugin("b"));
        for i in 0..10 {
            let path = format!("/a{i}");
            assert_eq!(
                get(&a, &site.url(&path)).await.unwrap(),
                format!("hello from {path}")
            );
        }
        assert_eq!(site.accepted(), 1, "10 sequential requests of one plugin");
        for i in 0..5 {
            get(&b, &site.url(&format!("/b{i}"))).await.unwrap();
        }
        assert_eq!(
            site.accepted(),
            2,
            "a second plugin opens its own connection"
        );
        get(&a, &site.url("/again")).await.unwrap();
        assert_eq!(site.accepted(), 2);
        assert_eq!(site.ended(), 0);
        // A plugin's connections close with its `Network` (a reload's new
        // policy starts with none).
        drop(a);
        until("a's connection closed", || site.ended() == 1).await;
        get(&b, &site.url("/still")).await.unwrap();
        assert_eq!(site.accepted(), 2);
    }

    #[tokio::test]
    async fn a_refused_host_stays_refused_with_a_pooled_connection_open() {
        let (site, other) = (Site::start().await, Site::start().await);
        let net = site.plugin("test");
        get(&net, &site.url("/")).await.unwrap();
        assert_eq!(net.pool.lock().len(), 1);
        // Another port of the same address, and a name for it: neither is
        // listed, so neither may ride on the open connection or open one.
        for url in [other.url("/"), format!("http://localhost:{}/", site.port)] {
            let err = get(&net, &url).await.unwrap_err();
            assert!(matches!(err, HttpError::HttpRequestDenied), "{url}: {err}");
        }
        assert_eq!((site.accepted(), other.accepted()), (1, 0));
        // A name granted but answering loopback is refused after the lookup,
        // however many connections to that address are pooled.
        let entry = format!("127.0.0.1:{}", other.port);
        let named = Network::new(
            "named",
            NetPolicy::parse(&["api.example.com", &entry]).unwrap(),
        );
        get(&named, &other.url("/")).await.unwrap();
        let asked = std::sync::Mutex::new(Vec::new());
        let request = get_request(&format!("http://api.example.com:{}/", site.port));
        let Err(err) = send(&named, request, None, fake(&["127.0.0.1"], &asked)).await else {
            panic!("api.example.com reached loopback");
        };
        assert!(matches!(err, HttpError::DestinationIpProhibited), "{err}");
        // The allowed destination still reuses its connection.
        get(&net, &site.url("/")).await.unwrap();
        assert_eq!((site.accepted(), other.accepted()), (1, 1));
    }

    #[tokio::test]
    async fn connections_the_server_closes_are_not_reused() {
        let site = Site::start().await;
        let net = site.plugin("test");
        assert_eq!(get(&net, &site.url("/close")).await.unwrap(), "bye");
        assert_eq!(get(&net, &site.url("/close")).await.unwrap(), "bye");
        assert_eq!(site.accepted(), 2);
        // Closed without `connection: close`: noticed while idle.
        get(&net, &site.url("/drop")).await.unwrap();
        until("the server closed", || site.ended() == 3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(get(&net, &site.url("/")).await.unwrap(), "hello from /");
        assert_eq!(site.accepted(), 4);
    }

    #[tokio::test]
    async fn a_body_dropped_midway_closes_its_connection() {
        let site = Site::start().await;
        let net = site.plugin("test");
        let response = send(&net, get_request(&site.url("/big")), None, system_resolver)
            .await
            .unwrap();
        drop(response);
        until("the connection closed", || site.ended() == 1).await;
        assert_eq!(net.pool.lock().len(), 0);
        get(&net, &site.url("/")).await.unwrap();
        assert_eq!(site.accepted(), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_per_destination_and_in_time() {
        let site = Site::start().await;
        let net = site.plugin("test");
        // Six at once: six connections, of which four stay.
        let mut responses = Vec::new();
        for _ in 0..IDLE_PER_DESTINATION + 2 {
            let response = send(&net, get_request(&site.url("/")), None, system_resolver);
            responses.push(response.await.unwrap());
        }
        assert_eq!(site.accepted(), IDLE_PER_DESTINATION + 2);
        for response in responses {
            response.into_body().collect().await.unwrap();
        }
        assert_eq!(net.pool.lock().len(), IDLE_PER_DESTINATION);
        until("two connections closed", || site.ended() == 2).await;

        // Past the idle timeout, the reaper closes them.
        for list in net.pool.lock().by_key.values_mut() {
            for parked in list {
                parked.since -= IDLE_TIMEOUT;
            }
        }
        reap(Arc::downgrade(&net.pool)).await;
        assert_eq!(net.pool.lock().len(), 0);
        assert!(!net.pool.lock().reaping);
        until("all closed", || site.ended() == IDLE_PER_DESTINATION + 2).await;
        get(&net, &site.url("/")).await.unwrap();
        assert_eq!(site.accepted(), IDLE_PER_DESTINATION + 3);
    }
}

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

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::net::{classify, NetPolicy};

/// One plugin's network capability, built once at load: its allow list, and
/// its name for refusals that say whose they were and how to allow them.
#[derive(Debug)]
pub struct Network {
    plugin: Arc<str>,
    policy: NetPolicy,
}

impl Network {
    /// The capability of plugin `plugin` (whose policy file is
    /// `PLUGIN.toml`) under `policy`.
    pub fn new(plugin: impl Into<Arc<str>>, policy: NetPolicy) -> Self {
        Self {
            plugin: plugin.into(),
            policy,
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
                classify(ip)
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
            let target = route(&network, request.uri(), system_resolver).await?;
            let (response, io) = send(request, options, target).await?;
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

/// Checks a request's destination against the policy: its host by name, then
/// every address `resolve` gives for it. The [`Target`] holds the checked
/// addresses, and [`send`] connects to nothing else.
async fn route<R, F>(network: &Network, uri: &http::Uri, resolve: R) -> Result<Target, HttpError>
where
    R: FnOnce(String, u16) -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let raw = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let host = raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let scheme = if tls { "HTTPS" } else { "HTTP" };
    let authority = if raw.starts_with('[') {
        format!("{raw}:{port}")
    } else {
        format!("{host}:{port}")
    };
    if !network.policy.allows_host(&host, port) {
        network.refused(
            format_args!("{scheme} request to {authority}"),
            format_args!("no entry of `network.allow` grants it"),
            Some(&authority),
        );
        return Err(HttpError::HttpRequestDenied);
    }
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
        .find(|a| !network.policy.allows_addr(Some(&host), **a))
    {
        network.refused_answer(
            format_args!("{scheme} request to {authority}"),
            &host,
            bad.ip(),
            Some(port),
        );
        return Err(HttpError::DestinationIpProhibited);
    }
    let tls = match tls {
        true => Some(server_name(&host.to_ascii_lowercase())?),
        false => None,
    };
    Ok(Target { addrs, tls })
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

/// Sends `request` to `target` over HTTP/1.1, with the request's timeouts
/// (600 s each by default, as wasmtime-wasi-http's own sender; the plugin's
/// `limits.timeout` ends the call sooner). Follows
/// `wasmtime_wasi_http::default_send_request`, except that it connects to the
/// checked address instead of resolving the authority again.
async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    target: Target,
) -> Result<
    (
        http::Response<ResponseBody>,
        impl Future<Output = Result<(), HttpError>> + Send,
    ),
    HttpError,
> {
    let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options
            .as_ref()
            .and_then(pick)
            .unwrap_or(Duration::from_secs(600))
    };
    let connect_timeout = timeout(|o| o.connect_timeout);
    let first_byte_timeout = timeout(|o| o.first_byte_timeout);
    let between_bytes_timeout = timeout(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));

    let stream = tokio::time::timeout(connect_timeout, async {
        let tcp = connect(&target.addrs).await?;
        Ok::<Box<dyn Stream>, HttpError>(match target.tls {
            Some(name) => Box::new(TLS.connect(name, tcp).await.map_err(HttpError::Tls)?),
            None => Box::new(tcp),
        })
    })
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // The request line carries only the path: scheme and authority go to a
    // proxy, and the Host header (set by wasmtime-wasi-http) names the host.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let mut conn = Some(conn);
    let send = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
    let mut send = std::pin::pin!(send);
    // Wait for the response while driving the connection's I/O.
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = send.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        let Some(io) = conn.as_mut() else {
            return Poll::Pending;
        };
        let finished = ready!(Pin::new(io).poll(cx));
        conn = None;
        match finished {
            Ok(()) => send.as_mut().poll(cx),
            Err(e) => Poll::Ready(Ok(Err(e))),
        }
    })
    .await
    .map_err(|_| HttpError::ConnectionReadTimeout)??;

    let mut between = tokio::time::interval(between_bytes_timeout);
    between.reset();
    let response = response.map(|incoming| ResponseBody { incoming, between });
    Ok((response, async move {
        match conn {
            Some(conn) => conn.await.map_err(|e| match e.is_timeout() {
                true => HttpError::HttpResponseTimeout,
                false => e.into(),
            }),
            None => Ok(()),
        }
    }))
}

/// A response body that fails when no bytes arrive for the request's
/// between-bytes timeout.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    between: tokio::time::Interval,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => {
                self.between.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.between.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
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
        let target = route(&net, &uri, fake(&["127.0.0.1"], &asked))
            .await
            .unwrap();
        let request = http::Request::get(uri)
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap();
        let sent = send(request, None, target);
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
}

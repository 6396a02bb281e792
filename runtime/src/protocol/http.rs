//! MCP over Streamable HTTP at `/mcp`: rmcp's `StreamableHttpService`
//! serving one [`WardServer`] per legacy session (or per stateless request),
//! behind the checks a network listener needs.
//!
//! Design decisions:
//! - **The handler is the same as over stdio.** A legacy client (`initialize`,
//!   2025-06-18 / 2025-11-25) gets a session (`Mcp-Session-Id`) whose
//!   [`WardServer`] pumps server events (list_changed, resource updates,
//!   logs) to its `GET` SSE stream; a 2026-07-28 request is served
//!   statelessly by a fresh handler, and server events reach it only through
//!   `subscriptions/listen`. rmcp checks `MCP-Protocol-Version` and
//!   `Mcp-Method` against the body (-32020 on a mismatch), caps the body
//!   (413), and checks `Host` and `Origin` (403).
//! - **Safe by default.** [`HttpOptions::bind`] refuses a non-loopback
//!   address unless `public` is set. The allowed `Host`s are the loopback
//!   names (and the bound address) unless configured; a request carrying an
//!   `Origin` must come from the server's own origin unless others are
//!   allowed, so a web page cannot drive a local ward (DNS rebinding).
//! - **Bearer tokens are compared in constant time** (as SHA-256 digests,
//!   so not even the length leaks), and a missing or wrong token is a 401
//!   with `WWW-Authenticate: Bearer` before anything else is looked at.
//! - **Every request has a deadline** ([`HttpOptions::request_timeout`]),
//!   reading the body and answering included; only streams that exist to
//!   stay open (a legacy session's `GET` stream, `subscriptions/listen`) are
//!   exempt. Slow headers are cut by hyper's header-read timeout.
//! - **Graceful shutdown.** When `shutdown` fires, the listener closes, idle
//!   connections are closed, requests in flight may finish (up to
//!   [`HttpOptions::shutdown_grace`]), and only then are sessions and
//!   long-lived streams ended.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::server::{ServerOptions, WardServer};
use crate::backend::Backend;

/// The path MCP is served at.
pub const MCP_PATH: &str = "/mcp";

/// The environment variable that may hold the bearer token.
pub const AUTH_TOKEN_ENV: &str = "WARD_AUTH_TOKEN";

/// How to serve MCP over HTTP. The defaults are what `ward serve --http`
/// uses.
#[derive(Clone)]
pub struct HttpOptions {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Allow a non-loopback `addr`. Without it, [`HttpOptions::bind`]
    /// refuses one: a network-reachable ward should be a decision.
    pub public: bool,
    /// Extra `Host` header values accepted (`name` or `name:port`), besides
    /// `localhost`, `127.0.0.1`, `::1` and the bound address. `*` accepts
    /// any (only sensible behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Extra browser origins accepted (`https://app.example:443`,
    /// `http://localhost:*`), besides the server's own. `*` accepts any.
    /// Requests without an `Origin` header (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// The bearer token every request must carry, or `None` for no
    /// authentication.
    pub auth_token: Option<String>,
    /// The largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// The longest a request may take from its first byte to the end of its
    /// answer, body upload included. Long-lived streams are exempt.
    pub request_timeout: Duration,
    /// How long requests in flight may run on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Options of each [`WardServer`].
    pub server: ServerOptions,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("addr", &self.addr)
            .field("public", &self.public)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl HttpOptions {
    /// Options for `addr` with the defaults: loopback only, no token, 4 MiB
    /// bodies, a 5 minute request deadline, 30 s of shutdown grace.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            public: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            auth_token: None,
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            server: ServerOptions::default(),
        }
    }

    /// Checks the options and binds the listener.
    pub async fn bind(self) -> Result<HttpListener> {
        if !self.addr.ip().is_loopback() && !self.public {
            bail!(
                "refusing to serve HTTP on {}: it is not a loopback address, so anyone who can \
                 reach this machine could call the plugins. Bind 127.0.0.1, or pass \
                 --http-public (ideally with --auth-token-file) to mean it",
                self.addr
            );
        }
        if self.auth_token.as_deref().is_some_and(str::is_empty) {
            bail!("the auth token is empty");
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on {}", self.addr))?;
        let local_addr = listener.local_addr()?;
        if !local_addr.ip().is_loopback() && self.auth_token.is_none() {
            tracing::warn!(
                addr = %local_addr,
                "serving HTTP on a non-loopback address without a bearer token"
            );
        }
        Ok(HttpListener {
            listener,
            local_addr,
            options: self,
        })
    }
}

/// Reads a bearer token from a file (surrounding whitespace trimmed).
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the auth token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the auth token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

/// A bound listener, ready to serve.
pub struct HttpListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    options: HttpOptions,
}

impl HttpListener {
    /// The address actually bound (the port is known here when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then shuts down gracefully.
    pub async fn serve<B: Backend>(
        self,
        backend: Arc<B>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let HttpListener {
            listener,
            local_addr,
            options,
        } = self;
        let sessions_ct = CancellationToken::new();
        let app = Arc::new(App::new(backend, &options, local_addr, sessions_ct.clone()));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        tracing::info!("serving MCP over HTTP at http://{local_addr}{MCP_PATH}");
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(request).await) }
            });
            let connection = http1.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                }
            });
        }
        drop(listener);
        let in_flight = app.in_flight.count();
        tracing::info!(in_flight, "shutting down HTTP: no new connections");
        // Closes idle keep-alive connections now and each busy one after its
        // response; runs while we wait for the calls in flight.
        let connections_closed = tokio::spawn(graceful.shutdown());
        if tokio::time::timeout(options.shutdown_grace, app.in_flight.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = app.in_flight.count(),
                "shutdown grace period over; ending requests still running"
            );
        }
        // Ends sessions, `GET` streams and `subscriptions/listen` streams.
        sessions_ct.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), connections_closed).await;
        Ok(())
    }
}

/// What each request goes through.
struct App<B: Backend> {
    mcp: StreamableHttpService<WardServer<B>, LocalSessionManager>,
    token_digest: Option<[u8; 32]>,
    request_timeout: Duration,
    in_flight: InFlight,
}

type ResponseBody = BoxBody<Bytes, Infallible>;

impl<B: Backend> App<B> {
    fn new(
        backend: Arc<B>,
        options: &HttpOptions,
        local_addr: SocketAddr,
        sessions_ct: CancellationToken,
    ) -> Self {
        let server_options = options.server.clone();
        let factory = move || {
            Ok(WardServer::with_options(
                backend.clone(),
                server_options.clone(),
            ))
        };
        let config = StreamableHttpServerConfig::default()
            .with_max_request_body_bytes(options.max_body_bytes)
            .with_cancellation_token(sessions_ct);
        let config = if options.allowed_hosts.iter().any(|h| h == "*") {
            config.disable_allowed_hosts()
        } else {
            config.with_allowed_hosts(allowed_hosts(local_addr, &options.allowed_hosts))
        };
        let config = if options.allowed_origins.iter().any(|o| o == "*") {
            config.disable_allowed_origins()
        } else {
            config
                .with_allowed_origins(allowed_origins(local_addr, &options.allowed_origins))
                .enforce_origin_validation()
        };
        Self {
            mcp: StreamableHttpService::new(factory, Arc::default(), config),
            token_digest: options
                .auth_token
                .as_deref()
                .map(|token| Sha256::digest(token.as_bytes()).into()),
            request_timeout: options.request_timeout,
            in_flight: InFlight::default(),
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        if request.uri().path() != MCP_PATH {
            return plain(StatusCode::NOT_FOUND, "Not Found: MCP is served at /mcp");
        }
        if !self.authorized(request.headers()) {
            let mut response = plain(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: bearer token required",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"ward\""),
            );
            return response;
        }
        if !is_long_lived(&request) {
            let guard = self.in_flight.enter();
            let deadline = tokio::time::Instant::now() + self.request_timeout;
            let response = match tokio::time::timeout_at(deadline, self.mcp.handle(request)).await {
                Ok(response) => response,
                Err(_) => {
                    return plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable: request timed out",
                    )
                }
            };
            let (parts, body) = response.into_parts();
            let body = Tracked {
                inner: body,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                _guard: guard,
            };
            return Response::from_parts(parts, BoxBody::new(body));
        }
        self.mcp.handle(request).await
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        given.ct_eq(expected).into()
    }
}

/// Requests whose answer is a stream meant to stay open: a legacy session's
/// `GET` stream and a 2026-07-28 `subscriptions/listen` (named by its
/// required `Mcp-Method` header). They get neither the deadline nor a place
/// among the requests shutdown waits for.
fn is_long_lived(request: &Request<Incoming>) -> bool {
    request.method() == Method::GET
        || request
            .headers()
            .get("mcp-method")
            .is_some_and(|method| method == "subscriptions/listen")
}

/// The `Host` values accepted: the loopback names, the bound address, and
/// the configured extra ones.
fn allowed_hosts(local: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    if !local.ip().is_unspecified() && !local.ip().is_loopback() {
        hosts.push(local.ip().to_string());
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

/// The `Origin` values accepted: the server's own origin under each loopback
/// name (and the bound address), and the configured extra ones.
fn allowed_origins(local: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = local.port();
    let mut origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(|host| format!("http://{host}:{port}"))
        .collect();
    if !local.ip().is_unspecified() && !local.ip().is_loopback() {
        origins.push(format!("http://{local}"));
    }
    origins.extend(extra.iter().cloned());
    origins
}

fn plain(status: StatusCode, message: &'static str) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(message.as_bytes())).boxed())
        .expect("a valid response")
}

/// Counts requests in flight, so shutdown can wait for them.
#[derive(Default)]
struct InFlight {
    count: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard {
            count: self.count.clone(),
            changed: self.changed.clone(),
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    async fn idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.count() == 0 {
                return;
            }
            changed.await;
        }
    }
}

struct InFlightGuard {
    count: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// A response body that counts as in flight until it ends (or is dropped),
/// and ends at the request's deadline.
struct Tracked {
    inner: ResponseBody,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _guard: InFlightGuard,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!("request deadline reached; ending its response");
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_public() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = rt
            .block_on(HttpOptions::new("0.0.0.0:0".parse().unwrap()).bind())
            .err()
            .unwrap();
        assert!(error.to_string().contains("--http-public"), "{error}");
        let listener = rt
            .block_on(HttpOptions::new("127.0.0.1:0".parse().unwrap()).bind())
            .unwrap();
        assert!(listener.local_addr().port() != 0);
    }

    #[test]
    fn defaults_allow_only_loopback_and_own_origin() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(allowed_hosts(local, &[]), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            allowed_origins(local, &["https://app.example:443".into()]),
            [
                "http://localhost:8080",
                "http://127.0.0.1:8080",
                "http://[::1]:8080",
                "https://app.example:443"
            ]
        );
    }
}

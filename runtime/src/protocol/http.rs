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
//! - **Who may call is decided first** (`auth`): a static bearer token
//!   (compared in constant time) or an OAuth access token (a JWT checked
//!   against the issuer's JWKS); a missing or bad one is a 401 with
//!   `WWW-Authenticate: Bearer` before anything else is looked at. The
//!   caller goes into the request's extensions as an
//!   [`audit::Caller`](crate::audit::Caller).
//! - **Every request has a deadline** ([`HttpOptions::request_timeout`]),
//!   reading the body and answering included. The body is read whole
//!   (bounded in size, and in time by [`HttpOptions::body_timeout`] too)
//!   before anything else; only then is the request classified
//!   ([`classify_request`], in `admission`): a real `subscriptions/listen`
//!   and a session's `GET` stream are exempt once answered, nothing is
//!   exempt by its headers alone. Slow or missing headers, on a new or an
//!   idle kept-alive connection, are cut by hyper's header-read timeout
//!   ([`HttpOptions::header_timeout`]).
//! - **Connections, legacy sessions and long-lived streams are capped**
//!   ([`HttpOptions::max_connections`], [`HttpOptions::max_sessions`],
//!   [`HttpOptions::max_streams`]); over a cap the client gets 503 with
//!   `Retry-After` and a JSON-RPC error naming the flag that raises it, and
//!   a connection over the cap is closed at once.
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
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::server::{ServerOptions, WardServer};
use crate::backend::{Backend, BackendError};

mod admission;
mod auth;

#[doc(hidden)]
pub use admission::{classify_request, RequestKind};
use admission::{BodyError, Holding, Limit, Occasional, SessionCap};
pub use auth::{JwksSource, JwtOptions, METADATA_PATH};

/// Marks a request whose target the front door admitted already
/// ([`Backend::admit`]: scopes checked, a rate token taken), in the
/// request's extensions, so the handler does not take a second token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted;

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
    /// Require OAuth access tokens (JWTs) instead; exclusive with
    /// `auth_token`.
    pub jwt: Option<JwtOptions>,
    /// The largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// The longest a request may take from its first byte to the end of its
    /// answer, body upload included. Long-lived streams are exempt once
    /// answered.
    pub request_timeout: Duration,
    /// The longest a request body may take to arrive (the request deadline
    /// applies too, whichever is sooner); then 408 and the connection
    /// closes. No request is exempt.
    pub body_timeout: Duration,
    /// The longest a connection may take to send a request's headers, or
    /// stay idle between requests; then it is closed.
    pub header_timeout: Duration,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Legacy (`Mcp-Session-Id`) sessions at most; an `initialize` over it
    /// gets 503. Idle sessions end after 5 minutes.
    pub max_sessions: usize,
    /// Long-lived event streams (sessions' `GET` streams and
    /// `subscriptions/listen`) at most; more get 503.
    pub max_streams: usize,
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
            .field("jwt", &self.jwt)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_sessions", &self.max_sessions)
            .field("max_streams", &self.max_streams)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl HttpOptions {
    /// Options for `addr` with the defaults: loopback only, no token, 4 MiB
    /// bodies within 30 s, headers within 10 s, a 5 minute request
    /// deadline, 512 connections, 256 sessions, 256 streams, 30 s of
    /// shutdown grace.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            public: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            auth_token: None,
            jwt: None,
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(300),
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_sessions: 256,
            max_streams: 256,
            shutdown_grace: Duration::from_secs(30),
            server: ServerOptions::default(),
        }
    }

    /// Checks the options, binds the listener, and reads (or fetches) the
    /// JWT keys if asked to.
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
        for (flag, value) in [
            ("--max-connections", self.max_connections),
            ("--max-sessions", self.max_sessions),
            ("--max-streams", self.max_streams),
        ] {
            if value == 0 {
                bail!("{flag} 0 would refuse every client; give at least 1");
            }
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on {}", self.addr))?;
        let local_addr = listener.local_addr()?;
        let auth =
            auth::Authenticator::new(self.auth_token.as_deref(), self.jwt.as_ref(), local_addr)
                .await?;
        if !local_addr.ip().is_loopback() && !auth.required() {
            tracing::warn!(
                addr = %local_addr,
                "serving HTTP on a non-loopback address without a bearer token"
            );
        }
        Ok(HttpListener {
            listener,
            local_addr,
            auth,
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
    auth: auth::Authenticator,
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
            auth,
            options,
        } = self;
        let sessions_ct = CancellationToken::new();
        let app = Arc::new(App::new(
            backend,
            &options,
            local_addr,
            auth,
            sessions_ct.clone(),
        ));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        let connections = Arc::new(tokio::sync::Semaphore::new(options.max_connections));
        let refusing = Arc::new(tokio::sync::Semaphore::new(admission::REFUSING_AT_ONCE));
        let refusal = admission::connection_refusal(options.max_connections);
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
            let Ok(connection_slot) = connections.clone().try_acquire_owned() else {
                app.warned_connections
                    .warn(Limit::Connections(options.max_connections));
                // Answered and closed off the accept loop.
                let refusing = refusing.clone().try_acquire_owned().ok();
                let answer = refusal.clone();
                tokio::spawn(async move {
                    admission::refuse_connection(stream, answer, refusing.is_some()).await;
                    drop(refusing);
                });
                continue;
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
                drop(connection_slot);
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
    /// Admits requests that use an item before rmcp sees them.
    backend: Arc<B>,
    auth: auth::Authenticator,
    request_timeout: Duration,
    body_timeout: Duration,
    max_body_bytes: usize,
    in_flight: InFlight,
    sessions: SessionCap,
    streams: Arc<tokio::sync::Semaphore>,
    max_streams: usize,
    warned_connections: Occasional,
    warned_sessions: Occasional,
    warned_streams: Occasional,
}

type ResponseBody = BoxBody<Bytes, Infallible>;

impl<B: Backend> App<B> {
    fn new(
        backend: Arc<B>,
        options: &HttpOptions,
        local_addr: SocketAddr,
        auth: auth::Authenticator,
        sessions_ct: CancellationToken,
    ) -> Self {
        let server_options = options.server.clone();
        let handlers = backend.clone();
        let factory = move || {
            Ok(WardServer::with_options(
                handlers.clone(),
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
        let sessions = Arc::new(LocalSessionManager::default());
        Self {
            mcp: StreamableHttpService::new(factory, sessions.clone(), config),
            backend,
            auth,
            request_timeout: options.request_timeout,
            body_timeout: options.body_timeout.min(options.request_timeout),
            max_body_bytes: options.max_body_bytes,
            in_flight: InFlight::default(),
            sessions: SessionCap::new(sessions, options.max_sessions),
            streams: Arc::new(tokio::sync::Semaphore::new(options.max_streams)),
            max_streams: options.max_streams,
            warned_connections: Occasional::default(),
            warned_sessions: Occasional::default(),
            warned_streams: Occasional::default(),
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        if let Some(response) = self.auth.metadata(request.method(), request.uri().path()) {
            return response;
        }
        if request.uri().path() != MCP_PATH {
            return plain(StatusCode::NOT_FOUND, "Not Found: MCP is served at /mcp");
        }
        let caller = match self.auth.authenticate(request.headers()).await {
            Ok(caller) => caller,
            Err(refusal) => return refusal.response(),
        };
        let started = tokio::time::Instant::now();
        let deadline = started + self.request_timeout;
        // Shutdown waits for this request, its upload included, unless it
        // turns out to be a long-lived stream.
        let in_flight = self.in_flight.enter();
        let (mut parts, body) = request.into_parts();
        // Read by the handler (audit log, replay binding) through rmcp's
        // copy of the request parts.
        if let Some(caller) = caller {
            parts.extensions.insert(caller);
        }
        // Only a POST body means anything to MCP; others are never read.
        let body = if parts.method == Method::POST {
            let read = admission::read_body(body, self.max_body_bytes);
            match tokio::time::timeout_at(started + self.body_timeout, read).await {
                Ok(Ok(body)) => body,
                Ok(Err(BodyError::TooLarge)) => {
                    return Limit::BodyBytes(self.max_body_bytes).response(&Value::Null)
                }
                Ok(Err(BodyError::Broken(error))) => {
                    tracing::debug!(%error, "request body broken off");
                    return plain(StatusCode::BAD_REQUEST, "Bad Request: incomplete body");
                }
                Err(_) => return Limit::BodyTime(self.body_timeout).response(&Value::Null),
            }
        } else {
            Bytes::new()
        };
        let kind = classify_request(&parts.method, &parts.headers, &body);
        if let RequestKind::Use { id, target } = &kind {
            let caller = parts.extensions.get::<crate::audit::Caller>();
            match self.backend.admit(caller, target).await {
                Ok(true) => {
                    parts.extensions.insert(Admitted);
                }
                // Nothing to check yet: the handler admits it if it runs.
                Ok(false) => {}
                Err(error) => return self.refused(&parts.headers, id, error),
            }
        }
        let request = Request::from_parts(parts, Full::new(body));
        match kind {
            RequestKind::SessionStream | RequestKind::Listen { .. } => {
                drop(in_flight);
                let id = match &kind {
                    RequestKind::Listen { id } => id.clone(),
                    _ => Value::Null,
                };
                let Ok(slot) = self.streams.clone().try_acquire_owned() else {
                    let limit = Limit::Streams(self.max_streams);
                    self.warned_streams.warn(limit);
                    return limit.response(&id);
                };
                // Answered within the deadline; the stream then stays open
                // (until the client or shutdown ends it), holding its slot.
                match tokio::time::timeout_at(deadline, self.mcp.handle(request)).await {
                    Ok(response) => response.map(|inner| {
                        BoxBody::new(Holding {
                            inner,
                            _permit: slot,
                        })
                    }),
                    Err(_) => Limit::RequestTime(self.request_timeout).response(&id),
                }
            }
            RequestKind::NewSession { id } => {
                let Some(reservation) = self.sessions.reserve().await else {
                    let limit = Limit::Sessions(self.sessions.max());
                    self.warned_sessions.warn(limit);
                    return limit.response(&id);
                };
                let response = self.answer(request, deadline, in_flight).await;
                drop(reservation);
                response
            }
            RequestKind::Use { .. } | RequestKind::Ordinary => {
                self.answer(request, deadline, in_flight).await
            }
        }
    }

    /// The answer to a request [`Backend::admit`] refused: 403 with the
    /// `insufficient_scope` challenge naming the scopes the item needs, or
    /// 429 with `Retry-After`; either with the JSON-RPC error the handler
    /// would give as the body, so that clients can show why.
    fn refused(
        &self,
        headers: &http::HeaderMap,
        id: &Value,
        error: BackendError,
    ) -> Response<ResponseBody> {
        let (status, retry_after, challenge) = match &error {
            BackendError::Forbidden { required, .. } => {
                let required: Vec<&str> = required.iter().map(String::as_str).collect();
                let challenge = self.auth.scope_challenge(headers, &required);
                (StatusCode::FORBIDDEN, None, Some(challenge))
            }
            BackendError::RateLimited { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                Some(retry_after.as_secs_f64().ceil().max(1.0)),
                None,
            ),
            _ => (StatusCode::BAD_REQUEST, None, None),
        };
        let error = super::to_mcp_error(error);
        let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error});
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())).boxed())
            .expect("a valid response");
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from(seconds as u64));
        }
        response
    }

    /// Serves `request` within `deadline`, its answer streamed included,
    /// counted among the requests shutdown waits for until it ends.
    async fn answer(
        &self,
        request: Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
        guard: InFlightGuard,
    ) -> Response<ResponseBody> {
        let response = match tokio::time::timeout_at(deadline, self.mcp.handle(request)).await {
            Ok(response) => response,
            Err(_) => return Limit::RequestTime(self.request_timeout).response(&Value::Null),
        };
        let (parts, body) = response.into_parts();
        let body = Tracked {
            inner: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            _guard: guard,
        };
        Response::from_parts(parts, BoxBody::new(body))
    }
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

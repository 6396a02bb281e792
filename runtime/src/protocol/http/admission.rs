//! What may come in through the HTTP front door, and how much of it at once.
//!
//! Design decisions:
//! - **A request is classified from its whole body, never from a header
//!   alone.** A `POST` body is read first, bounded in size and in time
//!   whatever the headers say; [`classify_request`] then parses it with the
//!   very type rmcp parses it with, so ward and rmcp cannot disagree about
//!   what a request is. Only a `subscriptions/listen` found that way (or a
//!   session's `GET` stream) is exempt from the request deadline.
//! - **Every held resource has a cap** (connections, legacy sessions,
//!   long-lived streams), counted with semaphore permits that live exactly as
//!   long as what they count: a connection's task, a stream's response
//!   body. Sessions are rmcp's own live sessions plus the `initialize`
//!   requests in flight that may create one. Over a cap, the client gets 503 with `Retry-After` and a JSON-RPC
//!   error naming the cap and the `ward serve` flag that raises it.
//! - **A refused connection is answered and closed at once**, without
//!   waiting for its request: a slow client over the cap holds nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, Reference};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::ResponseBody;
use crate::backend::Target;

/// What a request is, as far as deadlines and caps go.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestKind {
    /// A `GET`: a legacy session's event stream. Long-lived: it takes a
    /// stream slot and is exempt from the deadline once answered.
    SessionStream,
    /// A JSON-RPC `subscriptions/listen` request (found in the body, and
    /// the `Mcp-Method` header, if any, agrees). Long-lived like
    /// [`RequestKind::SessionStream`].
    Listen {
        /// The request's id.
        id: Value,
    },
    /// An `initialize` without a session id: rmcp will create a legacy
    /// session for it, so it takes a session slot.
    NewSession {
        /// The request's id.
        id: Value,
    },
    /// A request that uses a plugin's item (`tools/call`,
    /// `resources/read`, `prompts/get`, `completion/complete`): admitted
    /// (scopes, rate limits) before rmcp sees it, then like
    /// [`RequestKind::Ordinary`].
    Use {
        /// The request's id.
        id: Value,
        /// What it uses.
        target: Target,
    },
    /// Anything else: answered within the request deadline.
    Ordinary,
}

/// Classifies a request from its method, headers and whole body (empty for
/// anything but `POST`). Pure, so a fuzz target can call it.
///
/// The body is parsed as rmcp's `ClientJsonRpcMessage`, exactly as rmcp
/// parses it before serving it: whatever this function calls a listen
/// request, rmcp serves as one. What it cannot parse is
/// [`RequestKind::Ordinary`] (rmcp answers it with an error).
pub fn classify_request(method: &Method, headers: &HeaderMap, body: &[u8]) -> RequestKind {
    if method == Method::GET {
        return RequestKind::SessionStream;
    }
    if method != Method::POST {
        return RequestKind::Ordinary;
    }
    let Ok(ClientJsonRpcMessage::Request(request)) =
        serde_json::from_slice::<ClientJsonRpcMessage>(body)
    else {
        return RequestKind::Ordinary;
    };
    let id = serde_json::to_value(&request.id).unwrap_or(Value::Null);
    match &request.request {
        ClientRequest::SubscriptionsListenRequest(_) => {
            // rmcp refuses a contradicting header itself; this only keeps the
            // exemption from resting on a request rmcp will refuse anyway.
            let agrees = headers
                .get_all("mcp-method")
                .iter()
                .all(|value| value == "subscriptions/listen");
            if agrees {
                RequestKind::Listen { id }
            } else {
                RequestKind::Ordinary
            }
        }
        // rmcp takes a session id only from a header that is valid text;
        // without one, an `initialize` creates a session.
        ClientRequest::InitializeRequest(_)
            if headers
                .get("mcp-session-id")
                .and_then(|value| value.to_str().ok())
                .is_none() =>
        {
            RequestKind::NewSession { id }
        }
        ClientRequest::CallToolRequest(r) => RequestKind::Use {
            id,
            target: Target::Tool(r.params.name.to_string()),
        },
        ClientRequest::ReadResourceRequest(r) => RequestKind::Use {
            id,
            target: Target::Resource(r.params.uri.clone()),
        },
        ClientRequest::GetPromptRequest(r) => RequestKind::Use {
            id,
            target: Target::Prompt(r.params.name.clone()),
        },
        ClientRequest::CompleteRequest(r) => match &r.params.r#ref {
            Reference::Prompt(p) => RequestKind::Use {
                id,
                target: Target::PromptCompletion(p.name.clone()),
            },
            Reference::Resource(t) => RequestKind::Use {
                id,
                target: Target::TemplateCompletion(t.uri.clone()),
            },
            _ => RequestKind::Ordinary,
        },
        _ => RequestKind::Ordinary,
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Larger than the limit (announced or sent).
    TooLarge,
    /// The connection broke while sending it.
    Broken(hyper::Error),
}

/// Reads a request body whole, refusing it as soon as it exceeds `max`
/// bytes. The caller bounds the time.
pub(super) async fn read_body(mut body: Incoming, max: usize) -> Result<Bytes, BodyError> {
    if body.size_hint().lower() > max as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max - collected.len() {
                return Err(BodyError::TooLarge);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// A limit of the HTTP listener, as the client is told about it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Limit {
    Connections(usize),
    Sessions(usize),
    Streams(usize),
    BodyBytes(usize),
    BodyTime(Duration),
    RequestTime(Duration),
}

impl Limit {
    /// The status, and whether the connection should close after it (its
    /// request body is left unread).
    fn status(self) -> (StatusCode, bool) {
        match self {
            Limit::Connections(_) | Limit::Sessions(_) | Limit::Streams(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, false)
            }
            Limit::BodyBytes(_) => (StatusCode::PAYLOAD_TOO_LARGE, true),
            Limit::BodyTime(_) => (StatusCode::REQUEST_TIMEOUT, true),
            Limit::RequestTime(_) => (StatusCode::SERVICE_UNAVAILABLE, false),
        }
    }

    /// Whether waiting a moment may help (`Retry-After`).
    fn retry(self) -> bool {
        matches!(
            self,
            Limit::Connections(_) | Limit::Sessions(_) | Limit::Streams(_)
        )
    }

    fn message(self) -> String {
        match self {
            Limit::Connections(n) => format!(
                "ward: too many HTTP connections (at most {n}); retry later, or raise the cap \
                 with `ward serve --max-connections`"
            ),
            Limit::Sessions(n) => format!(
                "ward: too many sessions (at most {n}); retry later, end unused sessions \
                 (DELETE /mcp), or raise the cap with `ward serve --max-sessions`"
            ),
            Limit::Streams(n) => format!(
                "ward: too many open event streams (GET streams and subscriptions/listen, at \
                 most {n}); retry later, or raise the cap with `ward serve --max-streams`"
            ),
            Limit::BodyBytes(n) => format!(
                "ward: the request body is larger than {n} bytes; raise the limit with \
                 `ward serve --max-body-bytes`"
            ),
            Limit::BodyTime(t) => format!(
                "ward: the request body did not arrive within {} s; the limit is the smaller \
                 of `ward serve --body-timeout` and `--request-timeout`",
                t.as_secs()
            ),
            Limit::RequestTime(t) => format!(
                "ward: the request was not answered within {} s; raise the deadline with \
                 `ward serve --request-timeout`",
                t.as_secs()
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Limit::Connections(_) => "max-connections",
            Limit::Sessions(_) => "max-sessions",
            Limit::Streams(_) => "max-streams",
            Limit::BodyBytes(_) => "max-body-bytes",
            Limit::BodyTime(_) => "body-timeout",
            Limit::RequestTime(_) => "request-timeout",
        }
    }

    /// The JSON-RPC error that tells the client about it.
    fn body(self, id: &Value) -> Bytes {
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": -32000,
                "message": self.message(),
                "data": {"limit": self.name()},
            }
        });
        Bytes::from(body.to_string())
    }

    /// The HTTP response that refuses a request over this limit.
    pub(super) fn response(self, id: &Value) -> Response<ResponseBody> {
        let (status, close) = self.status();
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.body(id)).boxed())
            .expect("a valid response");
        if self.retry() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
        }
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// `Retry-After` on a refusal by a cap, in seconds.
const RETRY_AFTER: &str = "1";

/// How many refused connections are drained at once; beyond this a refused
/// connection gets its answer only if the socket takes it at once.
pub(super) const REFUSING_AT_ONCE: usize = 64;

/// The whole HTTP answer to a connection over `--max-connections`.
pub(super) fn connection_refusal(max: usize) -> Bytes {
    let body = Limit::Connections(max).body(&Value::Null);
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {RETRY_AFTER}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response.into()
}

/// Answers a connection over the cap and closes it, without waiting for
/// its request. With `drain`, the client's request is read and dropped for
/// up to a second, so it sees the answer rather than a reset; without, the
/// answer goes only if the socket takes it at once.
pub(super) async fn refuse_connection(mut stream: TcpStream, answer: Bytes, drain: bool) {
    if !drain {
        let _ = stream.try_write(&answer);
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 << 10 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

/// Logs a warning at most once a minute, so a flood of refusals cannot
/// flood the log.
#[derive(Default)]
pub(super) struct Occasional(Mutex<Option<Instant>>);

impl Occasional {
    pub(super) fn warn(&self, limit: Limit) {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            limit = limit.name(),
            "{} (logged at most once a minute)",
            limit.message().trim_start_matches("ward: ")
        );
    }
}

/// A response body that holds a permit until it ends or is dropped.
pub(super) struct Holding {
    pub(super) inner: ResponseBody,
    pub(super) _permit: OwnedSemaphorePermit,
}

impl Body for Holding {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The cap on legacy sessions: rmcp's live sessions plus those that
/// `initialize` requests in flight may still create never exceed `max`.
pub(super) struct SessionCap {
    sessions: Arc<LocalSessionManager>,
    max: usize,
    /// `initialize` requests admitted and not yet answered.
    pending: Arc<AtomicUsize>,
    /// Admits one request at a time, so two cannot both take the last slot.
    admitting: tokio::sync::Mutex<()>,
}

/// An admitted `initialize`, counted until rmcp has answered it (by then
/// its session, if any, is among rmcp's live sessions).
pub(super) struct SessionReservation(Arc<AtomicUsize>);

impl Drop for SessionReservation {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SessionCap {
    pub(super) fn new(sessions: Arc<LocalSessionManager>, max: usize) -> Self {
        Self {
            sessions,
            max,
            pending: Arc::default(),
            admitting: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Admits one `initialize`, or `None` when the cap is reached.
    pub(super) async fn reserve(&self) -> Option<SessionReservation> {
        let _one_at_a_time = self.admitting.lock().await;
        // `pending` before the live count: a reservation ending in between
        // has already put its session in the map, so it is counted (maybe
        // twice, refusing early, never late).
        let pending = self.pending.load(Ordering::SeqCst);
        let live = self.sessions.sessions.read().await.len();
        if live + pending >= self.max {
            return None;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        Some(SessionReservation(self.pending.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const LISTEN: &str = r#"{"jsonrpc":"2.0","id":"l","method":"subscriptions/listen","params":{"notifications":{}}}"#;
    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

    #[test]
    fn only_a_listen_body_is_a_listen_request() {
        let post = Method::POST;
        let listen_header = headers(&[("mcp-method", "subscriptions/listen")]);
        assert_eq!(
            classify_request(&post, &listen_header, LISTEN.as_bytes()),
            RequestKind::Listen { id: json!("l") }
        );
        assert_eq!(
            classify_request(&post, &HeaderMap::new(), LISTEN.as_bytes()),
            RequestKind::Listen { id: json!("l") }
        );
        // The header alone, with any other body or none, is nothing.
        for body in [
            "",
            "{",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"subscriptions/listen"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{}}}]"#,
        ] {
            assert_eq!(
                classify_request(&post, &listen_header, body.as_bytes()),
                RequestKind::Ordinary,
                "{body}"
            );
        }
        // A header that contradicts the body takes the exemption away.
        let lying = headers(&[("mcp-method", "tools/list")]);
        assert_eq!(
            classify_request(&post, &lying, LISTEN.as_bytes()),
            RequestKind::Ordinary
        );
        // Only POST bodies count.
        assert_eq!(
            classify_request(&Method::PUT, &listen_header, LISTEN.as_bytes()),
            RequestKind::Ordinary
        );
        assert_eq!(
            classify_request(&Method::GET, &HeaderMap::new(), b""),
            RequestKind::SessionStream
        );
    }

    #[test]
    fn an_initialize_without_a_session_takes_a_session_slot() {
        let post = Method::POST;
        assert_eq!(
            classify_request(&post, &HeaderMap::new(), INIT.as_bytes()),
            RequestKind::NewSession { id: json!(1) }
        );
        // Escapes do not hide it: the body is parsed as rmcp parses it.
        let escaped = INIT.replace("\"initialize\"", r#""initi\u0061lize""#);
        assert_eq!(
            classify_request(&post, &HeaderMap::new(), escaped.as_bytes()),
            RequestKind::NewSession { id: json!(1) }
        );
        let in_session = headers(&[("mcp-session-id", "abc")]);
        assert_eq!(
            classify_request(&post, &in_session, INIT.as_bytes()),
            RequestKind::Ordinary
        );
        // rmcp ignores a session id that is not text, and so does this.
        let mut binary = HeaderMap::new();
        binary.insert("mcp-session-id", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            classify_request(&post, &binary, INIT.as_bytes()),
            RequestKind::NewSession { id: json!(1) }
        );
    }
}

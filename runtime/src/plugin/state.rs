//! What one call's `Store` holds: the WASI context and limits the sandbox
//! prepared, and the per-request host state behind the `ward:plugin/host`
//! imports.

use std::sync::Arc;

use rmcp::model::LoggingLevel;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::host::{self, LogLevel};
use super::bindings::{client, types};
use crate::backend::{CallContext, ClientHandle, ClientMethod, GuestEvent, Question, ServerEvent};
use crate::sandbox::outbound::HttpHooks;
use crate::sandbox::{CallLimits, Limited};

/// Longest log message or progress note a guest may send; the rest is cut.
pub const MAX_LOG_MESSAGE: usize = 8 * 1024;
/// Log and progress messages one call may send before further ones are
/// dropped, so a flooding guest cannot flood the client.
pub const MAX_EVENTS_PER_CALL: u32 = 1_000;
pub use crate::backend::MAX_CLIENT_REQUESTS_PER_CALL;
/// Largest parameters of one request to the client.
pub const MAX_CLIENT_REQUEST_BYTES: usize = 1 << 20;

/// The `T` of every `Store<T>`. One per call, dropped with the store.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    pub(crate) table: ResourceTable,
    pub(crate) limits: CallLimits,
    pub(crate) request: RequestState,
}

/// Per-request state the host imports read and write.
pub struct RequestState {
    /// The plugin's name, for logs.
    pub plugin: Arc<str>,
    /// Fires when the client cancels.
    pub cancel: CancellationToken,
    /// Where guest logs and progress go for this request.
    pub events: Option<mpsc::UnboundedSender<GuestEvent>>,
    /// Server-wide events (resource updates).
    pub server: Option<broadcast::Sender<ServerEvent>>,
    /// The client of this request, for sampling and elicitation.
    pub client: Option<ClientHandle>,
    /// Set by `host.lists-changed`: list the plugin again after the call.
    pub lists_changed: bool,
    events_sent: u32,
    client_requests: u32,
}

impl RequestState {
    /// State for one request.
    pub fn new(
        plugin: Arc<str>,
        cx: &CallContext,
        server: Option<broadcast::Sender<ServerEvent>>,
    ) -> Self {
        Self {
            plugin,
            cancel: cx.cancel.clone(),
            events: cx.events.clone(),
            server,
            client: cx.client.clone(),
            lists_changed: false,
            events_sent: 0,
            client_requests: 0,
        }
    }

    fn admit_event(&mut self) -> bool {
        self.events_sent += 1;
        if self.events_sent == MAX_EVENTS_PER_CALL + 1 {
            tracing::warn!(plugin = %self.plugin, "more than {MAX_EVENTS_PER_CALL} log/progress messages in one call; dropping the rest");
        }
        self.events_sent <= MAX_EVENTS_PER_CALL && !self.cancel.is_cancelled()
    }
}

impl Limited for CallState {
    fn limits(&mut self) -> &mut CallLimits {
        &mut self.limits
    }
}

/// A question as the guest wrote it, or why it cannot be asked.
type Asked = Result<Question, types::Error>;

/// Checks one question: its key, its method and the size of its params.
fn question(key: String, method: &str, params: serde_json::Value, size: usize) -> Asked {
    let Some(method) = ClientMethod::from_name(method) else {
        return Err(types::Error::InvalidParams(format!(
            "`{method}` cannot be asked of the client: use sampling/createMessage, \
             elicitation/create or roots/list"
        )));
    };
    let name = method.as_str();
    if size > MAX_CLIENT_REQUEST_BYTES {
        return Err(types::Error::InvalidParams(format!(
            "{name} params of {size} bytes exceed the limit of {MAX_CLIENT_REQUEST_BYTES}"
        )));
    }
    Ok(Question {
        key,
        method,
        params,
        before_task: false,
    })
}

/// Whether a guest may name a question `key` (ward's own keys, for
/// `create-message`, `elicit` and `list-roots`, contain a `:`).
fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The questions of an `ask`, from its JSON.
fn questions(requests: &str) -> Result<Vec<Asked>, types::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        key: String,
        method: String,
        #[serde(default)]
        params: serde_json::Value,
        /// Ask it before the call becomes a task (`Question::before_task`).
        #[serde(default, rename = "beforeTask")]
        before_task: bool,
    }
    let limit = MAX_CLIENT_REQUESTS_PER_CALL as usize * MAX_CLIENT_REQUEST_BYTES;
    if requests.len() > limit {
        return Err(types::Error::InvalidParams(format!(
            "ask: {} bytes of requests exceed the limit of {limit}",
            requests.len()
        )));
    }
    let requests: Vec<Request> = serde_json::from_str(requests).map_err(|e| {
        types::Error::InvalidParams(format!(
            "ask: requests must be a JSON array of {{\"key\", \"method\", \"params\"}}: {e}"
        ))
    })?;
    Ok(requests
        .into_iter()
        .map(|r| {
            if !valid_key(&r.key) {
                return Err(types::Error::InvalidParams(format!(
                    "ask: `{}` is not a valid key: use 1 to 64 letters, digits, `_`, `-` or `.`",
                    r.key.chars().take(80).collect::<String>()
                )));
            }
            let params = match r.params {
                serde_json::Value::Null => serde_json::Value::Object(Default::default()),
                params => params,
            };
            let size = params.to_string().len();
            let mut asked = question(r.key, &r.method, params, size)?;
            asked.before_task = r.before_task;
            Ok(asked)
        })
        .collect())
}

impl CallState {
    /// Asks the client `questions` (one round), within the per-call caps.
    /// A question the caps or a bad parameter refuse gets its error and is
    /// not sent; the others are. `Err` stops the guest: the request waits
    /// for a 2026-07-28 client's answers.
    async fn ask_client(
        &mut self,
        questions: Vec<Asked>,
    ) -> wasmtime::Result<Vec<Result<String, types::Error>>> {
        let r = &mut self.request;
        let mut answers: Vec<Option<Result<String, types::Error>>> = Vec::new();
        let mut asked = Vec::new();
        for question in questions {
            let answer = match question {
                Err(e) => Some(Err(e)),
                Ok(question) => {
                    let name = question.method.as_str();
                    r.client_requests += 1;
                    if r.client.is_none() {
                        Some(Err(types::Error::Failed(format!(
                            "{name} is not available: no client is waiting on this request"
                        ))))
                    } else if r.client_requests > MAX_CLIENT_REQUESTS_PER_CALL {
                        Some(Err(types::Error::Failed(format!(
                            "{name} refused: a call may make at most {MAX_CLIENT_REQUESTS_PER_CALL} requests to the client"
                        ))))
                    } else {
                        asked.push(question);
                        None
                    }
                }
            };
            answers.push(answer);
        }
        let mut replies = match (&r.client, asked.is_empty()) {
            (Some(client), false) => {
                let names: Vec<&str> = asked.iter().map(|q| q.method.as_str()).collect();
                tracing::debug!(plugin = %r.plugin, "guest asks the client: {}", names.join(", "));
                client.0.ask(asked).await?.into_iter()
            }
            _ => Vec::new().into_iter(),
        };
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| match replies.next() {
                    Some(Ok(result)) => Ok(result.to_string()),
                    Some(Err(message)) => {
                        tracing::info!(plugin = %r.plugin, "{message}");
                        Err(types::Error::Failed(message))
                    }
                    None => Err(types::Error::Failed("the client gave no answer".into())),
                })
            })
            .collect())
    }

    /// Asks one question under a key of ward's own (`ward:N`).
    async fn ask_one(
        &mut self,
        method: ClientMethod,
        params: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        let key = format!("ward:{}", self.request.client_requests + 1);
        let question = match serde_json::from_str(&params) {
            Ok(value) => question(key, method.as_str(), value, params.len()),
            Err(e) if params.len() <= MAX_CLIENT_REQUEST_BYTES => Err(types::Error::InvalidParams(
                format!("{} params are not JSON: {e}", method.as_str()),
            )),
            Err(_) => question(key, method.as_str(), serde_json::Value::Null, params.len()),
        };
        let mut answers = self.ask_client(vec![question]).await?;
        Ok(answers.pop().expect("one answer per question"))
    }
}

impl client::Host for CallState {
    async fn create_message(
        &mut self,
        params: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        self.ask_one(ClientMethod::CreateMessage, params).await
    }

    async fn elicit(&mut self, params: String) -> wasmtime::Result<Result<String, types::Error>> {
        self.ask_one(ClientMethod::Elicit, params).await
    }

    async fn list_roots(&mut self) -> wasmtime::Result<Result<String, types::Error>> {
        self.ask_one(ClientMethod::ListRoots, "{}".into()).await
    }

    async fn ask(
        &mut self,
        requests: String,
    ) -> wasmtime::Result<Vec<Result<String, types::Error>>> {
        match questions(&requests) {
            Ok(questions) => self.ask_client(questions).await,
            Err(e) => Ok(vec![Err(e)]),
        }
    }

    async fn supports(&mut self, method: String) -> wasmtime::Result<bool> {
        Ok(
            match (&self.request.client, ClientMethod::from_name(&method)) {
                (Some(client), Some(method)) => client.0.supports(method),
                _ => false,
            },
        )
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn mcp_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
        LogLevel::Critical => LoggingLevel::Critical,
        LogLevel::Alert => LoggingLevel::Alert,
        LogLevel::Emergency => LoggingLevel::Emergency,
    }
}

impl host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        let r = &mut self.request;
        if !r.admit_event() {
            return;
        }
        let message = cut(message, MAX_LOG_MESSAGE);
        match level {
            LogLevel::Debug => tracing::debug!(plugin = %r.plugin, "guest: {message}"),
            LogLevel::Info | LogLevel::Notice => {
                tracing::info!(plugin = %r.plugin, "guest: {message}")
            }
            LogLevel::Warning => tracing::warn!(plugin = %r.plugin, "guest: {message}"),
            _ => tracing::error!(plugin = %r.plugin, "guest: {message}"),
        }
        if let Some(events) = &r.events {
            let _ = events.send(GuestEvent::Log {
                level: mcp_level(level),
                logger: r.plugin.to_string(),
                message,
            });
        }
    }

    fn progress(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        let r = &mut self.request;
        if !progress.is_finite() || !r.admit_event() {
            return;
        }
        let total = total.filter(|t| t.is_finite());
        let message = message.map(|m| cut(m, MAX_LOG_MESSAGE));
        if let Some(events) = &r.events {
            let _ = events.send(GuestEvent::Progress {
                progress,
                total,
                message,
            });
        }
    }

    fn cancelled(&mut self) -> bool {
        self.request.cancel.is_cancelled()
    }

    fn lists_changed(&mut self) {
        self.request.lists_changed = true;
    }

    fn resource_updated(&mut self, uri: String) {
        let r = &mut self.request;
        if !r.admit_event() {
            return;
        }
        if let Some(server) = &r.server {
            let _ = server.send(ServerEvent::ResourceUpdated(cut(uri, MAX_LOG_MESSAGE)));
        }
    }
}

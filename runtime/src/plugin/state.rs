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
/// Requests to the client (sampling, elicitation) one call may make.
pub const MAX_CLIENT_REQUESTS_PER_CALL: u32 = 16;
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

impl CallState {
    /// Asks the client `questions` (one round), within the per-call caps.
    /// A question the caps or a bad parameter refuse gets its error and is
    /// not sent; the others are. `Err` stops the guest: the request waits
    /// for a 2026-07-28 client's answers.
    async fn ask_client(
        &mut self,
        questions: Vec<(String, ClientMethod, String)>,
    ) -> wasmtime::Result<Vec<Result<String, types::Error>>> {
        let r = &mut self.request;
        let mut answers: Vec<Option<Result<String, types::Error>>> = Vec::new();
        let mut asked = Vec::new();
        for (key, method, params) in questions {
            let name = method.as_str();
            let refused = |message: String| Some(Err(types::Error::Failed(message)));
            r.client_requests += 1;
            let answer = if r.client.is_none() {
                refused(format!(
                    "{name} is not available: no client is waiting on this request"
                ))
            } else if r.client_requests > MAX_CLIENT_REQUESTS_PER_CALL {
                refused(format!(
                    "{name} refused: a call may make at most {MAX_CLIENT_REQUESTS_PER_CALL} requests to the client"
                ))
            } else if params.len() > MAX_CLIENT_REQUEST_BYTES {
                Some(Err(types::Error::InvalidParams(format!(
                    "{name} params of {} bytes exceed the limit of {MAX_CLIENT_REQUEST_BYTES}",
                    params.len()
                ))))
            } else {
                match serde_json::from_str(&params) {
                    Ok(params) => {
                        asked.push(Question {
                            key,
                            method,
                            params,
                        });
                        None
                    }
                    Err(e) => Some(Err(types::Error::InvalidParams(format!(
                        "{name} params are not JSON: {e}"
                    )))),
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

    /// Asks one question under a key of its own.
    async fn ask_one(
        &mut self,
        method: ClientMethod,
        params: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        let key = format!("ward-{}", self.request.client_requests + 1);
        let mut answers = self.ask_client(vec![(key, method, params)]).await?;
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
        requests: Vec<client::InputRequest>,
    ) -> wasmtime::Result<Vec<Result<String, types::Error>>> {
        let mut unknown = Vec::new();
        let mut questions = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            match ClientMethod::from_name(&request.method) {
                Some(method) => questions.push((request.key, method, request.params)),
                None => unknown.push((i, request.method)),
            }
        }
        let mut answers = self.ask_client(questions).await?;
        for (i, method) in unknown {
            answers.insert(
                i,
                Err(types::Error::InvalidParams(format!(
                    "`{method}` cannot be asked of the client: use sampling/createMessage, \
                     elicitation/create or roots/list"
                ))),
            );
        }
        Ok(answers)
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

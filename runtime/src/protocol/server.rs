//! [`WardServer`]: the MCP request handler, one method per MCP request.
//!
//! It turns MCP requests into [`Backend`] calls and backend events into MCP
//! notifications, for both protocol eras rmcp speaks:
//!
//! - **Legacy** (`initialize`, 2025-06-18 and 2025-11-25): a session with
//!   state: the level set by `logging/setLevel`, the URIs passed to
//!   `resources/subscribe`, and one task that forwards server events
//!   (catalog changes, resource updates, warnings) to the client.
//! - **Stateless** (2026-07-28, `server/discover` + per-request `_meta`):
//!   every request carries its own context (log level included), list results
//!   carry cache hints, and server events reach the client only through
//!   `subscriptions/listen` streams.
//!
//! One [`WardServer`] serves one connection; build a new one per client.

// Logging, `logging/setLevel` and `resources/subscribe` are deprecated by
// SEP-2577 for the stateless era, but the legacy era still needs them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    CustomRequest, CustomResult, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, InputResponses, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::mpsc;
use tracing::Instrument as _;

// The children (`tasks`) end their answers and forward guest events the
// same way, through these names.
use super::answer::{finish, metered, to_mcp_error, trace_outcome, Answer, Reply};
use super::client::LegacyClient;
use super::lock;
use super::notify::{self, EventForwarder, Session};
use super::pagination::{page, Listing};
use super::replay::{self, Replay, StateKey};

/// `tools/call` as a task (the `io.modelcontextprotocol/tasks` extension).
/// A child of this module, for the handler's private parts, kept beside
/// `client.rs` and `replay.rs`, the other clients a guest may ask.
#[path = "tasks.rs"]
pub mod tasks;
use crate::audit::{Caller, Scope};
use crate::backend::{Backend, BackendError, CallContext, ClientHandle, ServedBy};
use crate::telemetry::{self, Item};

/// The protocol versions ward implements, oldest first. Older versions
/// (2024-11-05, 2025-03-26: JSON-RPC batches, no structured output) are not
/// offered; a client asking for one over `initialize` is answered with
/// 2025-11-25, as the spec's negotiation allows.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// Tunables of one [`WardServer`]. The defaults are what `ward serve` uses.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Items per `*/list` page. Catalogs of a few hundred tools fit in a few
    /// pages; tests set this small to exercise cursors.
    pub page_size: usize,
    /// `ttlMs` on 2026-07-28 list results. Zero by default: a plugin can be
    /// dropped in at any moment, so a cached list is never known to be
    /// fresh, and clients that want to hear about changes open
    /// `subscriptions/listen`.
    pub list_ttl_ms: u64,
    /// The least severe guest/server log message sent to a legacy client that
    /// has not called `logging/setLevel`.
    pub default_log_level: LoggingLevel,
    /// The longest accepted input line (one JSON-RPC message). Longer lines
    /// are skipped without being buffered and answered with -32600, so a
    /// client cannot make ward allocate without bound.
    pub max_line_bytes: usize,
    /// Where every request that reaches a plugin is recorded (`--audit-log`).
    pub audit: Option<crate::audit::AuditLog>,
    /// Seals the `requestState` of input-required results
    /// (`--state-key-file`; a random key of this process by default).
    pub state_key: StateKey,
    /// The scopes of the local user over stdio (`--stdio-scopes`); `None`:
    /// unrestricted, plugins' `[access]` does not apply.
    pub stdio_scopes: Option<Vec<String>>,
    /// The tasks of this process (`tasks.rs`): every clone of the options
    /// shares them, so every connection sees the same tasks.
    pub tasks: tasks::Tasks,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            list_ttl_ms: 0,
            default_log_level: LoggingLevel::Info,
            max_line_bytes: 64 << 20,
            audit: None,
            state_key: StateKey::random(),
            stdio_scopes: None,
            tasks: tasks::Tasks::default(),
        }
    }
}

/// The MCP handler of one connection: capabilities and one method per MCP
/// request live here (pagination in `pagination.rs`, who hears which
/// event in `notify.rs`, how an answer ends in `answer.rs`); everything
/// about plugins lives behind `B`.
#[derive(Debug)]
pub struct WardServer<B: Backend> {
    backend: Arc<B>,
    options: ServerOptions,
    session: Arc<Session>,
}

impl<B: Backend> WardServer<B> {
    /// A handler for one connection with the default [`ServerOptions`].
    pub fn new(backend: Arc<B>) -> Self {
        Self::with_options(backend, ServerOptions::default())
    }

    /// A handler for one connection with explicit options.
    pub fn with_options(backend: Arc<B>, options: ServerOptions) -> Self {
        let default_level = options.default_log_level;
        Self {
            backend,
            options: ServerOptions {
                page_size: options.page_size.max(1),
                ..options
            },
            session: Arc::new(Session::new(default_level)),
        }
    }

    /// The options this handler runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// Stops the server-event task and ends open `subscriptions/listen`
    /// streams. Called when the connection ends; also on drop.
    pub fn shutdown(&self) {
        self.session.shutdown.cancel();
    }

    /// The least severe level of log message the client wants for this
    /// request, or `None` for no log messages at all.
    ///
    /// A level in the request's `_meta` wins. Otherwise a legacy session uses
    /// its `logging/setLevel` level, and a stateless request, which asked for
    /// nothing, gets nothing.
    fn request_log_level(&self, context: &RequestContext<RoleServer>) -> Option<LoggingLevel> {
        if let Some(level) = context.meta.log_level() {
            return Some(level);
        }
        if is_stateless(context) {
            None
        } else {
            Some(*lock(&self.session.log_level))
        }
    }

    /// Runs one backend call while forwarding what the guest reports
    /// (logs, progress) to the client as notifications of this request.
    ///
    /// The call sees the request's cancellation token, which rmcp cancels on
    /// `notifications/cancelled`. Events still queued when the call returns
    /// are sent before the result, so progress arrives before the response.
    ///
    /// What the guest asks the client goes to the legacy session, or, for a
    /// 2026-07-28 request that may answer with an input-required result
    /// (`input`), is replayed (`replay.rs`); other 2026-07-28 requests
    /// cannot ask.
    async fn with_events<T, F>(
        &self,
        context: &RequestContext<RoleServer>,
        audit: Option<&Scope>,
        input: Option<Input<'_>>,
        call: impl FnOnce(CallContext) -> F,
    ) -> Result<Answer<T>, ErrorData>
    where
        F: Future<Output = Result<T, BackendError>>,
    {
        let stateless = is_stateless(context);
        let (replay, pin) = match input.filter(|_| stateless) {
            Some(input) => {
                let (replay, pin) = input.open(&self.options.state_key, context)?;
                (Some(Arc::new(replay)), pin)
            }
            None => (None, None),
        };
        let client = match (&replay, stateless) {
            (Some(replay), _) => Some(ClientHandle(replay.clone())),
            (None, false) => Some(ClientHandle(Arc::new(LegacyClient::new(context)))),
            (None, true) => None,
        };
        let served = match (audit, &replay) {
            (Some(scope), _) => Some(scope.served()),
            (None, Some(_)) => Some(ServedBy::default()),
            (None, None) => telemetry::enabled().then(ServedBy::default),
        };
        let (events, mut rx) = mpsc::unbounded_channel();
        let forwarder = EventForwarder {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            min_level: self.request_log_level(context),
            cancel: context.ct.clone(),
        };
        let call = call(CallContext {
            cancel: context.ct.clone(),
            events: Some(events),
            client: client.map(|client| match audit {
                Some(scope) => scope.client(client),
                None => client,
            }),
            served: served.clone(),
            pin,
            caller: self.caller(context),
            admitted: context
                .extensions
                .get::<http::request::Parts>()
                .is_some_and(|parts| parts.extensions.get::<super::http::Admitted>().is_some()),
        });
        let mut call = std::pin::pin!(call);
        let result = loop {
            tokio::select! {
                biased;
                result = &mut call => break result,
                Some(event) = rx.recv() => forwarder.forward(event).await,
            }
        };
        while let Ok(event) = rx.try_recv() {
            forwarder.forward(event).await;
        }
        if let Some(served) = &served {
            telemetry::record_served(&tracing::Span::current(), served);
        }
        match (result, replay) {
            (Ok(result), _) => Ok(Answer::Complete(result)),
            (Err(BackendError::Suspended(_)), Some(replay)) => {
                let plugin = served.and_then(|served| served.get().sha256);
                replay
                    .stopped(&self.options.state_key, plugin)
                    .map(Answer::InputRequired)
            }
            (Err(error), _) => {
                crate::metrics::backend_error(&error);
                Err(to_mcp_error(error))
            }
        }
    }

    /// Who sends the request: over HTTP whoever authenticated it, over
    /// stdio the local user (restricted only by `--stdio-scopes`).
    fn caller(&self, context: &RequestContext<RoleServer>) -> Option<Arc<Caller>> {
        match context.extensions.get::<http::request::Parts>() {
            Some(parts) => parts.extensions.get::<Caller>().cloned().map(Arc::new),
            None => self.options.stdio_scopes.as_ref().map(|scopes| {
                Arc::new(Caller {
                    subject: Some("stdio".into()),
                    client_id: None,
                    scopes: Some(scopes.clone()),
                })
            }),
        }
    }

    /// The catalog as the sender of the request sees it.
    fn catalog(&self, context: &RequestContext<RoleServer>) -> Arc<crate::backend::Catalog> {
        self.backend.catalog_for(self.caller(context).as_deref())
    }

    /// Starts the audit record of one request, if ward keeps an audit log.
    fn audit(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        item: &str,
        arguments: serde_json::Value,
    ) -> Option<Scope> {
        let log = self.options.audit.as_ref()?;
        let parts = context.extensions.get::<http::request::Parts>();
        let transport = if parts.is_some() { "http" } else { "stdio" };
        let info = context
            .meta
            .client_info()
            .or_else(|| context.peer.peer_info().map(|p| p.client_info.clone()));
        let mut client = serde_json::json!({
            "name": info.as_ref().map(|i| i.name.clone()),
            "version": info.as_ref().map(|i| i.version.clone()),
        });
        if let Some(caller) = parts.and_then(|p| p.extensions.get::<crate::audit::Caller>()) {
            client["auth"] = serde_json::to_value(caller).unwrap_or_default();
        }
        Some(Scope::new(log, transport, client, method, item, &arguments))
    }

    /// Starts the task that forwards server events to a legacy client. Runs
    /// once per connection, from `initialize`, so a repeated `initialize`
    /// does not double every notification. ward's own messages (a plugin
    /// that failed to load, with its policy's keys and paths) are for the
    /// operator: a caller restricted by scopes does not get them.
    fn start_event_pump(&self, context: &RequestContext<RoleServer>) {
        if self.session.pump_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let events = self.backend.subscribe();
        let session = self.session.clone();
        let operator = self.caller(context).is_none_or(|c| c.scopes.is_none());
        tokio::spawn(notify::pump_server_events(
            events,
            context.peer.clone(),
            session,
            operator,
        ));
    }

    /// Cache hints for list results: only the 2026-07-28 era has them, and
    /// legacy clients get the legacy wire shape.
    fn cache_hints(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> (Option<u64>, Option<CacheScope>) {
        if is_stateless(context) {
            // The catalog depends on the plugin directory and, for a caller
            // restricted by scopes, on who asks.
            let scope = match self.caller(context).is_some_and(|c| c.scopes.is_some()) {
                true => CacheScope::Private,
                false => CacheScope::Public,
            };
            (Some(self.options.list_ttl_ms), Some(scope))
        } else {
            (None, None)
        }
    }

    /// The one `*/list` handler: a page of the catalog list `L` as the
    /// caller sees it, with the era's cache hints.
    fn list<L: Listing>(
        &self,
        request: Option<PaginatedRequestParams>,
        context: &RequestContext<RoleServer>,
    ) -> Result<L, ErrorData> {
        let _span = telemetry::request_span(context, L::METHOD, Item::None);
        let catalog = self.catalog(context);
        let (items, next_cursor) =
            page(L::items(&catalog), request.as_ref(), self.options.page_size)?;
        Ok(L::page(items, next_cursor, self.cache_hints(context)))
    }
}

impl<B: Backend> Drop for WardServer<B> {
    fn drop(&mut self) {
        self.session.shutdown.cancel();
    }
}

/// Whether a request uses the stateless 2026-07-28 era.
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// A request that may be answered with an input-required result: what binds
/// its `requestState`, and what the client sent back from an earlier round.
struct Input<'a> {
    method: &'static str,
    item: &'a str,
    arguments: &'a serde_json::Value,
    state: Option<String>,
    responses: Option<InputResponses>,
}

impl Input<'_> {
    /// The replay of this request, and the plugin version it must run on.
    fn open(
        self,
        key: &StateKey,
        context: &RequestContext<RoleServer>,
    ) -> Result<(Replay, Option<[u8; 32]>), ErrorData> {
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<crate::audit::Caller>())
            .map(|caller| serde_json::to_string(caller).unwrap_or_default())
            .unwrap_or_default();
        let binding = replay::binding(self.method, self.item, self.arguments, &caller);
        let capabilities = context.client_capabilities().unwrap_or_default();
        Replay::open(
            key,
            binding,
            self.state.as_deref(),
            self.responses,
            capabilities,
        )
    }
}

impl<B: Backend> ServerHandler for WardServer<B> {
    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_prompts_list_changed()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tool_list_changed()
            // Only `server/discover` (2026-07-28) declares it: `initialize`
            // removes it. rmcp answers `tasks/*` only while it is here.
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("ward", env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
            .with_instructions(
                "ward serves the tools, resources and prompts of WebAssembly plugins; \
                 the lists change when plugins are added, replaced or removed.",
            )
    }

    /// The tool, for rmcp's HTTP transport: it checks the `Mcp-Param-*`
    /// headers of a 2026-07-28 `tools/call` against the arguments wherever
    /// the tool's input schema carries `x-mcp-header` annotations (SEP-2243).
    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        let catalog = self.backend.catalog();
        let found = catalog
            .tools
            .binary_search_by(|tool| tool.name.as_ref().cmp(name));
        found.ok().map(|i| catalog.tools[i].clone())
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(SUPPORTED_PROTOCOL_VERSIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let _span = telemetry::request_span(&context, "initialize", Item::None);
        context.peer.set_peer_info(request.clone());
        // Subscribe before answering so no event between the answer and the
        // task's first poll is lost.
        self.start_event_pump(&context);
        let mut result = self.negotiate_initialize(&request)?;
        // The tasks extension belongs to 2026-07-28 (`tasks.rs`).
        if let Some(extensions) = result.capabilities.extensions.as_mut() {
            extensions.remove(rmcp::model::TASKS_EXTENSION_ID);
            if extensions.is_empty() {
                result.capabilities.extensions = None;
            }
        }
        Ok(result)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.list(request, &context)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.list(request, &context)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.list(request, &context)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.list(request, &context)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let map = request.arguments.unwrap_or_default();
        let arguments = serde_json::Value::Object(map.clone());
        let audit = self.audit(&context, "tools/call", &request.name, arguments.clone());
        let input = Input {
            method: "tools/call",
            item: &request.name,
            arguments: &arguments,
            state: request.request_state,
            responses: request.input_responses,
        };
        let span = telemetry::request_span(&context, "tools/call", Item::Tool(&request.name));
        let support = self.backend.task_support(&request.name);
        match tasks::eligible(support, &self.options.tasks, &context) {
            Ok(false) => {}
            Ok(true) => {
                return self
                    .call_tool_task(&request.name, map, input, audit, &context, span)
                    .await
            }
            Err(error) => {
                if let Some(audit) = &audit {
                    audit.finish("error", Some((error.code.0, &error.message)));
                }
                return Err(error);
            }
        }
        let result = metered(
            "tools/call",
            self.with_events(&context, audit.as_ref(), Some(input), |cx| {
                self.backend.call_tool(&request.name, map, cx)
            }),
        )
        .instrument(span.clone())
        .await;
        trace_outcome(&span, &result);
        if let Some(audit) = &audit {
            match &result {
                Ok(Answer::Complete(r)) if r.is_error == Some(true) => {
                    audit.finish("isError", None)
                }
                other => finish(audit, other),
            }
        }
        Ok(match result? {
            Answer::Complete(result) => CallToolResponse::Complete(result),
            Answer::InputRequired(input) => CallToolResponse::InputRequired(input),
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let arguments = serde_json::json!({ "uri": request.uri });
        let audit = self.audit(&context, "resources/read", &request.uri, arguments.clone());
        let input = Input {
            method: "resources/read",
            item: &request.uri,
            arguments: &arguments,
            state: request.request_state,
            responses: request.input_responses,
        };
        let item = Item::Resource(&request.uri);
        let span = telemetry::request_span(&context, "resources/read", item);
        let result = metered(
            "resources/read",
            self.with_events(&context, audit.as_ref(), Some(input), |cx| {
                self.backend.read_resource(&request.uri, cx)
            }),
        )
        .instrument(span.clone())
        .await;
        trace_outcome(&span, &result);
        if let Some(audit) = &audit {
            finish(audit, &result);
        }
        Ok(match result? {
            Answer::Complete(mut result) => {
                if is_stateless(&context) {
                    // A resource is plugin output that may change on every read.
                    result.ttl_ms.get_or_insert(0);
                    result.cache_scope.get_or_insert(CacheScope::Private);
                }
                ReadResourceResponse::Complete(result)
            }
            Answer::InputRequired(input) => ReadResourceResponse::InputRequired(input),
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let map = request.arguments.unwrap_or_default();
        let arguments = serde_json::Value::Object(map.clone());
        let audit = self.audit(&context, "prompts/get", &request.name, arguments.clone());
        let input = Input {
            method: "prompts/get",
            item: &request.name,
            arguments: &arguments,
            state: request.request_state,
            responses: request.input_responses,
        };
        let span = telemetry::request_span(&context, "prompts/get", Item::Prompt(&request.name));
        let result = metered(
            "prompts/get",
            self.with_events(&context, audit.as_ref(), Some(input), |cx| {
                self.backend.get_prompt(&request.name, map, cx)
            }),
        )
        .instrument(span.clone())
        .await;
        trace_outcome(&span, &result);
        if let Some(audit) = &audit {
            finish(audit, &result);
        }
        Ok(match result? {
            Answer::Complete(result) => GetPromptResponse::Complete(result),
            Answer::InputRequired(input) => GetPromptResponse::InputRequired(input),
        })
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let mut known: Vec<(String, String)> = request
            .context
            .and_then(|context| context.arguments)
            .map(|arguments| arguments.into_iter().collect())
            .unwrap_or_default();
        // HashMap order is random; give the backend a stable order.
        known.sort();
        let argument = request.argument;
        let audit = self.audit(
            &context,
            "completion/complete",
            &match &request.r#ref {
                rmcp::model::Reference::Prompt(p) => p.name.clone(),
                rmcp::model::Reference::Resource(r) => r.uri.clone(),
                _ => String::new(),
            },
            serde_json::json!({
                "argument": { "name": argument.name, "value": argument.value },
                "context": known.iter().cloned().collect::<HashMap<_, _>>(),
            }),
        );
        let item = match &request.r#ref {
            rmcp::model::Reference::Prompt(p) => Item::Prompt(&p.name),
            rmcp::model::Reference::Resource(r) => Item::Resource(&r.uri),
            _ => Item::None,
        };
        let span = telemetry::request_span(&context, "completion/complete", item);
        let result = metered(
            "completion/complete",
            self.with_events(&context, audit.as_ref(), None, |cx| {
                self.backend
                    .complete(request.r#ref, &argument.name, &argument.value, known, cx)
            }),
        )
        .instrument(span.clone())
        .await;
        trace_outcome(&span, &result);
        if let Some(audit) = &audit {
            finish(audit, &result);
        }
        match result? {
            Answer::Complete(result) => Ok(result),
            Answer::InputRequired(_) => Err(ErrorData::internal_error(
                "a completion cannot ask the client",
                None,
            )),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *lock(&self.session.log_level) = request.level;
        Ok(())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Any URI may be subscribed, listed or not: a template-expanded URI
        // is not in the list, and a plugin that serves it may load later.
        // One the caller may not read is refused, as a read would be.
        let target = crate::backend::Target::Resource(request.uri.clone());
        if !self
            .backend
            .permits(self.caller(&context).as_deref(), &target)
        {
            return Err(ErrorData::new(
                rmcp::model::ErrorCode(crate::backend::FORBIDDEN),
                format!(
                    "resource `{}` needs scopes the caller does not hold",
                    request.uri
                ),
                Some(serde_json::json!({"error": "insufficient_scope"})),
            ));
        }
        lock(&self.session.subscriptions).insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        lock(&self.session.subscriptions).remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp calls this and then `listen` in the request's own task, but
        // sends the acknowledgement in between: subscribe to events now, so
        // nothing that happens after the acknowledgement is missed.
        self.session.open_early(|| self.backend.subscribe());
        // Everything ward can announce; rmcp intersects this with what was
        // requested and what the capabilities advertise.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        notify::listen(&self.session, || self.backend.subscribe(), context).await;
        Ok(())
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        let _span = telemetry::request_span(&context, "tasks/get", Item::None);
        tasks::era::<rmcp::model::GetTaskMethod>(&context)?;
        let task = self
            .options
            .tasks
            .get(&request.task_id, &tasks::owner(&context))?;
        Ok(rmcp::model::GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let _span = telemetry::request_span(&context, "tasks/update", Item::None);
        tasks::era::<rmcp::model::UpdateTaskMethod>(&context)?;
        self.options.tasks.update(
            &request.task_id,
            &tasks::owner(&context),
            request.input_responses,
        )
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let _span = telemetry::request_span(&context, "tasks/cancel", Item::None);
        tasks::era::<rmcp::model::CancelTaskMethod>(&context)?;
        self.options
            .tasks
            .cancel(&request.task_id, &tasks::owner(&context))
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        // The transport answers unknown methods before they get here; this
        // covers handlers driven by other transports.
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {}", request.method),
            None,
        ))
    }
}

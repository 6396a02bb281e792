//! The seam between the MCP protocol layer and the plugins behind it.
//!
//! `protocol/` knows MCP and nothing of wasmtime; `registry` knows plugins and
//! nothing of transports. They meet here: the protocol layer holds a
//! [`Backend`], reads immutable [`Catalog`] snapshots for every list request,
//! and forwards calls with a [`CallContext`] that carries cancellation and a
//! channel for what the guest reports while it runs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::model::{
    CallToolResult, CompleteResult, GetPromptResult, JsonObject, Prompt, ReadResourceResult,
    Reference, Resource, ResourceTemplate, Tool,
};
use tokio::sync::{broadcast, mpsc};

use crate::audit::Caller;
use tokio_util::sync::CancellationToken;

/// Everything clients can see, as one immutable snapshot. A new snapshot is
/// published whenever a plugin is loaded, replaced or removed; a request works
/// on the snapshot it started with.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Exposed tools, sorted by name.
    pub tools: Vec<Tool>,
    /// Fixed resources, sorted by URI.
    pub resources: Vec<Resource>,
    /// Resource templates, sorted by URI template.
    pub resource_templates: Vec<ResourceTemplate>,
    /// Prompts, sorted by name.
    pub prompts: Vec<Prompt>,
}

/// What changed between two catalogs; sent once per change burst so the
/// protocol layer can emit exactly the `list_changed` notifications needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogChange {
    /// The tool list differs.
    pub tools: bool,
    /// The resource or resource-template list differs.
    pub resources: bool,
    /// The prompt list differs.
    pub prompts: bool,
}

/// Server-wide events for every connected client.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// The catalog changed (hot reload).
    CatalogChanged(CatalogChange),
    /// A plugin reported that the resource at this URI changed.
    ResourceUpdated(String),
    /// Something the operator and clients should hear about that belongs to
    /// no request, such as a plugin replacement that failed to load.
    Log {
        /// MCP log level.
        level: rmcp::model::LoggingLevel,
        /// Which part of ward speaks (a plugin name, `ward`).
        logger: String,
        /// The message.
        message: String,
    },
}

/// Something a guest reported while serving one request.
#[derive(Debug, Clone)]
pub enum GuestEvent {
    /// `host.log` from the guest.
    Log {
        /// MCP log level.
        level: rmcp::model::LoggingLevel,
        /// The plugin name.
        logger: String,
        /// The message (already length-capped).
        message: String,
    },
    /// `host.progress` from the guest.
    Progress {
        /// Progress so far.
        progress: f64,
        /// The total, if known.
        total: Option<f64>,
        /// A human-readable note.
        message: Option<String>,
    },
}

/// A request a guest may send to the client of the request it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMethod {
    /// `sampling/createMessage`: ask the client's model for a message.
    CreateMessage,
    /// `elicitation/create`: ask the user for input.
    Elicit,
    /// `roots/list`: ask which roots (directories, repositories) the client
    /// works in.
    ListRoots,
}

impl ClientMethod {
    /// The MCP method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateMessage => "sampling/createMessage",
            Self::Elicit => "elicitation/create",
            Self::ListRoots => "roots/list",
        }
    }

    /// The method with this MCP name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::CreateMessage, Self::Elicit, Self::ListRoots]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// The client capability the method needs.
    pub fn capability(self) -> &'static str {
        match self {
            Self::CreateMessage => "sampling",
            Self::Elicit => "elicitation",
            Self::ListRoots => "roots",
        }
    }
}

/// Requests to the client (sampling, elicitation, roots) one call may make;
/// on MCP 2026-07-28, across all the rounds of its replays.
pub const MAX_CLIENT_REQUESTS_PER_CALL: u32 = 16;

/// One request a guest makes of its client, named by the guest: on MCP
/// 2026-07-28 the key is what the client answers under.
#[derive(Debug, Clone)]
pub struct Question {
    /// Unique within the call.
    pub key: String,
    /// What is asked.
    pub method: ClientMethod,
    /// The request's parameters, as the guest wrote them (JSON).
    pub params: serde_json::Value,
    /// The guest asks it before its call becomes a task (`"beforeTask":
    /// true` in `client.ask`): on a call that may run as a task it is asked
    /// with an input-required result, and the task starts once it is
    /// answered (`protocol/tasks.rs`). Elsewhere it means nothing.
    pub before_task: bool,
}

/// The answer to a [`Question`]: the client's JSON result, or a message for
/// the guest saying why there is none.
pub type ClientAnswer = Result<serde_json::Value, String>;

/// The request cannot go on in this run of the guest: the guest is stopped
/// (the host import traps with this error) and the protocol layer answers
/// the request itself, with an input-required result or an error.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request waits for the client's answers")]
pub struct Suspended;

/// Sends a guest's requests to the client, on behalf of one request. The
/// protocol layer implements it; it checks what the client declared it
/// supports and validates the guest's parameters before anything is sent.
pub trait ClientRequests: Send + Sync {
    /// Asks `questions` (one round) and waits for their answers, one per
    /// question, in order.
    fn ask(
        &self,
        questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>>;

    /// Whether the client declared the capability `method` needs.
    fn supports(&self, method: ClientMethod) -> bool;
}

/// Whether a tool may run as a task: the `io.modelcontextprotocol/tasks`
/// extension of MCP 2026-07-28 (SEP-2663), where the server answers a
/// `tools/call` with a task the client then polls (`protocol/tasks.rs`).
///
/// A tool declares it in its own definition, as the keyword
/// [`TASK_KEYWORD`] at the top of its `input-schema`:
/// `"x-ward-task": "optional"` or `"required"` (the Rust SDK's
/// `ToolBuilder::task`). ward reads the keyword when it loads the plugin and
/// removes it from the schema it lists. Why there:
///
/// - The WIT `tool` record is a typed public contract: a new field means a
///   new package version, and every plugin would have to be rebuilt against
///   it to declare anything. The input schema is JSON the plugin writes
///   itself, and JSON Schema admits keywords of its own (`x-...`, as
///   SEP-2243's `x-mcp-header`), so any SDK in any language can declare
///   task support today, and a plugin that declares it still loads on an
///   older ward (which ignores the keyword).
/// - The declaration stays with the tool's code, under the tool's own name.
///   The embedded manifest (`ward.toml`) was the other candidate; it is a
///   claim shown to the operator (`ward inspect`, `ward add`), read without
///   running the plugin and not when serving, and it would name tools apart
///   from the code that registers them (a plugin's tool list may change at
///   run time, `host.lists-changed`).
///
/// Tools lists do not carry `execution.taskSupport`: that field belongs to
/// the 2025-11-25 experimental tasks, which ward does not implement, and the
/// extension's tool shape has no such field (task creation is the server's
/// decision). A client learns that a call became a task from its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// Never a task (the default).
    #[default]
    Forbidden,
    /// A task when the client declares the extension, else an ordinary call.
    Optional,
    /// Only as a task: a 2026-07-28 client that does not declare the
    /// extension is refused with -32021 (a legacy client, which cannot
    /// declare it, gets an ordinary call).
    Required,
}

/// The input-schema keyword that declares a tool's [`TaskSupport`].
pub const TASK_KEYWORD: &str = "x-ward-task";

impl TaskSupport {
    /// The support a keyword value declares, if it is one.
    pub fn from_keyword(value: &serde_json::Value) -> Option<Self> {
        match value.as_str()? {
            "forbidden" => Some(Self::Forbidden),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

/// A shared [`ClientRequests`].
#[derive(Clone)]
pub struct ClientHandle(pub Arc<dyn ClientRequests>);

impl fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientHandle")
    }
}

/// Per-request context handed from the protocol layer to the backend.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Cancelled when the client cancels the request (or the client goes away).
    /// The backend interrupts a running guest promptly when it fires.
    pub cancel: CancellationToken,
    /// Where guest logs and progress go; `None` drops them (they still reach
    /// ward's own log on stderr).
    pub events: Option<mpsc::UnboundedSender<GuestEvent>>,
    /// Where guest requests to the client (sampling, elicitation) go; `None`
    /// refuses them.
    pub client: Option<ClientHandle>,
    /// Filled in by the plugin that serves the request, for the audit log;
    /// `None` when nobody asks.
    pub served: Option<ServedBy>,
    /// The sha256 of the plugin version that must serve this request: a
    /// replayed request (an input-required retry) may only run on the
    /// version that asked the questions.
    pub pin: Option<[u8; 32]>,
    /// Who asks, for plugins' `[access]` scopes and rate limits; `None` is
    /// the local user (stdio, an HTTP listener without authentication).
    pub caller: Option<Arc<Caller>>,
    /// The front door already admitted the request ([`Backend::admit`]):
    /// over HTTP it is checked before rmcp sees it, so that a refusal can
    /// be an HTTP 403 or 429; it must not take a second rate token.
    pub admitted: bool,
}

/// What a request uses, as [`Backend::admit`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `tools/call`, by exposed name.
    Tool(String),
    /// `resources/read`, by URI.
    Resource(String),
    /// `prompts/get`, by exposed name.
    Prompt(String),
    /// `completion/complete` of a prompt's argument, by exposed name.
    PromptCompletion(String),
    /// `completion/complete` of a resource template's variable, by template.
    TemplateCompletion(String),
}

impl Target {
    /// The MCP method that uses it.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Tool(_) => "tools/call",
            Self::Resource(_) => "resources/read",
            Self::Prompt(_) => "prompts/get",
            Self::PromptCompletion(_) | Self::TemplateCompletion(_) => "completion/complete",
        }
    }
}

/// Which plugin served a request and what it cost: written by the plugin
/// when it runs, read by the protocol layer for the audit log.
#[derive(Debug, Clone, Default)]
pub struct ServedBy(Arc<std::sync::Mutex<Served>>);

/// What [`ServedBy`] holds.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// The plugin's name.
    pub plugin: Option<Arc<str>>,
    /// The sha256 of its wasm.
    pub sha256: Option<[u8; 32]>,
    /// The values of its environment variables, to redact.
    pub secrets: Vec<String>,
    /// Fuel, peak memory in bytes, and guest time of the call.
    pub cost: Option<(u64, u64, std::time::Duration)>,
}

impl ServedBy {
    /// Records the plugin about to run the request.
    pub fn plugin(&self, name: &Arc<str>, sha256: [u8; 32], env: &[(String, String)]) {
        let mut served = self.0.lock().unwrap_or_else(|e| e.into_inner());
        served.plugin = Some(name.clone());
        served.sha256 = Some(sha256);
        served.secrets = env.iter().map(|(_, value)| value.clone()).collect();
    }

    /// Records what the call cost.
    pub fn cost(&self, fuel: u64, peak_memory: u64, duration: std::time::Duration) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).cost = Some((fuel, peak_memory, duration));
    }

    /// What was recorded.
    pub fn get(&self) -> Served {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Why a request to the backend failed as a protocol error. A tool that ran
/// and failed is not an error here: it is a `CallToolResult` with `is_error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The named tool, prompt or resource does not exist (JSON-RPC -32602).
    #[error("{what} not found: {name}")]
    NotFound {
        /// "tool", "prompt", "resource", ...
        what: &'static str,
        /// The name or URI that was asked for.
        name: String,
    },
    /// The request's parameters are invalid (JSON-RPC -32602).
    #[error("{0}")]
    InvalidParams(String),
    /// Something failed inside ward or a plugin (JSON-RPC -32603). The
    /// message is safe to show to the client; details went to the log.
    #[error("{0}")]
    Internal(String),
    /// The guest stopped to wait for the client ([`Suspended`]); the
    /// protocol layer, which stopped it, knows what to answer.
    #[error("{0}")]
    Suspended(#[from] Suspended),
    /// The caller lacks scopes the item needs (`[access]`): HTTP 403
    /// `insufficient_scope`, else JSON-RPC [`FORBIDDEN`].
    #[error("{what} `{name}` needs the scope(s) {}, which the caller does not hold; use a token that carries them", missing.join(" "))]
    Forbidden {
        /// "tool", "prompt", "resource", ...
        what: &'static str,
        /// The exposed name or URI.
        name: String,
        /// Every scope the item needs.
        required: Vec<String>,
        /// Those the caller lacks.
        missing: Vec<String>,
    },
    /// Over a rate limit (`[limits] rate`): HTTP 429 with `Retry-After`,
    /// else JSON-RPC [`RATE_LIMITED`]. The guest did not run.
    #[error("{message}")]
    RateLimited {
        /// Which plugin and which limit, and what to do.
        message: String,
        /// When a call would pass again.
        retry_after: std::time::Duration,
    },
}

/// The JSON-RPC error code of [`BackendError::Forbidden`].
pub const FORBIDDEN: i32 = -32003;

/// The JSON-RPC error code of [`BackendError::RateLimited`].
pub const RATE_LIMITED: i32 = -32029;

/// What the protocol layer needs from the plugins.
pub trait Backend: Send + Sync + 'static {
    /// The current catalog.
    fn catalog(&self) -> Arc<Catalog>;

    /// The current catalog as `caller` sees it: without the items whose
    /// `[access]` scopes it lacks.
    fn catalog_for(&self, caller: Option<&Caller>) -> Arc<Catalog> {
        let _ = caller;
        self.catalog()
    }

    /// Whether `caller` holds the scopes `target` needs, if something
    /// serves it now; takes no rate token.
    fn permits(&self, caller: Option<&Caller>, target: &Target) -> bool {
        let _ = (caller, target);
        true
    }

    /// Whether `caller` may use `target` now: its scopes, and a token of
    /// the plugin's rate limits, which this takes. `Ok(true)`: admitted;
    /// `Ok(false)`: no such target now, nothing was checked (the request
    /// itself then answers "not found", or is admitted when it runs, if a
    /// plugin serving it arrived meanwhile).
    fn admit(
        &self,
        caller: Option<&Caller>,
        target: &Target,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let _ = (caller, target);
        async { Ok(false) }
    }

    /// Server-wide events (catalog changes, resource updates, warnings).
    fn subscribe(&self) -> broadcast::Receiver<ServerEvent>;

    /// Whether the exposed tool `name` may run as a task; unknown tools
    /// may not.
    fn task_support(&self, name: &str) -> TaskSupport {
        let _ = name;
        TaskSupport::Forbidden
    }

    /// Calls an exposed tool. Arguments are validated against the tool's
    /// input schema here; a validation failure is an `is_error` result.
    fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: CallContext,
    ) -> impl std::future::Future<Output = Result<CallToolResult, BackendError>> + Send;

    /// Reads a resource by URI, routed to the plugin that lists it or whose
    /// template matches it.
    fn read_resource(
        &self,
        uri: &str,
        cx: CallContext,
    ) -> impl std::future::Future<Output = Result<ReadResourceResult, BackendError>> + Send;

    /// Renders a prompt; missing required arguments are `InvalidParams`.
    fn get_prompt(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: CallContext,
    ) -> impl std::future::Future<Output = Result<GetPromptResult, BackendError>> + Send;

    /// Completes a prompt argument or a template variable.
    fn complete(
        &self,
        reference: Reference,
        argument: &str,
        value: &str,
        context: Vec<(String, String)>,
        cx: CallContext,
    ) -> impl std::future::Future<Output = Result<CompleteResult, BackendError>> + Send;
}

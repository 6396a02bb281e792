//! Why a plugin gave no answer ([`PluginError`]: which plugin, at which
//! stage, what went wrong), and the one mapping of that to MCP ([`answer`]).
//!
//! MCP has two kinds of failure. A tool that ran and failed answers with a
//! result marked `isError`, which the model reads and may act on; anything
//! else that fails (an unknown item, bad parameters, a plugin that could not
//! answer a read) is a JSON-RPC error. [`answer`] makes that decision for
//! every method, and writes every message a client sees about a plugin's
//! failure: each names the plugin, and a guest's own text is cut to its
//! `limits.max-output` ([`cut`]).

use std::sync::Arc;

use rmcp::model::{
    CallToolResult, CompleteResult, ContentBlock, GetPromptResult, ReadResourceResult,
};

use super::Plugin;
use crate::backend::BackendError;
use crate::sandbox::output::cut;
use crate::sandbox::Failure;

/// A plugin gave no usable answer.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct PluginError {
    /// The plugin's name (its messages to clients are prefixed with it by
    /// [`answer`], not here).
    pub plugin: Arc<str>,
    /// How far the request got.
    pub stage: Stage,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// How far a request to a plugin got before it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Ward checked the request against the plugin's schemas; the guest
    /// did not run.
    Check,
    /// Admitting the call to the sandbox and instantiating the component.
    Instantiate,
    /// The guest export ran.
    Call,
    /// Turning the guest's answer into MCP values.
    Convert,
    /// Measuring and checking the MCP answer (`limits.max-output`, the
    /// tool's output schema).
    Output,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The sandbox stopped the call or refused its answer, in the sandbox's
    /// words ([`Failure`]): fuel, time, memory, a trap or panic, an answer
    /// over `limits.max-output` or one ward cannot use; or the request
    /// ended without being the plugin's fault (cancelled by the client,
    /// suspended for the client's answers, begun on a replaced version).
    #[error("{0}")]
    Stopped(Failure),
    /// The guest answered with an error of its own.
    #[error("{0}")]
    Guest(GuestError),
    /// A tool's arguments do not match its input schema.
    #[error("{0}")]
    InvalidArguments(String),
    /// A tool's structured result does not match its output schema.
    #[error("structured result does not match the output schema: {0}")]
    OutputSchema(String),
    /// Checking a value against a schema could not finish (it took too long).
    #[error("{0}")]
    Unchecked(String),
}

/// A guest's own error (`ward:plugin/types.error`).
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The item it was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request's parameters are invalid.
    #[error("{0}")]
    InvalidParams(String),
    /// It failed for another reason.
    #[error("{0}")]
    Failed(String),
}

impl PluginError {
    /// A failure of `plugin` at `stage`.
    pub fn new(plugin: &Arc<str>, stage: Stage, kind: ErrorKind) -> Self {
        Self {
            plugin: plugin.clone(),
            stage,
            kind,
        }
    }

    /// The sandbox's `failure`, at `stage`.
    pub(crate) fn stopped(plugin: &Arc<str>, stage: Stage, failure: Failure) -> Self {
        Self::new(plugin, stage, ErrorKind::Stopped(failure))
    }

    /// An answer ward cannot use.
    pub(crate) fn invalid(plugin: &Arc<str>, why: String) -> Self {
        Self::stopped(plugin, Stage::Convert, Failure::Invalid(why))
    }
}

/// What a request asked for, as the client named it: the subject of the
/// messages [`answer`] writes.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// `tools/call` of this exposed tool.
    Tool(&'a str),
    /// `resources/read` of this URI.
    Resource(&'a str),
    /// `prompts/get` of this exposed prompt.
    Prompt(&'a str),
    /// `completion/complete` of this argument.
    Completion(&'a str),
}

/// An MCP result that a failure may be reported in.
pub trait Answer: Sized {
    /// The result that reports `text` as a failure the model should read
    /// (`tools/call`'s `isError`); `Err(text)` for the methods whose results
    /// cannot.
    fn failed(text: String) -> Result<Self, String> {
        Err(text)
    }
}

impl Answer for CallToolResult {
    fn failed(text: String) -> Result<Self, String> {
        Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
    }
}

impl Answer for ReadResourceResult {}
impl Answer for GetPromptResult {}
impl Answer for CompleteResult {}

/// The one mapping from a plugin's failure to what the client receives.
///
/// A request that ended without being the plugin's fault (cancelled,
/// suspended, begun on a replaced version) is a JSON-RPC error for every
/// method. Any other failure of a tool call is an `isError` result, so the
/// model learns why; for the other methods it is a JSON-RPC error: the
/// guest's not-found and invalid-params as such (-32602), the rest an
/// internal error (-32603).
pub fn answer<T: Answer>(
    plugin: &Plugin,
    item: Item<'_>,
    result: Result<T, PluginError>,
) -> Result<T, BackendError> {
    let e = match result {
        Ok(answer) => return Ok(answer),
        Err(e) => e,
    };
    let name = &*e.plugin;
    if let ErrorKind::Stopped(f) = &e.kind {
        crate::metrics::failed(f);
    }
    let text = match e.kind {
        ErrorKind::Stopped(Failure::Suspended(s)) => return Err(BackendError::Suspended(s)),
        ErrorKind::Stopped(f @ Failure::Replaced) => {
            return Err(BackendError::InvalidParams(format!("plugin `{name}`: {f}")))
        }
        ErrorKind::Stopped(Failure::Cancelled) => {
            return Err(BackendError::Internal("cancelled by the client".into()))
        }
        ErrorKind::Stopped(f) => Text::Failed(guest_text(plugin, format!("plugin `{name}`: {f}"))),
        ErrorKind::Guest(GuestError::NotFound(m)) => Text::NotFound(m),
        ErrorKind::Guest(GuestError::InvalidParams(m)) => Text::Invalid(m),
        ErrorKind::Guest(GuestError::Failed(m)) => Text::GuestFailed(m),
        ErrorKind::InvalidArguments(problems) => {
            crate::metrics::rejected("invalid_arguments");
            Text::Invalid(problems)
        }
        kind @ ErrorKind::OutputSchema(_) => {
            Text::Failed(guest_text(plugin, format!("plugin `{name}`: {kind}")))
        }
        ErrorKind::Unchecked(why) => {
            if let (Stage::Check, Item::Tool(tool)) = (e.stage, item) {
                tracing::warn!(plugin = %name, "tool `{tool}`: {why}");
            }
            Text::Failed(format!("plugin `{name}`: {why}"))
        }
    };
    if let Item::Tool(tool) = item {
        let text = match text {
            Text::Failed(text) => text,
            Text::NotFound(m) | Text::GuestFailed(m) => guest_text(plugin, m),
            Text::Invalid(m) => guest_text(plugin, format!("invalid arguments for `{tool}`: {m}")),
        };
        return T::failed(text).map_err(BackendError::Internal);
    }
    Err(match text {
        Text::Failed(text) => BackendError::Internal(text),
        Text::NotFound(_) => {
            let (what, name) = match item {
                Item::Tool(name) => ("tool", name),
                Item::Resource(uri) => ("resource", uri),
                Item::Prompt(name) => ("prompt", name),
                Item::Completion(argument) => ("completion target", argument),
            };
            BackendError::NotFound {
                what,
                name: name.to_string(),
            }
        }
        Text::Invalid(m) => BackendError::InvalidParams(guest_text(plugin, m)),
        Text::GuestFailed(m) => {
            BackendError::Internal(guest_text(plugin, format!("plugin `{name}`: {m}")))
        }
    })
}

/// A failure's message, before it is fitted to the method.
enum Text {
    /// Final, naming the plugin.
    Failed(String),
    /// The guest's: the item does not exist.
    NotFound(String),
    /// The guest's or the input schema's: the parameters are invalid.
    Invalid(String),
    /// The guest's: it failed.
    GuestFailed(String),
}

/// Text a plugin produced (its error messages, a panic message), cut to
/// `limits.max-output` with a note.
fn guest_text(plugin: &Plugin, text: String) -> String {
    plugin.warn_of_secrets(&text);
    cut(text, plugin.policy().limits.max_output)
}

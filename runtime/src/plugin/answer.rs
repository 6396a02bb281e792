//! One method per MCP request a plugin answers: the guest request, one run
//! (`call.rs`), the guest's answer as MCP values (`convert.rs`), and the one
//! gate every answer passes on its way out (`capped`): measured as
//! the JSON the client receives against `limits.max-output`, whatever the
//! method and whatever fields the bytes are in.

use rmcp::model::{
    CallToolResult, CompleteResult, CompletionInfo, GetPromptResult, JsonObject, ReadResourceResult,
};
use serde_json::Value;

use super::bindings::{completions, tools};
use super::call::{Ran, Request, Response};
use super::convert;
use super::error::{ErrorKind, PluginError, Stage};
use super::Plugin;
use crate::backend::CallContext;
use crate::sandbox::output::output_size;
use crate::sandbox::Failure;

/// What a completion request completes, by the plugin's own names.
#[derive(Debug, Clone, Copy)]
pub enum Completing<'a> {
    /// An argument of the prompt of this name.
    Prompt(&'a str),
    /// A variable of the resource template of this text.
    Template(&'a str),
}

impl Plugin {
    /// Calls the plugin's tool `name` with `arguments` (a JSON object). A
    /// guest's result marked `is_error` is an answer; a guest's error is a
    /// [`PluginError`].
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: String,
        cx: &CallContext,
    ) -> Ran<CallToolResult> {
        let request = Request::CallTool {
            name,
            arguments: &arguments,
        };
        let ran = self.run(request, cx).await;
        self.answered(ran, |response| match response {
            Response::Tool(Ok(r)) => tool_result(&self.name, r),
            Response::Tool(Err(e)) => Err(self.guest_error(e)),
            _ => Err(PluginError::invalid(
                &self.name,
                "answered a tool call with something else".into(),
            )),
        })
    }

    /// Reads the resource at `uri`.
    pub async fn read_resource(&self, uri: &str, cx: &CallContext) -> Ran<ReadResourceResult> {
        let ran = self.run(Request::ReadResource { uri }, cx).await;
        self.answered(ran, |response| match response {
            Response::Resource(Ok(contents)) => Ok(ReadResourceResult::new(
                contents
                    .into_iter()
                    .map(convert::resource_contents)
                    .collect(),
            )),
            Response::Resource(Err(e)) => Err(self.guest_error(e)),
            _ => Err(PluginError::invalid(
                &self.name,
                "wrong answer to a resource read".into(),
            )),
        })
    }

    /// Renders the plugin's prompt `name`; arguments that are not strings
    /// are passed as their JSON text.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: &CallContext,
    ) -> Ran<GetPromptResult> {
        let arguments: Vec<(String, String)> = arguments
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                )
            })
            .collect();
        let request = Request::GetPrompt {
            name,
            arguments: &arguments,
        };
        let ran = self.run(request, cx).await;
        self.answered(ran, |response| match response {
            Response::Prompt(Ok(r)) => {
                let mut out = GetPromptResult::new(
                    r.messages
                        .into_iter()
                        .map(convert::prompt_message)
                        .collect(),
                );
                if let Some(d) = r.description {
                    out = out.with_description(d);
                }
                Ok(out)
            }
            Response::Prompt(Err(e)) => Err(self.guest_error(e)),
            _ => Err(PluginError::invalid(
                &self.name,
                "wrong answer to a prompt request".into(),
            )),
        })
    }

    /// Completes `argument` of `target`, at most
    /// [`CompletionInfo::MAX_VALUES`] values. A plugin without
    /// `completions`, or one that does not know the target, has none.
    pub async fn complete(
        &self,
        target: Completing<'_>,
        argument: &str,
        value: &str,
        context: &[(String, String)],
        cx: &CallContext,
    ) -> Ran<CompleteResult> {
        let empty = || CompleteResult::new(CompletionInfo::default());
        if !self.manifest.completions {
            return Ran::answered(Ok(empty()));
        }
        let target = match target {
            Completing::Prompt(name) => completions::Reference::Prompt(name.to_string()),
            Completing::Template(text) => {
                completions::Reference::ResourceTemplate(text.to_string())
            }
        };
        let request = Request::Complete {
            target,
            argument,
            value,
            context,
        };
        let ran = self.run(request, cx).await;
        self.answered(ran, |response| match response {
            Response::Completion(Ok(c)) => {
                let mut values = c.values;
                let has_more = c.has_more || values.len() > CompletionInfo::MAX_VALUES;
                values.truncate(CompletionInfo::MAX_VALUES);
                let mut info = CompletionInfo::default();
                info.values = values;
                info.total = c.total;
                info.has_more = Some(has_more);
                Ok(CompleteResult::new(info))
            }
            Response::Completion(Err(super::bindings::types::Error::NotFound(_))) => Ok(empty()),
            Response::Completion(Err(e)) => Err(self.guest_error(e)),
            _ => Err(PluginError::invalid(
                &self.name,
                "wrong answer to a completion request".into(),
            )),
        })
    }

    /// A run's answer as MCP, through the gate.
    fn answered<T: serde::Serialize>(
        &self,
        ran: Ran<Response>,
        convert: impl FnOnce(Response) -> Result<T, PluginError>,
    ) -> Ran<T> {
        ran.map(|response| self.capped(convert(response)?))
    }

    /// The one gate every answer of a plugin passes: refused when its JSON
    /// is larger than `limits.max-output`, whatever fields the bytes are in.
    fn capped<T: serde::Serialize>(&self, answer: T) -> Result<T, PluginError> {
        self.warn_of_secrets(&answer);
        let (size, max) = (output_size(&answer), self.policy().limits.max_output);
        if size > max {
            let file = format!("{}.toml", self.name).into();
            let failure = Failure::OutputTooLarge { size, max, file };
            Err(PluginError::stopped(&self.name, Stage::Output, failure))
        } else {
            Ok(answer)
        }
    }

    fn guest_error(&self, e: super::bindings::types::Error) -> PluginError {
        let kind = ErrorKind::Guest(convert::guest_error(e));
        PluginError::new(&self.name, Stage::Call, kind)
    }

    /// Logs a warning when an answer holds the value of one of the plugin's
    /// secrets (`[env]` references) verbatim: the plugin hands a secret it
    /// was trusted with to the client. The value itself is never logged.
    pub(crate) fn warn_of_secrets<T: serde::Serialize + ?Sized>(&self, answer: &T) {
        let policy = self.policy();
        if policy.secrets.is_empty() {
            return;
        }
        let Ok(text) = serde_json::to_string(answer) else {
            return;
        };
        for name in &policy.secrets {
            let Some((_, value)) = policy.env.iter().find(|(n, _)| n == name) else {
                continue;
            };
            // As the JSON holds it: escaped, without the quotes.
            let escaped = serde_json::to_string(value).unwrap_or_default();
            let escaped = escaped
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .unwrap_or(value);
            if !value.is_empty() && (text.contains(value.as_str()) || text.contains(escaped)) {
                tracing::warn!(
                    plugin = %self.name,
                    "plugin `{}` answered with the value of its secret env.{name} (from {}.toml) verbatim",
                    self.name,
                    self.name
                );
            }
        }
    }
}

/// A guest's tool result as MCP: its content, and its structured result,
/// which must be JSON.
fn tool_result(
    plugin: &std::sync::Arc<str>,
    r: tools::ToolResult,
) -> Result<CallToolResult, PluginError> {
    let structured = match r.structured.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            return Err(PluginError::invalid(
                plugin,
                format!("structured result is not JSON: {e}"),
            ))
        }
    };
    let content = r.content.into_iter().map(convert::content).collect();
    let mut out = if r.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = structured;
    Ok(out)
}

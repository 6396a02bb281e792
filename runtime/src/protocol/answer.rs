//! How a request to a plugin item ended, and the one place each ending is
//! mapped and recorded: [`to_mcp_error`] (the only mapping from a
//! [`BackendError`] to a JSON-RPC error), the audit record's outcome, the
//! request metrics and the request's span.
//!
//! Kept apart from the handler so that `tools/call`, `resources/read`,
//! `prompts/get`, `completion/complete` and their task form (`tasks.rs`)
//! all end the same way: a tool that ran and failed is a result with
//! `isError`, never an error here.

use std::future::Future;

use rmcp::model::{CompleteResult, InputRequiredResult};
use rmcp::ErrorData;

use crate::audit::Scope;
use crate::backend::BackendError;
use crate::telemetry;

/// Ends an audit record with the request's outcome: `ok`,
/// `input-required`, or `error` with the JSON-RPC code and message.
pub(super) fn finish<T>(audit: &Scope, result: &Result<Answer<T>, ErrorData>) {
    match result {
        Ok(Answer::Complete(_)) => audit.finish("ok", None),
        Ok(Answer::InputRequired(_)) => audit.finish("input-required", None),
        Err(e) => audit.finish("error", Some((e.code.0, &e.message))),
    }
}

/// Runs the handling of one request to a plugin item (`method`), and records
/// it in the metrics (`--metrics`), if ward keeps them.
pub(super) async fn metered<T: Reply>(
    method: &'static str,
    request: impl Future<Output = Result<Answer<T>, ErrorData>>,
) -> Result<Answer<T>, ErrorData> {
    let Some(metered) = crate::metrics::Request::start(method) else {
        return request.await;
    };
    let result = metered.scope(request).await;
    metered.finish(match &result {
        Ok(Answer::Complete(result)) if result.is_error() => crate::metrics::Answered::IsError,
        Ok(Answer::Complete(_)) => crate::metrics::Answered::Ok,
        Ok(Answer::InputRequired(_)) => crate::metrics::Answered::InputRequired,
        Err(error) => crate::metrics::Answered::Error(error.code.0),
    });
    result
}

/// Records on a request's span how it ended (`telemetry.rs`).
pub(super) fn trace_outcome<T: Reply>(span: &tracing::Span, result: &Result<Answer<T>, ErrorData>) {
    let tool_error = matches!(result, Ok(Answer::Complete(r)) if r.is_error());
    telemetry::record_outcome(span, result.as_ref().err(), tool_error);
}

/// A result of a request to a plugin item: only a tool's can be an error.
pub(super) trait Reply {
    /// Whether it is a tool result with `isError`.
    fn is_error(&self) -> bool {
        false
    }
}

impl Reply for rmcp::model::CallToolResult {
    fn is_error(&self) -> bool {
        self.is_error == Some(true)
    }
}

impl Reply for rmcp::model::ReadResourceResult {}
impl Reply for rmcp::model::GetPromptResult {}
impl Reply for CompleteResult {}

/// How a request that may ask the client ended.
pub(super) enum Answer<T> {
    /// With its result.
    Complete(T),
    /// With questions for a 2026-07-28 client, to be retried with answers.
    InputRequired(InputRequiredResult),
}

/// The one mapping from backend failures to JSON-RPC errors.
///
/// A tool that ran and failed is not an error here: the backend returns it
/// as a result with `isError`. What is left is the request itself being
/// wrong (-32602, with `data` naming what was asked for so clients can show
/// it) or ward failing (-32603, with a message that is safe to show).
pub fn to_mcp_error(error: BackendError) -> ErrorData {
    let message = error.to_string();
    match error {
        BackendError::NotFound { what, name } => {
            let key = if what.starts_with("resource") {
                "uri"
            } else {
                "name"
            };
            ErrorData::invalid_params(
                format!("{what} not found: {name}"),
                Some(serde_json::json!({ key: name })),
            )
        }
        BackendError::InvalidParams(message) => ErrorData::invalid_params(message, None),
        BackendError::Internal(message) => ErrorData::internal_error(message, None),
        BackendError::Forbidden {
            ref required,
            ref missing,
            ..
        } => ErrorData::new(
            rmcp::model::ErrorCode(crate::backend::FORBIDDEN),
            message,
            Some(serde_json::json!({
                "error": "insufficient_scope",
                "requiredScopes": required,
                "missingScopes": missing,
            })),
        ),
        BackendError::RateLimited {
            message,
            retry_after,
        } => ErrorData::new(
            rmcp::model::ErrorCode(crate::backend::RATE_LIMITED),
            message,
            Some(serde_json::json!({
                "retryAfterMs": retry_after.as_millis() as u64,
            })),
        ),
        // Only a replayed request stops its guest, and it answers itself.
        BackendError::Suspended(_) => ErrorData::internal_error(
            "the plugin stopped to wait for the client, which cannot be asked here",
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_map_to_json_rpc_codes() {
        let error = to_mcp_error(BackendError::NotFound {
            what: "resource",
            name: "x://y".into(),
        });
        assert_eq!(error.code.0, -32602);
        assert_eq!(error.data, Some(serde_json::json!({"uri": "x://y"})));
        let error = to_mcp_error(BackendError::NotFound {
            what: "tool",
            name: "nope".into(),
        });
        assert_eq!(error.data, Some(serde_json::json!({"name": "nope"})));
        assert_eq!(
            to_mcp_error(BackendError::InvalidParams("bad".into()))
                .code
                .0,
            -32602
        );
        assert_eq!(
            to_mcp_error(BackendError::Internal("boom".into())).code.0,
            -32603
        );
    }
}

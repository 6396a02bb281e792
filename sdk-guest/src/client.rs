//! Requests to the client of the request a plugin serves: sampling (ask the
//! client's model) and elicitation (ask the user).
//!
//! Both may fail for reasons outside the plugin: the client did not declare
//! the capability, the user declined, the client speaks MCP 2026-07-28 (where
//! ward cannot ask yet). Handle the error, or pass it on with `?`.

use serde_json::Value;

use crate::bindings::ward::plugin::{client, types};
use crate::{Error, ErrorKind, Result};

/// Sends `sampling/createMessage` with these params (the MCP JSON, e.g.
/// `{"messages": [{"role": "user", "content": {"type": "text", "text": "Hi"}}], "maxTokens": 100}`)
/// and returns the client's result (`role`, `content`, `model`, `stopReason`).
pub fn create_message(params: &Value) -> Result<Value> {
    answer(client::create_message(&params.to_string()))
}

/// Sends `elicitation/create` with these params (`{"message": "...",
/// "requestedSchema": {"type": "object", "properties": {...}}}`) and returns
/// the client's result (`action`: accept, decline or cancel; `content`).
pub fn elicit(params: &Value) -> Result<Value> {
    answer(client::elicit(&params.to_string()))
}

/// Asks the client's model one question and returns the text of its answer
/// (or the JSON of non-text content).
pub fn sample_text(prompt: &str, max_tokens: u32) -> Result<String> {
    let result = create_message(&serde_json::json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": max_tokens,
    }))?;
    Ok(match result.pointer("/content/text").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => result.get("content").map(Value::to_string).unwrap_or_default(),
    })
}

fn answer(result: core::result::Result<String, types::Error>) -> Result<Value> {
    let text = result.map_err(|e| match e {
        types::Error::NotFound(m) => Error::new(ErrorKind::NotFound, m),
        types::Error::InvalidParams(m) => Error::new(ErrorKind::InvalidParams, m),
        types::Error::Failed(m) => Error::new(ErrorKind::Failed, m),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::failed(format!("the client's answer is not JSON: {e}")))
}

//! Requests to the client of the request a plugin serves: sampling (ask the
//! client's model), elicitation (ask the user) and roots (ask where the
//! client works).
//!
//! The same code works in both eras of MCP. On MCP 2026-07-28 ward
//! *replays* the plugin: the call stops at the first question without an
//! answer, the client answers, and the plugin runs again from the start,
//! getting the recorded answers. So ask the same questions in the same order
//! on every run, and act on the world only after the last one.
//!
//! A question may fail for reasons outside the plugin: the client did not
//! declare the capability (check [`supports`] to do without: on 2026-07-28
//! asking anyway fails the whole request), the user declined. Handle the
//! error, or pass it on with `?`.

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

/// Sends `roots/list` and returns the client's roots
/// (`{"roots": [{"uri": "file:///...", "name": ...}]}`).
pub fn list_roots() -> Result<Value> {
    answer(client::list_roots())
}

/// Whether the client of this request declared the capability `method`
/// (`sampling/createMessage`, `elicitation/create`, `roots/list`) needs.
pub fn supports(method: &str) -> bool {
    client::supports(method)
}

/// One question of [`ask`], under a key of the plugin's choosing (unique
/// within the call; a 2026-07-28 client answers under it).
#[derive(Debug, Clone)]
pub struct Input {
    key: String,
    method: &'static str,
    params: Value,
    before_task: bool,
}

impl Input {
    /// `sampling/createMessage` with these params.
    pub fn create_message(key: impl Into<String>, params: Value) -> Self {
        Self { key: key.into(), method: "sampling/createMessage", params, before_task: false }
    }

    /// `elicitation/create` with these params.
    pub fn elicit(key: impl Into<String>, params: Value) -> Self {
        Self { key: key.into(), method: "elicitation/create", params, before_task: false }
    }

    /// `roots/list`.
    pub fn list_roots(key: impl Into<String>) -> Self {
        Self { key: key.into(), method: "roots/list", params: Value::Object(Default::default()), before_task: false }
    }

    /// Asks it before the call becomes a task, in a tool that may run as
    /// one ([`ToolBuilder::task`](crate::ToolBuilder::task)): the client
    /// answers it like any question on MCP 2026-07-28 (an input-required
    /// result; the tool runs again from the start with the answer), and the
    /// task starts once a round of such questions is answered. For a
    /// confirmation before long work. Ask them first, in one round: a
    /// question asked after the task started is one of the task's own.
    /// Anywhere else it changes nothing.
    pub fn before_task(mut self) -> Self {
        self.before_task = true;
        self
    }
}

/// Asks several questions in one round (on 2026-07-28, one input-required
/// result) and returns their answers in the same order.
pub fn ask(inputs: &[Input]) -> Vec<Result<Value>> {
    let requests: Vec<Value> = inputs
        .iter()
        .map(|input| {
            let mut request = serde_json::json!({"key": input.key, "method": input.method, "params": input.params});
            if input.before_task {
                request["beforeTask"] = true.into();
            }
            request
        })
        .collect();
    let answers: Vec<Result<Value>> = client::ask(&Value::Array(requests).to_string())
        .into_iter()
        .map(answer)
        .collect();
    match answers.len() == inputs.len() {
        true => answers,
        // ward refused the whole batch with one error: every input gets it.
        false => {
            let error = answers
                .into_iter()
                .find_map(|a| a.err())
                .unwrap_or_else(|| Error::failed("the client gave no answers"));
            inputs.iter().map(|_| Err(error.clone())).collect()
        }
    }
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

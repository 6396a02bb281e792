//! Pure JSON-RPC line handling for the stdio transport: what one input line
//! is, and the error line that answers it when it is not a well-formed
//! message. No I/O here, so every hostile case is a unit test and a fuzz
//! target (`fuzz/fuzz_targets/stdio_line.rs`).
//!
//! | input                                   | reply                          |
//! |-----------------------------------------|--------------------------------|
//! | not UTF-8, not JSON, truncated          | -32700, `id: null`             |
//! | an array (batch), a non-object          | -32600, `id: null`             |
//! | bad `jsonrpc` / `id` / `method` members | -32600                         |
//! | a method ward does not serve            | -32601 with the id             |
//! | a method ward serves, params malformed  | -32602 with the id             |
//! | a malformed notification or response    | nothing (there is no one to answer) |

use std::io;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData, RequestId};
use serde_json::Value;

/// What to do with one input line.
#[derive(Debug)]
pub enum Inbound {
    /// Hand it to rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// Answer it with this line (an error response).
    Reply(Vec<u8>),
    /// Nothing to do (blank line, malformed notification or response).
    Ignore,
}

/// The methods ward serves. A request for one of these that rmcp could not
/// parse has malformed params (-32602); anything else is -32601. Kept equal
/// to what the handler answers by a test that sends every request rmcp
/// models (`served_methods_are_the_methods_the_handler_serves`).
pub(crate) const SERVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "tasks/cancel",
    "tasks/get",
    "tasks/update",
    "tools/call",
    "tools/list",
];

impl Inbound {
    /// What one line (without its newline) is: a message for rmcp, an
    /// error reply, or nothing.
    pub fn from_line(line: &[u8]) -> Inbound {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // RFC 8259 §8.1 lets a parser ignore a byte order mark.
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Inbound::Ignore;
        }
        // The fast path: a well-formed message parses once.
        if let Ok(message) = serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            return match message {
                // rmcp parses a request it does not model, or one whose params
                // do not fit its method, as a custom request.
                ClientJsonRpcMessage::Request(request) => match &request.request {
                    ClientRequest::CustomRequest(custom) => {
                        let value = serde_json::from_slice(line).unwrap_or(Value::Null);
                        Inbound::Reply(error_line(
                            Some(request.id.clone()),
                            method_error(&custom.method, &value),
                        ))
                    }
                    _ => Inbound::Message(Box::new(ClientJsonRpcMessage::Request(request))),
                },
                message => Inbound::Message(Box::new(message)),
            };
        }
        diagnose(line)
    }
}

/// Why a line that is not a well-formed message is not one.
fn diagnose(line: &[u8]) -> Inbound {
    if std::str::from_utf8(line).is_err() {
        return Inbound::Reply(error_line(
            None,
            ErrorData::parse_error("parse error: the message is not valid UTF-8", None),
        ));
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            return Inbound::Reply(error_line(
                None,
                ErrorData::parse_error(format!("parse error: {error}"), None),
            ))
        }
    };
    let object = match value {
        Value::Object(object) => object,
        Value::Array(items) => {
            let message = if items.is_empty() {
                "invalid request: an empty array".to_owned()
            } else {
                "invalid request: JSON-RPC batches are not supported (MCP 2025-06-18 and later \
                 send one message per line)"
                    .to_owned()
            };
            return Inbound::Reply(error_line(None, ErrorData::invalid_request(message, None)));
        }
        _ => {
            return Inbound::Reply(error_line(
                None,
                ErrorData::invalid_request(
                    "invalid request: a message must be a JSON object",
                    None,
                ),
            ))
        }
    };
    let id = match object.get("id") {
        None => None,
        Some(Value::String(id)) => Some(RequestId::String(id.as_str().into())),
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().map(RequestId::Number),
        Some(_) => {
            return Inbound::Reply(error_line(
                None,
                ErrorData::invalid_request(
                    "invalid request: id must be a string or an integer",
                    None,
                ),
            ))
        }
    };
    let is_response = object.contains_key("result") || object.contains_key("error");
    if is_response && !object.contains_key("method") {
        // A malformed response to a request ward never sent; answering a
        // response could start an error ping-pong.
        tracing::debug!("ignoring a malformed response from the client");
        return Inbound::Ignore;
    }
    let reply = |error: ErrorData| match &id {
        Some(id) => Inbound::Reply(error_line(Some(id.clone()), error)),
        // A notification is never answered (JSON-RPC 2.0 §4.1).
        None => {
            tracing::debug!(message = %error.message, "ignoring a malformed notification");
            Inbound::Ignore
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let error = ErrorData::invalid_request("invalid request: jsonrpc must be \"2.0\"", None);
        return if id.is_none() && object.contains_key("method") {
            reply(error) // a notification: ignored
        } else {
            Inbound::Reply(error_line(id, error))
        };
    }
    match object.get("method") {
        Some(Value::String(method)) => {
            let error = method_error(method, &Value::Object(object.clone()));
            reply(error)
        }
        Some(_) => reply(ErrorData::invalid_request(
            "invalid request: method must be a string",
            None,
        )),
        None => Inbound::Reply(error_line(
            id,
            ErrorData::invalid_request(
                "invalid request: neither a request, a notification nor a response",
                None,
            ),
        )),
    }
}

/// The error for a request rmcp could not turn into one of ward's requests:
/// -32602 naming what is wrong if ward serves the method, else -32601.
fn method_error(method: &str, message: &Value) -> ErrorData {
    if !SERVED_METHODS.contains(&method) {
        return ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
            Some(serde_json::json!({ "method": method })),
        );
    }
    let detail = serde_json::from_value::<ClientRequest>(message.clone())
        .err()
        .map(|error| error.to_string());
    let detail = params_detail(method, message).or(detail);
    ErrorData::invalid_params(
        match detail {
            Some(detail) => format!("invalid params for {method}: {detail}"),
            None => format!("invalid params for {method}"),
        },
        Some(serde_json::json!({ "method": method })),
    )
}

/// The parse error of `message` as the request type of `method`, which says
/// which field is missing or mistyped.
fn params_detail(method: &str, message: &Value) -> Option<String> {
    use rmcp::model as m;
    fn error_of<T: serde::de::DeserializeOwned>(message: &Value) -> Option<String> {
        serde_json::from_value::<T>(message.clone())
            .err()
            .map(|error| error.to_string())
    }
    match method {
        "initialize" => error_of::<m::InitializeRequest>(message),
        "completion/complete" => error_of::<m::CompleteRequest>(message),
        "logging/setLevel" => error_of::<m::SetLevelRequest>(message),
        "prompts/get" => error_of::<m::GetPromptRequest>(message),
        "prompts/list" => error_of::<m::ListPromptsRequest>(message),
        "resources/list" => error_of::<m::ListResourcesRequest>(message),
        "resources/templates/list" => error_of::<m::ListResourceTemplatesRequest>(message),
        "resources/read" => error_of::<m::ReadResourceRequest>(message),
        "resources/subscribe" => error_of::<m::SubscribeRequest>(message),
        "resources/unsubscribe" => error_of::<m::UnsubscribeRequest>(message),
        "subscriptions/listen" => error_of::<m::SubscriptionsListenRequest>(message),
        "tools/call" => error_of::<m::CallToolRequest>(message),
        "tools/list" => error_of::<m::ListToolsRequest>(message),
        _ => None,
    }
}

/// An error response line. Without an id (the request's id could not be
/// read) it carries `"id": null`, as JSON-RPC 2.0 §5 asks.
pub(crate) fn error_line(id: Option<RequestId>, error: ErrorData) -> Vec<u8> {
    let message = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": error,
    });
    encode_line(&message).unwrap_or_else(|_| {
        b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":\"internal error\"}}\n"
            .to_vec()
    })
}

/// One message as a line of JSON, newline included.
pub(crate) fn encode_line<T: serde::Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &[u8]) -> Value {
        match Inbound::from_line(line) {
            Inbound::Reply(bytes) => serde_json::from_slice(&bytes).unwrap(),
            other => panic!(
                "expected a reply to {:?}, got {other:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }

    #[test]
    fn hostile_lines_get_the_right_error() {
        let cases: &[(&[u8], i64, Value)] = &[
            (b"garbage", -32700, Value::Null),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/li", -32700, Value::Null),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}", -32700, Value::Null),
            (b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", -32600, Value::Null),
            (b"[]", -32600, Value::Null),
            (b"42", -32600, Value::Null),
            (b"\"ping\"", -32600, Value::Null),
            (b"null", -32600, Value::Null),
            (b"{\"foo\":\"bar\"}", -32600, Value::Null),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", -32600, Value::Null),
            (b"{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"ping\"}", -32600, serde_json::json!(7)),
            (b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":42}", -32600, serde_json::json!(8)),
            (b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no/such\"}", -32601, serde_json::json!(2)),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{}}",
                -32602,
                serde_json::json!("a"),
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":[1]}",
                -32602,
                serde_json::json!(3),
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/read\",\"params\":{\"uri\":5}}",
                -32602,
                serde_json::json!(4),
            ),
        ];
        for (line, code, id) in cases {
            let reply = reply(line);
            assert_eq!(
                reply["error"]["code"],
                *code,
                "{}: {reply}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(
                reply["id"],
                *id,
                "{}: {reply}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(reply["jsonrpc"], "2.0");
        }
    }

    #[test]
    fn good_and_silent_lines() {
        assert!(matches!(
            Inbound::from_line(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Inbound::Message(_)
        ));
        assert!(matches!(
            Inbound::from_line(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
            Inbound::Message(_)
        ));
        assert!(matches!(Inbound::from_line(b"   "), Inbound::Ignore));
        // A malformed notification or response has no one to answer.
        assert!(matches!(
            Inbound::from_line(b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":[1]}"),
            Inbound::Ignore | Inbound::Message(_)
        ));
        assert!(matches!(
            Inbound::from_line(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":5}"),
            Inbound::Ignore | Inbound::Message(_)
        ));
    }
}

//! One stdio input line → what ward does with it. Whatever the bytes, ward
//! either hands a well-formed message to rmcp, ignores the line, or answers
//! with exactly one line: a JSON-RPC 2.0 error whose id is null, a string or
//! an integer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ward::protocol::jsonrpc::Inbound;

fuzz_target!(|line: &[u8]| {
    if line.contains(&b'\n') {
        return; // the transport splits lines before this point
    }
    if let Inbound::Reply(reply) = Inbound::from_line(line) {
        assert_eq!(reply.last(), Some(&b'\n'), "a reply is one line");
        assert_eq!(memchr_count(&reply), 1, "a reply is exactly one line");
        let value: Value = serde_json::from_slice(&reply).expect("a reply is JSON");
        assert_eq!(value["jsonrpc"], "2.0");
        let code = value["error"]["code"].as_i64().expect("an error code");
        assert!(
            [-32700, -32600, -32601, -32602, -32603].contains(&code),
            "unexpected code {code}"
        );
        assert!(matches!(
            value["id"],
            Value::Null | Value::String(_) | Value::Number(_)
        ));
    }
});

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

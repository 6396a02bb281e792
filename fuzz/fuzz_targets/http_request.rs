//! An HTTP request's method, headers and body → what the front door takes it
//! for. Input: one byte choosing the method, header lines (`name: value`) up
//! to the first NUL byte, then the body. Whatever the bytes, classifying
//! never panics, and a request is exempt from the request deadline only when
//! its body really is the JSON-RPC request that earns it: no header alone
//! can make a trickled body long-lived.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ward::protocol::http::{classify_request, RequestKind};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = match pick % 4 {
        0 => Method::POST,
        1 => Method::GET,
        2 => Method::DELETE,
        _ => Method::PUT,
    };
    let (head, body) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let method_in_body = || {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("method").and_then(Value::as_str).map(str::to_owned))
    };
    match classify_request(&method, &headers, body) {
        RequestKind::Listen { .. } => {
            assert_eq!(method, Method::POST);
            assert_eq!(method_in_body().as_deref(), Some("subscriptions/listen"));
        }
        RequestKind::NewSession { .. } => {
            assert_eq!(method, Method::POST);
            assert_eq!(method_in_body().as_deref(), Some("initialize"));
        }
        RequestKind::SessionStream => assert_eq!(method, Method::GET),
        RequestKind::Use { .. } => assert_eq!(method, Method::POST),
        RequestKind::Ordinary => {}
    }
});

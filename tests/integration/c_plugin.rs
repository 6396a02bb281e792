//! The C example (plugins/c-hello, on sdk-guest/c/ward.h), built from source
//! by `cargo xtask plugins` with wit-bindgen's C bindings, clang and
//! wasi-libc: its tool and resource answer like those of the other languages.

use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn a_c_plugin_greets_and_serves_a_resource() {
    let dir = Dir::new();
    dir.plugin("c-hello", "c-hello");
    let ward = Ward::start(dir.path()).await;

    let tools = ward.client.list_all_tools().await.unwrap();
    let greet = tools
        .iter()
        .find(|t| t.name == "c-hello_greet")
        .unwrap_or_else(|| panic!("c-hello_greet missing from {tools:?}"));
    assert_eq!(greet.input_schema["required"], json!(["name"]));
    assert_eq!(greet.input_schema["properties"]["name"]["type"], "string");
    let hints = greet.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));

    let r = ward.call("c-hello_greet", json!({"name": "Ada"})).await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(text(&r), "Hello, Ada!");
    // JSON escapes in the arguments reach the C code decoded.
    let r = ward
        .call("c-hello_greet", json!({"name": "Zoë \"Z\" 😀"}))
        .await;
    assert_eq!(text(&r), "Hello, Zoë \"Z\" 😀!");

    // A wrongly typed argument is refused by ward's schema check before the
    // guest runs.
    let r = ward.call("c-hello_greet", json!({"name": 5})).await;
    assert!(is_error(&r) && text(&r).contains("/name"), "{r:?}");

    let resources = ward.client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().any(|r| r.uri == "c-hello://about"),
        "{resources:?}"
    );
    let read = ward
        .client
        .read_resource(ReadResourceRequestParams::new("c-hello://about"))
        .await
        .unwrap();
    match &read.contents[..] {
        [ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            ..
        }] => {
            assert_eq!(uri, "c-hello://about");
            assert_eq!(mime_type.as_deref(), Some("text/plain"));
            assert!(text.contains("written in C"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown URI is the plugin's `not-found`, an MCP error.
    assert!(ward
        .client
        .read_resource(ReadResourceRequestParams::new("c-hello://nope"))
        .await
        .is_err());
}

#[tokio::test]
async fn a_c_plugin_reads_its_policy_env() {
    let dir = Dir::new();
    dir.plugin("c-hello", "c-hello")
        .policy("c-hello", "[env]\nGREETING = \"Howdy\"\n");
    let ward = Ward::start(dir.path()).await;
    let r = ward.call("c-hello_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&r), "Howdy, Ada!");
}

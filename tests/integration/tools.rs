//! Serving tools: listing in both eras, calls, validation, bad plugin files,
//! collisions, concurrency, and stdout hygiene.

use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn lists_and_calls_greet_in_every_era() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    for era in ERAS {
        let ward = Ward::start_in(dir.path(), era).await;
        assert_eq!(ward.tool_names().await, vec!["hello_greet"], "{era:?}");
        let result = ward.call("hello_greet", json!({"name": "Ada"})).await;
        assert!(!is_error(&result), "{era:?}: {result:?}");
        assert!(text(&result).contains("Ada"), "{era:?}: {}", text(&result));
        let cost = &result.meta.as_ref().expect("_meta with cost").0["ward/cost"];
        assert!(cost["fuel"].as_u64().unwrap() > 0, "{cost}");
        assert!(cost["peakMemoryBytes"].as_u64().unwrap() > 0, "{cost}");
        ward.client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_wrongly_typed_argument_is_an_error_result_naming_the_field() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let ward = Ward::start(dir.path()).await;
    let result = ward.call("hello_greet", json!({"name": 42})).await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("/name"), "{message}");
    assert!(message.contains("string"), "{message}");
    let result = ward.call("hello_greet", json!({})).await;
    assert!(is_error(&result));
    assert!(text(&result).contains("name"), "{}", text(&result));
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let ward = Ward::start(dir.path()).await;
    let err = ward.try_call("nope_nothing", json!({})).await.unwrap_err();
    let rmcp::ServiceError::McpError(e) = err else {
        panic!("expected an MCP error, got {err:?}")
    };
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert!(e.message.contains("nope_nothing"), "{e:?}");
}

#[tokio::test]
async fn broken_plugin_files_are_skipped_and_the_rest_served() {
    let dir = Dir::new();
    dir.plugin("hello", "hello")
        .file("garbage.wasm", b"this is not wasm at all")
        .file("core.wasm", b"\0asm\x01\0\0\0")
        .plugin("notward", "notward")
        .file("notes.txt", b"ignored");
    let ward = Ward::start(dir.path()).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    let result = ward.call("hello_greet", json!({"name": "Bo"})).await;
    assert!(text(&result).contains("Bo"));
    let log = ward.wait_log("notward.wasm").await;
    assert!(
        log.contains("garbage.wasm") && log.contains("not a WebAssembly file"),
        "{log}"
    );
    assert!(
        log.contains("core.wasm") && log.contains("not a component"),
        "{log}"
    );
    assert!(
        log.contains("notward.wasm") && log.contains("exports none of ward:plugin"),
        "{log}"
    );
}

#[tokio::test]
async fn colliding_names_are_refused_not_shadowed() {
    let dir = Dir::new();
    dir.plugin("hello", "a")
        .policy("a", "[names]\nprefix = \"x\"\n");
    dir.plugin("stats", "b")
        .policy("b", "[names]\nprefix = \"x\"\n");
    dir.plugin("hello", "c").policy(
        "c",
        "[names]\nprefix = \"x\"\n[env]\nGREETING = \"Howdy\"\n",
    );
    let ward = Ward::start(dir.path()).await;
    let names = ward.tool_names().await;
    assert_eq!(names, vec!["x_describe", "x_greet"]);
    // `a` was loaded first and keeps the name; `c`'s greeting never answers.
    let result = ward.call("x_greet", json!({"name": "Cy"})).await;
    assert!(text(&result).starts_with("Hello"), "{}", text(&result));
    ward.wait_log("tool `x_greet` refused: plugin `a` already exposes that name")
        .await;
}

#[tokio::test]
async fn fifty_concurrent_calls_all_answer() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let ward = std::sync::Arc::new(Ward::start(dir.path()).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let ward = ward.clone();
        tasks.spawn(async move {
            let result = ward
                .call("hello_greet", json!({"name": format!("n{i}")}))
                .await;
            assert!(
                text(&result).contains(&format!("n{i}")),
                "{}",
                text(&result)
            );
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test]
async fn structured_output_is_returned_and_matches_its_schema() {
    let dir = Dir::new();
    dir.plugin("stats", "stats");
    let ward = Ward::start(dir.path()).await;
    let tools = ward.client.list_all_tools().await.unwrap();
    assert!(tools[0].output_schema.is_some());
    let result = ward
        .call("stats_describe", json!({"numbers": [1.0, 2.0, 3.0, 6.0]}))
        .await;
    assert!(!is_error(&result), "{result:?}");
    let s = result.structured_content.expect("structured content");
    assert_eq!(s["count"], 4);
    assert_eq!(s["mean"], 3.0);
    assert_eq!(s["max"], 6.0);
}

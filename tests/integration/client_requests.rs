//! Plugins asking the client: sampling (`sampling/createMessage`) and
//! elicitation (`elicitation/create`) from the `conformance` example, only
//! to clients that declared the capability, only in the legacy era, and only
//! with parameters that are valid MCP.

use rmcp::model::ClientCapabilities;
use serde_json::json;

use crate::util::*;

fn plugins() -> Dir {
    let dir = Dir::new();
    dir.plugin("conformance", "conformance")
        .policy(
            "conformance",
            &std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap(),
        )
        .plugin("hostile", "hostile");
    dir
}

fn asking() -> ClientCapabilities {
    ClientCapabilities::builder()
        .enable_sampling()
        .enable_elicitation()
        .build()
}

async fn start(dir: &Dir, era: Era, capabilities: ClientCapabilities) -> Ward {
    Ward::start_with(serve_command(dir.path()), era, capabilities).await
}

#[tokio::test]
async fn a_plugin_samples_the_clients_model() {
    let dir = plugins();
    for version in ["2025-06-18", "2025-11-25"] {
        let ward = start(&dir, Era::Legacy(version), asking()).await;
        let result = ward
            .call("test_sampling", json!({"prompt": "What is 2+2?"}))
            .await;
        assert!(!is_error(&result), "{version}: {}", text(&result));
        assert_eq!(text(&result), format!("LLM response: {SAMPLED}"));
        let asked = ward.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0]["messages"][0]["content"]["text"], "What is 2+2?");
        assert_eq!(asked[0]["maxTokens"], 100);
    }
}

#[tokio::test]
async fn a_plugin_elicits_with_every_enum_shape() {
    let dir = plugins();
    let ward = start(&dir, Era::Legacy("2025-11-25"), asking()).await;
    let result = ward.call("test_elicitation_sep1330_enums", json!({})).await;
    assert!(
        text(&result).starts_with("Elicitation completed: action=accept, content={"),
        "{}",
        text(&result)
    );
    let result = ward
        .call("test_elicitation", json!({"message": "Who are you?"}))
        .await;
    assert!(
        text(&result).contains("ada@example.com"),
        "{}",
        text(&result)
    );

    let asked = ward.asked.lock().unwrap().clone();
    let props = &asked[0]["requestedSchema"]["properties"];
    assert_eq!(props["titledSingle"]["oneOf"][0]["title"], "First Option");
    assert_eq!(props["legacyEnum"]["enumNames"][2], "Option Three");
    assert_eq!(props["untitledMulti"]["items"]["enum"][1], "option2");
    assert_eq!(props["titledMulti"]["items"]["anyOf"][0]["const"], "value1");
    assert_eq!(asked[1]["message"], "Who are you?");
}

#[tokio::test]
async fn a_client_without_the_capability_is_not_asked() {
    let dir = plugins();
    let ward = start(
        &dir,
        Era::Legacy("2025-11-25"),
        ClientCapabilities::default(),
    )
    .await;
    let result = ward.call("test_sampling", json!({"prompt": "hi"})).await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("did not declare the `sampling` capability"),
        "{}",
        text(&result)
    );
    let result = ward
        .call("test_elicitation_sep1034_defaults", json!({}))
        .await;
    assert!(
        text(&result).contains("`elicitation` capability"),
        "{}",
        text(&result)
    );
    assert!(ward.asked.lock().unwrap().is_empty());
    // Still serving.
    assert!(!is_error(&ward.call("test_simple_text", json!({})).await));
}

#[tokio::test]
async fn a_stateless_client_is_not_asked() {
    let dir = plugins();
    let ward = start(&dir, Era::Modern, asking()).await;
    let result = ward.call("test_sampling", json!({"prompt": "hi"})).await;
    assert!(is_error(&result));
    assert!(text(&result).contains("2026-07-28"), "{}", text(&result));
    assert!(ward.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_and_flooding_requests_never_reach_the_client() {
    let dir = plugins();
    let ward = start(&dir, Era::Legacy("2025-11-25"), asking()).await;
    let result = ward.call("hostile_ask_badly", json!({})).await;
    let answer = text(&result);
    assert!(
        answer.contains("malformed: invalid sampling/createMessage params"),
        "{answer}"
    );
    assert!(
        answer.contains("flood: sampling/createMessage refused: a call may make at most 16"),
        "{answer}"
    );
    // The malformed one was not sent but counts against the cap of 16, so
    // 15 of the flood were.
    assert_eq!(ward.asked.lock().unwrap().len(), 15);
    assert!(!is_error(&ward.call("test_simple_text", json!({})).await));
}

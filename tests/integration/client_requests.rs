//! Plugins asking the client: sampling (`sampling/createMessage`),
//! elicitation (`elicitation/create`) and roots (`roots/list`) from the
//! `conformance` example, only to clients that declared the capability, and
//! only with parameters that are valid MCP. A legacy client gets requests; a
//! 2026-07-28 client gets input-required results, and ward replays the
//! plugin with its answers: the same plugin code, in both eras. The
//! `requestState` of a replay cannot be altered, moved to another request,
//! server or plugin version, and a plugin that asks differently on replay is
//! refused.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ContentBlock, ErrorCode,
    GetPromptRequestParams, InputRequiredResult, InputResponses, JsonObject,
    ReadResourceRequestParams, ResourceContents,
};
use rmcp::ServiceError;
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
        .enable_roots()
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
async fn the_same_plugin_asks_a_legacy_client_and_a_stateless_one() {
    let dir = plugins();
    for era in [Era::Legacy("2025-11-25"), Era::Modern] {
        let ward = start(&dir, era, asking()).await;
        let result = ward
            .call("test_sampling", json!({"prompt": "What is 2+2?"}))
            .await;
        assert_eq!(text(&result), format!("LLM response: {SAMPLED}"), "{era:?}");
        // Two rounds (on 2026-07-28: two input-required results, and the
        // plugin replayed twice).
        let result = ward
            .call("test_input_required_result_multi_round", json!({}))
            .await;
        assert_eq!(text(&result), "Ada likes blue", "{era:?}");
        // Three questions in one round, roots among them.
        let result = ward
            .call("test_input_required_result_multiple_inputs", json!({}))
            .await;
        assert_eq!(
            text(&result),
            format!("name=Ada, greeting={SAMPLED}, roots=1"),
            "{era:?}"
        );
        let result = ward
            .call("test_input_required_result_list_roots", json!({}))
            .await;
        assert_eq!(text(&result), format!("Client roots: {ROOT}"), "{era:?}");
        // Each question reached the client once, whatever the replays.
        let asked = ward.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1 + 2 + 3 + 1, "{era:?}: {asked:?}");
        assert_eq!(asked[1]["message"], "Step 1: What is your name?");
        assert_eq!(asked[2]["message"], "Step 2: What is your favorite color?");
        // A resource read asks too.
        let read = ward
            .client
            .read_resource(ReadResourceRequestParams::new("test://with-client-roots"))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
            panic!("{read:?}")
        };
        assert_eq!(text, &format!("Client roots: {ROOT}"), "{era:?}");
        // A prompt asks too.
        let prompt = ward
            .client
            .get_prompt(GetPromptRequestParams::new(
                "test_input_required_result_prompt",
            ))
            .await
            .unwrap();
        let ContentBlock::Text(message) = &prompt.messages[0].content else {
            panic!("{prompt:?}")
        };
        assert!(
            message.text.starts_with("Use this context:"),
            "{era:?}: {}",
            message.text
        );
    }
}

fn once(tool: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_string()).with_arguments(JsonObject::new())
}

fn answering(tool: &str, state: &str, responses: serde_json::Value) -> CallToolRequestParams {
    let responses: InputResponses = serde_json::from_value(responses).unwrap();
    once(tool)
        .with_input_responses(responses)
        .with_request_state(state)
}

async fn input_required(ward: &Ward, params: CallToolRequestParams) -> InputRequiredResult {
    match ward.client.call_tool_once(params).await {
        Ok(CallToolResponse::InputRequired(result)) => result,
        other => panic!("expected an input-required result, got {other:?}"),
    }
}

/// The JSON-RPC error a request ended with.
async fn refused(ward: &Ward, params: CallToolRequestParams) -> rmcp::ErrorData {
    match ward.client.call_tool_once(params).await {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_state_is_bound_to_its_request_server_and_plugin_version() {
    let dir = plugins();
    let ward = start(&dir, Era::Modern, asking()).await;
    let tool = "test_input_required_result_request_state";
    let first = input_required(&ward, once(tool)).await;
    let questions = first.input_requests.clone().unwrap();
    assert_eq!(questions.keys().collect::<Vec<_>>(), ["confirm"]);
    let state = first.request_state.clone().unwrap();
    let yes = json!({"confirm": {"action": "accept", "content": {"ok": true}}});

    // Altered: one character of the sealed state changed.
    let mut tampered = state.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let error = refused(&ward, answering(tool, &tampered, yes.clone())).await;
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(error.message.contains("integrity check"), "{error:?}");
    // Moved to another tool that asks the very same question.
    let other = "test_input_required_result_tampered_state";
    let error = refused(&ward, answering(other, &state, yes.clone())).await;
    assert!(error.message.contains("integrity check"), "{error:?}");
    // Moved to other arguments of the same tool.
    let mut moved = answering(tool, &state, yes.clone());
    moved.arguments = Some(serde_json::from_value(json!({"x": 1})).unwrap());
    let error = refused(&ward, moved).await;
    assert!(error.message.contains("integrity check"), "{error:?}");
    // An answer that is not an elicitation result, under the right key.
    let error = refused(&ward, answering(tool, &state, json!({"confirm": 42}))).await;
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(
        error.message.contains("inputResponses[\"confirm\"]"),
        "{error:?}"
    );
    // The genuine retry completes.
    match ward
        .client
        .call_tool_once(answering(tool, &state, yes.clone()))
        .await
    {
        Ok(CallToolResponse::Complete(result)) => {
            assert_eq!(text(&result), "state-ok: confirmed=true")
        }
        other => panic!("{other:?}"),
    }

    // Another server (its own random key) refuses the state.
    let other_ward = start(&dir, Era::Modern, asking()).await;
    let error = refused(&other_ward, answering(tool, &state, yes.clone())).await;
    assert!(error.message.contains("integrity check"), "{error:?}");

    // The plugin replaced between rounds: the retry must not run on the new
    // version (it might ask other questions, or mean other things by them).
    let wasm = dir.path().join("conformance.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(&[0, 6, 5, b'x', b'-', b'n', b'e', b'w']);
    let loads = |log: &str| log.matches("serving plugin `conformance`").count();
    let before = loads(&ward.log());
    std::fs::write(&wasm, &bytes).unwrap();
    let reloaded = ward.stderr.wait_until(60, |log| loads(log) > before).await;
    assert!(reloaded, "{}", ward.log());
    let error = refused(&ward, answering(tool, &state, yes)).await;
    assert!(error.message.contains("another version"), "{error:?}");
    // The new version serves fresh requests.
    assert!(input_required(&ward, once(tool))
        .await
        .request_state
        .is_some());
}

#[tokio::test]
async fn a_plugin_that_asks_differently_on_replay_is_refused() {
    let dir = plugins();
    let ward = start(&dir, Era::Modern, asking()).await;
    let error = match ward.try_call("hostile_ask_unstable", json!({})).await {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(error.message.contains("differently"), "{error:?}");
    // The client was asked once; the replay got no answer to its new question.
    assert_eq!(ward.asked.lock().unwrap().len(), 1);
    assert!(!is_error(&ward.call("test_simple_text", json!({})).await));
}

#[tokio::test]
async fn a_stateless_client_is_never_asked_what_it_did_not_declare() {
    let dir = plugins();
    let only_elicitation = ClientCapabilities::builder().enable_elicitation().build();
    let ward = start(&dir, Era::Modern, only_elicitation).await;
    let error = match ward.try_call("test_missing_capability", json!({})).await {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("expected -32021, got {other:?}"),
    };
    assert_eq!(error.code.0, -32021, "{error:?}");
    assert_eq!(
        error.data.as_ref().unwrap()["requiredCapabilities"],
        json!({"sampling": {}})
    );
    // A plugin that checks first asks only what the client can answer.
    let result = ward
        .call("test_input_required_result_capabilities", json!({}))
        .await;
    assert_eq!(text(&result), "1 answers");
    let asked = ward.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["message"], "What is your name?");
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

#[tokio::test]
async fn a_plugin_built_against_wit_0_1_0_works_unchanged() {
    // Built with raw wit-bindgen from a frozen copy of ward:plugin@0.1.0.
    let dir = Dir::new();
    dir.plugin("old-contract", "old-contract");
    for era in [Era::Legacy("2025-11-25"), Era::Modern] {
        let ward = start(&dir, era, asking()).await;
        assert_eq!(
            ward.tool_names().await,
            ["old-contract_ask_name", "old-contract_greet"],
            "{era:?}"
        );
        let result = ward
            .call("old-contract_greet", json!({"name": "Ada"}))
            .await;
        assert_eq!(text(&result), "Hello from 0.1.0, Ada!", "{era:?}");
        // Its 0.1.0 `client.elicit` import: a request, or a replay.
        let result = ward.call("old-contract_ask_name", json!({})).await;
        assert_eq!(text(&result), "0.1.0 plugin met Ada", "{era:?}");
    }
}

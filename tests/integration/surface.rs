//! The full MCP surface from a plugin (the `conformance` example): resources,
//! templates, prompts, completions, logging, progress, subscriptions.

use std::time::Duration;

use rmcp::model::{
    ContentBlock, GetPromptRequestParams, LoggingLevel, ReadResourceRequestParams,
    ResourceContents, ServerNotification, SetLevelRequestParams, SubscribeRequestParams,
    SubscriptionFilter,
};
use serde_json::json;

use crate::util::*;

fn conformance() -> Dir {
    let dir = Dir::new();
    dir.plugin("conformance", "conformance").policy(
        "conformance",
        &std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap(),
    );
    dir
}

fn mcp_error(e: rmcp::ServiceError) -> rmcp::ErrorData {
    match e {
        rmcp::ServiceError::McpError(e) => e,
        other => panic!("expected an MCP error, got {other:?}"),
    }
}

#[tokio::test]
async fn resources_and_templates_in_every_era() {
    let dir = conformance();
    for era in ERAS {
        let ward = Ward::start_in(dir.path(), era).await;
        let uris: Vec<String> = ward
            .client
            .list_all_resources()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.uri.clone())
            .collect();
        assert_eq!(
            uris,
            vec![
                "test://static-binary",
                "test://static-text",
                "test://watched-resource",
                "test://with-client-roots"
            ],
            "{era:?}"
        );
        let templates = ward.client.list_all_resource_templates().await.unwrap();
        assert_eq!(templates[0].uri_template, "test://template/{id}/data");
        assert!(templates[0].description.is_some());

        let read = ward
            .client
            .read_resource(ReadResourceRequestParams::new("test://static-text"))
            .await
            .unwrap();
        match &read.contents[0] {
            ResourceContents::TextResourceContents {
                text, mime_type, ..
            } => {
                assert_eq!(text, "This is the content of the static text resource.");
                assert_eq!(mime_type.as_deref(), Some("text/plain"));
            }
            other => panic!("{other:?}"),
        }
        let read = ward
            .client
            .read_resource(ReadResourceRequestParams::new("test://static-binary"))
            .await
            .unwrap();
        assert!(
            matches!(&read.contents[0], ResourceContents::BlobResourceContents { blob, .. } if !blob.is_empty())
        );
        let read = ward
            .client
            .read_resource(ReadResourceRequestParams::new("test://template/42/data"))
            .await
            .unwrap();
        match &read.contents[0] {
            ResourceContents::TextResourceContents { text, uri, .. } => {
                assert_eq!(uri, "test://template/42/data");
                assert!(text.contains("42"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let err = mcp_error(
            ward.client
                .read_resource(ReadResourceRequestParams::new("test://nope"))
                .await
                .unwrap_err(),
        );
        assert!(
            err.code.0 == -32602 || err.code.0 == -32002,
            "{era:?}: {err:?}"
        );
        assert_eq!(err.data.as_ref().unwrap()["uri"], "test://nope", "{err:?}");
        ward.client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn prompts_with_and_without_arguments_in_every_era() {
    let dir = conformance();
    for era in ERAS {
        let ward = Ward::start_in(dir.path(), era).await;
        let prompts = ward.client.list_all_prompts().await.unwrap();
        let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "test_input_required_result_prompt",
                "test_prompt_with_arguments",
                "test_prompt_with_embedded_resource",
                "test_prompt_with_image",
                "test_simple_prompt"
            ]
        );
        let with_args = &prompts[1];
        let args = with_args.arguments.as_ref().unwrap();
        assert_eq!(args.len(), 2);
        assert!(args
            .iter()
            .all(|a| a.description.is_some() && a.required == Some(true)));

        let simple = ward
            .client
            .get_prompt(GetPromptRequestParams::new("test_simple_prompt"))
            .await
            .unwrap();
        assert!(
            matches!(&simple.messages[0].content, ContentBlock::Text(t) if t.text.contains("simple prompt"))
        );

        let got = ward
            .client
            .get_prompt(
                GetPromptRequestParams::new("test_prompt_with_arguments")
                    .with_arguments(obj(json!({"arg1": "alpha", "arg2": "beta"}))),
            )
            .await
            .unwrap();
        let ContentBlock::Text(t) = &got.messages[0].content else {
            panic!("{got:?}")
        };
        let text = &t.text;
        assert!(text.contains("alpha") && text.contains("beta"), "{text}");

        let err = mcp_error(
            ward.client
                .get_prompt(
                    GetPromptRequestParams::new("test_prompt_with_arguments")
                        .with_arguments(obj(json!({"arg1": "x"}))),
                )
                .await
                .unwrap_err(),
        );
        assert_eq!(err.code.0, -32602);
        assert!(err.message.contains("arg2"), "{err:?}");

        let embedded = ward
            .client
            .get_prompt(
                GetPromptRequestParams::new("test_prompt_with_embedded_resource")
                    .with_arguments(obj(json!({"resourceUri": "test://static-text"}))),
            )
            .await
            .unwrap();
        assert!(
            embedded
                .messages
                .iter()
                .any(|m| matches!(m.content, ContentBlock::Resource(_))),
            "{embedded:?}"
        );
        let image = ward
            .client
            .get_prompt(GetPromptRequestParams::new("test_prompt_with_image"))
            .await
            .unwrap();
        assert!(
            image
                .messages
                .iter()
                .any(|m| matches!(m.content, ContentBlock::Image(_))),
            "{image:?}"
        );
        ward.client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn completions_for_prompt_arguments_and_template_variables() {
    let ward = Ward::start(conformance().path()).await;
    let values = ward
        .client
        .complete_prompt_simple("test_prompt_with_arguments", "arg1", "")
        .await
        .unwrap();
    assert!(!values.is_empty());
    let values = ward
        .client
        .complete_resource_simple("test://template/{id}/data", "id", "")
        .await
        .unwrap();
    assert!(!values.is_empty());
}

#[tokio::test]
async fn tool_content_of_every_kind() {
    let ward = Ward::start(conformance().path()).await;
    let r = ward.call("test_simple_text", json!({})).await;
    assert_eq!(text(&r), "This is a simple text response for testing.");
    let r = ward.call("test_image_content", json!({})).await;
    assert!(
        matches!(&r.content[0], ContentBlock::Image(i) if i.mime_type == "image/png" && !i.data.is_empty())
    );
    let r = ward.call("test_audio_content", json!({})).await;
    assert!(matches!(&r.content[0], ContentBlock::Audio(a) if a.mime_type == "audio/wav"));
    let r = ward.call("test_embedded_resource", json!({})).await;
    assert!(matches!(&r.content[0], ContentBlock::Resource(_)));
    let r = ward.call("test_multiple_content_types", json!({})).await;
    assert_eq!(r.content.len(), 3);
    let r = ward.call("test_error_handling", json!({})).await;
    assert!(is_error(&r));
    assert!(text(&r).contains("intentionally"));
}

#[tokio::test]
async fn logs_are_sent_at_and_above_the_clients_level() {
    let mut ward = Ward::start(conformance().path()).await;
    ward.client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    ward.call("test_tool_with_logging", json!({})).await;
    let mut messages = Vec::new();
    for _ in 0..3 {
        if let Note::Log(p) = ward
            .wait_for("a log message", |n| matches!(n, Note::Log(_)))
            .await
        {
            assert_eq!(p.level, LoggingLevel::Info);
            messages.push(p.data.as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        messages,
        vec![
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ]
    );
    // Above the messages' level: none arrive.
    ward.client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    ward.call("test_tool_with_logging", json!({})).await;
    // An absence cannot be awaited: give a stray message time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(note) = ward.notes.try_recv() {
        assert!(
            !matches!(note, Note::Log(_)),
            "a message below the level arrived: {note:?}"
        );
    }
    // They always reach ward's own log.
    ward.wait_log("Tool processing data").await;
}

#[tokio::test]
async fn progress_arrives_in_order_with_the_callers_token() {
    for era in ERAS {
        let mut ward = Ward::start_in(conformance().path(), era).await;
        ward.call("test_tool_with_progress", json!({})).await;
        let mut seen = Vec::new();
        let mut token = None;
        for _ in 0..3 {
            if let Note::Progress(p) = ward
                .wait_for("progress", |n| matches!(n, Note::Progress(_)))
                .await
            {
                seen.push(p.progress);
                assert_eq!(p.total, Some(100.0));
                if let Some(t) = &token {
                    assert_eq!(t, &p.progress_token);
                }
                token = Some(p.progress_token.clone());
            }
        }
        assert_eq!(seen, vec![0.0, 50.0, 100.0], "{era:?}");
    }
}

#[tokio::test]
async fn subscribed_clients_hear_about_updates() {
    let mut ward = Ward::start(conformance().path()).await;
    ward.client
        .subscribe(SubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    ward.call("test_resource_updated", json!({})).await;
    let note = ward
        .wait_for("resources/updated", |n| matches!(n, Note::Updated(_)))
        .await;
    let Note::Updated(p) = note else {
        unreachable!()
    };
    assert_eq!(p.uri, "test://watched-resource");
}

#[tokio::test]
async fn modern_listen_streams_carry_updates() {
    let ward = Ward::start_in(conformance().path(), Era::Modern).await;
    let filter = SubscriptionFilter::builder()
        .resource_subscription("test://watched-resource")
        .tools_list_changed()
        .build();
    let mut sub = ward
        .client
        .peer()
        .listen(filter)
        .await
        .expect("subscriptions/listen acknowledged");
    ward.call("test_resource_updated", json!({})).await;
    let note = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("an update")
        .unwrap()
        .unwrap();
    match note {
        ServerNotification::ResourceUpdatedNotification(n) => {
            assert_eq!(n.params.uri, "test://watched-resource")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_list_paginates_with_opaque_cursors() {
    let dir = conformance();
    for era in ERAS {
        let mut cmd = serve_command(dir.path());
        cmd.args(["--page-size", "2"]);
        let ward = Ward::start_command(cmd, era).await;
        let first = ward.client.list_tools(None).await.unwrap();
        assert_eq!(first.tools.len(), 2, "{era:?}");
        let cursor = first.next_cursor.clone().expect("a cursor");
        let second = ward
            .client
            .list_tools(Some(
                rmcp::model::PaginatedRequestParams::default().with_cursor(Some(cursor)),
            ))
            .await
            .unwrap();
        assert_ne!(first.tools[0].name, second.tools[0].name);
        // The helpers follow every cursor to the end.
        assert_eq!(
            ward.client.list_all_tools().await.unwrap().len(),
            35,
            "{era:?}"
        );
        assert_eq!(ward.client.list_all_resources().await.unwrap().len(), 4);
        assert_eq!(ward.client.list_all_prompts().await.unwrap().len(), 5);
        let bad = ward
            .client
            .list_tools(Some(
                rmcp::model::PaginatedRequestParams::default().with_cursor(Some("garbage".into())),
            ))
            .await
            .unwrap_err();
        assert_eq!(mcp_error(bad).code.0, -32602);
        ward.client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_hand_written_2020_12_schema_is_served_whole_and_enforced() {
    let ward = Ward::start(conformance().path()).await;
    let tools = ward.client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "json_schema_2020_12_tool")
        .unwrap();
    let schema = serde_json::Value::Object((*tool.input_schema).clone());
    assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
    assert_eq!(schema["then"]["required"][0], "phone");
    // `if contactMethod = phone then phone is required`, checked by ward
    // before the guest runs.
    let result = ward
        .call(
            "json_schema_2020_12_tool",
            json!({"contactMethod": "phone", "email": "a@b.c"}),
        )
        .await;
    assert!(is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("phone"), "{}", text(&result));
    let result = ward
        .call(
            "json_schema_2020_12_tool",
            json!({"contactMethod": "phone", "phone": "555"}),
        )
        .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("555"));
}

/// `conformance` beside `hostile` renamed `aaa`, listing `resources`
/// (fixed URIs) and `templates`, both space-separated.
fn squatter(resources: &str, templates: &str) -> Dir {
    let dir = conformance();
    dir.plugin("hostile", "aaa").policy(
        "aaa",
        &format!("[env]\nHOSTILE_RESOURCES = {resources:?}\nHOSTILE_TEMPLATES = {templates:?}\n"),
    );
    dir
}

async fn read_text(ward: &Ward, uri: &str) -> Result<String, rmcp::ErrorData> {
    let read = ward
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .map_err(mcp_error)?;
    match &read.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => Ok(text.clone()),
        other => panic!("{other:?}"),
    }
}

/// Issue 11, item 6: a plugin `aaa` listing the template `{+u}` answered
/// `resources/read test://template/42/data`, which is `conformance`'s.
/// Templates without a literal scheme and authority are refused on their own.
#[tokio::test]
async fn catch_all_templates_are_refused() {
    let ward = Ward::start(squatter("", "{+u} test://{+u} {u}/x").path()).await;
    for (template, why) in [
        ("{+u}", "it starts with an expression"),
        (
            "test://{+u}",
            "its authority (after `//`) is not wholly literal",
        ),
        ("{u}/x", "it starts with an expression"),
    ] {
        ward.wait_log(&format!(
            "resource template `{template}` of plugin `aaa` refused: {why}"
        ))
        .await;
    }
    for uri in ["test://template/42/data", "test://static-text", "other://x"] {
        if let Ok(text) = read_text(&ward, uri).await {
            assert!(!text.starts_with("hostile read"), "{uri}: {text}");
        }
    }
    let text = read_text(&ward, "test://template/42/data").await.unwrap();
    assert!(text.contains("42"), "{text}");
    let templates = ward.client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1, "{templates:?}");
}

/// Issue 11, item 6: a template or fixed URI that could match another
/// plugin's is refused, and so is the other plugin's, whichever loaded
/// first: the URIs never reach the wrong plugin, before or after a restart.
#[tokio::test]
async fn overlapping_uris_are_refused_on_both_sides() {
    let dir = squatter(
        "test://static-text test://template/7/data",
        "test://template/{+u}",
    );
    for _ in 0..2 {
        let ward = Ward::start(dir.path()).await;
        for (mine, theirs) in [
            ("test://static-text", "conformance"),
            ("test://template/7/data", "conformance"),
            ("test://template/{+u}", "conformance"),
            ("test://template/{id}/data", "aaa"),
        ] {
            ward.wait_log(&format!(
                "resource `{mine}` refused: it could match URIs of plugin `{theirs}`"
            ))
            .await;
        }
        for uri in [
            "test://static-text",
            "test://template/7/data",
            "test://template/42/data",
        ] {
            let err = read_text(&ward, uri).await.unwrap_err();
            assert!(
                err.code.0 == -32602 || err.code.0 == -32002,
                "{uri}: {err:?}"
            );
        }
        // What only one plugin claims is still served.
        ward.client
            .read_resource(ReadResourceRequestParams::new("test://static-binary"))
            .await
            .unwrap();
        let uris: Vec<String> = ward
            .client
            .list_all_resources()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.uri.clone())
            .collect();
        assert_eq!(
            uris,
            vec![
                "test://static-binary",
                "test://watched-resource",
                "test://with-client-roots"
            ]
        );
        ward.client.cancel().await.unwrap();
    }
}

/// Issue 11, item 4: prompt messages and errors, completion values and
/// resource errors and MIME types count against `max-output` too.
#[tokio::test]
async fn max_output_counts_prompts_completions_and_resources() {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile").policy(
        "hostile",
        "[limits]\nmax-output = \"64KiB\"\n[env]\nHOSTILE_OVERSIZE = \"1\"\n",
    );
    let ward = Ward::start(dir.path()).await;
    let big = (1 << 20).to_string();
    let limit = 65 * 1024;
    for field in ["error", "description", "text"] {
        let err = mcp_error(
            ward.client
                .get_prompt(
                    GetPromptRequestParams::new("hostile_oversize")
                        .with_arguments(obj(json!({"field": field, "bytes": big}))),
                )
                .await
                .unwrap_err(),
        );
        let size = serde_json::to_string(&err).unwrap().len();
        assert!(size < limit, "prompt {field}: an error of {size} bytes");
        let expected = if field == "error" {
            "[… cut: the plugin's message of 1.0 MiB exceeds the output limit of 64 KiB]"
        } else {
            "exceeds the output limit of 64 KiB"
        };
        assert!(
            err.message.contains(expected),
            "prompt {field}: {}",
            &err.message[err.message.len().saturating_sub(300)..]
        );
    }
    for field in ["error", "mime", "text"] {
        let err = read_text(&ward, &format!("oversize://hostile/{field}/{big}"))
            .await
            .unwrap_err();
        let size = serde_json::to_string(&err).unwrap().len();
        assert!(size < limit, "resource {field}: an error of {size} bytes");
        assert!(
            err.message.contains("output limit of 64 KiB"),
            "resource {field}: {}",
            &err.message[err.message.len().saturating_sub(300)..]
        );
    }
    let prompt = ward
        .client
        .complete_prompt_simple("hostile_oversize", "bytes", &big)
        .await;
    let template = ward
        .client
        .complete_resource_simple("oversize://hostile/{field}/{bytes}", "bytes", &big)
        .await;
    for (what, answer) in [("prompt", prompt), ("template", template)] {
        let err = format!("{:?}", answer.expect_err(what));
        assert!(err.len() < limit, "{what}: {} bytes", err.len());
        assert!(
            err.contains("exceeds the output limit of 64 KiB"),
            "{what}: {err}"
        );
    }
    // Small answers still pass.
    let values = ward
        .client
        .complete_prompt_simple("hostile_oversize", "bytes", "100")
        .await
        .unwrap();
    assert_eq!(values.len(), 100);
}

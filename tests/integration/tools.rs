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
    // Neither `a` nor `c` holds `x_greet`, whichever loaded first: the name
    // can never mean the other plugin's tool (issue 11, item 6).
    ward.wait_log("tool `x_greet` refused: plugins `a` and `c` both expose it")
        .await;
    ward.wait_log("tool `x_greet` refused: plugins `c` and `a` both expose it")
        .await;
    wait_tools(&ward, &["x_describe"]).await;
    let err = ward.try_call("x_greet", json!({"name": "Cy"})).await;
    assert!(err.is_err(), "{err:?}");
}

/// Waits until the listed tools are exactly `names` (plugins may still be
/// loading when ward answers `initialize`).
async fn wait_tools(ward: &Ward, names: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let listed = ward.tool_names().await;
        if listed == names {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tools {listed:?}, expected {names:?}; log:\n{}",
            ward.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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

/// Issue 11, item 6: `git` + `hub_x` and `git_hub` + `x` were both
/// `git_hub_x`, and the first to load took the name. A prefix may not hold
/// the separator, so the plugin `git_hub` needs a prefix of its own.
#[tokio::test]
async fn a_prefix_cannot_hold_the_separator() {
    let dir = Dir::new();
    dir.plugin("hostile", "git")
        .policy("git", "[env]\nHOSTILE_TOOLS = \"hub_x\"\n");
    dir.plugin("hostile", "git_hub")
        .policy("git_hub", "[env]\nHOSTILE_TOOLS = \"x\"\n");
    let ward = Ward::start(dir.path()).await;
    let log = ward
        .wait_log("the plugin name \"git_hub\" cannot prefix tool names")
        .await;
    assert!(log.contains("git_hub.toml"), "{log}");
    let result = ward.call("git_hub_x", json!({})).await;
    assert_eq!(text(&result), "hostile tool hub_x");
    let names = ward.tool_names().await;
    assert_eq!(names.iter().filter(|n| *n == "git_hub_x").count(), 1);
    assert!(!names.iter().any(|n| n == "git_hub_alloc"), "{names:?}");
}

/// Issue 11, item 6: an unprefixed plugin listing another plugin's exposed
/// name took it when it loaded first. Now neither serves it.
#[tokio::test]
async fn an_unprefixed_plugin_cannot_take_a_prefixed_name() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    dir.plugin("hostile", "aaa").policy(
        "aaa",
        "[names]\nprefix = \"\"\n[env]\nHOSTILE_TOOLS = \"hello_greet\"\n",
    );
    for _ in 0..3 {
        let ward = Ward::start(dir.path()).await;
        ward.wait_log("tool `hello_greet` refused: plugins `aaa` and `hello` both expose it")
            .await;
        ward.wait_log("tool `hello_greet` refused: plugins `hello` and `aaa` both expose it")
            .await;
        match ward.try_call("hello_greet", json!({"name": "Ada"})).await {
            Err(rmcp::ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602, "{e:?}"),
            other => panic!("hello_greet should be refused, got {other:?}"),
        }
        assert!(!ward.tool_names().await.contains(&"hello_greet".to_string()));
        ward.client.cancel().await.unwrap();
    }
}

fn oversize() -> Dir {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile")
        .plugin("hello", "hello")
        .policy(
            "hostile",
            "[limits]\nmax-output = \"64KiB\"\n[env]\nHOSTILE_OVERSIZE = \"1\"\n",
        );
    dir
}

/// Issue 11, item 4: bytes outside a result's text (error strings, link
/// titles, MIME types) were not counted: a 1 MiB error passed a 64 KiB cap.
#[tokio::test]
async fn max_output_counts_every_field_of_a_tool_result() {
    let ward = Ward::start(oversize().path()).await;
    for field in [
        "error",
        "invalid",
        "link-title",
        "link-description",
        "link-mime",
        "embedded-mime",
        "image-mime",
    ] {
        let result = ward
            .call(
                "hostile_oversize",
                json!({"field": field, "bytes": 1 << 20}),
            )
            .await;
        let size = serde_json::to_string(&result).unwrap().len();
        assert!(
            size < 65 * 1024,
            "{field}: a result of {size} bytes passed a 64 KiB limit"
        );
        assert!(
            is_error(&result),
            "{field}: {}",
            &text(&result)[..200.min(text(&result).len())]
        );
        let message = text(&result);
        if field == "error" || field == "invalid" {
            assert!(
                message.starts_with(&"x".repeat(1000)) || message.contains(&"x".repeat(1000)),
                "{field}"
            );
            assert!(
                message.contains("[… cut: the plugin's message of 1")
                    && message.ends_with("MiB exceeds the output limit of 64 KiB]"),
                "{field}: {}",
                &message[message.len() - 200..]
            );
        } else {
            assert!(
                message.contains("exceeds the output limit of 64 KiB"),
                "{field}: {message}"
            );
        }
    }
    let ok = ward.call("hello_greet", json!({"name": "after"})).await;
    assert!(text(&ok).contains("after"));
}

fn schemas(extra: &str) -> Dir {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile")
        .plugin("hello", "hello")
        .policy(
            "hostile",
            &format!("[env]\nHOSTILE_SCHEMAS = \"1\"\n{extra}"),
        );
    dir
}

/// Issue 11, item 3: input schemas are the plugin's; oversized, too deep,
/// pattern-heavy and backtracking ones are refused at load, naming the
/// plugin and the tool.
#[tokio::test]
async fn costly_input_schemas_are_refused_at_load() {
    let ward = Ward::start(schemas("").path()).await;
    for (tool, why) in [
        ("huge_schema", "MiB long; at most 128 KiB is accepted"),
        (
            "deep_schema",
            "nests 101 levels deep; at most 32 are accepted",
        ),
        (
            "many_patterns",
            "input schema has 1000 regular expressions; at most 100",
        ),
        (
            "backref",
            "backreferences and look-around can take exponential time",
        ),
    ] {
        let log = ward
            .wait_log(&format!("tool `{tool}` of plugin `hostile` refused: "))
            .await;
        let line = log
            .lines()
            .find(|l| l.contains(&format!("tool `{tool}` of plugin `hostile` refused")))
            .unwrap();
        assert!(line.contains(why), "{line}");
    }
    let names = ward.tool_names().await;
    assert!(
        names.contains(&"hostile_exponential".to_string()),
        "{names:?}"
    );
    // `ward check` says so too, and fails: a plugin that loads but whose
    // items are refused is not "ok" (issue 15).
    let dir = schemas("");
    let out = std::process::Command::new(ward_bin())
        .arg("check")
        .arg(dir.path())
        .env("WARD_CACHE_DIR", repo().join("target/test-cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for tool in ["huge_schema", "deep_schema", "many_patterns", "backref"] {
        let reports = stdout
            .lines()
            .filter(|l| {
                l.starts_with("REFUSED tool `")
                    && l.contains(&format!("`{tool}` of plugin `hostile`"))
            })
            .count();
        assert_eq!(reports, 1, "{tool} reported {reports} times: {stdout}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.contains("schema") || n.contains("backref") || n.contains("patterns")),
        "{names:?}"
    );
}

/// Issue 11, item 3: validating arguments against a plugin's schema ran on a
/// protocol worker with no deadline. A schema whose validation takes 2^depth
/// steps now gives up at the plugin's timeout, and other calls keep
/// answering meanwhile.
#[tokio::test]
async fn a_costly_validation_stalls_no_one() {
    let ward =
        std::sync::Arc::new(Ward::start(schemas("[limits]\ntimeout = \"1s\"\n").path()).await);
    let mut nested = json!([]);
    for _ in 0..40 {
        nested = json!([nested]);
    }
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let ward = ward.clone();
        let nested = nested.clone();
        slow.spawn(async move { ward.call("hostile_exponential", json!({"t": nested})).await });
    }
    // Give the slow calls a head start onto ward's workers.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let start = std::time::Instant::now();
    let ok = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        ward.call("hello_greet", json!({"name": "meanwhile"})),
    )
    .await
    .expect("hello_greet did not answer while a costly validation ran");
    assert!(text(&ok).contains("meanwhile"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    while let Some(result) = slow.join_next().await {
        let result = result.unwrap();
        assert!(is_error(&result));
        assert!(
            text(&result).contains("took longer than 1s"),
            "{}",
            text(&result)
        );
    }
}

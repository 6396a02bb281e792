//! Hot reload with a client connected: drops, replacements, broken files,
//! slow copies, deletions, policy edits, calls during rapid replacement, and
//! plugins that say their own lists changed (`host.lists-changed`).

use std::path::Path;
use std::time::Duration;

use rmcp::model::{LoggingLevel, ServerNotification, SubscriptionFilter};
use serde_json::json;

use crate::util::*;

/// Publishes `source` as `dir/name.wasm` the documented way: write a
/// temporary file, then rename it into place.
fn publish(dir: &Path, source: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.wasm.partial"));
    std::fs::copy(source, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.wasm"))).unwrap();
}

/// `wasm` with a custom section appended: the same component, other bytes.
fn variant(wasm: &Path, tag: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(wasm).unwrap();
    let name = b"ward-test";
    let payload = [tag; 8];
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    bytes
}

async fn tools_changed(ward: &mut Ward) {
    ward.wait_for("tools/list_changed", |n| matches!(n, Note::ToolsChanged))
        .await;
}

#[tokio::test]
async fn a_dropped_plugin_appears_and_answers() {
    let dir = Dir::new();
    let mut ward = Ward::start(dir.path()).await;
    assert!(ward.tool_names().await.is_empty());
    publish(dir.path(), &wasm("hello"), "greeter");
    tools_changed(&mut ward).await;
    assert_eq!(ward.tool_names().await, vec!["greeter_greet"]);
    assert!(text(&ward.call("greeter_greet", json!({"name": "Di"})).await).contains("Di"));
}

#[tokio::test]
async fn a_replacement_brings_new_behaviour_and_garbage_keeps_the_old() {
    let dir = Dir::new();
    dir.plugin("hello", "greeter");
    let mut ward = Ward::start(dir.path()).await;
    publish(dir.path(), &wasm("stats"), "greeter");
    tools_changed(&mut ward).await;
    assert_eq!(ward.tool_names().await, vec!["greeter_describe"]);
    let r = ward
        .call("greeter_describe", json!({"numbers": [2.0, 4.0]}))
        .await;
    assert_eq!(r.structured_content.unwrap()["mean"], 3.0);

    let garbage = dir.path().join("garbage.tmp");
    std::fs::write(&garbage, b"\0asm\x0d\0\x01\0 not really").unwrap();
    std::fs::rename(&garbage, dir.path().join("greeter.wasm")).unwrap();
    let note = ward
        .wait_for(
            "a warning",
            |n| matches!(n, Note::Log(p) if p.level == LoggingLevel::Warning),
        )
        .await;
    let Note::Log(p) = note else { unreachable!() };
    let message = p.data.as_str().unwrap().to_string();
    assert!(
        message.contains("greeter") && message.contains("previous one keeps serving"),
        "{message}"
    );
    let r = ward
        .call("greeter_describe", json!({"numbers": [1.0]}))
        .await;
    assert!(!is_error(&r), "{r:?}");
}

#[tokio::test]
async fn a_slow_copy_is_never_loaded_half_written() {
    let dir = Dir::new();
    let mut ward = Ward::start(dir.path()).await;
    let bytes = std::fs::read(wasm("hello")).unwrap();
    let path = dir.path().join("slow.wasm");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in bytes.chunks(bytes.len() / 8 + 1) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    tools_changed(&mut ward).await;
    assert_eq!(ward.tool_names().await, vec!["slow_greet"]);
    assert!(text(&ward.call("slow_greet", json!({"name": "Ed"})).await).contains("Ed"));
    // No partial version was ever loaded or announced as broken.
    let log = ward.log();
    assert_eq!(log.matches("serving plugin `slow`").count(), 1, "{log}");
    while let Ok(note) = ward.notes.try_recv() {
        assert!(!matches!(note, Note::Log(_)), "{note:?}");
    }
}

#[tokio::test]
async fn a_deleted_plugin_is_unloaded() {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("conformance", "gone");
    let mut ward = Ward::start(dir.path()).await;
    assert_eq!(ward.client.list_all_prompts().await.unwrap().len(), 5);
    std::fs::remove_file(dir.path().join("gone.wasm")).unwrap();
    tools_changed(&mut ward).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    assert!(ward.client.list_all_prompts().await.unwrap().is_empty());
    assert!(ward.client.list_all_resources().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_policy_edit_applies_new_grants_and_a_broken_one_keeps_the_old() {
    let dir = Dir::new();
    dir.plugin("hello", "greeter");
    let mut ward = Ward::start(dir.path()).await;
    assert!(text(&ward.call("greeter_greet", json!({"name": "Flo"})).await).starts_with("Hello"));
    let write = |text: &str| {
        let tmp = dir.path().join("greeter.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.path().join("greeter.toml")).unwrap();
    };
    write("[env]\nGREETING = \"Howdy\"\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if text(&ward.call("greeter_greet", json!({"name": "Flo"})).await).starts_with("Howdy") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new grant never applied:\n{}",
            ward.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write("[env]\nGREETING = 42\n");
    ward.wait_for(
        "a warning",
        |n| matches!(n, Note::Log(p) if p.level == LoggingLevel::Warning),
    )
    .await;
    assert!(text(&ward.call("greeter_greet", json!({"name": "Flo"})).await).starts_with("Howdy"));
    // Removing the policy returns to the defaults.
    std::fs::remove_file(dir.path().join("greeter.toml")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !text(&ward.call("greeter_greet", json!({"name": "Flo"})).await).starts_with("Hello") {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = &mut ward;
}

#[tokio::test]
async fn fifty_rapid_replacements_never_fail_a_call() {
    let dir = Dir::new();
    let versions = [variant(&wasm("hello"), 1), variant(&wasm("hello"), 2)];
    std::fs::write(dir.path().join("greeter.wasm"), &versions[0]).unwrap();
    let ward = std::sync::Arc::new(Ward::start(dir.path()).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (ward, stop) = (ward.clone(), stop.clone());
        tokio::spawn(async move {
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = ward.call("greeter_greet", json!({"name": "Gus"})).await;
                assert!(
                    !is_error(&r) && text(&r).contains("Gus"),
                    "call {calls} failed: {r:?}"
                );
                calls += 1;
            }
            calls
        })
    };
    for i in 0..50 {
        let tmp = dir.path().join("greeter.tmp");
        std::fs::write(&tmp, &versions[i % 2]).unwrap();
        std::fs::rename(&tmp, dir.path().join("greeter.wasm")).unwrap();
        // Paces the swaps, so that calls run across many reloads.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Calls go on across the last reloads too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = caller.await.unwrap();
    assert!(calls > 10, "only {calls} calls");
    assert_eq!(ward.tool_names().await, vec!["greeter_greet"]);
}

#[tokio::test]
async fn modern_clients_hear_list_changes_on_their_listen_stream() {
    let dir = Dir::new();
    let ward = Ward::start_in(dir.path(), Era::Modern).await;
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut sub = ward.client.peer().listen(filter).await.unwrap();
    publish(dir.path(), &wasm("hello"), "late");
    let note = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("list_changed")
        .unwrap()
        .unwrap();
    assert!(
        matches!(note, ServerNotification::ToolListChangedNotification(_)),
        "{note:?}"
    );
    assert_eq!(ward.tool_names().await, vec!["late_greet"]);
}

#[tokio::test]
async fn a_plugin_that_says_its_lists_changed_is_listed_again() {
    // The conformance plugin lists test_dynamic_tool / test_dynamic_prompt
    // while a marker exists in its granted /state; its triggers flip the
    // marker and call `lists-changed`.
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let policy =
        std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap();
    dir.plugin("conformance", "conformance").policy(
        "conformance",
        &format!("{policy}\n[[fs]]\nhost = \"./state\"\nguest = \"/state\"\nmode = \"rw\"\n"),
    );
    let mut ward = Ward::start(dir.path()).await;
    let dynamic = |names: &[String]| names.iter().any(|n| n == "test_dynamic_tool");
    assert!(!dynamic(&ward.tool_names().await));

    let r = ward.call("test_trigger_tool_change", json!({})).await;
    assert_eq!(text(&r), "test_dynamic_tool added");
    // The notification came before the answer: it is already queued.
    tools_changed(&mut ward).await;
    assert!(dynamic(&ward.tool_names().await));
    assert_eq!(
        text(&ward.call("test_dynamic_tool", json!({})).await),
        "dynamic"
    );

    let r = ward.call("test_trigger_tool_change", json!({})).await;
    assert_eq!(text(&r), "test_dynamic_tool removed");
    tools_changed(&mut ward).await;
    assert!(!dynamic(&ward.tool_names().await));

    ward.call("test_trigger_prompt_change", json!({})).await;
    ward.wait_for("prompts/list_changed", |n| {
        matches!(n, Note::PromptsChanged)
    })
    .await;
    let prompts = ward.client.list_all_prompts().await.unwrap();
    assert!(
        prompts.iter().any(|p| p.name == "test_dynamic_prompt"),
        "{prompts:?}"
    );

    // Without the grant the trigger fails, and nothing changes.
    let bare = Dir::new();
    bare.plugin("conformance", "conformance")
        .policy("conformance", &policy);
    let ward = Ward::start(bare.path()).await;
    let r = ward.call("test_trigger_tool_change", json!({})).await;
    assert!(is_error(&r) && text(&r).contains("/state granted"), "{r:?}");
}

/// Reading a plugin's file is not a change to it. The watcher took the
/// loader's own open of the file (inotify `IN_OPEN`) for a change, so once a
/// plugin was replaced it was read, hashed and reloaded every 40 ms for as
/// long as ward ran (found by the soak benchmark, issue 16).
#[tokio::test]
async fn loading_a_plugin_does_not_make_the_watcher_load_it_again() {
    let dir = Dir::new();
    dir.plugin("hello", "greeter");
    let mut ward = Ward::start(dir.path()).await;
    publish(dir.path(), &wasm("stats"), "greeter");
    tools_changed(&mut ward).await;
    // Another change after the replacement has loaded: with the bug, the
    // load's own open of greeter.wasm was still pending and came with it.
    publish(dir.path(), &wasm("hello"), "second");
    tools_changed(&mut ward).await;
    assert_eq!(
        ward.tool_names().await,
        vec!["greeter_describe", "second_greet"]
    );
    let path = dir.path().join("greeter.wasm");
    let loads = ward
        .log()
        .lines()
        .filter(|l| l.contains(&format!("loaded {}", path.display())))
        .count();
    assert_eq!(loads, 2, "greeter loaded {loads} times:\n{}", ward.log());
}

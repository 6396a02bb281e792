//! Plugins in other languages: the Python and JavaScript examples served
//! beside Rust ones, and `ward new` projects of every language (Rust, Python,
//! JavaScript, C) that build with their one command and answer.

use std::process::Command;

use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn python_and_js_plugins_answer_like_rust_ones() {
    let dir = Dir::new();
    dir.plugin("hello", "hello")
        .plugin("python-hello", "python-hello")
        .plugin("js-hello", "js-hello");
    // A client that answers sampling requests.
    let capabilities = rmcp::model::ClientCapabilities::builder()
        .enable_sampling()
        .build();
    let ward = Ward::start_with(
        serve_command(dir.path()),
        Era::Legacy("2025-11-25"),
        capabilities,
    )
    .await;
    let names = ward.tool_names().await;
    for name in [
        "hello_greet",
        "python-hello_greet",
        "python-hello_text_stats",
        "js-hello_greet",
        "js-hello_slugify",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    for tool in ["hello_greet", "python-hello_greet", "js-hello_greet"] {
        let r = ward.call(tool, json!({"name": "Ada"})).await;
        assert!(!is_error(&r) && text(&r).contains("Ada"), "{tool}: {r:?}");
    }
    let r = ward
        .call(
            "python-hello_text_stats",
            json!({"text": "the cat and the hat. The end!"}),
        )
        .await;
    let s = r.structured_content.expect("structured");
    assert_eq!(s["words"], 7);
    assert_eq!(s["most_common"][0]["word"], "the");
    let r = ward
        .call("js-hello_slugify", json!({"text": "Héllo, Wörld!"}))
        .await;
    assert_eq!(
        r.structured_content.as_ref().expect("structured")["slug"],
        "hello-world",
        "{r:?}"
    );
    // Both may ask the client's model.
    for tool in ["python-hello_ask", "js-hello_ask"] {
        let r = ward.call(tool, json!({"question": "2+2?"})).await;
        assert_eq!(text(&r), format!("The model says: {SAMPLED}"), "{tool}");
    }
    let asked = ward.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert!(asked
        .iter()
        .all(|a| a["messages"][0]["content"]["text"] == "2+2?"));
    // A wrongly typed argument is refused before the guest runs, in any language.
    let r = ward.call("python-hello_greet", json!({"name": 5})).await;
    assert!(is_error(&r) && text(&r).contains("/name"), "{r:?}");
}

#[tokio::test]
async fn python_and_js_plugins_ask_the_client_in_both_eras() {
    let dir = Dir::new();
    dir.plugin("python-hello", "python-hello")
        .plugin("js-hello", "js-hello");
    let capabilities = rmcp::model::ClientCapabilities::builder()
        .enable_elicitation()
        .enable_roots()
        .enable_sampling()
        .build();
    // A legacy client gets requests; a 2026-07-28 one an input-required
    // result with the questions, and the plugin is replayed with the answers.
    for era in [Era::Legacy("2025-11-25"), Era::Modern] {
        let ward = Ward::start_with(serve_command(dir.path()), era, capabilities.clone()).await;
        for tool in ["python-hello_introduce", "js-hello_introduce"] {
            let r = ward.call(tool, json!({})).await;
            assert_eq!(
                text(&r),
                format!("Hello Ada, working in {ROOT}"),
                "{tool} {era:?}"
            );
        }
        for tool in ["python-hello_ask", "js-hello_ask"] {
            let r = ward.call(tool, json!({"question": "2+2?"})).await;
            assert_eq!(
                text(&r),
                format!("The model says: {SAMPLED}"),
                "{tool} {era:?}"
            );
        }
        assert_eq!(ward.asked.lock().unwrap().len(), 6, "{era:?}");
    }
}

/// Scaffolds, builds and serves a project; returns what its greet answered.
async fn scaffold_build_and_call(lang: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let name = format!("demo-{lang}");
    let status = Command::new(ward_bin())
        .args(["new", &name, "--lang", lang, "--dir"])
        .arg(work.path())
        .arg("--ward-repo")
        .arg(repo())
        .status()
        .unwrap();
    assert!(status.success(), "ward new {name} --lang {lang}");
    let project = work.path().join(&name);
    let mut build = Command::new("sh");
    build.arg(project.join("build.sh"));
    // Rust projects share the guest build cache of the repository, C
    // projects the tools `cargo xtask plugins` installed for c-hello.
    build.env("CARGO_TARGET_DIR", repo().join("target/guest"));
    build.env("WARD_C_TOOLS", repo().join(".tools/cargo"));
    let output = build.output().unwrap();
    assert!(
        output.status.success(),
        "{lang} build failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ward = Ward::start(&project.join("dist")).await;
    let r = ward
        .call(&format!("{name}_greet"), json!({"name": "Scaffold"}))
        .await;
    assert!(!is_error(&r), "{r:?}");
    text(&r)
}

#[tokio::test]
async fn a_scaffolded_rust_plugin_builds_and_answers() {
    assert!(scaffold_build_and_call("rust").await.contains("Scaffold"));
}

#[tokio::test]
async fn a_scaffolded_python_plugin_builds_and_answers() {
    assert!(scaffold_build_and_call("python").await.contains("Scaffold"));
}

#[tokio::test]
async fn a_scaffolded_c_plugin_builds_and_answers() {
    assert_eq!(scaffold_build_and_call("c").await, "Hello, Scaffold!");
}

#[tokio::test]
async fn a_scaffolded_js_plugin_builds_and_answers() {
    assert!(scaffold_build_and_call("js").await.contains("Scaffold"));
}

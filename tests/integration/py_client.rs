//! The official MCP Python SDK (`mcp`, PyPI) against `ward serve --http
//! --jwt-*` over Streamable HTTP with `Authorization: Bearer <JWT>` (issue
//! 13): it lists tools and calls one with a token scoped `tools:call`, does
//! not see `stats_describe` (whose policy wants `stats:describe`), fails to
//! call it (ward answers 403 `insufficient_scope`), and cannot connect at
//! all with a forged token (401). Both majors of the SDK, as their clients
//! connect: 1.x with `streamablehttp_client(url, headers=...)` and a
//! `ClientSession` (a 2025-11-25 session), 2.x with `mcp.Client` (which
//! speaks 2026-07-28). The client is `tests/py-client/client.py`; each SDK
//! is pinned by `tests/py-client/mcp-N.txt` and installed into the venv
//! `.tools/py-client/mcp-N` by `cargo xtask test` (xtask/src/pyclient.rs),
//! or by the test itself when it is missing. The test is skipped, saying
//! why, only when it cannot be installed (no `python3`, no network).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Command;

use crate::jwt::{claims, jwks, Signer, ISSUER};
use crate::util::{repo, serve_command, spawn_http, Dir, Log};

/// The version of `mcp` in the venv of `python`, if any.
async fn installed(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('mcp'))",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd`, or says how it failed.
async fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// The Python of the venv `.tools/py-client/NAME` holding the `mcp` that
/// `tests/py-client/NAME.txt` pins, installed as `cargo xtask test` does
/// when it is missing; `None`, the reason printed, when it cannot be.
async fn sdk_python(name: &str) -> Option<PathBuf> {
    let requirements = repo().join("tests/py-client").join(format!("{name}.txt"));
    let pin = std::fs::read_to_string(&requirements)
        .unwrap()
        .lines()
        .find_map(|line| line.trim().strip_prefix("mcp==").map(str::to_owned))
        .unwrap_or_else(|| panic!("{} pins no mcp==VERSION", requirements.display()));
    let venv = repo().join(".tools/py-client").join(name);
    let python = venv.join("bin/python");
    if installed(&python).await.as_deref() == Some(pin.as_str()) {
        return Some(python);
    }
    eprintln!(
        "installing the MCP Python SDK (mcp {pin}) into {} (`cargo xtask test` does it up front)",
        venv.display()
    );
    let install = async {
        if !python.is_file() {
            let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            run(
                Command::new(&python3).args(["-m", "venv"]).arg(&venv),
                &format!("{python3} -m venv"),
            )
            .await?;
        }
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(["--disable-pip-version-check", "--retries", "2", "-r"])
                .arg(&requirements),
            "pip install",
        )
        .await?;
        match installed(&python).await {
            Some(found) if found == pin => Ok(()),
            found => Err(format!("pip left mcp {found:?} in the venv, not {pin}")),
        }
    };
    match tokio::time::timeout(Duration::from_secs(600), install).await {
        Ok(Ok(())) => Some(python),
        Ok(Err(why)) => {
            eprintln!(
                "skipping the Python SDK client test: mcp {pin} is not in {} and could not be \
                 installed ({why}); `cargo xtask test` installs it",
                venv.display()
            );
            None
        }
        Err(_) => {
            eprintln!(
                "skipping the Python SDK client test: installing mcp {pin} into {} took over 600 s",
                venv.display()
            );
            None
        }
    }
}

/// `client.py` on `python` against `url` with `token`: its summary.
async fn client(python: &Path, url: &str, token: &str, log: &Log) -> Value {
    let output = Command::new(python)
        .arg(repo().join("tests/py-client/client.py"))
        .env("WARD_PY_URL", url)
        .env("WARD_PY_TOKEN", token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // httpx honours proxy variables; ward is on loopback.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // The script bounds itself (120 s); this is the backstop.
    let output = tokio::time::timeout(Duration::from_secs(300), output)
        .await
        .expect("client.py did not finish within 300 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client.py failed ({}):\n{stdout}\n{stderr}\nward's log:\n{}",
        output.status,
        log.get()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "client.py printed no JSON summary ({e}):\n{stdout}\n{stderr}\nward's log:\n{}",
            log.get()
        )
    })
}

/// What the SDK of venv `name` saw with a token scoped `tools:call` and with
/// a forged one; `None` when the SDK is not installable.
struct Seen {
    good: Value,
    bad: Value,
    log: Log,
}

impl Seen {
    async fn run(name: &str) -> Option<Self> {
        let python = sdk_python(name).await?;
        let started = Instant::now();
        let dir = Dir::new();
        dir.plugin("hello", "hello").plugin("stats", "stats");
        dir.policy("stats", "[access.tools]\ndescribe = [\"stats:describe\"]\n");
        let keys = tempfile::tempdir().unwrap();
        let issuer = Signer::new(keys.path(), "ec", Some("ec-1"));
        // Another key under the same key id: a bad signature.
        let forged = tempfile::tempdir().unwrap();
        let forger = Signer::new(forged.path(), "ec", Some("ec-1"));
        let jwks_file = keys.path().join("jwks.json");
        std::fs::write(&jwks_file, jwks(&[&issuer])).unwrap();
        let mut cmd = serve_command(dir.path());
        cmd.args([
            "--http",
            "127.0.0.1:0",
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
        ])
        .arg(&jwks_file)
        .env_remove("WARD_AUTH_TOKEN");
        let (mut ward, url, log) = spawn_http(cmd).await;
        let mut claims = claims(&url);
        claims["scope"] = json!("tools:call");
        let good = issuer.sign(Some("ec-1"), &claims);
        let bad = forger.sign(Some("ec-1"), &claims);
        let (good, bad) = tokio::join!(
            client(&python, &url, &good, &log),
            client(&python, &url, &bad, &log)
        );
        let _ = ward.kill().await;
        eprintln!(
            "MCP Python SDK {} on Python {} ({}): in {:?}\n  a scope it lacks: {}\n  a forged token: {}",
            good["sdk"],
            good["python"],
            good["protocolVersion"],
            started.elapsed(),
            good["forbidden"]["raised"],
            bad["error"]["raised"],
        );
        Some(Self { good, bad, log })
    }

    fn context(&self) -> String {
        format!(
            "token scoped tools:call:\n{}\nforged token:\n{}\nward's log:\n{}",
            serde_json::to_string_pretty(&self.good).unwrap(),
            serde_json::to_string_pretty(&self.bad).unwrap(),
            self.log.get()
        )
    }

    /// What holds for every SDK: the scoped token lists and calls what it
    /// may, neither lists nor calls `stats_describe` (403 insufficient_scope
    /// on the wire, an exception in Python), and the forged token never
    /// connects (only 401 invalid_token on the wire).
    fn check(&self) {
        let (good, bad, context) = (&self.good, &self.bad, || self.context());
        assert!(good["error"].is_null(), "{}", context());
        assert_eq!(good["connected"], true, "{}", context());
        assert_eq!(good["server"]["name"], "ward", "{}", context());
        let tools: Vec<&str> = good["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", context()))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(tools.contains(&"hello_greet"), "{}", context());
        assert!(!tools.contains(&"stats_describe"), "{}", context());
        assert_eq!(
            good["greet"],
            json!({"isError": false, "text": "Hello, Ada!"}),
            "{}",
            context()
        );
        let forbidden = &good["forbidden"];
        assert_eq!(forbidden["failed"], true, "{}", context());
        assert!(
            forbidden["raised"].is_object(),
            "no exception; {}",
            context()
        );
        let refused = good["http"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == 403)
            .unwrap_or_else(|| panic!("no 403; {}", context()));
        assert_eq!(refused["rpc"], "tools/call", "{}", context());
        let challenge = refused["challenge"].as_str().unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"stats:describe\""),
            "{}",
            context()
        );
        assert_eq!(good["warnings"], json!([]), "{}", context());

        assert_eq!(bad["connected"], false, "{}", context());
        assert!(bad["tools"].is_null(), "{}", context());
        assert!(bad["error"]["raised"].is_object(), "{}", context());
        let answers = bad["http"].as_array().unwrap();
        assert!(!answers.is_empty(), "{}", context());
        for answer in answers {
            assert_eq!(answer["status"], 401, "{}", context());
            let challenge = answer["challenge"].as_str().unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer error=\"invalid_token\""),
                "{}",
                context()
            );
        }
    }

    /// The innermost exceptions `raised` holds (itself, unless a group).
    fn leaves(raised: &Value) -> Vec<&Value> {
        match raised["leaves"].as_array() {
            Some(leaves) => leaves.iter().collect(),
            None => vec![raised],
        }
    }
}

#[tokio::test]
async fn python_sdk_1x_session_with_a_bearer_token() {
    let Some(seen) = Seen::run("mcp-1").await else {
        return;
    };
    seen.check();
    let context = || seen.context();
    assert_eq!(seen.good["protocolVersion"], "2025-11-25", "{}", context());
    // mcp 1.x raises httpx's HTTPStatusError for any 4xx inside the
    // transport's task group: the refused call ends the whole connection.
    let forbidden = &seen.good["forbidden"];
    assert_eq!(forbidden["endedConnection"], true, "{}", context());
    let leaves = Seen::leaves(&forbidden["raised"]);
    assert!(
        leaves.iter().any(|e| e["type"] == "httpx.HTTPStatusError"
            && e["message"].as_str().unwrap().contains("403 Forbidden")),
        "{}",
        context()
    );
    let leaves = Seen::leaves(&seen.bad["error"]["raised"]);
    assert!(
        leaves.iter().any(|e| e["type"] == "httpx.HTTPStatusError"
            && e["message"].as_str().unwrap().contains("401 Unauthorized")),
        "{}",
        context()
    );
}

#[tokio::test]
async fn python_sdk_2x_client_with_a_bearer_token() {
    let Some(seen) = Seen::run("mcp-2").await else {
        return;
    };
    seen.check();
    let context = || seen.context();
    // `mcp.Client` probes server/discover and speaks the stateless era.
    assert_eq!(seen.good["protocolVersion"], "2026-07-28", "{}", context());
    // mcp 2.x raises the JSON-RPC error in ward's 403 body (-32003, naming
    // the missing scope) for that request alone; the connection lives on.
    let forbidden = &seen.good["forbidden"]["raised"];
    assert_eq!(
        forbidden["type"],
        "mcp.shared.exceptions.MCPError",
        "{}",
        context()
    );
    assert!(
        forbidden.to_string().contains("stats:describe"),
        "the client is told which scope: {}",
        context()
    );
    assert!(
        seen.good["forbidden"]["endedConnection"].is_null(),
        "{}",
        context()
    );
    let leaves = Seen::leaves(&seen.bad["error"]["raised"]);
    assert!(
        leaves
            .iter()
            .any(|e| e["type"] == "mcp.shared.exceptions.MCPError"),
        "{}",
        context()
    );
}

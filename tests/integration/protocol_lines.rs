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

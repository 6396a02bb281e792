//! `ward serve --http`: Streamable HTTP in both eras with rmcp's own client,
//! and the listener's defences with raw requests (issue 8).

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest, Implementation,
    ProgressNotificationParam, ProtocolVersion, Request,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, PeerRequestOptions, RunningService,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use tokio::process::Child;
use tokio::sync::mpsc;

use crate::util::{obj, repo, serve_command, spawn_http, text, Dir, Era, Log};

/// A `ward serve --http 127.0.0.1:0` and what it logged.
struct HttpWard {
    child: Child,
    url: String,
    log: Log,
}

impl HttpWard {
    async fn start(dir: &Dir, args: &[&str], envs: &[(&str, &str)]) -> Self {
        // reqwest is built with rustls but no crypto provider (oci-client's
        // features, unified): give it the one ward uses, before any client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = serve_command(dir.path());
        cmd.args(["--http", "127.0.0.1:0"])
            .args(args)
            .env_remove("WARD_AUTH_TOKEN");
        for (key, value) in envs {
            cmd.env(key, value);
        }
        let (child, url, log) = spawn_http(cmd).await;
        Self { child, url, log }
    }

    fn addr(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
    }

    fn log(&self) -> String {
        self.log.get()
    }

    /// Waits until ward's log contains `needle`.
    async fn wait_log(&self, needle: &str) {
        self.wait_log_count(needle, 1).await;
    }

    /// Waits until ward's log contains `needle` `n` times.
    async fn wait_log_count(&self, needle: &str, n: usize) {
        let logged = self
            .log
            .wait_until(20, |log| log.matches(needle).count() >= n)
            .await;
        assert!(logged, "log:\n{}", self.log());
    }

    async fn connect(&self, era: Era, token: Option<&str>) -> Client {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        let (tx, notes) = mpsc::unbounded_channel();
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("ward-http-tests", "0"),
        );
        let service = match era {
            Era::Legacy(_) => {
                info.protocol_version = ProtocolVersion::V_2025_11_25;
                Notes { tx, info }
                    .serve(transport)
                    .await
                    .expect("initialize")
            }
            Era::Modern => Notes { tx, info }
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("discover"),
        };
        Client { service, notes }
    }

    /// A raw POST of `body` to /mcp with the usual MCP headers plus `headers`.
    async fn post(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await.unwrap()
    }

    async fn sigterm(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
}

/// A connected client and the notifications it received.
struct Client {
    service: RunningService<RoleClient, Notes>,
    notes: mpsc::UnboundedReceiver<Value>,
}

#[derive(Clone)]
struct Notes {
    tx: mpsc::UnboundedSender<Value>,
    info: ClientConfig,
}

impl ClientHandler for Notes {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(json!({"progress": p.progress}));
    }
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(json!("tools/list_changed"));
    }
}

impl Client {
    async fn call(&self, name: &str, args: Value) -> rmcp::model::CallToolResult {
        self.service
            .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(obj(args)))
            .await
            .unwrap_or_else(|e| panic!("calling {name}: {e}"))
    }

    async fn wait_for(&mut self, what: &Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.notes.recv()).await {
                Ok(Some(note)) if &note == what => return,
                Ok(Some(_)) => continue,
                _ => panic!("no {what} within 20 s"),
            }
        }
    }
}

fn plugins() -> Dir {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    // Its policy exposes the fixture's names unprefixed.
    dir.plugin("conformance", "conformance").policy(
        "conformance",
        &std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap(),
    );
    dir.plugin("hostile", "hostile");
    dir
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

#[tokio::test]
async fn both_eras_over_http_with_progress_and_hot_reload() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &[], &[]).await;
    for era in [Era::Legacy("2025-11-25"), Era::Modern] {
        let mut client = ward.connect(era, None).await;
        let tools = client.service.list_all_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "hello_greet"), "{era:?}");
        let result = client.call("hello_greet", json!({"name": "Ada"})).await;
        assert!(text(&result).contains("Ada"), "{era:?}");
        client.call("test_tool_with_progress", json!({})).await;
        for expected in [0.0, 50.0, 100.0] {
            client.wait_for(&json!({"progress": expected})).await;
        }
        if let Era::Legacy(_) = era {
            // The session's event pump reaches the client on its GET stream.
            dir.plugin("hello", "hello2");
            client.wait_for(&json!("tools/list_changed")).await;
            let tools = client.service.list_all_tools().await.unwrap();
            assert!(tools.iter().any(|t| t.name == "hello2_greet"));
        }
        client.service.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured() {
    let dir = plugins();
    let token_file = dir.path().join("token.txt");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let ward = HttpWard::start(
        &dir,
        &["--auth-token-file", token_file.to_str().unwrap()],
        &[],
    )
    .await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("Bearer s3cret-tokenX"),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let response = ward.post(&headers, INIT).await;
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    let response = ward
        .post(&[("authorization", "Bearer s3cret-token")], INIT)
        .await;
    assert_eq!(response.status(), 200);
    // rmcp's client with the token, in both eras.
    for era in [Era::Legacy("2025-11-25"), Era::Modern] {
        let client = ward.connect(era, Some("s3cret-token")).await;
        let result = client.call("hello_greet", json!({"name": "Bo"})).await;
        assert!(text(&result).contains("Bo"));
        client.service.cancel().await.unwrap();
    }
    // The token may come from the environment instead.
    let ward = HttpWard::start(&dir, &[], &[("WARD_AUTH_TOKEN", "from-env")]).await;
    assert_eq!(ward.post(&[], INIT).await.status(), 401);
    assert_eq!(
        ward.post(&[("authorization", "Bearer from-env")], INIT)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--allowed-origin", "https://app.example:443"], &[]).await;
    let own = format!("http://{}", ward.addr());
    let port = ward.addr().rsplit(':').next().unwrap().to_owned();
    let evil_host = format!("evil.example:{port}");
    for (headers, status) in [
        (vec![("host", evil_host.as_str())], 403),
        (vec![("origin", "http://evil.example")], 403),
        (vec![("origin", "http://localhost:1")], 403),
        (vec![("origin", own.as_str())], 200),
        (vec![("origin", "https://app.example")], 200),
        (vec![], 200),
    ] {
        let response = ward.post(&headers, INIT).await;
        assert_eq!(response.status(), status, "{headers:?}");
    }
}

#[tokio::test]
async fn oversized_bodies_and_mismatched_headers_are_rejected() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--max-body-bytes", "65536"], &[]).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(ward.post(&[], big).await.status(), 413);

    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}
    });
    let list =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": meta}})
            .to_string();
    // Matching headers: served.
    let response = ward
        .post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ],
            list.clone(),
        )
        .await;
    assert_eq!(response.status(), 200);
    // The method header contradicts the body.
    let response = ward
        .post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            list.clone(),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "{body}");
    // The version header contradicts the body's _meta.
    let response = ward
        .post(
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/list"),
            ],
            list,
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "{body}");
}

#[tokio::test]
async fn custom_param_headers_must_match_the_arguments() {
    // test_custom_header's `region` carries `x-mcp-header: Region` (declared
    // with the Rust SDK), so a 2026-07-28 tools/call must send it as
    // Mcp-Param-Region too (SEP-2243), literally or as =?base64?...?=.
    let dir = plugins();
    let ward = HttpWard::start(&dir, &[], &[]).await;
    let call = |region: &str| {
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "test_custom_header",
            "arguments": {"region": region},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        }})
        .to_string()
    };
    let headers = |param: Option<&'static str>| {
        let mut h = vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "test_custom_header"),
        ];
        if let Some(value) = param {
            h.push(("mcp-param-region", value));
        }
        h
    };
    for (param, status) in [
        (Some("eu-west"), 200),
        (Some("=?base64?ZXUtd2VzdA==?="), 200), // "eu-west"
        (Some("us-east"), 400),
        (Some("=?base64?ZXUtd2VzdA?="), 400), // bad padding
        (None, 400),
    ] {
        let response = ward.post(&headers(param), call("eu-west")).await;
        assert_eq!(response.status(), status, "{param:?}");
        let text = response.text().await.unwrap();
        if status == 200 {
            assert!(text.contains("Region: eu-west"), "{param:?}: {text}");
        } else {
            assert!(text.contains("-32020"), "{param:?}: {text}");
        }
    }
}

#[tokio::test]
async fn a_public_bind_needs_an_explicit_flag() {
    let dir = plugins();
    let output = serve_command(dir.path())
        .args(["--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--http-public"), "{stderr}");
}

#[tokio::test]
async fn a_call_cancelled_by_the_client_is_interrupted() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &[], &[]).await;
    let client = ward.connect(Era::Legacy("2025-11-25"), None).await;
    // Loading the plugin was a call too: wait for the next one.
    let started = "call started plugin=hostile";
    let loads = ward.log().matches(started).count();
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("hostile_spin").with_arguments(obj(json!({}))),
    ));
    let handle = client
        .service
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Cancel only once the call is running.
    ward.wait_log_count(started, loads + 1).await;
    handle.cancel(Some("test".into())).await.unwrap();
    ward.wait_log("cancelled by the client").await;
    // Still serving.
    let result = client.call("hello_greet", json!({"name": "Cy"})).await;
    assert!(text(&result).contains("Cy"));
}

#[tokio::test]
async fn sigterm_lets_a_call_in_flight_finish() {
    let dir = plugins();
    let mut ward = HttpWard::start(&dir, &[], &[]).await;
    let client = ward.connect(Era::Legacy("2025-11-25"), None).await;
    // Loading the plugin was a call too: wait for the next one.
    let started = "call started plugin=hostile";
    let loads = ward.log().matches(started).count();
    let call = tokio::spawn(async move {
        let result = client.call("hostile_sleep", json!({"ms": 1500})).await;
        (client, result)
    });
    // Signal only once the call is running in the guest.
    ward.wait_log_count(started, loads + 1).await;
    ward.sigterm().await;
    let (_client, result) = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call in flight finished")
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", ward.log()));
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let status = tokio::time::timeout(Duration::from_secs(20), ward.child.wait())
        .await
        .expect("ward exited after the call")
        .unwrap();
    assert!(status.success(), "{status:?}; log:\n{}", ward.log());
    // No new connections once shut down.
    assert!(reqwest::Client::new()
        .post(&ward.url)
        .body(INIT)
        .send()
        .await
        .is_err());
}

// Issue 11 item 9: the HTTP front door. Each test is an attack by a slow or
// greedy client on a listener with small limits.

/// A raw request head for POST /mcp with the MCP headers and `extra` lines.
fn raw_head(ward: &HttpWard, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{extra}\r\n",
        ward.addr()
    )
}

/// Reads from `stream` until the peer closes it (EOF or reset) or `within`
/// passes; returns what arrived and whether it was closed.
async fn read_until_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The JSON body of a raw HTTP response.
fn raw_json(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// A 2026-07-28 `subscriptions/listen` request body.
fn listen_body(id: u64) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}
            },
            "notifications": {"toolsListChanged": true}
        }
    })
    .to_string()
}

const LISTEN_HEADERS: [(&str, &str); 2] = [
    ("mcp-protocol-version", "2026-07-28"),
    ("mcp-method", "subscriptions/listen"),
];

/// On the main of issue 11, the `Mcp-Method: subscriptions/listen` header
/// alone lifted the deadline before the body was read: a body trickled a
/// byte at a time held its connection for ever.
#[tokio::test]
async fn a_listen_header_does_not_exempt_a_trickled_body() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--request-timeout", "2"], &[]).await;
    let stream = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = raw_head(
        &ward,
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n\
         Content-Length: 100000\r\n",
    );
    use tokio::io::AsyncWriteExt;
    writer.write_all(head.as_bytes()).await.unwrap();
    writer.write_all(br#"{"jsonrpc":"2.0","#).await.unwrap();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        // The trickle is the attack: a slow client, one byte per 200 ms.
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (response, closed) = read_until_closed(&mut reader, Duration::from_secs(10)).await;
    trickle.abort();
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "after {:?}: {response:?}",
        started.elapsed()
    );
    assert!(closed, "the connection stays open: {response}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(raw_json(&response)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--request-timeout"));
}

/// Headers trickled a line at a time, and a connection that sends nothing,
/// are closed after the header timeout.
#[tokio::test]
async fn slow_headers_and_silent_connections_are_closed() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--header-timeout", "1"], &[]).await;
    let mut silent = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let stream = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = writer.write_all(b"POST /mcp HTTP/1.1\r\n").await;
        // The attack: headers trickled one line per 200 ms.
        while writer.write_all(b"X-Slow: a\r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (_, closed) = read_until_closed(&mut reader, Duration::from_secs(8)).await;
    trickle.abort();
    assert!(closed, "slow headers kept their connection");
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(8)).await;
    assert!(closed, "a silent connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A real `subscriptions/listen` stream is exempt from the deadline: it
/// outlives it (and the header timeout, which cuts only idle connections)
/// and still carries events.
#[tokio::test]
async fn a_real_listen_stream_outlives_the_deadline() {
    let dir = plugins();
    let args = ["--request-timeout", "1", "--header-timeout", "1"];
    let ward = HttpWard::start(&dir, &args, &[]).await;
    let response = ward.post(&LISTEN_HEADERS, listen_body(1)).await;
    assert_eq!(response.status(), 200);
    let mut response = response;
    // Time passing beyond the 1 s deadline and header timeout is what is
    // under test: no signal stands in for it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    dir.plugin("hello", "hello2");
    let mut seen = String::new();
    while !seen.contains("notifications/tools/list_changed") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no list_changed; stream so far: {seen}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Connections over `--max-connections` get a 503 at once and are closed;
/// the slot is free again when a held connection goes.
#[tokio::test]
async fn connections_over_the_cap_are_refused_and_closed() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--max-connections", "2"], &[]).await;
    let held_a = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let _held_b = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(ward.addr()).await.unwrap();
    let started = std::time::Instant::now();
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "{}{INIT}",
        raw_head(&ward, &format!("Content-Length: {}\r\n", INIT.len()))
    );
    let _ = third.write_all(request.as_bytes()).await;
    let (response, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after:"),
        "{response}"
    );
    assert!(closed, "the refused connection stays open: {response}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let error = raw_json(&response);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-connections"),
        "{error}"
    );
    // A freed slot serves again.
    drop(held_a);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match reqwest::Client::new()
            .post(&ward.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INIT)
            .send()
            .await
        {
            Ok(response) if response.status() == 200 => break,
            other => assert!(std::time::Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Legacy sessions over `--max-sessions` are refused with 503 until one ends.
#[tokio::test]
async fn sessions_over_the_cap_are_refused() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--max-sessions", "2"], &[]).await;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let response = ward.post(&[], INIT).await;
        assert_eq!(response.status(), 200);
        sessions.push(
            response.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let response = ward.post(&[], INIT).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 1, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-sessions"),
        "{body}"
    );
    // Ending a session frees its slot.
    let ended = reqwest::Client::new()
        .delete(&ward.url)
        .header("mcp-session-id", &sessions[0])
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{ended:?}");
    assert_eq!(ward.post(&[], INIT).await.status(), 200);
}

/// Long-lived streams (a session's GET stream, `subscriptions/listen`) over
/// `--max-streams` are refused with 503; a closed stream frees its slot.
#[tokio::test]
async fn streams_over_the_cap_are_refused() {
    let dir = plugins();
    let ward = HttpWard::start(&dir, &["--max-streams", "1"], &[]).await;
    let init = ward.post(&[], INIT).await;
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let get = reqwest::Client::new()
        .get(&ward.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let refused = ward.post(&LISTEN_HEADERS, listen_body(5)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["id"], 5, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-streams"),
        "{body}"
    );
    // Ordinary requests still pass.
    assert_eq!(ward.post(&[], INIT).await.status(), 200);
    drop(get);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = ward.post(&LISTEN_HEADERS, listen_body(6)).await.status();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

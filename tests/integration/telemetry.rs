//! OpenTelemetry traces (docs/telemetry.md): ward started with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` exports its spans over OTLP/HTTP (JSON
//! here) to a receiver the test runs on loopback; the parent of a request's
//! span is the `traceparent` the client sent, in `_meta` or, over HTTP, as a
//! header. ward exports the spans it still holds as it exits: the HTTP test
//! sends SIGTERM first and then reads what arrived.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use serde_json::{json, Value};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::util::{is_error, obj, serve_command, spawn_http, text, Dir, Era, Ward};

/// The trace and span a client made up, as its `traceparent` says.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// One exported span, flattened from OTLP/JSON.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    /// 2 SERVER, 3 CLIENT, 1 INTERNAL.
    kind: i64,
    trace: String,
    id: String,
    parent: String,
    attributes: HashMap<String, Value>,
    /// 2 ERROR.
    status: i64,
    resource: HashMap<String, Value>,
}

impl Span {
    fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }
}

/// OTLP/JSON attributes as a map; `intValue` (a string in OTLP/JSON) as a
/// number.
fn attributes(list: &Value) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    for pair in list.as_array().into_iter().flatten() {
        let (Some(key), value) = (pair["key"].as_str(), &pair["value"]) else {
            continue;
        };
        let value = if let Some(int) = value.get("intValue") {
            match int {
                Value::String(s) => json!(s.parse::<i64>().unwrap()),
                other => other.clone(),
            }
        } else if let Value::Object(one) = value {
            // {"stringValue": ...}, {"boolValue": ...}, ...
            one.values().next().cloned().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        map.insert(key.to_owned(), value);
    }
    map
}

/// The spans of one OTLP/JSON `ExportTraceServiceRequest`.
fn spans_of(request: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&resource_spans["resource"]["attributes"]);
        for scope in resource_spans["scopeSpans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let string = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                out.push(Span {
                    name: string("name"),
                    kind: span["kind"].as_i64().unwrap_or_default(),
                    trace: string("traceId"),
                    id: string("spanId"),
                    parent: string("parentSpanId"),
                    attributes: attributes(&span["attributes"]),
                    status: span["status"]["code"].as_i64().unwrap_or_default(),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

/// An OTLP/HTTP receiver on loopback: its endpoint (for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`), and the spans POSTed to `/v1/traces` as
/// they arrive.
struct Receiver {
    endpoint: String,
    spans: mpsc::UnboundedReceiver<Span>,
    seen: Vec<Span>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, spans) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let traces = request.uri().path() == "/v1/traces";
                            let body = request.into_body().collect().await;
                            let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                            if traces {
                                let json: Value = serde_json::from_slice(&body)
                                    .unwrap_or_else(|e| panic!("not OTLP/JSON ({e}): {body:?}"));
                                for span in spans_of(&json) {
                                    let _ = tx.send(span);
                                }
                            }
                            let status = if traces { 200 } else { 404 };
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            spans,
            seen: Vec::new(),
        }
    }

    /// Points `cmd` (a `ward serve` command) at this receiver, in OTLP/JSON,
    /// clearing any other OpenTelemetry setting of the test's environment.
    fn configure(&self, cmd: &mut Command) {
        for var in [
            "OTEL_SDK_DISABLED",
            "OTEL_TRACES_EXPORTER",
            "OTEL_TRACES_SAMPLER",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_SERVICE_NAME",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &self.endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
            .env(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=test",
            );
    }

    /// Waits (at most 60 s) until the spans received include one named
    /// each of `names`.
    async fn wait_for(&mut self, names: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !names
            .iter()
            .all(|name| self.seen.iter().any(|s| s.name == *name))
        {
            match tokio::time::timeout_at(deadline, self.spans.recv()).await {
                Ok(Some(span)) => self.seen.push(span),
                _ => panic!(
                    "spans {names:?} not all exported within 60 s; got {:?}",
                    self.seen.iter().map(|s| &s.name).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The span named `name` whose parent is `parent`.
    fn child(&self, name: &str, parent: &Span) -> &Span {
        self.seen
            .iter()
            .find(|s| s.name == name && s.parent == parent.id)
            .unwrap_or_else(|| panic!("no span {name} under {parent:#?}"))
    }

    /// The span named `name` (the first, if several).
    fn span(&self, name: &str) -> &Span {
        self.seen
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"))
    }
}

#[tokio::test]
async fn a_tool_call_over_stdio_is_traced_under_the_clients_span() {
    let mut receiver = Receiver::start().await;
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    // The fetch plugin may reach the receiver, which answers it 404.
    let port = receiver.endpoint.rsplit(':').next().unwrap().to_owned();
    dir.plugin("fetch", "fetch").policy(
        "fetch",
        &format!("[network]\nallow = [\"127.0.0.1:{port}\"]\n"),
    );
    let mut cmd = serve_command(dir.path());
    receiver.configure(&mut cmd);
    // Batches every 100 ms: the spans do not wait for the exit (which the
    // HTTP test checks), so a slow exit cannot lose them.
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "100");
    // A cache of its own: hello is compiled and run to list it, not listed
    // from a warm cache (which has no `list` span).
    let cache = tempfile::tempdir().unwrap();
    cmd.env("WARD_CACHE_DIR", cache.path());
    let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;

    let mut params =
        CallToolRequestParams::new("hello_greet").with_arguments(obj(json!({"name": "Ada"})));
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(format!("00-{TRACE}-{PARENT}-01"));
    meta.set_tracestate("rojo=00f067aa0ba902b7");
    params.meta = Some(meta);
    let result = ward.client.call_tool(params).await.unwrap();
    assert!(text(&result).contains("Ada"), "{result:?}");
    // An unknown tool: a JSON-RPC error, recorded on its span.
    assert!(ward.try_call("hello_nope", json!({})).await.is_err());
    let url = format!("{}/page", receiver.endpoint);
    let fetched = ward.call("fetch_get", json!({ "url": url })).await;
    assert!(is_error(&fetched), "{fetched:?}");

    receiver
        .wait_for(&[
            "tools/call hello_greet",
            "instantiate hello",
            "call-tool hello",
            "tools/call hello_nope",
            "load hello",
            "compile hello",
            "list hello",
            "initialize",
            "tools/call fetch_get",
            "call-tool fetch",
            "GET",
        ])
        .await;
    let request = receiver.span("tools/call hello_greet");
    assert_eq!(request.kind, 2, "SERVER: {request:#?}");
    assert_eq!(request.trace, TRACE, "{request:#?}");
    assert_eq!(request.parent, PARENT, "{request:#?}");
    for (key, value) in [
        ("mcp.method.name", json!("tools/call")),
        ("gen_ai.tool.name", json!("hello_greet")),
        ("gen_ai.operation.name", json!("execute_tool")),
        ("mcp.protocol.version", json!("2025-11-25")),
        ("network.transport", json!("pipe")),
        ("ward.plugin", json!("hello")),
    ] {
        assert_eq!(request.attr(key), &value, "{key}: {request:#?}");
    }
    assert!(
        request.attr("jsonrpc.request.id").is_string(),
        "{request:#?}"
    );
    assert!(
        request.attr("ward.fuel").as_i64().unwrap() > 0,
        "{request:#?}"
    );
    assert!(
        request.attr("ward.memory.peak_bytes").as_i64().unwrap() > 0,
        "{request:#?}"
    );
    assert!(request.attr("error.type").is_null(), "{request:#?}");
    assert_eq!(request.resource["service.name"], "ward", "{request:#?}");
    assert_eq!(request.resource["deployment.environment.name"], "test");

    // The sandbox's steps are its children.
    for name in ["instantiate hello", "call-tool hello"] {
        let child = receiver.child(name, request);
        assert_eq!(child.trace, TRACE, "{child:#?}");
        assert_eq!(child.attr("ward.plugin"), "hello", "{child:#?}");
    }
    let guest = receiver.span("call-tool hello");
    assert_eq!(
        guest.attr("ward.fuel"),
        request.attr("ward.fuel"),
        "{guest:#?}"
    );

    let failed = receiver.span("tools/call hello_nope");
    assert_eq!(failed.attr("error.type"), "-32602", "{failed:#?}");
    assert_eq!(failed.attr("rpc.response.status_code"), "-32602");
    assert_eq!(failed.status, 2, "ERROR: {failed:#?}");
    // Without a traceparent, a request starts a trace of its own.
    assert!(
        failed.parent.is_empty() && failed.trace != TRACE,
        "{failed:#?}"
    );

    // Loading: a trace per plugin, compiling (or the cache) and listing in it.
    let load = receiver.span("load hello");
    assert!(load.parent.is_empty(), "{load:#?}");
    for name in ["compile hello", "instantiate hello", "list hello"] {
        assert_eq!(receiver.child(name, load).trace, load.trace);
    }
    assert!(receiver
        .span("compile hello")
        .attr("ward.cache.hit")
        .is_boolean());

    // A plugin's outgoing HTTP request: a CLIENT span under its guest call.
    let fetch = receiver.span("tools/call fetch_get");
    assert_eq!(fetch.attr("error.type"), "tool_error", "{fetch:#?}");
    let guest = receiver.child("call-tool fetch", fetch);
    let get = receiver.child("GET", guest);
    assert_eq!(get.kind, 3, "CLIENT: {get:#?}");
    for (key, value) in [
        ("http.request.method", json!("GET")),
        ("server.address", json!("127.0.0.1")),
        ("server.port", json!(port.parse::<i64>().unwrap())),
        ("http.response.status_code", json!(404)),
        ("error.type", json!("404")),
    ] {
        assert_eq!(get.attr(key), &value, "{key}: {get:#?}");
    }
    ward.client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_http_request_is_traced_under_its_traceparent_header() {
    let mut receiver = Receiver::start().await;
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let mut cmd = serve_command(dir.path());
    cmd.args(["--http", "127.0.0.1:0"])
        .env("WARD_AUTH_TOKEN", "tel3metry-token");
    receiver.configure(&mut cmd);
    // No batch goes out on schedule: only the flush at exit sends the spans.
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    let (mut child, url, log) = spawn_http(cmd).await;

    // One stateless (2026-07-28) tools/call, its context in the header only.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "hello_greet",
        "arguments": {"name": "Ada"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }});
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "hello_greet")
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .bearer_auth("tel3metry-token")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = response.text().await.unwrap();
    assert!(answer.contains("Ada"), "{answer}");

    // SIGTERM: ward shuts down gracefully and exports its last spans.
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap_or_else(|_| panic!("ward did not exit on SIGTERM; log:\n{}", log.get()))
        .unwrap();
    assert!(status.success(), "{status}; log:\n{}", log.get());

    receiver
        .wait_for(&["tools/call hello_greet", "call-tool hello"])
        .await;
    let request = receiver.span("tools/call hello_greet");
    assert_eq!(
        (request.trace.as_str(), request.parent.as_str()),
        (TRACE, PARENT),
        "{request:#?}"
    );
    for (key, value) in [
        ("jsonrpc.request.id", json!("7")),
        ("mcp.protocol.version", json!("2026-07-28")),
        ("network.transport", json!("tcp")),
        ("network.protocol.name", json!("http")),
        ("ward.plugin", json!("hello")),
        // The caller, as the static token names it; never the token.
        ("user.id", json!("token")),
    ] {
        assert_eq!(request.attr(key), &value, "{key}: {request:#?}");
    }
    assert!(!format!("{request:?}").contains("tel3metry-token"));
    assert_eq!(receiver.span("call-tool hello").parent, request.id);
}

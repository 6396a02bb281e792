//! End-to-end tests of the protocol layer: rmcp's own client (both eras)
//! and raw lines against [`WardServer`] over in-memory pipes, with a fake
//! backend instead of plugins.

#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, CompleteResult, CompletionInfo,
    ContentBlock as Content, GetPromptResult, Implementation, JsonObject, LoggingLevel,
    PaginatedRequestParams, Prompt, PromptMessage, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResult, Reference, RequestMetaObject, Resource, ResourceContents,
    Role as PromptMessageRole, ServerNotification, SetLevelRequestParams, SubscribeRequestParams,
    SubscriptionFilter, Tool,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt as _, PeerRequestOptions, RunningService,
};
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc};

use super::{ServerOptions, WardServer};
use crate::backend::{
    Backend, BackendError, CallContext, Catalog, CatalogChange, GuestEvent, ServerEvent,
};

/// A backend with tools `echo`, `chatty` (logs at every level, reports
/// progress 1..=3 of 3), `wait` (returns only when cancelled, and records
/// that), one resource, one prompt, and extra tools `t00`.. for pagination.
struct FakeBackend {
    catalog: Arc<Catalog>,
    events: broadcast::Sender<ServerEvent>,
    cancelled: Mutex<Vec<String>>,
    /// Signalled when `wait` starts, so a test cancels a running call.
    started: mpsc::UnboundedSender<()>,
}

fn tool(name: &str) -> Tool {
    Tool::new(
        name.to_owned(),
        format!("the {name} tool"),
        Arc::new(serde_json::from_value::<JsonObject>(json!({"type": "object"})).unwrap()),
    )
}

impl FakeBackend {
    fn new(extra_tools: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<()>) {
        let mut tools: Vec<Tool> = ["chatty", "echo", "wait"].into_iter().map(tool).collect();
        tools.extend((0..extra_tools).map(|i| tool(&format!("t{i:02}"))));
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let catalog = Catalog {
            tools,
            resources: vec![Resource::new("test://static", "static")],
            resource_templates: vec![],
            prompts: vec![Prompt::new(
                "hello",
                Some("says hello"),
                None::<Vec<rmcp::model::PromptArgument>>,
            )],
        };
        let (started, started_rx) = mpsc::unbounded_channel();
        let backend = Arc::new(Self {
            catalog: Arc::new(catalog),
            events: broadcast::channel(16).0,
            cancelled: Mutex::default(),
            started,
        });
        (backend, started_rx)
    }
}

impl Backend for FakeBackend {
    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.events.subscribe()
    }

    async fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: CallContext,
    ) -> Result<CallToolResult, BackendError> {
        match name {
            "echo" => Ok(CallToolResult::success(vec![Content::text(
                Value::Object(arguments).to_string(),
            )])),
            "chatty" => {
                let events = cx
                    .events
                    .expect("the protocol layer passes an event channel");
                for level in [
                    LoggingLevel::Debug,
                    LoggingLevel::Info,
                    LoggingLevel::Warning,
                    LoggingLevel::Error,
                ] {
                    let _ = events.send(GuestEvent::Log {
                        level,
                        logger: "fake".into(),
                        message: format!("{level:?}"),
                    });
                }
                for step in 1..=3 {
                    let _ = events.send(GuestEvent::Progress {
                        progress: f64::from(step),
                        total: Some(3.0),
                        message: Some(format!("step {step}")),
                    });
                    tokio::task::yield_now().await;
                }
                Ok(CallToolResult::success(vec![Content::text("done")]))
            }
            "wait" => {
                let _ = self.started.send(());
                cx.cancel.cancelled().await;
                // A guest interrupted mid-way may still report things; none
                // of it may reach the client.
                if let Some(events) = cx.events {
                    let _ = events.send(GuestEvent::Progress {
                        progress: 9.0,
                        total: None,
                        message: None,
                    });
                }
                self.cancelled.lock().unwrap().push(name.to_owned());
                Ok(CallToolResult::success(vec![Content::text("cancelled")]))
            }
            _ if self.catalog.tools.iter().any(|t| t.name == name) => Ok(CallToolResult::success(
                vec![Content::text(name.to_owned())],
            )),
            _ => Err(BackendError::NotFound {
                what: "tool",
                name: name.to_owned(),
            }),
        }
    }

    async fn read_resource(
        &self,
        uri: &str,
        _cx: CallContext,
    ) -> Result<ReadResourceResult, BackendError> {
        if uri == "test://static" {
            Ok(ReadResourceResult::new(vec![ResourceContents::text(
                "static text",
                uri,
            )]))
        } else {
            Err(BackendError::NotFound {
                what: "resource",
                name: uri.to_owned(),
            })
        }
    }

    async fn get_prompt(
        &self,
        name: &str,
        _arguments: JsonObject,
        _cx: CallContext,
    ) -> Result<GetPromptResult, BackendError> {
        if name == "hello" {
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                PromptMessageRole::User,
                "hello",
            )]))
        } else {
            Err(BackendError::NotFound {
                what: "prompt",
                name: name.to_owned(),
            })
        }
    }

    async fn complete(
        &self,
        _reference: Reference,
        _argument: &str,
        value: &str,
        _context: Vec<(String, String)>,
        _cx: CallContext,
    ) -> Result<CompleteResult, BackendError> {
        Ok(CompleteResult::new(
            CompletionInfo::new(vec![format!("{value}1"), format!("{value}2")]).unwrap(),
        ))
    }
}

/// What the test client heard, in order.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Log(LoggingLevel, String),
    Progress(f64, Option<String>),
    ToolsChanged,
    ResourcesChanged,
    PromptsChanged,
    Updated(String),
}

#[derive(Clone)]
struct Recorder {
    tx: mpsc::UnboundedSender<Heard>,
    info: rmcp::model::ClientConfig,
}

impl ClientHandler for Recorder {
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        let text = params.data.as_str().unwrap_or_default().to_owned();
        let _ = self.tx.send(Heard::Log(params.level, text));
    }
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        let _ = self
            .tx
            .send(Heard::Progress(params.progress, params.message));
    }
    async fn on_tool_list_changed(&self, _: rmcp::service::NotificationContext<RoleClient>) {
        let _ = self.tx.send(Heard::ToolsChanged);
    }
    async fn on_resource_list_changed(&self, _: rmcp::service::NotificationContext<RoleClient>) {
        let _ = self.tx.send(Heard::ResourcesChanged);
    }
    async fn on_prompt_list_changed(&self, _: rmcp::service::NotificationContext<RoleClient>) {
        let _ = self.tx.send(Heard::PromptsChanged);
    }
    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        let _ = self.tx.send(Heard::Updated(params.uri));
    }
    fn get_info(&self) -> rmcp::model::ClientConfig {
        self.info.clone()
    }
}

struct Harness {
    client: RunningService<RoleClient, Recorder>,
    heard: mpsc::UnboundedReceiver<Heard>,
    backend: Arc<FakeBackend>,
    started: mpsc::UnboundedReceiver<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

enum Era {
    Legacy(ProtocolVersion),
    Stateless,
}

async fn connect(era: Era, options: ServerOptions, extra_tools: usize) -> Harness {
    let (backend, started) = FakeBackend::new(extra_tools);
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_io);
    let server = tokio::spawn(
        WardServer::with_options(backend.clone(), options).serve_io(server_read, server_write),
    );
    let (tx, heard) = mpsc::unbounded_channel();
    let mut info = rmcp::model::ClientConfig::default();
    info.client_info = Implementation::new("test-client", "0");
    let recorder = Recorder { tx, info };
    let client = match era {
        Era::Legacy(version) => {
            let mut recorder = recorder;
            recorder.info.protocol_version = version.clone();
            let client = recorder.serve(client_io).await.expect("legacy initialize");
            assert_eq!(client.peer().peer_info().unwrap().protocol_version, version);
            client
        }
        Era::Stateless => recorder
            .serve_with_lifecycle(
                client_io,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("discover"),
    };
    Harness {
        client,
        heard,
        backend,
        started,
        server,
    }
}

async fn next_heard(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("a notification in time")
        .expect("the client is alive")
}

fn call(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
}

fn error_code(error: rmcp::ServiceError) -> i32 {
    match error {
        rmcp::ServiceError::McpError(error) => error.code.0,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_eras_list_call_and_reject_unknown_tools() {
    for version in [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25] {
        let h = connect(Era::Legacy(version.clone()), ServerOptions::default(), 0).await;
        let info = h.client.peer().peer_info().unwrap();
        assert_eq!(info.server_info.as_ref().unwrap().name, "ward");
        let caps = &info.capabilities;
        assert_eq!(caps.tools.as_ref().unwrap().list_changed, Some(true));
        assert_eq!(caps.resources.as_ref().unwrap().subscribe, Some(true));
        assert!(caps.logging.is_some() && caps.completions.is_some());

        let tools = h.client.list_tools(None).await.unwrap();
        let names: Vec<_> = tools.tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, ["chatty", "echo", "wait"]);
        assert_eq!(
            tools.ttl_ms, None,
            "{version}: legacy results keep the legacy shape"
        );

        let mut args = JsonObject::new();
        args.insert("x".into(), json!(1));
        let result = h
            .client
            .call_tool(call("echo").with_arguments(args))
            .await
            .unwrap();
        assert_eq!(result.content[0].as_text().unwrap().text, r#"{"x":1}"#);

        let error = h.client.call_tool(call("nope")).await.unwrap_err();
        assert_eq!(error_code(error), -32602);

        let error = h
            .client
            .read_resource(ReadResourceRequestParams::new("test://missing"))
            .await
            .unwrap_err();
        match error {
            rmcp::ServiceError::McpError(error) => {
                assert_eq!(error.code.0, -32602);
                assert_eq!(error.data, Some(json!({"uri": "test://missing"})));
            }
            other => panic!("{other:?}"),
        }
        let prompts = h.client.list_prompts(None).await.unwrap();
        assert_eq!(prompts.prompts.len(), 1);
        h.client.cancel().await.unwrap();
        h.server.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn pagination_walks_every_page_and_rejects_bad_cursors() {
    let options = ServerOptions {
        page_size: 2,
        ..ServerOptions::default()
    };
    let h = connect(Era::Legacy(ProtocolVersion::V_2025_11_25), options, 3).await;
    let mut names = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = h
            .client
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await
            .unwrap();
        assert!(page.tools.len() <= 2);
        names.extend(page.tools.iter().map(|t| t.name.to_string()));
        pages += 1;
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["chatty", "echo", "t00", "t01", "t02", "wait"]);
    assert_eq!(h.client.list_all_tools().await.unwrap().len(), 6);

    let error = h
        .client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        ))
        .await
        .unwrap_err();
    assert_eq!(error_code(error), -32602);
}

#[tokio::test]
async fn logs_are_filtered_by_level_and_progress_arrives_in_order() {
    let mut h = connect(
        Era::Legacy(ProtocolVersion::V_2025_06_18),
        ServerOptions::default(),
        0,
    )
    .await;
    h.client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    let handle = h
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call("chatty"))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    handle.await_response().await.unwrap();
    let mut heard = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), h.heard.recv()).await
    {
        heard.push(event);
    }
    assert_eq!(
        heard,
        [
            Heard::Log(LoggingLevel::Warning, "Warning".into()),
            Heard::Log(LoggingLevel::Error, "Error".into()),
            Heard::Progress(1.0, Some("step 1".into())),
            Heard::Progress(2.0, Some("step 2".into())),
            Heard::Progress(3.0, Some("step 3".into())),
        ]
    );
}

#[tokio::test]
async fn cancellation_reaches_the_backend_and_silences_the_request() {
    let mut h = connect(
        Era::Legacy(ProtocolVersion::V_2025_11_25),
        ServerOptions::default(),
        0,
    )
    .await;
    let handle = h
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call("wait"))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.started.recv())
        .await
        .unwrap()
        .unwrap();
    handle.cancel(Some("test".into())).await.unwrap();
    for _ in 0..100 {
        if !h.backend.cancelled.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*h.backend.cancelled.lock().unwrap(), ["wait"]);
    // The progress the guest sent after the cancel never arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), h.heard.recv())
            .await
            .is_err()
    );
    // And the server still serves.
    h.client.list_tools(None).await.unwrap();
}

#[tokio::test]
async fn server_events_become_list_changed_and_resource_updates() {
    let mut h = connect(
        Era::Legacy(ProtocolVersion::V_2025_11_25),
        ServerOptions::default(),
        0,
    )
    .await;
    h.client
        .subscribe(SubscribeRequestParams::new("test://static"))
        .await
        .unwrap();
    let send = |event| h.backend.events.send(event).unwrap();
    send(ServerEvent::CatalogChanged(CatalogChange {
        tools: true,
        resources: false,
        prompts: true,
    }));
    assert_eq!(next_heard(&mut h.heard).await, Heard::ToolsChanged);
    assert_eq!(next_heard(&mut h.heard).await, Heard::PromptsChanged);
    send(ServerEvent::ResourceUpdated("test://other".into()));
    send(ServerEvent::ResourceUpdated("test://static".into()));
    assert_eq!(
        next_heard(&mut h.heard).await,
        Heard::Updated("test://static".into())
    );
    send(ServerEvent::Log {
        level: LoggingLevel::Debug,
        logger: "ward".into(),
        message: "quiet".into(),
    });
    send(ServerEvent::Log {
        level: LoggingLevel::Warning,
        logger: "ward".into(),
        message: "loud".into(),
    });
    assert_eq!(
        next_heard(&mut h.heard).await,
        Heard::Log(LoggingLevel::Warning, "loud".into())
    );
    h.client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new("test://static"))
        .await
        .unwrap();
    send(ServerEvent::ResourceUpdated("test://static".into()));
    send(ServerEvent::CatalogChanged(CatalogChange {
        tools: false,
        resources: true,
        prompts: false,
    }));
    assert_eq!(next_heard(&mut h.heard).await, Heard::ResourcesChanged);
}

#[tokio::test]
async fn stateless_era_discovers_lists_with_cache_hints_and_logs_per_request() {
    let options = ServerOptions {
        page_size: 2,
        ..ServerOptions::default()
    };
    let mut h = connect(Era::Stateless, options, 0).await;
    let tools = h.client.list_tools(None).await.unwrap();
    assert_eq!(tools.tools.len(), 2);
    assert_eq!(tools.ttl_ms, Some(0));
    assert_eq!(tools.cache_scope, Some(rmcp::model::CacheScope::Public));
    assert!(tools.next_cursor.is_some());
    assert_eq!(h.client.list_all_tools().await.unwrap().len(), 3);

    let error = h.client.call_tool(call("nope")).await.unwrap_err();
    assert_eq!(error_code(error), -32602);

    // Without a level in `_meta` a stateless request gets no logs, only progress.
    h.client.call_tool(call("chatty")).await.unwrap();
    let mut heard = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), h.heard.recv()).await
    {
        heard.push(event);
    }
    assert!(
        heard.iter().all(|e| matches!(e, Heard::Progress(..))),
        "{heard:?}"
    );
    assert_eq!(heard.len(), 3);

    // With `io.modelcontextprotocol/logLevel` it gets what it asked for.
    let mut meta = RequestMetaObject::new();
    meta.set_log_level(LoggingLevel::Error);
    let handle = h
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call("chatty"))),
            PeerRequestOptions::no_options().with_meta(meta),
        )
        .await
        .unwrap();
    handle.await_response().await.unwrap();
    let mut logs = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), h.heard.recv()).await
    {
        if let Heard::Log(level, _) = event {
            logs.push(level);
        }
    }
    assert_eq!(logs, [LoggingLevel::Error]);
}

#[tokio::test]
async fn stateless_listen_streams_server_events() {
    let h = connect(Era::Stateless, ServerOptions::default(), 0).await;
    let filter = SubscriptionFilter::builder()
        .tools_list_changed()
        .resource_subscriptions(["test://static".to_owned()])
        .build();
    let mut subscription = h.client.peer().listen(filter).await.unwrap();
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));
    let send = |event| h.backend.events.send(event).unwrap();
    // Prompts were not asked for; other URIs were not subscribed.
    send(ServerEvent::CatalogChanged(CatalogChange {
        tools: false,
        resources: false,
        prompts: true,
    }));
    send(ServerEvent::ResourceUpdated("test://other".into()));
    send(ServerEvent::CatalogChanged(CatalogChange {
        tools: true,
        resources: false,
        prompts: false,
    }));
    send(ServerEvent::ResourceUpdated("test://static".into()));
    let first = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, ServerNotification::ToolListChangedNotification(_)),
        "{first:?}"
    );
    let second = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match second {
        ServerNotification::ResourceUpdatedNotification(n) => {
            assert_eq!(n.params.uri, "test://static")
        }
        other => panic!("{other:?}"),
    }
    subscription.cancel().await.unwrap();
    h.client.list_tools(None).await.unwrap();
}

/// Writes `lines` to a fresh server and returns every reply line, parsed.
async fn raw_session(lines: Vec<Vec<u8>>, options: ServerOptions) -> Vec<Value> {
    let (backend, _started) = FakeBackend::new(0);
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_io);
    let server = tokio::spawn(
        WardServer::with_options(backend, options).serve_io(server_read, server_write),
    );
    let (client_read, mut client_write) = tokio::io::split(client_io);
    let writer = tokio::spawn(async move {
        for line in lines {
            client_write.write_all(&line).await.unwrap();
        }
        // EOF for the server (dropping one half of a split duplex is not).
        client_write.shutdown().await.unwrap();
    });
    // Read every line until the server closes its output, which it does
    // once the input reached EOF and in-flight requests were answered.
    let mut reader = BufReader::new(client_read);
    let mut replies = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
            .await
            .expect("the server answers and then closes its output")
            .unwrap();
        if n == 0 {
            break;
        }
        replies.push(serde_json::from_str(&line).expect("every output line is JSON"));
    }
    writer.await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    replies
}

fn line(text: &str) -> Vec<u8> {
    format!("{text}\n").into_bytes()
}

#[tokio::test]
async fn hostile_lines_get_errors_and_the_server_keeps_serving() {
    let init = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let mut lines = vec![
        line("this is not json"), // the very first line
        line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), // a notification first: no reply
        line(init),
        line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        line(r#"{"jsonrpc":"2.0","id":1,"method":"tools/li"#),
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xc3\x28\"}\n".to_vec(),
        line(r#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#),
        line("17"),
        line(r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#),
        line(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"arguments":{}}}"#),
        line(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}"#),
    ];
    // A multi-megabyte line over the (test-sized) cap, then one under it.
    let mut huge = vec![b'x'; 3 << 20];
    huge.push(b'\n');
    lines.push(huge);
    let big_arg = "y".repeat(512 << 10);
    lines.push(line(&format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{{"s":"{big_arg}"}}}}}}"#
    )));
    // A call without a progress token gets no progress notifications.
    lines.push(line(
        r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"chatty"}}"#,
    ));
    lines.push(line(r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#));

    let options = ServerOptions {
        max_line_bytes: 1 << 20,
        ..ServerOptions::default()
    };
    let replies = raw_session(lines, options).await;
    let (notifications, replies): (Vec<Value>, Vec<Value>) =
        replies.into_iter().partition(|r| r.get("method").is_some());
    assert_eq!(replies.len(), 13, "{replies:#?}");
    // The default level (info) lets three of the four guest logs through;
    // with no progressToken, no progress.
    let methods: Vec<_> = notifications
        .iter()
        .map(|n| n["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["notifications/message"; 3]);
    let code = |r: &Value| r["error"]["code"].as_i64();
    let find = |id: Value| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no reply for {id}: {replies:#?}"))
    };
    // Replies to bad lines without a readable id come in input order.
    let anonymous: Vec<_> = replies
        .iter()
        .filter(|r| r["id"].is_null())
        .map(code)
        .collect();
    assert_eq!(
        anonymous,
        [
            Some(-32700),
            Some(-32700),
            Some(-32700),
            Some(-32600),
            Some(-32600),
            Some(-32600)
        ]
    );
    assert!(replies
        .iter()
        .filter(|r| r["id"].is_null())
        .all(|r| r.get("id").is_some()));
    let too_long = replies.iter().filter(|r| r["id"].is_null()).nth(5).unwrap();
    assert!(
        too_long["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too long"),
        "{too_long}"
    );

    assert_eq!(find(json!("init"))["result"]["serverInfo"]["name"], "ward");
    assert_eq!(code(find(json!(4))), Some(-32601));
    assert_eq!(code(find(json!(5))), Some(-32602));
    assert_eq!(code(find(json!(6))), Some(-32602));
    assert_eq!(find(json!(6))["error"]["data"], json!({"name": "nope"}));
    assert!(
        find(json!(7))["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .len()
            > 512 << 10
    );
    assert_eq!(find(json!(8))["result"]["content"][0]["text"], "done");
    assert_eq!(
        find(json!(9))["result"]["tools"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn stateless_raw_requests_need_meta_and_eof_ends_the_server() {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let lines = vec![
        line(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#
        )),
        line(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#),
        line(&format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{{{meta}}}}}"#
        )),
    ];
    let replies = raw_session(lines, ServerOptions::default()).await;
    let discover = &replies[0];
    assert_eq!(discover["id"], 1);
    let versions = discover["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-06-18")));
    assert_eq!(
        replies[1]["error"]["code"], -32602,
        "missing _meta: {}",
        replies[1]
    );
    assert_eq!(replies[2]["result"]["ttlMs"], 0);
    assert_eq!(replies[2]["result"]["cacheScope"], "public");
}

/// Every request rmcp models, by its variant of `ClientRequest`, so the
/// test below can tell that it sent each one. `ClientRequest` is
/// `#[non_exhaustive]`, so a new rmcp that models a new request is not a
/// compile error here; rmcp is pinned (`=` in Cargo.toml), and its upgrade
/// must add the request to this list and to [`every_modeled_request`].
fn variant(request: &ClientRequest) -> usize {
    match request {
        ClientRequest::PingRequest(_) => 0,
        ClientRequest::InitializeRequest(_) => 1,
        ClientRequest::DiscoverRequest(_) => 2,
        ClientRequest::CompleteRequest(_) => 3,
        ClientRequest::SetLevelRequest(_) => 4,
        ClientRequest::GetPromptRequest(_) => 5,
        ClientRequest::ListPromptsRequest(_) => 6,
        ClientRequest::ListResourcesRequest(_) => 7,
        ClientRequest::ListResourceTemplatesRequest(_) => 8,
        ClientRequest::ReadResourceRequest(_) => 9,
        ClientRequest::SubscriptionsListenRequest(_) => 10,
        ClientRequest::SubscribeRequest(_) => 11,
        ClientRequest::UnsubscribeRequest(_) => 12,
        ClientRequest::CallToolRequest(_) => 13,
        ClientRequest::ListToolsRequest(_) => 14,
        ClientRequest::GetTaskRequest(_) => 15,
        ClientRequest::UpdateTaskRequest(_) => 16,
        ClientRequest::CancelTaskRequest(_) => 17,
        ClientRequest::ListSkillsRequest(_) => 18,
        ClientRequest::GetSkillRequest(_) => 19,
        ClientRequest::ReadResourceDirectoryRequest(_) => 20,
        ClientRequest::CustomRequest(_) => usize::MAX,
        _ => usize::MAX,
    }
}

/// How many requests [`variant`] numbers.
const MODELED_REQUESTS: usize = 21;

/// One well-formed request of every kind rmcp models (method, params), so
/// whether the handler serves it is decided by the handler, not by a parse
/// error; plus a method nobody models.
fn every_modeled_request() -> Vec<(&'static str, Value)> {
    vec![
        ("ping", json!({})),
        (
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "raw", "version": "0"}}),
        ),
        ("server/discover", json!({})),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "hello"},
                                        "argument": {"name": "a", "value": ""}}),
        ),
        ("logging/setLevel", json!({"level": "info"})),
        ("prompts/get", json!({"name": "hello"})),
        ("prompts/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({"uri": "test://static"})),
        (
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        ),
        ("resources/subscribe", json!({"uri": "test://static"})),
        ("resources/unsubscribe", json!({"uri": "test://static"})),
        ("tools/call", json!({"name": "echo"})),
        ("tools/list", json!({})),
        ("tasks/get", json!({"taskId": "no-such-task"})),
        (
            "tasks/update",
            json!({"taskId": "no-such-task", "inputResponses": {}}),
        ),
        ("tasks/cancel", json!({"taskId": "no-such-task"})),
        ("skills/list", json!({})),
        ("skills/get", json!({"uri": "skill://none/SKILL.md"})),
        ("resources/directory/read", json!({"uri": "test://dir/"})),
    ]
}

/// Sends `requests` (ids 0..) after `preamble` and returns, per request,
/// the JSON-RPC error code it was answered with (`None`: a result, or a
/// `subscriptions/listen` stream that was acknowledged).
async fn error_codes(preamble: Vec<Vec<u8>>, requests: Vec<Value>) -> Vec<Option<i64>> {
    let (backend, _started) = FakeBackend::new(0);
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_io);
    let server = tokio::spawn(
        WardServer::with_options(backend, ServerOptions::default())
            .serve_io(server_read, server_write),
    );
    let (client_read, mut client_write) = tokio::io::split(client_io);
    let listen = requests
        .iter()
        .position(|r| r["method"] == "subscriptions/listen");
    for line in preamble
        .into_iter()
        .chain(requests.iter().map(|r| format!("{r}\n").into_bytes()))
    {
        client_write.write_all(&line).await.unwrap();
    }
    let mut codes: Vec<Option<Option<i64>>> = vec![None; requests.len()];
    let mut reader = BufReader::new(client_read);
    let mut line = String::new();
    while codes.iter().any(Option::is_none) {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("unanswered: {requests:?} {codes:?}"))
            .unwrap();
        assert!(n > 0, "the server closed its output");
        let reply: Value = serde_json::from_str(&line).unwrap();
        if reply["method"] == "notifications/subscriptions/acknowledged" {
            if let Some(listen) = listen {
                codes[listen] = Some(None);
            }
            continue;
        }
        if let Some(id) = reply["id"].as_u64() {
            codes[id as usize] = Some(reply["error"]["code"].as_i64());
        }
    }
    drop(client_write);
    server.abort();
    codes.into_iter().map(Option::unwrap).collect()
}

/// `SERVED_METHODS` (which decides -32602 vs -32601 for a malformed request)
/// is kept by hand beside the handler; this is what keeps it honest. Every
/// request rmcp models is sent well-formed in both eras: a method is served
/// if some era answers it with anything but -32601 method not found, and
/// the served methods must be exactly `SERVED_METHODS`.
#[tokio::test]
async fn served_methods_are_the_methods_the_handler_serves() {
    let samples = every_modeled_request();
    let mut seen = std::collections::BTreeSet::new();
    for (method, params) in &samples {
        let message = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        let parsed: rmcp::model::ClientJsonRpcMessage =
            serde_json::from_value(message).unwrap_or_else(|e| panic!("{method}: {e}"));
        let rmcp::model::ClientJsonRpcMessage::Request(request) = parsed else {
            panic!("{method}: not a request");
        };
        let index = variant(&request.request);
        assert!(index < MODELED_REQUESTS, "{method}: rmcp does not model it");
        assert!(seen.insert(index), "{method}: sent twice");
    }
    assert_eq!(
        seen.len(),
        MODELED_REQUESTS,
        "a request rmcp models is not sent"
    );

    let request = |id: usize, method: &str, params: &Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    // Legacy: after `initialize`, without per-request `_meta`.
    let (init, rest): (Vec<_>, Vec<_>) = samples.iter().partition(|(m, _)| *m == "initialize");
    let preamble = vec![
        format!("{}\n", request(usize::MAX, init[0].0, &init[0].1))
            .replace(&usize::MAX.to_string(), "\"init\"")
            .into_bytes(),
        line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
    ];
    let legacy = error_codes(
        preamble,
        rest.iter()
            .enumerate()
            .map(|(id, (method, params))| request(id, method, params))
            .collect(),
    )
    .await;
    // Stateless (2026-07-28): every request carries its `_meta`.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let stateless = error_codes(
        vec![],
        samples
            .iter()
            .enumerate()
            .map(|(id, (method, params))| {
                let mut params = params.clone();
                params["_meta"] = meta.clone();
                request(id, method, &params)
            })
            .collect(),
    )
    .await;

    let not_found = Some(-32601);
    let mut served = std::collections::BTreeSet::new();
    let mut unserved = std::collections::BTreeSet::new();
    for (id, (method, _)) in samples.iter().enumerate() {
        let in_legacy = rest
            .iter()
            .position(|(m, _)| m == method)
            .map(|i| legacy[i]);
        // `initialize` is answered in the preamble of the legacy session.
        let answered = *method == "initialize"
            || in_legacy.is_some_and(|code| code != not_found)
            || stateless[id] != not_found;
        match answered {
            true => served.insert(*method),
            false => unserved.insert(*method),
        };
    }
    let claimed: std::collections::BTreeSet<&str> =
        super::jsonrpc::SERVED_METHODS.iter().copied().collect();
    assert_eq!(
        served, claimed,
        "jsonrpc::SERVED_METHODS differs from what the handler serves \
         (legacy codes {legacy:?}, stateless codes {stateless:?})"
    );
    // Not vacuous: rmcp models requests ward does not serve, and they are
    // refused as not found.
    assert!(!unserved.is_empty(), "{unserved:?}");
}

//! Helpers: a temporary plugin directory, a running `ward serve` with a real
//! rmcp client over its stdin/stdout, and a recorder for notifications.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation, JsonObject, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
    ResourceUpdatedNotificationParam, Root, SamplingMessage,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Notify};

/// ward's log, and a signal for each line added to it: tests wait on the
/// signal, not on a clock.
#[derive(Clone, Default)]
pub struct Log {
    text: Arc<Mutex<String>>,
    line: Arc<Notify>,
}

impl Log {
    /// What was logged so far.
    pub fn get(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    fn push(&self, line: &str) {
        {
            let mut text = self.text.lock().unwrap();
            text.push_str(line);
            text.push('\n');
        }
        self.line.notify_one();
    }

    /// Collects the lines `reader` yields (ward's stderr), calling
    /// `each` on each first.
    pub fn follow<R>(&self, reader: R, mut each: impl FnMut(&str) + Send + 'static)
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        let log = self.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                each(&line);
                log.push(&line);
            }
        });
    }

    /// Waits (up to `secs`) until the log satisfies `done`; false if it never does.
    pub async fn wait_until(&self, secs: u64, done: impl Fn(&str) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            // A line added between the check and the wait leaves a permit.
            if done(&self.get()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.line.notified())
                .await
                .is_err()
            {
                return done(&self.get());
            }
        }
    }

    /// Waits (up to `secs`) until the log holds `needle`.
    pub async fn wait_for(&self, needle: &str, secs: u64) -> bool {
        self.wait_until(secs, |log| log.contains(needle)).await
    }
}

/// Starts `cmd` (a `ward serve --http 127.0.0.1:0` command) and returns it,
/// the URL it listens on (`http://ADDR/mcp`) and its log.
pub async fn spawn_http(mut cmd: Command) -> (Child, String, Log) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let log = Log::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    log.follow(child.stderr.take().unwrap(), move |line| {
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap_or_default();
            let _ = tx.send(url.to_owned());
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("ward did not listen; log:\n{}", log.get()));
    (child, url, log)
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A built plugin: `target/plugins/NAME.wasm` (examples) or
/// `target/test-plugins/NAME.wasm` (hostile test plugins).
pub fn wasm(name: &str) -> PathBuf {
    for dir in ["target/plugins", "target/test-plugins"] {
        let path = repo().join(dir).join(format!("{name}.wasm"));
        if path.exists() {
            return path;
        }
    }
    panic!("plugin `{name}` is not built: run `cargo xtask plugins && cargo xtask test-plugins` (or `cargo xtask test`)");
}

/// A temporary plugin directory.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies built plugin `source` in as `name.wasm`.
    pub fn plugin(&self, source: &str, name: &str) -> &Self {
        std::fs::copy(wasm(source), self.path().join(format!("{name}.wasm"))).unwrap();
        self
    }

    /// Writes `name.toml`.
    pub fn policy(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.path().join(format!("{name}.toml")), text).unwrap();
        self
    }

    /// Writes an arbitrary file.
    pub fn file(&self, name: &str, bytes: &[u8]) -> &Self {
        std::fs::write(self.path().join(name), bytes).unwrap();
        self
    }
}

/// What the server sent besides responses.
#[derive(Debug, Clone)]
pub enum Note {
    Log(LoggingMessageNotificationParam),
    Progress(ProgressNotificationParam),
    ToolsChanged,
    ResourcesChanged,
    PromptsChanged,
    Updated(ResourceUpdatedNotificationParam),
}

/// A client handler that records notifications, and answers sampling,
/// elicitation and roots requests (when its capabilities declare them)
/// while recording their params in `asked` (`{}` for roots/list). On MCP
/// 2026-07-28 rmcp's client answers input-required results through the
/// same handler and retries.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Note>,
    info: ClientConfig,
    asked: Arc<Mutex<Vec<Value>>>,
}

/// The text the test client's "model" answers with.
pub const SAMPLED: &str = "a sampled answer from the test client";

/// The root the test client works in.
pub const ROOT: &str = "file:///work/ward-tests";

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.asked
            .lock()
            .unwrap()
            .push(serde_json::to_value(&params).unwrap());
        let mut result = CreateMessageResult::new(
            SamplingMessage::assistant_text(SAMPLED),
            "test-model".into(),
        );
        result.stop_reason = Some("endTurn".into());
        Ok(result)
    }
    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.asked
            .lock()
            .unwrap()
            .push(serde_json::to_value(&params).unwrap());
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(serde_json::json!({
            "username": "ada", "email": "ada@example.com", "name": "Ada", "color": "blue",
        }));
        Ok(result)
    }
    async fn list_roots(
        &self,
        _: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        self.asked.lock().unwrap().push(serde_json::json!({}));
        let mut root = Root::new(ROOT);
        root.name = Some("work".into());
        Ok(ListRootsResult::new(vec![root]))
    }
    async fn on_logging_message(
        &self,
        p: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.tx.send(Note::Log(p));
    }
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(Note::Progress(p));
    }
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(Note::ToolsChanged);
    }
    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(Note::ResourcesChanged);
    }
    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.tx.send(Note::PromptsChanged);
    }
    async fn on_resource_updated(
        &self,
        p: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.tx.send(Note::Updated(p));
    }
}

/// Which protocol era a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize` with this version.
    Legacy(&'static str),
    /// Stateless 2026-07-28: `server/discover` and per-request `_meta`.
    Modern,
}

/// Both legacy versions and the modern one.
pub const ERAS: [Era; 3] = [
    Era::Legacy("2025-06-18"),
    Era::Legacy("2025-11-25"),
    Era::Modern,
];

/// A running `ward serve` with a connected client.
pub struct Ward {
    pub client: RunningService<RoleClient, Recorder>,
    pub notes: mpsc::UnboundedReceiver<Note>,
    pub stderr: Log,
    /// Params of the sampling and elicitation requests the client answered.
    pub asked: Arc<Mutex<Vec<Value>>>,
}

/// The `ward` binary under test.
pub fn ward_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ward")
}

/// A `ward serve` command on `dir`, sharing the test cache.
pub fn serve_command(dir: &Path) -> Command {
    let mut cmd = Command::new(ward_bin());
    cmd.arg("serve")
        .arg("--plugins")
        .arg(dir)
        .env("WARD_CACHE_DIR", repo().join("target/test-cache"))
        .env("WARD_LOG", "ward=debug,warn")
        // Tests list right after initialize: wait for every plugin, however
        // slow cold compiles are on a busy machine (plugin_dir.rs tests the bound).
        .env("WARD_STARTUP_WAIT", "600")
        .kill_on_drop(true);
    cmd
}

impl Ward {
    /// Starts ward on `dir` and connects in the legacy era (2025-11-25).
    pub async fn start(dir: &Path) -> Self {
        Self::start_in(dir, Era::Legacy("2025-11-25")).await
    }

    /// Starts ward on `dir` and connects in `era`.
    pub async fn start_in(dir: &Path, era: Era) -> Self {
        Self::start_command(serve_command(dir), era).await
    }

    /// Starts `cmd` (a `ward serve` command) and connects in `era`.
    pub async fn start_command(cmd: Command, era: Era) -> Self {
        Self::start_with(cmd, era, ClientCapabilities::default()).await
    }

    /// Starts `cmd` and connects in `era`, declaring `capabilities`.
    pub async fn start_with(cmd: Command, era: Era, capabilities: ClientCapabilities) -> Self {
        let (transport, stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log::default();
        if let Some(stderr) = stderr {
            log.follow(stderr, |_| {});
        }
        let (tx, notes) = mpsc::unbounded_channel();
        let mut info = ClientConfig::new(capabilities, Implementation::new("ward-tests", "0"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let client = match era {
            Era::Legacy(version) => {
                info.protocol_version = match version {
                    "2025-06-18" => ProtocolVersion::V_2025_06_18,
                    "2025-11-25" => ProtocolVersion::V_2025_11_25,
                    other => panic!("unknown version {other}"),
                };
                Recorder {
                    tx,
                    info,
                    asked: asked.clone(),
                }
                .serve(transport)
                .await
                .expect("initialize")
            }
            Era::Modern => Recorder {
                tx,
                info,
                asked: asked.clone(),
            }
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("discover"),
        };
        Self {
            client,
            notes,
            stderr: log,
            asked,
        }
    }

    /// Calls a tool with JSON arguments.
    pub async fn call(&self, name: &str, args: Value) -> CallToolResult {
        self.try_call(name, args)
            .await
            .unwrap_or_else(|e| panic!("calling {name}: {e}"))
    }

    /// Calls a tool, returning protocol errors.
    pub async fn try_call(
        &self,
        name: &str,
        args: Value,
    ) -> Result<CallToolResult, rmcp::ServiceError> {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
            .await
    }

    /// Names of the listed tools.
    pub async fn tool_names(&self) -> Vec<String> {
        self.client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Waits for a notification matching `f`.
    pub async fn wait_for(&mut self, what: &str, f: impl Fn(&Note) -> bool) -> Note {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.notes.recv()).await {
                Ok(Some(note)) if f(&note) => return note,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("connection closed waiting for {what}"),
                Err(_) => panic!("no {what} within 20 s; ward's log:\n{}", self.log()),
            }
        }
    }

    /// Waits until ward's log contains `needle`, and returns the log.
    pub async fn wait_log(&self, needle: &str) -> String {
        assert!(
            self.stderr.wait_for(needle, 20).await,
            "ward never logged {needle:?}; log:\n{}",
            self.log()
        );
        self.log()
    }

    /// What ward logged so far.
    pub fn log(&self) -> String {
        self.stderr.get()
    }
}

/// The concatenated text content of a result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a result is an error result.
pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// A JSON object.
pub fn obj(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        _ => panic!("not an object"),
    }
}

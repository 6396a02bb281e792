//! The audit log (`--audit-log PATH`): one JSON line per request that reaches
//! a plugin (`tools/call`, `resources/read`, `prompts/get`,
//! `completion/complete`) and per request a plugin sends to the client
//! (`sampling/createMessage`, `elicitation/create`), saying who asked what
//! of which plugin (by name and sha256), with which arguments, and how it
//! ended, at what cost. The record format is documented in
//! `docs/audit-log.md`.
//!
//! Design decisions:
//! - **Secrets never reach the file.** Arguments pass through [`Redactor`]:
//!   values under keys that match a pattern (`token|secret|password|...`),
//!   the values of the plugin's granted environment variables wherever they
//!   appear, and bearer-like strings (`Bearer ...`, JWTs, well-known API-key
//!   prefixes) become `"[redacted]"`. Long strings are cut, deep or wide
//!   values are bounded, so a record stays small whatever the client sends.
//! - **A call never waits for the disk.** Records go through a bounded
//!   channel to one writer thread that owns the file (so concurrent calls
//!   never interleave lines); when the channel is full the record is dropped
//!   and counted, and the writer writes a `dropped` record with the count as
//!   soon as it can.
//! - **Rotation by SIGHUP**: the writer reopens the path (logrotate's
//!   `postrotate kill -HUP`). The file is created `0600`.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::backend::{
    ClientAnswer, ClientHandle, ClientMethod, ClientRequests, Question, ServedBy, Suspended,
};

/// The default key pattern: an argument under a key that matches it
/// (case-insensitively, anywhere in the key) is redacted.
pub const DEFAULT_REDACT_KEYS: &str =
    "token|secret|passw|key|authorization|cookie|credential|session|private";

/// Records waiting for the writer at most; more are dropped and counted.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Strings in arguments longer than this many characters are cut.
pub const MAX_STRING_CHARS: usize = 2048;

/// Environment values shorter than this are not searched for (a one-letter
/// value would redact every word); such a value is no secret anyway.
pub const MIN_SECRET_CHARS: usize = 4;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

const MAX_DEPTH: usize = 16;
const MAX_ITEMS: usize = 256;

/// How to open the audit log.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The file, appended to.
    pub path: PathBuf,
    /// Keys whose values are redacted (a regular expression, matched
    /// case-insensitively anywhere in the key).
    pub redact_keys: String,
    /// Records buffered at most before new ones are dropped.
    pub capacity: usize,
}

impl AuditOptions {
    /// Defaults for `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            redact_keys: DEFAULT_REDACT_KEYS.into(),
            capacity: DEFAULT_CAPACITY,
        }
    }
}

enum Msg {
    Line(Vec<u8>),
    Reopen,
    Flush(std::sync::mpsc::Sender<()>),
}

/// A handle on the audit log; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
    redactor: Arc<Redactor>,
    path: Arc<Path>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditLog {
    /// Opens (creates, `0600`) the log for appending and starts its writer
    /// thread; inside a tokio runtime, also reopens the file on SIGHUP.
    /// Fails if the file cannot be opened or the pattern is invalid.
    pub fn open(options: &AuditOptions) -> Result<Self> {
        let redactor = Arc::new(Redactor::new(&options.redact_keys)?);
        let file = open_file(&options.path)?;
        let (tx, rx) = sync_channel(options.capacity.max(1));
        let log = Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            reopen: Arc::new(AtomicBool::new(false)),
            redactor,
            path: options.path.clone().into(),
        };
        let writer = Writer {
            path: options.path.clone(),
            file,
            dropped: log.dropped.clone(),
            reopen: log.reopen.clone(),
            reported: 0,
        };
        std::thread::Builder::new()
            .name("ward-audit".into())
            .spawn(move || writer.run(rx))
            .context("starting the audit log writer")?;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(reopen_on_sighup(log.clone()));
        }
        Ok(log)
    }

    /// The redactor records pass through.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Records dropped so far because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one record; never blocks. A full queue drops it and counts.
    pub fn write(&self, record: &Record) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "cannot serialise an audit record");
                return;
            }
        };
        line.push(b'\n');
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "audit log {} is falling behind: dropping records (counted in the log)",
                        self.path.display()
                    );
                }
            }
        }
    }

    /// Asks the writer to reopen the file (after rotation).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::SeqCst);
        let _ = self.tx.try_send(Msg::Reopen);
    }

    /// Waits (at most `timeout`) until every record queued so far is
    /// written; for exit, so the last records are not lost.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        let deadline = std::time::Instant::now() + timeout;
        let mut msg = Msg::Flush(ack);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = done.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
    }
}

async fn reopen_on_sighup(log: AuditLog) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => hup,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; the audit log will not be reopened");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::debug!("SIGHUP: reopening the audit log {}", log.path.display());
        log.reopen();
    }
}

fn open_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "opening the audit log {}; check that its directory exists and is writable",
                path.display()
            )
        })
}

/// The one owner of the file.
struct Writer {
    path: PathBuf,
    file: File,
    dropped: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
    reported: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut buf = Vec::new();
        let mut acks = Vec::new();
        while let Ok(first) = rx.recv() {
            // Take everything already queued: one write per burst.
            let mut next = Some(first);
            while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
                match msg {
                    Msg::Line(line) => buf.extend_from_slice(&line),
                    // In queue order: what came before goes to the old file,
                    // what comes after to the new one.
                    Msg::Reopen => self.reopen_if_asked(&mut buf),
                    Msg::Flush(ack) => acks.push(ack),
                }
                if buf.len() > 1 << 20 {
                    break;
                }
            }
            // A reopen whose message found the queue full.
            self.reopen_if_asked(&mut buf);
            let dropped = self.dropped.load(Ordering::Relaxed);
            if dropped > self.reported {
                let record = serde_json::json!({
                    "time": now(),
                    "kind": "dropped",
                    "dropped": dropped - self.reported,
                    "droppedTotal": dropped,
                });
                buf.extend_from_slice(record.to_string().as_bytes());
                buf.push(b'\n');
                self.reported = dropped;
            }
            self.write(&mut buf);
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
        self.write(&mut buf);
    }

    fn reopen_if_asked(&mut self, buf: &mut Vec<u8>) {
        if self.reopen.swap(false, Ordering::SeqCst) {
            self.write(buf);
            match open_file(&self.path) {
                Ok(file) => {
                    self.file = file;
                    tracing::info!("audit log {} reopened", self.path.display());
                }
                Err(e) => tracing::error!("{e:#}; still writing to the old file"),
            }
        }
    }

    fn write(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        if let Err(error) = self.file.write_all(buf) {
            tracing::error!(%error, "writing the audit log {}", self.path.display());
        }
        buf.clear();
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Who called, over HTTP: inserted into the request's extensions
/// (`http::request::Parts::extensions`) by whatever authenticated it, and
/// written into the record's `client.auth`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The token's subject (`sub`), or a fixed name for the static token.
    pub subject: Option<String>,
    /// The OAuth client (`client_id` / `azp`).
    pub client_id: Option<String>,
    /// The scopes the token carries; `None` when the caller is not
    /// restricted by scopes (the static `--auth-token-file` token, which
    /// stands for the operator), so a plugin's `[access]` does not apply.
    pub scopes: Option<Vec<String>>,
}

/// One audit record; see `docs/audit-log.md`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// RFC 3339 UTC, milliseconds, when the request ended.
    pub time: String,
    /// `request` (client → plugin) or `client-request` (plugin → client).
    pub kind: &'static str,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// Who asked: `clientInfo` name and version, and over HTTP the caller.
    pub client: Value,
    /// The MCP method.
    pub method: String,
    /// The plugin that served it, when one did.
    pub plugin: Option<String>,
    /// Its wasm's sha256 (lowercase hex).
    pub sha256: Option<String>,
    /// The tool or prompt name, resource URI or completion reference (redacted).
    pub item: String,
    /// The arguments, redacted.
    pub arguments: Value,
    /// `ok`, `isError` or `error`.
    pub outcome: &'static str,
    /// For `error`: the JSON-RPC code (or null for a refused client request)
    /// and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Fuel, peak memory and guest time of the plugin call, when it ran.
    pub cost: Option<Value>,
    /// Wall-clock milliseconds of the whole request.
    pub duration_ms: f64,
    /// For `client-request`: the request the plugin was serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Value>,
}

/// Removes secrets from values written to the audit log.
#[derive(Debug)]
pub struct Redactor {
    keys: Regex,
    /// `key=value` / `key: value` pairs inside text, keys matching `keys`.
    pairs: Regex,
    /// Bearer credentials, JWTs, well-known API-key shapes.
    tokens: Regex,
}

impl Redactor {
    /// A redactor for keys matching `keys` (a regular expression).
    pub fn new(keys: &str) -> Result<Self> {
        let keys_re = Regex::new(&format!("(?i)(?:{keys})"))
            .with_context(|| format!("invalid --audit-redact pattern {keys:?}"))?;
        let pairs = Regex::new(&format!(
            r#"(?i)([A-Za-z0-9_.\-]*(?:{keys})[A-Za-z0-9_.\-]*"?\s*[=:]\s*"?)[^\s"&;,]+"#
        ))?;
        let tokens = Regex::new(concat!(
            r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}",
            r"|\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",
            r"|\b(?:ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abpr]|sk|sk_live|sk_test|rk_live|pk_live)[_\-][A-Za-z0-9_\-]{12,}",
            r"|\bAKIA[0-9A-Z]{16}\b",
        ))?;
        Ok(Self {
            keys: keys_re,
            pairs,
            tokens,
        })
    }

    /// `value` with secrets replaced: whole values under matching keys, and
    /// inside every string the `secrets` given (the plugin's environment
    /// values), key=value pairs and bearer-like tokens. Bounded in size.
    pub fn value(&self, value: &Value, secrets: &[String]) -> Value {
        self.walk(value, secrets, true, 0)
    }

    /// Like [`Redactor::value`] but without redacting by key: for ward's own
    /// descriptions of the client, whose keys are not arguments.
    pub fn strings(&self, value: &Value) -> Value {
        self.walk(value, &[], false, 0)
    }

    fn walk(&self, value: &Value, secrets: &[String], keys: bool, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::String("[too deep]".into());
        }
        match value {
            Value::String(s) => Value::String(self.text(s, secrets)),
            Value::Array(items) => {
                let mut out: Vec<Value> = items
                    .iter()
                    .take(MAX_ITEMS)
                    .map(|v| self.walk(v, secrets, keys, depth + 1))
                    .collect();
                if items.len() > MAX_ITEMS {
                    out.push(Value::String(format!("[{} more]", items.len() - MAX_ITEMS)));
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (i, (k, v)) in map.iter().enumerate() {
                    if i >= MAX_ITEMS {
                        out.insert("[more]".into(), Value::from(map.len() - MAX_ITEMS));
                        break;
                    }
                    let key = self.text(k, secrets);
                    let v = if keys && self.keys.is_match(k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        self.walk(v, secrets, keys, depth + 1)
                    };
                    out.insert(key, v);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// One string with secrets replaced and cut to [`MAX_STRING_CHARS`].
    pub fn text(&self, s: &str, secrets: &[String]) -> String {
        let mut s = s.to_string();
        for secret in secrets {
            if secret.chars().count() >= MIN_SECRET_CHARS && s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), REDACTED);
            }
        }
        let s = self.tokens.replace_all(&s, REDACTED);
        let s = self.pairs.replace_all(&s, format!("${{1}}{REDACTED}"));
        match s.char_indices().nth(MAX_STRING_CHARS) {
            Some((cut, _)) => format!("{}…[{} bytes]", &s[..cut], s.len()),
            None => s.into_owned(),
        }
    }
}

/// One request being audited: created when it arrives, finished when it
/// is answered. The protocol layer holds it; the plugin fills in its
/// `ServedBy` (`backend.rs`); requests the plugin sends to the client are
/// recorded with it as their parent.
#[derive(Clone)]
pub struct Scope(Arc<ScopeInner>);

struct ScopeInner {
    log: AuditLog,
    served: ServedBy,
    started: std::time::Instant,
    transport: &'static str,
    client: Value,
    method: String,
    item: String,
    /// Bounded and redacted by key and token shape; the plugin's secret
    /// values are removed when it is known, at the end.
    arguments: Value,
}

impl Scope {
    /// Starts auditing `method` on `item` with `arguments`, for a client
    /// described by `client` (see [`Record::client`]).
    pub fn new(
        log: &AuditLog,
        transport: &'static str,
        client: Value,
        method: &str,
        item: &str,
        arguments: &Value,
    ) -> Self {
        let redactor = log.redactor();
        Self(Arc::new(ScopeInner {
            log: log.clone(),
            served: ServedBy::default(),
            started: std::time::Instant::now(),
            transport,
            client: redactor.strings(&client),
            method: method.to_string(),
            item: item.to_string(),
            arguments: redactor.value(arguments, &[]),
        }))
    }

    /// Where the plugin records itself; goes into the call's `CallContext`.
    pub fn served(&self) -> ServedBy {
        self.0.served.clone()
    }

    /// Wraps the request's client handle so that what the plugin asks the
    /// client is recorded too.
    pub fn client(&self, inner: ClientHandle) -> ClientHandle {
        ClientHandle(Arc::new(AuditedClient {
            inner,
            scope: self.clone(),
        }))
    }

    /// Writes the record: `outcome` is `ok`, `isError` or `error`, with the
    /// JSON-RPC error code and message for `error`.
    pub fn finish(&self, outcome: &'static str, error: Option<(i32, &str)>) {
        let s = &self.0;
        let served = s.served.get();
        let redactor = s.log.redactor();
        let secrets = &served.secrets;
        let error = error.map(|(code, message)| {
            serde_json::json!({ "code": code, "message": redactor.text(message, secrets) })
        });
        let record = Record {
            time: now(),
            kind: "request",
            transport: s.transport,
            client: s.client.clone(),
            method: s.method.clone(),
            plugin: served.plugin.as_deref().map(str::to_string),
            sha256: served
                .sha256
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect()),
            item: redactor.text(&s.item, secrets),
            arguments: redactor.value(&s.arguments, secrets),
            outcome,
            error,
            cost: served.cost.map(|(fuel, peak, duration)| {
                serde_json::json!({
                    "fuel": fuel,
                    "peakMemoryBytes": peak,
                    "durationMs": duration.as_secs_f64() * 1000.0,
                })
            }),
            duration_ms: s.started.elapsed().as_secs_f64() * 1000.0,
            parent: None,
        };
        s.log.write(&record);
    }

    fn client_request(
        &self,
        method: ClientMethod,
        params: &Value,
        answer: Asked<'_>,
        started: std::time::Instant,
    ) {
        let s = &self.0;
        let served = s.served.get();
        let redactor = s.log.redactor();
        let secrets = &served.secrets;
        let (outcome, error) = match answer {
            Asked::InputRequired => ("input-required", None),
            Asked::Answered(Ok(_)) => ("ok", None),
            Asked::Answered(Err(message)) => (
                "error",
                Some(
                    serde_json::json!({ "code": null, "message": redactor.text(message, secrets) }),
                ),
            ),
        };
        let record = Record {
            time: now(),
            kind: "client-request",
            transport: s.transport,
            client: s.client.clone(),
            method: method.as_str().to_string(),
            plugin: served.plugin.as_deref().map(str::to_string),
            sha256: served
                .sha256
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect()),
            item: method.as_str().to_string(),
            arguments: redactor.value(params, secrets),
            outcome,
            error,
            cost: None,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            parent: Some(serde_json::json!({
                "method": s.method,
                "item": redactor.text(&s.item, secrets),
            })),
        };
        s.log.write(&record);
    }
}

/// A client handle that records each request a plugin sends through it.
struct AuditedClient {
    inner: ClientHandle,
    scope: Scope,
}

impl ClientRequests for AuditedClient {
    fn ask(
        &self,
        questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let logged: Vec<(ClientMethod, Value)> = questions
                .iter()
                .map(|q| (q.method, q.params.clone()))
                .collect();
            let answers = self.inner.0.ask(questions).await;
            match &answers {
                Ok(answers) => {
                    for ((method, params), answer) in logged.iter().zip(answers) {
                        self.scope
                            .client_request(*method, params, answer.into(), started);
                    }
                }
                Err(Suspended) => {
                    for (method, params) in &logged {
                        self.scope
                            .client_request(*method, params, Asked::InputRequired, started);
                    }
                }
            }
            answers
        })
    }

    fn supports(&self, method: ClientMethod) -> bool {
        self.inner.0.supports(method)
    }
}

/// How a request to the client ended, for its record.
enum Asked<'a> {
    Answered(&'a ClientAnswer),
    /// Sent to a 2026-07-28 client in an input-required result; its answer
    /// comes with the retry.
    InputRequired,
}

impl<'a> From<&'a ClientAnswer> for Asked<'a> {
    fn from(answer: &'a ClientAnswer) -> Self {
        Self::Answered(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_keys_env_values_and_tokens() {
        let r = Redactor::new(DEFAULT_REDACT_KEYS).unwrap();
        let secrets = vec!["s3cr3t-value".to_string(), "ab".to_string()];
        let v = r.value(
            &json!({
                "name": "Ada",
                "apiKey": "visible?",
                "nested": {"Authorization": "Basic abc", "note": "use s3cr3t-value here, ab"},
                "header": "Bearer abcdefghijklmnop",
                "jwt": "x eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig y",
                "url": "https://x.example/?access_token=zzzz&q=1",
                "gh": "ghp_abcdefghijklmnopqrstuvwxyz",
                "n": 3,
            }),
            &secrets,
        );
        assert_eq!(v["name"], "Ada");
        assert_eq!(v["apiKey"], REDACTED);
        assert_eq!(v["nested"]["Authorization"], REDACTED);
        assert_eq!(v["nested"]["note"], "use [redacted] here, ab");
        assert_eq!(v["header"], REDACTED);
        assert_eq!(v["jwt"], "x [redacted] y");
        assert_eq!(v["url"], "https://x.example/?access_token=[redacted]&q=1");
        assert_eq!(v["gh"], REDACTED);
        assert_eq!(v["n"], 3);
    }

    #[test]
    fn bounds_size() {
        let r = Redactor::new(DEFAULT_REDACT_KEYS).unwrap();
        let long = "x".repeat(10_000);
        let v = r.value(&json!({ "s": long, "a": vec![1; 1000] }), &[]);
        assert!(v["s"].as_str().unwrap().len() < 2100);
        assert_eq!(v["a"].as_array().unwrap().len(), MAX_ITEMS + 1);
    }

    #[test]
    fn writes_lines_counts_drops_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut options = AuditOptions::new(&path);
        options.capacity = 4;
        let log = AuditLog::open(&options).unwrap();
        for _ in 0..1000 {
            log.write(&Record {
                time: now(),
                kind: "request",
                ..Default::default()
            });
        }
        log.flush(Duration::from_secs(5));
        let records = |path: &Path| -> Vec<Value> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let count =
            |lines: &[Value], kind: &str| lines.iter().filter(|l| l["kind"] == kind).count() as u64;
        let dropped_in = |lines: &[Value]| -> u64 {
            lines
                .iter()
                .filter(|l| l["kind"] == "dropped")
                .map(|l| l["dropped"].as_u64().unwrap())
                .sum()
        };
        let first = records(&path);
        assert_eq!(count(&first, "request") + log.dropped(), 1000);

        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        log.reopen();
        log.write(&Record {
            time: now(),
            kind: "request",
            ..Default::default()
        });
        log.flush(Duration::from_secs(5));
        // The new file holds the new record, and possibly the report of drops
        // the writer had not yet written before the rename: every drop is
        // reported exactly once across the two files.
        let second = records(&path);
        assert_eq!(count(&second, "request"), 1);
        assert_eq!(second.len() as u64, 1 + count(&second, "dropped"));
        assert_eq!(dropped_in(&first) + dropped_in(&second), log.dropped());
    }
}

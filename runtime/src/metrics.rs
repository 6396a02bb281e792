//! Prometheus metrics: `ward serve --metrics ADDR` serves them at
//! `http://ADDR/metrics` (docs/metrics.md lists every series).
//!
//! This module owns the metric registry, every metric and label name, and
//! the names of error kinds; the rest of ward calls a few small hooks:
//!
//! - the protocol layer wraps each request to a plugin item in a
//!   [`Request`] (method, outcome, duration);
//! - the registry notes which plugin a request reached ([`serving`]), why it
//!   failed ([`failed`], [`rejected`]) and how many plugins are loaded
//!   ([`plugins_loaded`]);
//! - a plugin's call reports its cost ([`call_cost`]) and holds an
//!   [`Occupancy`] while it waits for its turn ([`waiting`]) and while it runs
//!   ([`running`]);
//! - rate limits and `[access]` report refusals ([`Metrics::rate_limited`]
//!   and [`Metrics::refused`], or the free functions [`rate_limited`] and
//!   [`refused`]).
//!
//! Design decisions:
//! - **One process-wide handle** ([`install`], [`get`]), not a field passed
//!   down: the hooks sit in three layers (protocol, registry, sandbox
//!   admission) that are built from several entry points (`serve`, `call`,
//!   `check`, the tests, the benchmarks), and one process serves at most one
//!   `/metrics`. Threading an `Arc<Metrics>` through `ServerOptions`, the
//!   registry, the loader and every plugin would touch each of those for a
//!   value that never differs between them.
//! - **Free when off.** Without `--metrics` nothing is installed, and each
//!   hook is one atomic load ([`OnceLock::get`]) that finds nothing: no
//!   label is built, no lock taken, no clock read.
//! - **Request-scoped notes.** Which plugin a request reached and why it
//!   failed are known deep in the registry, where only the plugin is at
//!   hand; the outcome and duration are known in the protocol layer. A
//!   [`Request`] puts a note in a task-local for the duration of the request
//!   (the backend call runs in the request's own task), the registry writes
//!   to it, and the protocol layer records all series of the request at once
//!   when it ends. Each failed request is counted once in
//!   `ward_errors_total`, under its most specific cause.
//! - **Bounded labels.** `plugin` is a loaded plugin's name (a file in the
//!   plugin directory), or `""` when the request reached none: never a name a
//!   client sent. `method`, `outcome` and `kind` come from fixed lists.
//!   Series of a plugin that was removed stay (counters never go back).
//! - **Peak memory is a histogram** of each call's peak, not a gauge: a gauge
//!   of the last call hides the spikes between two scrapes, and a gauge of
//!   the maximum never comes down; the histogram gives both the typical call
//!   and the worst ones (`histogram_quantile`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{header, Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backend::BackendError;
use crate::sandbox::Failure;

/// The path metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// `Content-Type` of the OpenMetrics text format, served when the scraper
/// asks for it in `Accept` (Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of the Prometheus text format 0.0.4, served otherwise
/// (curl, `promtool check metrics`).
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of `ward_request_duration_seconds`: 0.5 ms to 5 min (the
/// longest default timeout is 30 s; the HTTP request deadline is 300 s).
const DURATION_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// `ward_memory_peak_bytes`: 64 KiB, 256 KiB, ... 4 GiB (the most
/// `limits.memory` allows), each four times the last.
const MEMORY_BUCKET_START: f64 = 65_536.0;
const MEMORY_BUCKET_FACTOR: f64 = 4.0;
const MEMORY_BUCKETS: u16 = 9;

/// At most this many scrapes are served at once; more connections are
/// closed at once.
const MAX_CONNECTIONS: usize = 32;

/// Request headers must arrive within this, and an idle connection closes.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    plugin: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    plugin: String,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    kind: &'static str,
}

/// Makes the histograms of a family, all with the same buckets.
#[derive(Clone)]
struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn memory_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        MEMORY_BUCKET_START,
        MEMORY_BUCKET_FACTOR,
        MEMORY_BUCKETS,
    ))
}

/// ward's metrics and the registry they are encoded from.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<MethodLabels, Histogram, Buckets>,
    fuel: Family<PluginLabels, Counter>,
    memory: Family<PluginLabels, Histogram, Buckets>,
    rate_limited: Family<PluginLabels, Counter>,
    running: Family<PluginLabels, Gauge>,
    waiting: Family<PluginLabels, Gauge>,
    plugins_loaded: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and empty.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ward_requests",
            "Requests to a plugin's tool, resource, prompt or completion, by plugin (\"\" when \
             none was reached), method and outcome (ok, isError, error, input-required, refused)",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "ward_errors",
            "Requests that ended in an error or an isError result, by plugin and most specific \
             cause (fuel, memory, timeout, output, tool_error, invalid_params, ...)",
            errors.clone(),
        );
        let duration = Family::new_with_constructor(Buckets(duration_histogram));
        registry.register_with_unit(
            "ward_request_duration",
            "Time from a request's arrival in the MCP handler to its answer, waiting for its turn \
             included",
            Unit::Seconds,
            duration.clone(),
        );
        let fuel = Family::<PluginLabels, Counter>::default();
        registry.register(
            "ward_fuel_consumed",
            "Fuel (about one unit per wasm instruction) consumed by a plugin's calls, listing \
             calls at load included",
            fuel.clone(),
        );
        let memory = Family::new_with_constructor(Buckets(memory_histogram));
        registry.register_with_unit(
            "ward_memory_peak",
            "Peak memory (all linear memories and tables) of each call of a plugin",
            Unit::Bytes,
            memory.clone(),
        );
        let rate_limited = Family::<PluginLabels, Counter>::default();
        registry.register(
            "ward_rate_limited",
            "Requests a plugin's rate limit refused",
            rate_limited.clone(),
        );
        let running = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "ward_calls_running",
            "Calls of a plugin running now (each its own instance)",
            running.clone(),
        );
        let waiting = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "ward_calls_waiting",
            "Calls of a plugin waiting for their turn (limits.concurrency, or the host's share)",
            waiting.clone(),
        );
        let plugins_loaded = Gauge::default();
        registry.register(
            "ward_plugins_loaded",
            "Plugins loaded and serving",
            plugins_loaded.clone(),
        );
        Self {
            registry,
            requests,
            errors,
            duration,
            fuel,
            memory,
            rate_limited,
            running,
            waiting,
            plugins_loaded,
        }
    }

    /// Counts a request that a plugin's rate limit refused
    /// (`ward_rate_limited_total`). Called inside a request's handling, it
    /// also attributes that request to `plugin`; the request itself is
    /// counted as `refused` when it ends with [`BackendError::RateLimited`].
    pub fn rate_limited(&self, plugin: &str) {
        self.rate_limited
            .get_or_create(&plugin_labels(plugin))
            .inc();
        serving(plugin);
    }

    /// Counts a request to `plugin`'s item refused by `[access]` or a rate
    /// limit as `ward_requests_total{outcome="refused"}`, with `reason`
    /// (`forbidden`, `rate_limited`) as its `ward_errors_total` kind. Call it
    /// wherever the refusal is decided: inside the MCP handler it only
    /// attributes the request to `plugin` (the handler counts the request
    /// when it ends, refused when it ends with [`BackendError::Forbidden`]
    /// or [`BackendError::RateLimited`]); before it (the HTTP front door,
    /// which answers 403 or 429 itself) it counts the request here.
    pub fn refused(&self, plugin: &str, method: &'static str, reason: &'static str) {
        if NOTE.try_with(|_| ()).is_ok() {
            serving(plugin);
        } else {
            self.record(plugin, method, Outcome::Refused(reason), None);
        }
    }

    /// The metrics in the Prometheus text format 0.0.4, or in OpenMetrics.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut text = String::new();
        let encoded = match openmetrics {
            true => prometheus_client::encoding::text::encode(&mut text, &self.registry),
            false => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            }
        };
        // Writing to a String cannot fail; the encoders only pass that on.
        encoded.expect("encoding metrics into a String");
        text
    }

    fn record(
        &self,
        plugin: &str,
        method: &'static str,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        let plugin = plugin.to_string();
        let (outcome, kind) = match outcome {
            Outcome::Ok => ("ok", None),
            Outcome::InputRequired => ("input-required", None),
            Outcome::IsError(kind) => ("isError", Some(kind)),
            Outcome::Error(kind) => ("error", Some(kind)),
            Outcome::Refused(kind) => ("refused", Some(kind)),
        };
        if let Some(kind) = kind {
            self.errors
                .get_or_create(&ErrorLabels {
                    plugin: plugin.clone(),
                    kind,
                })
                .inc();
        }
        if let Some(duration) = duration {
            self.duration
                .get_or_create(&MethodLabels {
                    plugin: plugin.clone(),
                    method,
                })
                .observe(duration.as_secs_f64());
        }
        self.requests
            .get_or_create(&RequestLabels {
                plugin,
                method,
                outcome,
            })
            .inc();
    }
}

fn plugin_labels(plugin: &str) -> PluginLabels {
    PluginLabels {
        plugin: plugin.to_string(),
    }
}

/// How a request ended, with the kind of error where there was one.
enum Outcome {
    Ok,
    InputRequired,
    IsError(&'static str),
    Error(&'static str),
    Refused(&'static str),
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Makes `metrics` the process's metrics (`ward serve --metrics`); from then
/// on every hook records. A second call is refused.
pub fn install(metrics: Metrics) -> Result<&'static Metrics> {
    METRICS
        .set(metrics)
        .map_err(|_| anyhow::anyhow!("metrics are already installed in this process"))?;
    Ok(get().expect("just installed"))
}

/// The process's metrics, if `--metrics` installed them.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// [`Metrics::rate_limited`] on the process's metrics, if any.
pub fn rate_limited(plugin: &str) {
    if let Some(metrics) = get() {
        metrics.rate_limited(plugin);
    }
}

/// [`Metrics::refused`] on the process's metrics, if any.
pub fn refused(plugin: &str, method: &'static str, reason: &'static str) {
    if let Some(metrics) = get() {
        metrics.refused(plugin, method, reason);
    }
}

/// Sets `ward_plugins_loaded`.
pub fn plugins_loaded(count: usize) {
    if let Some(metrics) = get() {
        metrics
            .plugins_loaded
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// Records what one call of `plugin` cost.
pub fn call_cost(plugin: &str, fuel: u64, peak_memory: u64) {
    if let Some(metrics) = get() {
        let labels = plugin_labels(plugin);
        metrics.fuel.get_or_create(&labels).inc_by(fuel);
        metrics
            .memory
            .get_or_create(&labels)
            .observe(peak_memory as f64);
    }
}

/// Counts one call of `plugin` in `ward_calls_waiting` until dropped.
pub fn waiting(plugin: &str) -> Option<Occupancy> {
    get().map(|metrics| Occupancy::new(&metrics.waiting, plugin))
}

/// Counts one call of `plugin` in `ward_calls_running` until dropped.
pub fn running(plugin: &str) -> Option<Occupancy> {
    get().map(|metrics| Occupancy::new(&metrics.running, plugin))
}

/// One call counted in a gauge, for as long as this lives: dropped when the
/// call moves on, ends, or is abandoned half-way.
#[derive(Debug)]
pub struct Occupancy(Gauge);

impl Occupancy {
    fn new(family: &Family<PluginLabels, Gauge>, plugin: &str) -> Self {
        let gauge = family.get_or_create_owned(&plugin_labels(plugin));
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Occupancy {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the registry learns about the request it serves.
#[derive(Debug, Default)]
struct Note {
    /// The plugin the request reached.
    plugin: Option<String>,
    /// Why a plugin's call failed.
    failure: Option<&'static str>,
    /// Why the request was refused or answered with an error otherwise.
    rejected: Option<&'static str>,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<Note>>;
}

/// Runs `f` on the note of the request this task serves, if it has one.
fn note(f: impl FnOnce(&mut Note)) {
    if get().is_none() {
        return;
    }
    let _ = NOTE.try_with(|note| f(&mut note.lock().unwrap_or_else(|e| e.into_inner())));
}

/// Notes that the request this task serves reached `plugin`.
pub fn serving(plugin: &str) {
    note(|note| {
        if note.plugin.as_deref() != Some(plugin) {
            note.plugin = Some(plugin.to_string());
        }
    });
}

/// Notes why a plugin's call failed, for the request this task serves (the
/// first cause noted is the one counted).
pub fn failed(failure: &Failure) {
    if let Some(kind) = failure_kind(failure) {
        note(|note| {
            note.failure.get_or_insert(kind);
        });
    }
}

/// Notes why the request this task serves was turned down without a plugin
/// failing: `invalid_arguments` (its arguments do not match the input
/// schema), or a [`BackendError`]'s kind ([`backend_error`]).
pub fn rejected(kind: &'static str) {
    note(|note| {
        note.rejected.get_or_insert(kind);
    });
}

/// Notes the error the backend answered the request this task serves with.
pub fn backend_error(error: &BackendError) {
    rejected(backend_error_kind(error));
}

/// The stable name of a failure's kind, or `None` when it is no failure
/// (the guest stopped to wait for the client's answers).
fn failure_kind(failure: &Failure) -> Option<&'static str> {
    Some(match failure {
        Failure::Fuel { .. } => "fuel",
        Failure::Timeout { queued: false, .. } => "timeout",
        Failure::Timeout { queued: true, .. } => "queue_timeout",
        Failure::Cancelled => "cancelled",
        Failure::Memory { .. } => "memory",
        Failure::HostCall { .. } => "host_call",
        Failure::StackOverflow => "stack_overflow",
        Failure::Panic(_) => "panic",
        Failure::Trap(_) => "trap",
        Failure::OutputTooLarge { .. } => "output",
        Failure::Invalid(_) => "invalid_answer",
        Failure::Unloadable => "unloadable",
        Failure::Replaced => "replaced",
        Failure::Suspended(_) => return None,
    })
}

/// The stable name of a backend error's kind.
fn backend_error_kind(error: &BackendError) -> &'static str {
    match error {
        BackendError::NotFound { .. } => "not_found",
        BackendError::InvalidParams(_) => "invalid_params",
        BackendError::Internal(_) => "internal_error",
        BackendError::Suspended(_) => "suspended",
        BackendError::Forbidden { .. } => REFUSED_FORBIDDEN,
        BackendError::RateLimited { .. } => REFUSED_RATE_LIMITED,
    }
}

const REFUSED_FORBIDDEN: &str = "forbidden";
const REFUSED_RATE_LIMITED: &str = "rate_limited";

/// The class of a JSON-RPC error code, for errors no backend error explains.
fn json_rpc_kind(code: i32) -> &'static str {
    match code {
        -32700 => "parse_error",
        -32600 => "invalid_request",
        -32601 => "method_not_found",
        -32602 => "invalid_params",
        -32603 => "internal_error",
        _ => "other_error",
    }
}

/// How a request to a plugin item ended, as the protocol layer sees it.
#[derive(Debug, Clone, Copy)]
pub enum Answered {
    /// With a result.
    Ok,
    /// With a tool result that has `isError`.
    IsError,
    /// With an input-required result (MCP 2026-07-28).
    InputRequired,
    /// With a JSON-RPC error of this code.
    Error(i32),
}

/// One request to a plugin item being measured.
#[derive(Debug)]
pub struct Request {
    method: &'static str,
    started: Instant,
    note: Arc<Mutex<Note>>,
}

impl Request {
    /// Starts measuring a request of `method` (`tools/call`,
    /// `resources/read`, `prompts/get`, `completion/complete`); `None` when
    /// ward keeps no metrics.
    pub fn start(method: &'static str) -> Option<Self> {
        get()?;
        Some(Self {
            method,
            started: Instant::now(),
            note: Arc::default(),
        })
    }

    /// Runs `request` (the handling of this request, in this task) with
    /// this request's note, so the registry's hooks reach it.
    pub async fn scope<F: Future>(&self, request: F) -> F::Output {
        NOTE.scope(self.note.clone(), request).await
    }

    /// Records the request's series: `ward_requests_total`,
    /// `ward_request_duration_seconds` and, for an error, `ward_errors_total`.
    pub fn finish(self, answered: Answered) {
        let Some(metrics) = get() else { return };
        let note = std::mem::take(&mut *self.note.lock().unwrap_or_else(|e| e.into_inner()));
        let cause = note.failure.or(note.rejected);
        let outcome = match answered {
            Answered::Ok => Outcome::Ok,
            Answered::InputRequired => Outcome::InputRequired,
            Answered::IsError => Outcome::IsError(cause.unwrap_or("tool_error")),
            Answered::Error(code) => match (note.failure, note.rejected) {
                (None, Some(kind @ (REFUSED_FORBIDDEN | REFUSED_RATE_LIMITED))) => {
                    Outcome::Refused(kind)
                }
                _ => Outcome::Error(cause.unwrap_or(json_rpc_kind(code))),
            },
        };
        metrics.record(
            note.plugin.as_deref().unwrap_or(""),
            self.method,
            outcome,
            Some(self.started.elapsed()),
        );
    }
}

/// Checks a `--metrics` address and binds it: a non-loopback address only
/// with `public` (`--metrics-public`).
pub async fn bind(addr: SocketAddr, public: bool) -> Result<MetricsListener> {
    if !addr.ip().is_loopback() && !public {
        bail!(
            "refusing to serve metrics on {addr}: it is not a loopback address, so anyone who \
             can reach this machine could read which plugins run and how they are used. Bind \
             127.0.0.1, or pass --metrics-public to mean it"
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let local_addr = listener.local_addr()?;
    Ok(MetricsListener {
        listener,
        local_addr,
        public,
    })
}

/// A bound `/metrics` listener.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    public: bool,
}

impl MetricsListener {
    /// The address actually bound (its port is known here when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `metrics` at `/metrics` until `shutdown` is cancelled.
    pub async fn serve(self, metrics: &'static Metrics, shutdown: CancellationToken) {
        let MetricsListener {
            listener,
            local_addr,
            public,
        } = self;
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Over the cap the connection is closed unanswered.
            let Ok(slot) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let service = hyper::service::service_fn(move |request: HttpRequest<Incoming>| {
                let response = answer(metrics, &request, local_addr, public);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1.serve_connection(TokioIo::new(stream), service);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = shutdown.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                    }
                }
                drop(slot);
            });
        }
    }
}

/// The answer to one request to the metrics listener.
fn answer(
    metrics: &Metrics,
    request: &HttpRequest<Incoming>,
    local: SocketAddr,
    public: bool,
) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(text.as_bytes())))
            .expect("a valid response")
    };
    if !public && !host_allowed(request, local) {
        // A web page that rebinds its own name to 127.0.0.1 must not read it.
        return plain(
            StatusCode::FORBIDDEN,
            "forbidden: Host is not a loopback name\n",
        );
    }
    if request.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let content_type = match openmetrics {
        true => OPENMETRICS_CONTENT_TYPE,
        false => PROMETHEUS_CONTENT_TYPE,
    };
    let body = match request.method() == Method::HEAD {
        true => Bytes::new(),
        false => Bytes::from(metrics.encode(openmetrics)),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body))
        .expect("a valid response")
}

/// Whether the request's `Host` names this machine's loopback or the bound
/// address (a request without one, HTTP/1.0, passes).
fn host_allowed(request: &HttpRequest<Incoming>, local: SocketAddr) -> bool {
    let Some(host) = request.headers().get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    host_is_local(host, local)
}

fn host_is_local(host: &str, local: SocketAddr) -> bool {
    // `name`, `name:port`, `[v6]`, `[v6]:port`.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1") || name == local.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample whose line starts with `series` (name and
    /// labels as encoded).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn series_are_named_and_labelled_as_documented() {
        let metrics = Metrics::new();
        metrics.record(
            "hello",
            "tools/call",
            Outcome::Ok,
            Some(Duration::from_millis(3)),
        );
        metrics.record("hello", "tools/call", Outcome::IsError("fuel"), None);
        metrics.record("", "tools/call", Outcome::Error("not_found"), None);
        metrics.record(
            "hello",
            "tools/call",
            Outcome::Refused("rate_limited"),
            None,
        );
        metrics.rate_limited("hello");
        // Refused at the HTTP front door: outside any request's scope.
        metrics.refused("hello", "prompts/get", "forbidden");
        metrics.plugins_loaded.set(2);
        metrics
            .memory
            .get_or_create(&plugin_labels("hello"))
            .observe(1_114_864.0);
        let _running = Occupancy::new(&metrics.running, "hello");
        {
            let _waiting = Occupancy::new(&metrics.waiting, "hello");
        }
        let text = metrics.encode(false);
        for (series, value) in [
            (
                r#"ward_requests_total{plugin="hello",method="tools/call",outcome="ok"}"#,
                1.0,
            ),
            (
                r#"ward_requests_total{plugin="hello",method="tools/call",outcome="isError"}"#,
                1.0,
            ),
            (
                r#"ward_requests_total{plugin="",method="tools/call",outcome="error"}"#,
                1.0,
            ),
            (
                r#"ward_requests_total{plugin="hello",method="tools/call",outcome="refused"}"#,
                1.0,
            ),
            (r#"ward_errors_total{plugin="hello",kind="fuel"}"#, 1.0),
            (r#"ward_errors_total{plugin="",kind="not_found"}"#, 1.0),
            (
                r#"ward_errors_total{plugin="hello",kind="rate_limited"}"#,
                1.0,
            ),
            (r#"ward_rate_limited_total{plugin="hello"}"#, 1.0),
            (
                r#"ward_requests_total{plugin="hello",method="prompts/get",outcome="refused"}"#,
                1.0,
            ),
            (r#"ward_errors_total{plugin="hello",kind="forbidden"}"#, 1.0),
            (
                r#"ward_request_duration_seconds_count{plugin="hello",method="tools/call"}"#,
                1.0,
            ),
            (
                r#"ward_request_duration_seconds_bucket{plugin="hello",method="tools/call",le="0.005"}"#,
                1.0,
            ),
            (r#"ward_calls_running{plugin="hello"}"#, 1.0),
            (r#"ward_calls_waiting{plugin="hello"}"#, 0.0),
            ("ward_plugins_loaded", 2.0),
            (
                r#"ward_memory_peak_bytes_bucket{plugin="hello",le="4.194304e+06"}"#,
                1.0,
            ),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        assert!(
            text.contains("# TYPE ward_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE ward_memory_peak_bytes histogram"),
            "{text}"
        );
        let openmetrics = metrics.encode(true);
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
        assert!(openmetrics.contains("# UNIT ward_request_duration_seconds seconds"));
    }

    #[test]
    fn memory_buckets_reach_the_largest_memory_limit() {
        let buckets: Vec<f64> =
            exponential_buckets(MEMORY_BUCKET_START, MEMORY_BUCKET_FACTOR, MEMORY_BUCKETS)
                .collect();
        assert_eq!(buckets.first(), Some(&65_536.0));
        assert_eq!(buckets.last(), Some(&((4u64 << 30) as f64)));
    }

    #[test]
    fn failure_kinds_are_stable_names() {
        let file: Arc<str> = "x.toml".into();
        for (failure, kind) in [
            (
                Failure::Fuel {
                    used: 1,
                    file: file.clone(),
                },
                "fuel",
            ),
            (
                Failure::Timeout {
                    after: Duration::from_secs(1),
                    queued: true,
                    file: file.clone(),
                },
                "queue_timeout",
            ),
            (
                Failure::OutputTooLarge {
                    size: 2,
                    max: 1,
                    file: file.clone(),
                },
                "output",
            ),
            (Failure::Memory { limit: 1, file }, "memory"),
            (Failure::StackOverflow, "stack_overflow"),
        ] {
            assert_eq!(failure_kind(&failure), Some(kind));
        }
        assert_eq!(
            failure_kind(&Failure::Suspended(crate::backend::Suspended)),
            None
        );
    }

    #[test]
    fn only_loopback_hosts_pass_unless_public() {
        let local: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        for host in [
            "localhost:9464",
            "127.0.0.1:9464",
            "[::1]:9464",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(host_is_local(host, local), "{host}");
        }
        for host in [
            "evil.example:9464",
            "evil.example",
            "[::2]:1",
            "10.0.0.1:9464",
        ] {
            assert!(!host_is_local(host, local), "{host}");
        }
        let lan: SocketAddr = "10.0.0.1:9464".parse().unwrap();
        assert!(host_is_local("10.0.0.1:9464", lan));
    }

    #[tokio::test]
    async fn a_non_loopback_address_needs_metrics_public() {
        let error = bind("0.0.0.0:0".parse().unwrap(), false).await.unwrap_err();
        assert!(error.to_string().contains("--metrics-public"), "{error}");
    }
}

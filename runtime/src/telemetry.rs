//! OpenTelemetry traces, exported over OTLP/HTTP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set; without it there is no exporter and ward's spans are disabled
//! callsites (docs/telemetry.md lists the variables, spans and attributes).
//!
//! The spans are `tracing` spans with the target [`TARGET`], which only the
//! OpenTelemetry layer sees: ward's log on stderr never shows them, and
//! `WARD_LOG` does not switch them off. Where they are made:
//!
//! - `protocol/server.rs`: one SERVER span per MCP request
//!   ([`request_span`]), named and attributed as the OpenTelemetry MCP
//!   semantic conventions say, its parent the `traceparent` of the request's
//!   `_meta`, else the HTTP request's `traceparent` header; ward's cost
//!   ([`record_served`]) and the outcome ([`record_outcome`]) on it;
//! - `loader.rs`: a span per plugin load ([`load_span`]), with a child for
//!   reading and compiling it or taking it from the cache ([`compile_span`]);
//! - `plugin/call.rs`: a child per instantiation ([`instantiate_span`]) and
//!   per guest export call ([`guest_span`]);
//! - `sandbox/outbound.rs`: a CLIENT span per outgoing HTTP request of a
//!   plugin ([`http_request`]).
//!
//! Every attribute name and the W3C propagation live here; the callers only
//! say what happened.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{Status, TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use rmcp::model::ErrorData;
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::backend::ServedBy;
use crate::sandbox::Failure;

/// The `tracing` target of every span exported: no module has this path,
/// and the log on stderr never shows it.
pub const TARGET: &str = "ward::otel";

/// The service name when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const SERVICE_NAME: &str = "ward";

/// How long exit waits for the last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether spans are exported (set once, by [`init`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans. Callers use it to skip gathering
/// what only a span would carry.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The span pipeline: a tracer provider with a batch processor on tokio and
/// an OTLP/HTTP exporter. Shut it down at exit with [`Telemetry::shutdown`].
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The pipeline the `OTEL_*` variables ask for, or `None` when they ask
    /// for none (no endpoint, `OTEL_SDK_DISABLED=true`,
    /// `OTEL_TRACES_EXPORTER=none`). Must run inside the tokio runtime, which
    /// runs the batch processor.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => anyhow::bail!(
                "OTEL_TRACES_EXPORTER={other} is not supported: ward exports traces with otlp"
            ),
        }
        if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
            && var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let protocol = match protocol.as_deref() {
            None | Some("http/protobuf") => Protocol::HttpBinary,
            Some("http/json") => Protocol::HttpJson,
            Some(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: ward exports OTLP over \
                 HTTP (http/protobuf or http/json; a collector's HTTP port is 4318)"
            ),
        };
        // The endpoint, headers, timeout and compression come from the
        // standard variables, read by the exporter itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .build()?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(var("OTEL_SERVICE_NAME")))
            .build();
        Ok(Some(Self { provider }))
    }

    /// The `tracing` layer that turns ward's spans (and only those) into
    /// OpenTelemetry spans.
    fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("ward"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                tracing_subscriber::filter::filter_fn(|meta| meta.target() == TARGET)
                    .with_max_level_hint(tracing::Level::INFO),
            )
    }

    /// Exports the spans still queued and stops the exporter, waiting at
    /// most a few seconds. Call it at exit, from outside the runtime's
    /// worker threads but while the runtime still runs (the batch processor
    /// and the HTTP client run on it).
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        let provider = self.provider;
        let spawned = std::thread::Builder::new()
            .name("ward-otel-flush".into())
            .spawn(move || {
                let _ = tx.send(provider.shutdown());
            });
        if spawned.is_err() {
            return;
        }
        match rx.recv_timeout(FLUSH_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!("exporting the last OpenTelemetry spans failed: {error}")
            }
            Err(_) => tracing::warn!(
                "exporting the last OpenTelemetry spans took longer than {} s; gave up on them",
                FLUSH_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The resource: `OTEL_RESOURCE_ATTRIBUTES`, `service.name` from
/// `OTEL_SERVICE_NAME` (which wins), else from the attributes, else
/// [`SERVICE_NAME`]; `service.version` ward's unless the attributes say.
fn resource(service_name: Option<String>) -> Resource {
    let detected = Resource::builder().build();
    let name = service_name.unwrap_or_else(|| {
        detected
            .get(&Key::from_static_str("service.name"))
            .map(|name| name.as_str().into_owned())
            .filter(|name| !name.starts_with("unknown_service"))
            .unwrap_or_else(|| SERVICE_NAME.to_owned())
    });
    let mut builder = Resource::builder().with_service_name(name);
    if detected
        .get(&Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// Installs the global `tracing` subscriber: ward's log on stderr filtered
/// by `log_filter`, plus, when the `OTEL_*` variables ask for it, the
/// OpenTelemetry layer. Returns the pipeline to shut down at exit. Must run
/// inside the tokio runtime; a pipeline that cannot be built is logged and
/// ward runs without it.
pub fn init(log_filter: EnvFilter) -> Option<Telemetry> {
    let log_filter = without_spans(log_filter);
    let (telemetry, error) = match Telemetry::from_env() {
        Ok(telemetry) => (telemetry, None),
        Err(error) => (None, Some(error)),
    };
    match &telemetry {
        // As without OpenTelemetry support: one global filter, under which
        // ward's spans are callsites that are never enabled.
        None => tracing_subscriber::registry()
            .with(log_filter)
            .with(log_layer())
            .init(),
        Some(pipeline) => tracing_subscriber::registry()
            .with(log_layer().with_filter(log_filter))
            .with(pipeline.layer())
            .init(),
    }
    if let Some(error) = error {
        tracing::warn!("not exporting OpenTelemetry traces: {error:#}");
    }
    ENABLED.store(telemetry.is_some(), Ordering::Relaxed);
    telemetry
}

/// `filter` with ward's spans off: they are for the exporter, never the log.
fn without_spans(filter: EnvFilter) -> EnvFilter {
    filter.add_directive(
        format!("{TARGET}=off")
            .parse()
            .expect("a valid filter directive"),
    )
}

/// ward's log: plain lines on stderr.
fn log_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
}

// ---- MCP requests (protocol/server.rs) ----

/// What an MCP request names, for its span's name and attributes.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// Nothing (lists, `initialize`).
    None,
    /// A tool (`gen_ai.tool.name`, part of the span name).
    Tool(&'a str),
    /// A prompt (`gen_ai.prompt.name`, part of the span name).
    Prompt(&'a str),
    /// A resource (`mcp.resource.uri`; not in the span name, whose
    /// cardinality must stay low).
    Resource(&'a str),
}

/// The W3C Trace Context fields of one carrier.
struct W3c<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for W3c<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        if self.traceparent.is_some() {
            keys.push("traceparent");
        }
        if self.tracestate.is_some() {
            keys.push("tracestate");
        }
        keys
    }
}

/// The remote span context a carrier holds, if it holds a valid one.
fn extract(carrier: W3c<'_>) -> Option<opentelemetry::Context> {
    carrier.traceparent?;
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// The span of one MCP request: kind SERVER, named `{mcp.method.name}
/// {target}` (`tools/call hello_greet`), child of the `traceparent` (and
/// `tracestate`) in the request's `_meta`, else of the HTTP request's
/// `traceparent` header (then linked to it), else a root. A disabled span
/// when ward exports nothing.
pub fn request_span(context: &RequestContext<RoleServer>, method: &str, item: Item<'_>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "mcp.request",
        otel.kind = "server",
        otel.name = match item {
            Item::Tool(name) | Item::Prompt(name) => format!("{method} {name}"),
            Item::None | Item::Resource(_) => method.to_owned(),
        }
    );
    if span.is_disabled() {
        return span;
    }
    let parts = context.extensions.get::<http::request::Parts>();
    let header = |name: &str| {
        parts
            .and_then(|parts| parts.headers.get(name))
            .and_then(|value| value.to_str().ok())
    };
    let from_meta = extract(W3c {
        traceparent: context.meta.get_traceparent(),
        tracestate: context.meta.get_tracestate(),
    });
    let from_http = extract(W3c {
        traceparent: header("traceparent"),
        tracestate: header("tracestate"),
    });
    let _ = match (from_meta, from_http) {
        (Some(parent), http) => {
            // The MCP context is the parent; the transport's is linked.
            if let Some(http) = http {
                span.add_link(http.span().span_context().clone());
            }
            span.set_parent(parent)
        }
        (None, Some(parent)) => span.set_parent(parent),
        // A root, whatever spans of other layers are current.
        (None, None) => span.set_parent(opentelemetry::Context::new()),
    };
    span.set_attribute("mcp.method.name", method.to_owned());
    span.set_attribute("jsonrpc.request.id", context.id.to_string());
    if let Some(version) = context.protocol_version() {
        span.set_attribute("mcp.protocol.version", version.as_str().to_owned());
    }
    if let Some(session) = header("mcp-session-id") {
        span.set_attribute("mcp.session.id", session.to_owned());
    }
    match parts {
        Some(_) => {
            span.set_attribute("network.transport", "tcp");
            span.set_attribute("network.protocol.name", "http");
        }
        None => span.set_attribute("network.transport", "pipe"),
    }
    // Who called, as authentication established it (never the token).
    if let Some(caller) = parts.and_then(|p| p.extensions.get::<crate::audit::Caller>()) {
        if let Some(subject) = &caller.subject {
            span.set_attribute("user.id", subject.clone());
        }
        if let Some(client) = &caller.client_id {
            span.set_attribute("ward.client_id", client.clone());
        }
        if let Some(scopes) = &caller.scopes {
            span.set_attribute("ward.scopes", scopes.join(" "));
        }
    }
    match item {
        Item::Tool(name) => {
            span.set_attribute("gen_ai.tool.name", name.to_owned());
            span.set_attribute("gen_ai.operation.name", "execute_tool");
        }
        Item::Prompt(name) => span.set_attribute("gen_ai.prompt.name", name.to_owned()),
        Item::Resource(uri) => span.set_attribute("mcp.resource.uri", uri.to_owned()),
        Item::None => {}
    }
    span
}

/// Records on `span` (a request's) the plugin that served the request and
/// what it cost: `ward.plugin`, `ward.fuel`, `ward.memory.peak_bytes`.
pub fn record_served(span: &Span, served: &ServedBy) {
    if !enabled() || span.is_disabled() {
        return;
    }
    let served = served.get();
    if let Some(plugin) = served.plugin {
        span.set_attribute("ward.plugin", plugin.to_string());
    }
    if let Some((fuel, peak_memory, _)) = served.cost {
        span.set_attribute("ward.fuel", saturating_i64(fuel));
        span.set_attribute("ward.memory.peak_bytes", saturating_i64(peak_memory));
    }
}

/// Records how a request ended: a JSON-RPC error (`error.type` and
/// `rpc.response.status_code` its code, status ERROR with its message), or
/// a tool result with `isError` (`error.type` `tool_error`).
pub fn record_outcome(span: &Span, error: Option<&ErrorData>, tool_error: bool) {
    if span.is_disabled() {
        return;
    }
    if let Some(error) = error {
        let code = error.code.0.to_string();
        span.set_attribute("error.type", code.clone());
        span.set_attribute("rpc.response.status_code", code);
        span.set_status(Status::error(error.message.to_string()));
    } else if tool_error {
        span.set_attribute("error.type", "tool_error");
        span.set_status(Status::error("the tool reported an error"));
    }
}

// ---- Loading, instantiating and calling plugins (loader.rs, plugin/) ----

/// The span of loading one plugin (`load {plugin}`): reading and compiling
/// it, linking it and asking it what it offers.
pub fn load_span(plugin: &str) -> Span {
    let span =
        tracing::info_span!(target: TARGET, "ward.load", otel.name = format!("load {plugin}"));
    if !span.is_disabled() {
        // Loads belong to no request.
        let _ = span.set_parent(opentelemetry::Context::new());
        span.set_attribute("ward.plugin", plugin.to_owned());
    }
    span
}

/// The span of reading and compiling a plugin or taking it from the cache
/// (`compile {plugin}`), a child of the current (load) span; it runs on a
/// thread of its own, so pass it there.
pub fn compile_span(plugin: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "ward.compile",
        otel.name = format!("compile {plugin}")
    );
    if !span.is_disabled() {
        span.set_attribute("ward.plugin", plugin.to_owned());
    }
    span
}

/// Records on a compile span whether the compiled code came from the cache
/// (`ward.cache.hit`), or that the load failed (`None`).
pub fn record_compile(span: &Span, cached: Option<bool>) {
    if span.is_disabled() {
        return;
    }
    match cached {
        Some(cached) => span.set_attribute("ward.cache.hit", cached),
        None => {
            span.set_attribute("error.type", "load_error");
            span.set_status(Status::error("reading or compiling the plugin failed"));
        }
    }
}

/// The span of instantiating a plugin in a fresh store (`instantiate
/// {plugin}`), a child of the current span.
pub fn instantiate_span(plugin: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "ward.instantiate",
        otel.name = format!("instantiate {plugin}")
    );
    if !span.is_disabled() {
        span.set_attribute("ward.plugin", plugin.to_owned());
    }
    span
}

/// The span of one call of a guest export (`{function} {plugin}`, such as
/// `call-tool hello`), a child of the current span.
pub fn guest_span(plugin: &str, function: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "ward.guest",
        otel.name = format!("{function} {plugin}")
    );
    if !span.is_disabled() {
        span.set_attribute("ward.plugin", plugin.to_owned());
        span.set_attribute("ward.guest.function", function.to_owned());
    }
    span
}

/// Records on a guest span what the call cost (instantiation included) and
/// how it failed, if it did (`error.type`: the failure's kind, such as
/// `Fuel`, `Timeout`, `Trap`).
pub fn record_guest(span: &Span, fuel: u64, peak_memory: u64, failure: Option<&Failure>) {
    if span.is_disabled() {
        return;
    }
    span.set_attribute("ward.fuel", saturating_i64(fuel));
    span.set_attribute("ward.memory.peak_bytes", saturating_i64(peak_memory));
    // A call stopped to wait for the client did not fail.
    if let Some(failure) = failure.filter(|f| !matches!(f, Failure::Suspended(_))) {
        span.set_attribute("error.type", variant(failure));
        span.set_status(Status::error(failure.to_string()));
    }
}

// ---- Plugins' outgoing HTTP (sandbox/outbound.rs) ----

/// Runs `send` (one outgoing HTTP request of a plugin, checked and sent)
/// in `span` (from [`http_span`]), recording `http.response.status_code`
/// once the response's head arrives, or `error.type`.
pub fn http_request<B, T, E, F>(
    span: Span,
    send: F,
) -> impl Future<Output = Result<(http::Response<B>, T), E>> + Send
where
    F: Future<Output = Result<(http::Response<B>, T), E>> + Send,
    E: fmt::Debug,
{
    let recorded = span.clone();
    async move {
        let result = send.await;
        if !recorded.is_disabled() {
            match &result {
                Ok((response, _)) => {
                    let status = response.status();
                    recorded.set_attribute("http.response.status_code", i64::from(status.as_u16()));
                    if status.is_client_error() || status.is_server_error() {
                        recorded.set_attribute("error.type", status.as_u16().to_string());
                        recorded.set_status(Status::error(""));
                    }
                }
                Err(error) => {
                    recorded.set_attribute("error.type", variant(error));
                    recorded.set_status(Status::error(format!("{error:?}")));
                }
            }
        }
        result
    }
    .instrument(span)
}

/// The CLIENT span of one outgoing HTTP request of a plugin, `{method}`,
/// with `http.request.method`, `server.address`, `server.port` and
/// `url.scheme`: a child of the current (guest call) span. Made when the
/// guest sends the request; it ends when [`http_request`] is done.
pub fn http_span(method: &http::Method, uri: &http::Uri) -> Span {
    let known = [
        http::Method::GET,
        http::Method::HEAD,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::CONNECT,
        http::Method::OPTIONS,
        http::Method::TRACE,
        http::Method::PATCH,
    ]
    .contains(method);
    let span = tracing::info_span!(
        target: TARGET,
        "http.client",
        otel.kind = "client",
        otel.name = if known { method.as_str() } else { "HTTP" }
    );
    if span.is_disabled() {
        return span;
    }
    if known {
        span.set_attribute("http.request.method", method.as_str().to_owned());
    } else {
        span.set_attribute("http.request.method", "_OTHER");
        span.set_attribute("http.request.method_original", method.as_str().to_owned());
    }
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    if let Some(host) = uri.host() {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        span.set_attribute("server.address", host.to_owned());
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    span.set_attribute("server.port", i64::from(port));
    span.set_attribute("url.scheme", if https { "https" } else { "http" });
    span
}

/// The name of the enum variant `value` is (its `Debug` form up to the
/// first character that cannot be in a name): a low-cardinality
/// `error.type`.
fn variant(value: &dyn fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    match &debug[..end] {
        "" => "_OTHER".to_owned(),
        name => name.to_owned(),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_the_parent_and_garbage_is_none() {
        let context = extract(W3c {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            tracestate: Some("rojo=00f067aa0ba902b7"),
        })
        .expect("a valid traceparent");
        let span = context.span();
        let parent = span.span_context();
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parent.is_sampled() && parent.is_remote());
        assert_eq!(parent.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        for bad in [
            None,
            Some(""),
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            assert!(
                extract(W3c {
                    traceparent: bad,
                    tracestate: None
                })
                .is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_types_are_variant_names() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum E {
            Plain,
            Tuple(String),
            Struct { a: u8 },
        }
        assert_eq!(variant(&E::Plain), "Plain");
        assert_eq!(variant(&E::Tuple("x y".into())), "Tuple");
        assert_eq!(variant(&E::Struct { a: 1 }), "Struct");
        assert_eq!(variant(&"quoted"), "_OTHER");
    }

    #[test]
    fn spans_are_disabled_without_an_exporter() {
        // No subscriber in this test: ward's helpers make disabled spans
        // and do nothing with them.
        let span = guest_span("hello", "call-tool");
        assert!(span.is_disabled());
        record_guest(&span, 1, 2, None);
        assert!(http_span(&http::Method::GET, &"http://x/".parse().unwrap()).is_disabled());
    }

    #[test]
    fn the_log_alone_never_enables_wards_spans() {
        // As `init` sets up without an exporter, however verbose the log.
        let subscriber = tracing_subscriber::registry()
            .with(without_spans(EnvFilter::new("trace")))
            .with(log_layer());
        tracing::subscriber::with_default(subscriber, || {
            assert!(load_span("hello").is_disabled());
            assert!(guest_span("hello", "call-tool").is_disabled());
            assert!(!tracing::info_span!("a log span").is_disabled());
        });
    }
}

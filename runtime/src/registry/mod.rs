//! The live set of plugins, and the immutable snapshot every request reads.
//!
//! The control path (loader, watcher) inserts and removes plugins; each change
//! builds a new [`Snapshot`] of exposed names and URIs → plugins from the
//! whole set (`snapshot.rs`: who serves what, whatever the load order) and
//! swaps it in one step, so a request sees one consistent version from start
//! to end and calls in flight finish on the plugin they started with.
//!
//! Requests are routed here and every answer passes one gate on its way out:
//! [`capped`] measures it against `limits.max-output` as the JSON the client
//! receives, and [`guest_text`] cuts a plugin's error text to that limit.
//! Plugin-supplied schemas are checked in `schema.rs`, URI templates matched
//! in `templates.rs`.

mod schema;
mod snapshot;
mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{
    CallToolResult, CompleteResult, CompletionInfo, ContentBlock, GetPromptResult, JsonObject,
    MetaObject, ReadResourceResult, Reference,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::audit::Caller;
use crate::backend::{
    Backend, BackendError, CallContext, Catalog, CatalogChange, ServerEvent, Target,
};
use crate::plugin::{self, completions, types, Cost, Failure, Plugin, Request, Response};
use crate::sandbox::output::{cut, output_size};
use crate::service::access;
use crate::service::rate::Limiter;
use crate::service::redis::Shared;
use crate::service::results::{Asked, Key as CacheKey, ResultCache, DEFAULT_CACHE_BYTES};
pub use schema::{MAX_PATTERNS, MAX_PATTERN_LEN, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
use snapshot::{build, entry, Entry, ToolRoute};
pub use snapshot::{expose, valid_name, Refusal, Snapshot};
#[doc(hidden)]
pub use templates::UriTemplate;

/// One change to the set of plugins.
pub enum Change {
    /// Add or replace a plugin.
    Insert(Arc<Plugin>),
    /// Remove the plugin of this name.
    Remove(String),
}

/// The registry: plugins by name, and the current snapshot.
pub struct Registry {
    plugins: Mutex<BTreeMap<String, Entry>>,
    snapshot: ArcSwap<Snapshot>,
    events: broadcast::Sender<ServerEvent>,
    /// The rate-limit buckets of each plugin that has rates. Kept across a
    /// replacement of the plugin while its rates stay the same, so that
    /// replacing a plugin does not refill every caller's bucket.
    limiters: Mutex<HashMap<String, Arc<Limiter>>>,
    /// Answers kept for `[cache]` (`service::results`).
    results: ResultCache,
    /// The Redis replicas share (`--redis`), if any.
    shared: Option<Arc<Shared>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::with_shared(DEFAULT_CACHE_BYTES, None)
    }

    /// An empty registry whose result cache holds at most `cache_bytes` in
    /// this process, sharing its cache and rate limits through `shared`.
    pub fn with_shared(cache_bytes: u64, shared: Option<Arc<Shared>>) -> Self {
        Self {
            plugins: Mutex::new(BTreeMap::new()),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            events: broadcast::channel(1024).0,
            limiters: Mutex::new(HashMap::new()),
            results: ResultCache::new(cache_bytes, shared.clone()),
            shared,
        }
    }

    /// Where server-wide events are published; plugins send resource updates here.
    pub fn events(&self) -> broadcast::Sender<ServerEvent> {
        self.events.clone()
    }

    /// The loaded plugin of this name.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|e| e.plugin.clone())
    }

    /// Names of the loaded plugins.
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Adds a plugin, or replaces the plugin of the same name.
    pub fn insert(&self, plugin: Arc<Plugin>) {
        self.apply(vec![Change::Insert(plugin)]);
    }

    /// Removes a plugin.
    pub fn remove(&self, name: &str) {
        self.apply(vec![Change::Remove(name.to_string())]);
    }

    /// Applies a burst of changes and publishes one new snapshot. Calls in
    /// flight keep the version they started with.
    pub fn apply(&self, changes: Vec<Change>) {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        let mut inserted = Vec::new();
        for change in changes {
            match change {
                Change::Insert(plugin) => {
                    inserted.push(plugin.clone());
                    let rates = plugin.policy().rates;
                    let name = plugin.name().to_string();
                    if limiters.get(&name).is_none_or(|l| l.rates() != rates) {
                        match Limiter::new(rates) {
                            Some(limiter) => limiters.insert(name, Arc::new(limiter)),
                            None => limiters.remove(&name),
                        };
                    }
                    let entry = entry(plugin);
                    plugins.insert(entry.plugin.name().to_string(), entry);
                }
                Change::Remove(name) => {
                    limiters.remove(&name);
                    if plugins.remove(&name).is_some() {
                        tracing::info!(plugin = %name, "plugin `{name}` unloaded");
                    }
                }
            }
        }
        drop(limiters);
        self.publish(&plugins);
        // Logged once requests reach it.
        for plugin in inserted {
            let m = plugin.manifest();
            tracing::info!(
                plugin = plugin.name(),
                tools = m.tools.len(),
                resources = m.resources.len() + m.templates.len(),
                prompts = m.prompts.len(),
                "serving plugin `{}`",
                plugin.name()
            );
        }
    }

    /// Builds and swaps in a new snapshot, and tells clients what changed.
    fn publish(&self, plugins: &BTreeMap<String, Entry>) {
        crate::metrics::plugins_loaded(plugins.len());
        let next = build(plugins);
        let previous = self.snapshot.swap(Arc::new(next));
        let now = self.snapshot.load();
        for c in &now.conflicts {
            if !previous.conflicts.contains(c) {
                tracing::error!(plugin = %c.plugin, "{}", c.message);
            }
        }
        let change = CatalogChange {
            tools: previous.catalog.tools != now.catalog.tools,
            resources: previous.catalog.resources != now.catalog.resources
                || previous.catalog.resource_templates != now.catalog.resource_templates,
            prompts: previous.catalog.prompts != now.catalog.prompts,
        };
        if change != CatalogChange::default() {
            let _ = self.events.send(ServerEvent::CatalogChanged(change));
        }
    }

    /// Runs `request` on `plugin`. When the guest said its lists changed
    /// (`host.lists-changed`), asks it for them again before answering, so
    /// that clients hear of the change before they see the answer.
    async fn run(
        &self,
        plugin: &Arc<Plugin>,
        request: Request,
        cx: &CallContext,
    ) -> (Result<Response, Failure>, Cost) {
        let ran = plugin.run(request, cx).await;
        if ran.lists_changed {
            self.relist(plugin).await;
        }
        (ran.response, ran.cost)
    }

    /// Lists `plugin` again and serves its new lists, unless it was
    /// replaced or removed meanwhile. A plugin that fails to list keeps its
    /// previous lists.
    async fn relist(&self, plugin: &Arc<Plugin>) {
        let name = plugin.name();
        let fresh = match plugin.relisted().await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(plugin = %name, "plugin `{name}` said its lists changed, but listing them failed: {e:#}; serving its previous lists");
                return;
            }
        };
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        if !plugins
            .get(name)
            .is_some_and(|e| Arc::ptr_eq(&e.plugin, plugin))
        {
            return;
        }
        tracing::debug!(plugin = %name, "plugin `{name}` said its lists changed; listed it again");
        let entry = entry(Arc::new(fresh));
        plugins.insert(name.to_string(), entry);
        self.publish(&plugins);
    }

    /// [`Backend::admit`], unless the front door did it already.
    async fn admitted(&self, cx: &CallContext, target: Target) -> Result<(), BackendError> {
        if cx.admitted {
            return Ok(());
        }
        self.admit(cx.caller.as_deref(), &target).await.map(|_| ())
    }

    /// The result-cache key of a request to `plugin`, and how long its
    /// answer is kept, when the plugin's `[cache]` keeps answers. Never for
    /// a replayed request (an input-required retry), whose answer depends on
    /// the client's answers too.
    fn cache_key(
        &self,
        plugin: &Plugin,
        cx: &CallContext,
        method: &str,
        item: &str,
        arguments: &Value,
    ) -> Option<(CacheKey, Duration)> {
        let ttl = plugin.policy().cache.ttl?;
        if cx.pin.is_some() {
            return None;
        }
        let key = CacheKey::new(
            plugin.name(),
            plugin.digest(),
            cx.caller.as_deref(),
            method,
            item,
            arguments,
        );
        Some((key, ttl))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

/// Whose rate-limit bucket a request takes from: the token's subject or
/// client, or the local user.
fn rate_key(caller: Option<&Caller>) -> String {
    // Namespaced, so that a client id can never name a subject's bucket.
    match caller {
        Some(Caller {
            subject: Some(subject),
            ..
        }) => format!("sub:{subject}"),
        Some(Caller {
            client_id: Some(client),
            ..
        }) => format!("client:{client}"),
        Some(_) => "anonymous".to_string(),
        None => "local".to_string(),
    }
}

/// A result from the cache, marked as such in `_meta`; recorded for the
/// audit log as served by `plugin`, at no cost.
fn cache_hit<T: HasMeta>(mut result: T, plugin: &Plugin, cx: &CallContext) -> T {
    if let Some(served) = &cx.served {
        plugin.record(served);
    }
    let mut meta = MetaObject::new();
    meta.0.insert("ward/cache".into(), json!("hit"));
    result.set_meta(meta);
    result
}

/// Results that carry `_meta`.
trait HasMeta {
    fn set_meta(&mut self, meta: MetaObject);
}

impl HasMeta for CallToolResult {
    fn set_meta(&mut self, meta: MetaObject) {
        self.meta = Some(meta);
    }
}

impl HasMeta for ReadResourceResult {
    fn set_meta(&mut self, meta: MetaObject) {
        self.meta = Some(meta);
    }
}

/// The cost of a call, as the client sees it in `_meta`.
fn cost_meta(cost: &Cost) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0.insert(
        "ward/cost".into(),
        json!({
            "fuel": cost.fuel,
            "peakMemoryBytes": cost.peak_memory,
            "durationMs": cost.duration.as_secs_f64() * 1000.0,
        }),
    );
    meta
}

/// The plugin's `limits.max-output`.
fn max_output(plugin: &Plugin) -> u64 {
    plugin.policy().limits.max_output
}

/// The plugin's `limits.timeout`, which also bounds checking values against
/// its schemas.
fn timeout(plugin: &Plugin) -> Duration {
    plugin.policy().limits.timeout
}

/// The one gate every answer of a plugin passes: refused when its JSON is
/// larger than `limits.max-output`, whatever fields the bytes are in.
fn capped<T: serde::Serialize>(plugin: &Plugin, answer: T) -> Result<T, Failure> {
    warn_of_secrets(plugin, &answer);
    let (size, max) = (output_size(&answer), max_output(plugin));
    if size > max {
        Err(Failure::OutputTooLarge {
            size,
            max,
            file: format!("{}.toml", plugin.name()).into(),
        })
    } else {
        Ok(answer)
    }
}

/// Logs a warning when an answer holds the value of one of the plugin's
/// secrets (`[env]` references) verbatim: the plugin hands a secret it was
/// trusted with to the client. The value itself is never logged.
fn warn_of_secrets<T: serde::Serialize>(plugin: &Plugin, answer: &T) {
    let policy = plugin.policy();
    if policy.secrets.is_empty() {
        return;
    }
    let Ok(text) = serde_json::to_string(answer) else {
        return;
    };
    for name in &policy.secrets {
        let Some((_, value)) = policy.env.iter().find(|(n, _)| n == name) else {
            continue;
        };
        // As the JSON holds it: escaped, without the quotes.
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(value);
        if !value.is_empty() && (text.contains(value.as_str()) || text.contains(escaped)) {
            tracing::warn!(
                plugin = %plugin.name(),
                "plugin `{}` answered with the value of its secret env.{name} (from {}.toml) verbatim",
                plugin.name(),
                plugin.name()
            );
        }
    }
}

/// Text a plugin produced (its error messages, a panic message), cut to
/// `limits.max-output` with a note.
fn guest_text(plugin: &Plugin, text: String) -> String {
    warn_of_secrets(plugin, &text);
    cut(text, max_output(plugin))
}

/// A failed call, as the client sees it.
fn failure_text(plugin: &Plugin, f: Failure) -> String {
    crate::metrics::failed(&f);
    guest_text(plugin, format!("plugin `{}`: {f}", plugin.name()))
}

fn tool_error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// A guest's own error, for requests other than tool calls.
fn guest_error(plugin: &Plugin, what: &'static str, name: &str, e: types::Error) -> BackendError {
    match e {
        types::Error::NotFound(_) => BackendError::NotFound {
            what,
            name: name.to_string(),
        },
        types::Error::InvalidParams(m) => BackendError::InvalidParams(guest_text(plugin, m)),
        types::Error::Failed(m) => BackendError::Internal(guest_text(
            plugin,
            format!("plugin `{}`: {m}", plugin.name()),
        )),
    }
}

fn failure(plugin: &Plugin, f: Failure) -> BackendError {
    crate::metrics::failed(&f);
    match f {
        Failure::Suspended(s) => BackendError::Suspended(s),
        Failure::Replaced => {
            BackendError::InvalidParams(format!("plugin `{}`: {f}", plugin.name()))
        }
        Failure::Cancelled => BackendError::Internal("cancelled by the client".into()),
        f => BackendError::Internal(failure_text(plugin, f)),
    }
}

impl Backend for Registry {
    fn catalog(&self) -> Arc<Catalog> {
        self.snapshot.load().catalog.clone()
    }

    fn catalog_for(&self, caller: Option<&Caller>) -> Arc<Catalog> {
        let snapshot = self.snapshot.load();
        match caller.and_then(|c| c.scopes.as_deref()) {
            Some(scopes) => snapshot.visible(scopes),
            None => snapshot.catalog.clone(),
        }
    }

    fn permits(&self, caller: Option<&Caller>, target: &Target) -> bool {
        let found = self.snapshot.load().target(target);
        found.is_none_or(|(plugin, kind, item)| {
            let access = &plugin.policy().access;
            access.is_open() || access::missing(caller, &access.required(kind, &item)).is_empty()
        })
    }

    async fn admit(&self, caller: Option<&Caller>, target: &Target) -> Result<bool, BackendError> {
        let found = self.snapshot.load().target(target);
        let Some((plugin, kind, item)) = found else {
            return Ok(false);
        };
        let access = &plugin.policy().access;
        if !access.is_open() {
            let required = access.required(kind, &item);
            let missing = access::missing(caller, &required);
            if !missing.is_empty() {
                let (Target::Tool(name)
                | Target::Resource(name)
                | Target::Prompt(name)
                | Target::PromptCompletion(name)
                | Target::TemplateCompletion(name)) = target;
                crate::metrics::refused(plugin.name(), target.method(), "forbidden");
                return Err(BackendError::Forbidden {
                    what: kind.noun(),
                    name: name.clone(),
                    required,
                    missing,
                });
            }
        }
        // Most plugins have no rates: no lock on every call for them.
        let limiter = match plugin.policy().rates == Default::default() {
            true => None,
            false => self
                .limiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(plugin.name())
                .cloned(),
        };
        if let Some(limiter) = limiter {
            let taken = limiter
                .take(self.shared.as_deref(), plugin.name(), &rate_key(caller))
                .await;
            if let Err(refused) = taken {
                let name = plugin.name();
                crate::metrics::rate_limited(name);
                crate::metrics::refused(name, target.method(), "rate_limited");
                let whose = if refused.per_caller {
                    "limits.rate, per caller"
                } else {
                    "limits.plugin-rate, all callers together"
                };
                let wait = refused.retry_after.as_secs_f64().max(0.001);
                return Err(BackendError::RateLimited {
                    message: format!(
                        "plugin `{name}` is over its rate limit of {} ({whose}, in {name}.toml); retry in {wait:.3} s",
                        refused.rate
                    ),
                    retry_after: refused.retry_after,
                });
            }
        }
        Ok(true)
    }

    fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.events.subscribe()
    }

    fn task_support(&self, name: &str) -> crate::backend::TaskSupport {
        self.snapshot
            .load()
            .tools
            .get(name)
            .map_or_else(Default::default, |route| route.tasks)
    }

    async fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        mut cx: CallContext,
    ) -> Result<CallToolResult, BackendError> {
        let route = self
            .snapshot
            .load()
            .tools
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound {
                what: "tool",
                name: name.to_string(),
            })?;
        crate::metrics::serving(route.plugin.name());
        self.admitted(&cx, Target::Tool(name.to_string())).await?;
        let plugin = &route.plugin;
        let arguments = Arc::new(Value::Object(arguments));
        match route
            .input
            .problems(arguments.clone(), &route.validations, timeout(plugin))
            .await
        {
            Ok(None) => {}
            Ok(Some(problems)) => {
                crate::metrics::rejected("invalid_arguments");
                return Ok(tool_error(guest_text(
                    plugin,
                    format!("invalid arguments for `{name}`: {problems}"),
                )));
            }
            Err(e) => {
                tracing::warn!(plugin = %plugin.name(), "tool `{name}`: {e}");
                return Ok(tool_error(format!("plugin `{}`: {e}", plugin.name())));
            }
        }
        let cached = plugin
            .policy()
            .cache
            .tools
            .contains(&route.guest_name)
            .then(|| self.cache_key(plugin, &cx, "tools/call", name, &arguments))
            .flatten();
        if let Some((key, _)) = &cached {
            if let Some(hit) = self.results.get(key).await {
                if let Ok(result) = serde_json::from_value::<CallToolResult>(hit) {
                    return Ok(cache_hit(result, plugin, &cx));
                }
            }
        }
        let asked = match cached {
            Some(_) => Asked::watch(&mut cx.client),
            None => Asked::default(),
        };
        let request = Request::CallTool {
            name: route.guest_name.clone(),
            arguments: arguments.to_string(),
        };
        let (response, cost) = self.run(plugin, request, &cx).await;
        let mut result = match response {
            Err(f @ (Failure::Cancelled | Failure::Suspended(_) | Failure::Replaced)) => {
                return Err(failure(plugin, f))
            }
            Err(f) => tool_error(failure_text(plugin, f)),
            Ok(Response::Tool(Ok(r))) => tool_result(&route, r).await,
            Ok(Response::Tool(Err(e))) => tool_error(guest_text(
                plugin,
                match e {
                    types::Error::InvalidParams(m) => {
                        format!("invalid arguments for `{name}`: {m}")
                    }
                    types::Error::NotFound(m) | types::Error::Failed(m) => m,
                },
            )),
            Ok(_) => tool_error(failure_text(
                plugin,
                Failure::Invalid("answered a tool call with something else".into()),
            )),
        };
        if let (Some((key, ttl)), false) = (cached, result.is_error == Some(true) || asked.get()) {
            if let Ok(value) = serde_json::to_value(&result) {
                self.results.put(key, ttl, &value).await;
            }
        }
        result.meta = Some(cost_meta(&cost));
        Ok(result)
    }

    async fn read_resource(
        &self,
        uri: &str,
        mut cx: CallContext,
    ) -> Result<ReadResourceResult, BackendError> {
        let plugin =
            self.snapshot
                .load()
                .resource_owner(uri)
                .ok_or_else(|| BackendError::NotFound {
                    what: "resource",
                    name: uri.to_string(),
                })?;
        crate::metrics::serving(plugin.name());
        self.admitted(&cx, Target::Resource(uri.to_string()))
            .await?;
        let cached = self.cache_key(&plugin, &cx, "resources/read", uri, &Value::Null);
        if let Some((key, _)) = &cached {
            if let Some(hit) = self.results.get(key).await {
                if let Ok(result) = serde_json::from_value::<ReadResourceResult>(hit) {
                    return Ok(cache_hit(result, &plugin, &cx));
                }
            }
        }
        let asked = match cached {
            Some(_) => Asked::watch(&mut cx.client),
            None => Asked::default(),
        };
        let request = Request::ReadResource {
            uri: uri.to_string(),
        };
        let (response, _) = self.run(&plugin, request, &cx).await;
        match response.map_err(|f| failure(&plugin, f))? {
            Response::Resource(Ok(contents)) => {
                let result = ReadResourceResult::new(
                    contents
                        .into_iter()
                        .map(plugin::resource_contents)
                        .collect(),
                );
                let result = capped(&plugin, result).map_err(|f| failure(&plugin, f))?;
                if let (Some((key, ttl)), false) = (cached, asked.get()) {
                    if let Ok(value) = serde_json::to_value(&result) {
                        self.results.put(key, ttl, &value).await;
                    }
                }
                Ok(result)
            }
            Response::Resource(Err(e)) => Err(guest_error(&plugin, "resource", uri, e)),
            _ => Err(failure(
                &plugin,
                Failure::Invalid("wrong answer to a resource read".into()),
            )),
        }
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: CallContext,
    ) -> Result<GetPromptResult, BackendError> {
        let route = self
            .snapshot
            .load()
            .prompts
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound {
                what: "prompt",
                name: name.to_string(),
            })?;
        crate::metrics::serving(route.plugin.name());
        self.admitted(&cx, Target::Prompt(name.to_string())).await?;
        let missing: Vec<&str> = route
            .prompt
            .arguments
            .iter()
            .filter(|a| a.required && !arguments.contains_key(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(BackendError::InvalidParams(format!(
                "prompt `{name}` is missing required argument(s): {}",
                missing.join(", ")
            )));
        }
        let arguments = arguments
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                )
            })
            .collect();
        let plugin = &route.plugin;
        let request = Request::GetPrompt {
            name: route.prompt.name.clone(),
            arguments,
        };
        let (response, _) = self.run(plugin, request, &cx).await;
        match response.map_err(|f| failure(plugin, f))? {
            Response::Prompt(Ok(r)) => {
                let mut out = GetPromptResult::new(
                    r.messages.into_iter().map(plugin::prompt_message).collect(),
                );
                if let Some(d) = r.description {
                    out = out.with_description(d);
                }
                capped(plugin, out).map_err(|f| failure(plugin, f))
            }
            Response::Prompt(Err(e)) => Err(guest_error(plugin, "prompt", name, e)),
            _ => Err(failure(
                plugin,
                Failure::Invalid("wrong answer to a prompt request".into()),
            )),
        }
    }

    async fn complete(
        &self,
        reference: Reference,
        argument: &str,
        value: &str,
        context: Vec<(String, String)>,
        cx: CallContext,
    ) -> Result<CompleteResult, BackendError> {
        let snap = self.snapshot.load_full();
        let (plugin, target, admit) = match &reference {
            Reference::Prompt(p) => {
                let route = snap
                    .prompts
                    .get(&p.name)
                    .ok_or_else(|| BackendError::NotFound {
                        what: "prompt",
                        name: p.name.clone(),
                    })?;
                (
                    route.plugin.clone(),
                    completions::Reference::Prompt(route.prompt.name.clone()),
                    Target::PromptCompletion(p.name.clone()),
                )
            }
            Reference::Resource(r) => {
                let route = snap
                    .template(&r.uri)
                    .ok_or_else(|| BackendError::NotFound {
                        what: "resource template",
                        name: r.uri.clone(),
                    })?;
                (
                    route.plugin.clone(),
                    completions::Reference::ResourceTemplate(route.template.as_str().to_string()),
                    Target::TemplateCompletion(r.uri.clone()),
                )
            }
            _ => {
                return Err(BackendError::InvalidParams(
                    "unknown completion reference type".into(),
                ))
            }
        };
        crate::metrics::serving(plugin.name());
        self.admitted(&cx, admit).await?;
        let empty = || CompleteResult::new(CompletionInfo::default());
        if !plugin.manifest().completions {
            return Ok(empty());
        }
        let request = Request::Complete {
            target,
            argument: argument.to_string(),
            value: value.to_string(),
            context,
        };
        let (response, _) = self.run(&plugin, request, &cx).await;
        match response.map_err(|f| failure(&plugin, f))? {
            Response::Completion(Ok(c)) => {
                let mut values = c.values;
                let has_more = c.has_more || values.len() > CompletionInfo::MAX_VALUES;
                values.truncate(CompletionInfo::MAX_VALUES);
                let mut info = CompletionInfo::default();
                info.values = values;
                info.total = c.total;
                info.has_more = Some(has_more);
                capped(&plugin, CompleteResult::new(info)).map_err(|f| failure(&plugin, f))
            }
            Response::Completion(Err(types::Error::NotFound(_))) => Ok(empty()),
            Response::Completion(Err(e)) => {
                Err(guest_error(&plugin, "completion target", argument, e))
            }
            _ => Err(failure(
                &plugin,
                Failure::Invalid("wrong answer to a completion request".into()),
            )),
        }
    }
}

/// Maps a guest's tool result, enforcing the output cap and schema.
async fn tool_result(route: &ToolRoute, r: plugin::tools::ToolResult) -> CallToolResult {
    let plugin = &route.plugin;
    let is_error = r.is_error;
    let structured = match r.structured.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            return tool_error(failure_text(
                plugin,
                Failure::Invalid(format!("structured result is not JSON: {e}")),
            ))
        }
    };
    let content = r.content.into_iter().map(plugin::content).collect();
    let mut out = if is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = structured;
    let mut out = match capped(plugin, out) {
        Ok(out) => out,
        Err(f) => return tool_error(failure_text(plugin, f)),
    };
    if let (Some(schema), Some(value), false) =
        (&route.output, &mut out.structured_content, is_error)
    {
        let value = Arc::new(std::mem::take(value));
        let checked = schema
            .problems(value.clone(), &route.validations, timeout(plugin))
            .await;
        match checked {
            Ok(None) => {}
            Ok(Some(problems)) => {
                return tool_error(guest_text(
                    plugin,
                    format!(
                    "plugin `{}`: structured result does not match the output schema: {problems}",
                    plugin.name()
                ),
                ))
            }
            Err(e) => return tool_error(format!("plugin `{}`: {e}", plugin.name())),
        }
        out.structured_content = Some(Arc::try_unwrap(value).unwrap_or_else(|v| (*v).clone()));
    }
    out
}

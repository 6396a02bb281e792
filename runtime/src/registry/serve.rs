//! The request path: [`Backend`] for the registry. Each request is routed
//! on the snapshot it started with, admitted (`admission.rs`), its
//! arguments checked against the tool's input schema, answered from the
//! result cache when `[cache]` allows, and otherwise handed to the plugin,
//! which answers in MCP values or with a `PluginError`. What the client
//! receives for a failure is decided in one place, `plugin::answer`.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolResult, CompleteResult, GetPromptResult, JsonObject, MetaObject, ReadResourceResult,
    Reference,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::admission::{permitted, Use};
use super::schema::Schema;
use super::snapshot::ToolRoute;
use super::Registry;
use crate::audit::Caller;
use crate::backend::{
    Backend, BackendError, CallContext, Catalog, ServerEvent, Target, TaskSupport,
};
use crate::plugin::{answer, Completing, Cost, ErrorKind, Item, Plugin, PluginError, Ran, Stage};
use crate::service::access::ItemKind;
use crate::service::results::{Asked, Key as CacheKey};

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
        let snapshot = self.snapshot.load();
        snapshot
            .target(target)
            .is_none_or(|(plugin, kind, item)| permitted(caller, plugin, kind, item))
    }

    async fn admit(&self, caller: Option<&Caller>, target: &Target) -> Result<bool, BackendError> {
        let snapshot = self.snapshot.load_full();
        let Some((plugin, kind, item)) = snapshot.target(target) else {
            return Ok(false);
        };
        let (Target::Tool(asked)
        | Target::Resource(asked)
        | Target::Prompt(asked)
        | Target::PromptCompletion(asked)
        | Target::TemplateCompletion(asked)) = target;
        let to = Use {
            plugin,
            kind,
            item,
            asked,
            method: target.method(),
        };
        self.admit_to(caller, to).await.map(|()| true)
    }

    fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.events.subscribe()
    }

    fn task_support(&self, name: &str) -> TaskSupport {
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
        let route = routed(&self.snapshot.load().tools, "tool", name)?;
        let plugin = &route.plugin;
        crate::metrics::serving(plugin.name());
        let to = Use {
            plugin,
            kind: ItemKind::Tool,
            item: &route.guest_name,
            asked: name,
            method: "tools/call",
        };
        self.admitted(&cx, to).await?;
        let item = Item::Tool(name);
        let arguments = Arc::new(Value::Object(arguments));
        let checked = check(&route, &route.input, arguments.clone(), Stage::Check).await;
        if let Err(e) = checked {
            return answer(plugin, item, Err(e));
        }
        let cached = plugin
            .policy()
            .cache
            .tools
            .contains(&route.guest_name)
            .then(|| cache_key(plugin, &cx, "tools/call", name, &arguments))
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
        let ran = plugin
            .call_tool(&route.guest_name, arguments.to_string(), &cx)
            .await;
        let ran = self.heard(plugin, ran).await;
        let answered = match ran.answer {
            Ok(result) => structured_checked(&route, result).await,
            Err(e) => Err(e),
        };
        let mut result = answer(plugin, item, answered)?;
        if let (Some((key, ttl)), false) = (cached, result.is_error == Some(true) || asked.get()) {
            if let Ok(value) = serde_json::to_value(&result) {
                self.results.put(key, ttl, &value).await;
            }
        }
        result.meta = Some(cost_meta(&ran.cost));
        Ok(result)
    }

    async fn read_resource(
        &self,
        uri: &str,
        mut cx: CallContext,
    ) -> Result<ReadResourceResult, BackendError> {
        let plugin = {
            let snapshot = self.snapshot.load_full();
            let (plugin, key) =
                snapshot
                    .resource_owner(uri)
                    .ok_or_else(|| BackendError::NotFound {
                        what: "resource",
                        name: uri.to_string(),
                    })?;
            crate::metrics::serving(plugin.name());
            let to = Use {
                plugin,
                kind: ItemKind::Resource,
                item: key,
                asked: uri,
                method: "resources/read",
            };
            self.admitted(&cx, to).await?;
            plugin.clone()
        };
        let cached = cache_key(&plugin, &cx, "resources/read", uri, &Value::Null);
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
        let ran = plugin.read_resource(uri, &cx).await;
        let ran = self.heard(&plugin, ran).await;
        let result = answer(&plugin, Item::Resource(uri), ran.answer)?;
        if let (Some((key, ttl)), false) = (cached, asked.get()) {
            if let Ok(value) = serde_json::to_value(&result) {
                self.results.put(key, ttl, &value).await;
            }
        }
        Ok(result)
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: JsonObject,
        cx: CallContext,
    ) -> Result<GetPromptResult, BackendError> {
        let route = routed(&self.snapshot.load().prompts, "prompt", name)?;
        let plugin = &route.plugin;
        crate::metrics::serving(plugin.name());
        let to = Use {
            plugin,
            kind: ItemKind::Prompt,
            item: &route.prompt.name,
            asked: name,
            method: "prompts/get",
        };
        self.admitted(&cx, to).await?;
        let missing: Vec<&str> = route
            .prompt
            .arguments
            .iter()
            .flatten()
            .filter(|a| a.required == Some(true) && !arguments.contains_key(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(BackendError::InvalidParams(format!(
                "prompt `{name}` is missing required argument(s): {}",
                missing.join(", ")
            )));
        }
        let ran = plugin.get_prompt(&route.prompt.name, arguments, &cx).await;
        let ran = self.heard(plugin, ran).await;
        answer(plugin, Item::Prompt(name), ran.answer)
    }

    async fn complete(
        &self,
        reference: Reference,
        argument: &str,
        value: &str,
        context: Vec<(String, String)>,
        cx: CallContext,
    ) -> Result<CompleteResult, BackendError> {
        let snapshot = self.snapshot.load_full();
        let (plugin, target, to) = match &reference {
            Reference::Prompt(p) => {
                let route =
                    snapshot
                        .prompts
                        .get(&p.name)
                        .ok_or_else(|| BackendError::NotFound {
                            what: "prompt",
                            name: p.name.clone(),
                        })?;
                let to = Use {
                    plugin: &route.plugin,
                    kind: ItemKind::Prompt,
                    item: &route.prompt.name,
                    asked: &p.name,
                    method: "completion/complete",
                };
                (&route.plugin, Completing::Prompt(&route.prompt.name), to)
            }
            Reference::Resource(r) => {
                let route = snapshot
                    .template(&r.uri)
                    .ok_or_else(|| BackendError::NotFound {
                        what: "resource template",
                        name: r.uri.clone(),
                    })?;
                let to = Use {
                    plugin: &route.plugin,
                    kind: ItemKind::Resource,
                    item: route.template.as_str(),
                    asked: &r.uri,
                    method: "completion/complete",
                };
                let target = Completing::Template(route.template.as_str());
                (&route.plugin, target, to)
            }
            _ => {
                return Err(BackendError::InvalidParams(
                    "unknown completion reference type".into(),
                ))
            }
        };
        crate::metrics::serving(plugin.name());
        self.admitted(&cx, to).await?;
        let ran = plugin
            .complete(target, argument, value, &context, &cx)
            .await;
        let ran = self.heard(plugin, ran).await;
        answer(plugin, Item::Completion(argument), ran.answer)
    }
}

impl Registry {
    /// When the guest said its lists changed (`host.lists-changed`), lists
    /// it again before answering, so that clients hear of the change before
    /// they see the answer.
    async fn heard<T>(&self, plugin: &Arc<Plugin>, ran: Ran<T>) -> Ran<T> {
        if ran.lists_changed {
            self.relist(plugin).await;
        }
        ran
    }
}

/// `value` checked against `schema` of the tool at `route`; `stage` says
/// which: the arguments before the call, the structured result after.
async fn check(
    route: &ToolRoute,
    schema: &Arc<Schema>,
    value: Arc<Value>,
    stage: Stage,
) -> Result<(), PluginError> {
    let plugin = &route.plugin;
    let timeout = plugin.policy().limits.timeout;
    let kind = match schema.problems(value, &route.validations, timeout).await {
        Ok(None) => return Ok(()),
        Ok(Some(problems)) if stage == Stage::Check => ErrorKind::InvalidArguments(problems),
        Ok(Some(problems)) => ErrorKind::OutputSchema(problems),
        Err(e) => ErrorKind::Unchecked(e),
    };
    Err(PluginError::new(plugin.shared_name(), stage, kind))
}

/// A tool's result, with its structured content checked against the
/// tool's output schema (not for a result marked `isError`).
async fn structured_checked(
    route: &ToolRoute,
    mut out: CallToolResult,
) -> Result<CallToolResult, PluginError> {
    let is_error = out.is_error == Some(true);
    if let (Some(schema), Some(value), false) =
        (&route.output, &mut out.structured_content, is_error)
    {
        let value = Arc::new(std::mem::take(value));
        check(route, schema, value.clone(), Stage::Output).await?;
        out.structured_content = Some(Arc::try_unwrap(value).unwrap_or_else(|v| (*v).clone()));
    }
    Ok(out)
}

/// The result-cache key of a request to `plugin`, and how long its answer
/// is kept, when the plugin's `[cache]` keeps answers. Never for a replayed
/// request (an input-required retry), whose answer depends on the client's
/// answers too.
/// The route of the tool or prompt `name` in `routes`, or "no such `what`".
fn routed<R>(
    routes: &std::collections::HashMap<String, Arc<R>>,
    what: &'static str,
    name: &str,
) -> Result<Arc<R>, BackendError> {
    routes
        .get(name)
        .cloned()
        .ok_or_else(|| BackendError::NotFound {
            what,
            name: name.to_string(),
        })
}

fn cache_key(
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

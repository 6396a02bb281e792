//! The live set of plugins, and the immutable snapshot every request reads.
//!
//! The control path (loader, watcher) inserts and removes plugins; each change
//! builds a new [`Snapshot`] of exposed names → plugins and swaps it in one
//! step, so a request sees one consistent version from start to end and calls
//! in flight finish on the plugin they started with. Name collisions are
//! settled here: the plugin loaded first keeps the name, the later one's item
//! is refused with a log line, never silently shadowed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use regex::Regex;
use rmcp::model::{
    CallToolResult, CompleteResult, CompletionInfo, ContentBlock, GetPromptResult, JsonObject,
    MetaObject, ReadResourceResult, Reference, Tool,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::backend::{Backend, BackendError, CallContext, Catalog, CatalogChange, ServerEvent};
use crate::plugin::{self, completions, prompts, types, Cost, Failure, Plugin, Request, Response};

/// Exposed names must look like this (MCP's recommendation for tool names).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One tool as routed: the plugin, the guest's own name, and its validators.
struct ToolRoute {
    plugin: Arc<Plugin>,
    guest_name: String,
    tool: Tool,
    input: Arc<jsonschema::Validator>,
    output: Option<Arc<jsonschema::Validator>>,
}

struct PromptRoute {
    plugin: Arc<Plugin>,
    prompt: prompts::Prompt,
}

struct TemplateRoute {
    plugin: Arc<Plugin>,
    template: String,
    pattern: Regex,
}

/// A plugin with what was derived from it once, at insertion.
struct Entry {
    seq: u64,
    plugin: Arc<Plugin>,
    tools: Vec<Arc<ToolRoute>>,
    templates: Vec<Arc<TemplateRoute>>,
}

/// What every request reads: the catalog and the routes behind it.
#[derive(Default)]
pub struct Snapshot {
    catalog: Arc<Catalog>,
    tools: HashMap<String, Arc<ToolRoute>>,
    resources: HashMap<String, Arc<Plugin>>,
    templates: Vec<Arc<TemplateRoute>>,
    prompts: HashMap<String, Arc<PromptRoute>>,
}

/// One change to the set of plugins.
pub enum Change {
    /// Add or replace a plugin.
    Insert(Arc<Plugin>),
    /// Remove the plugin of this name.
    Remove(String),
}

/// The registry: plugins by name, and the current snapshot.
pub struct Registry {
    plugins: Mutex<(BTreeMap<String, Entry>, u64)>,
    snapshot: ArcSwap<Snapshot>,
    events: broadcast::Sender<ServerEvent>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            plugins: Mutex::new((BTreeMap::new(), 0)),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            events: broadcast::channel(1024).0,
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
            .0
            .get(name)
            .map(|e| e.plugin.clone())
    }

    /// Names of the loaded plugins.
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
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

    /// Applies a burst of changes and publishes one new snapshot. A replaced
    /// plugin keeps its place in the load order; calls in flight keep the
    /// version they started with.
    pub fn apply(&self, changes: Vec<Change>) {
        let mut guard = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        let (plugins, next) = &mut *guard;
        for change in changes {
            match change {
                Change::Insert(plugin) => {
                    let m = plugin.manifest();
                    tracing::info!(
                        plugin = plugin.name(),
                        tools = m.tools.len(),
                        resources = m.resources.len() + m.templates.len(),
                        prompts = m.prompts.len(),
                        "serving plugin `{}`",
                        plugin.name()
                    );
                    let seq = plugins
                        .get(plugin.name())
                        .map(|e| e.seq)
                        .unwrap_or_else(|| {
                            *next += 1;
                            *next
                        });
                    let entry = entry(seq, plugin);
                    plugins.insert(entry.plugin.name().to_string(), entry);
                }
                Change::Remove(name) => {
                    if plugins.remove(&name).is_some() {
                        tracing::info!(plugin = %name, "plugin `{name}` unloaded");
                    }
                }
            }
        }
        self.publish(plugins);
    }

    /// Builds and swaps in a new snapshot, and tells clients what changed.
    fn publish(&self, plugins: &BTreeMap<String, Entry>) {
        let next = build(plugins);
        let previous = self.snapshot.swap(Arc::new(next));
        let now = self.snapshot.load();
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

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

/// Derives routes and validators from a plugin once. Items with invalid
/// names or schemas are refused here, with a log line each.
fn entry(seq: u64, plugin: Arc<Plugin>) -> Entry {
    let name = plugin.name().to_string();
    let prefix = plugin.policy().prefix.clone();
    let mut tools = Vec::new();
    for t in &plugin.manifest().tools {
        let exposed = expose(&prefix, &t.name);
        match tool_route(&plugin, t, &exposed) {
            Ok(route) => tools.push(Arc::new(route)),
            Err(e) => tracing::error!(plugin = %name, "tool `{}` refused: {e}", t.name),
        }
    }
    let mut templates = Vec::new();
    for t in &plugin.manifest().templates {
        match template_pattern(&t.uri_template) {
            Ok(pattern) => templates.push(Arc::new(TemplateRoute {
                plugin: plugin.clone(),
                template: t.uri_template.clone(),
                pattern,
            })),
            Err(e) => {
                tracing::error!(plugin = %name, "resource template `{}` refused: {e}", t.uri_template)
            }
        }
    }
    Entry {
        seq,
        plugin,
        tools,
        templates,
    }
}

/// The exposed name of a plugin's item: `PREFIX_NAME`, or `NAME` with an empty prefix.
pub fn expose(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

fn tool_route(
    plugin: &Arc<Plugin>,
    t: &plugin::tools::Tool,
    exposed: &str,
) -> anyhow::Result<ToolRoute> {
    anyhow::ensure!(
        valid_name(exposed),
        "exposed name `{exposed}` does not match ^[a-zA-Z0-9_-]{{1,64}}$"
    );
    let schema = |text: &str, what: &str| -> anyhow::Result<(JsonObject, jsonschema::Validator)> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{what} is not JSON: {e}"))?;
        let Value::Object(object) = value.clone() else {
            anyhow::bail!("{what} is not a JSON object")
        };
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| anyhow::anyhow!("{what} is not a valid JSON Schema: {e}"))?;
        Ok((object, validator))
    };
    let (input_schema, input) = schema(&t.input_schema, "input schema")?;
    anyhow::ensure!(
        input_schema.get("type") == Some(&json!("object")),
        "input schema must have \"type\": \"object\""
    );
    let mut tool = Tool::new(
        exposed.to_string(),
        t.description.clone(),
        Arc::new(input_schema),
    );
    tool.title = t.title.clone();
    let output = match &t.output_schema {
        Some(text) => {
            let (output_schema, validator) = schema(text, "output schema")?;
            tool = tool.with_raw_output_schema(Arc::new(output_schema));
            Some(Arc::new(validator))
        }
        None => None,
    };
    if let Some(a) = t.annotations {
        tool = tool.with_annotations(plugin::annotations(a, t.title.clone()));
    }
    Ok(ToolRoute {
        plugin: plugin.clone(),
        guest_name: t.name.clone(),
        tool,
        input: Arc::new(input),
        output,
    })
}

/// Compiles an RFC 6570 template into a matcher for URIs. `{var}` matches one
/// path segment, `{+var}` and `{#var}` match anything; other operators match
/// up to the next literal.
fn template_pattern(template: &str) -> anyhow::Result<Regex> {
    let mut pattern = String::from("^");
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| anyhow::anyhow!("unclosed `{{`"))?
            + open;
        let expr = &rest[open + 1..close];
        anyhow::ensure!(!expr.is_empty(), "empty expression `{{}}`");
        pattern.push_str(match expr.as_bytes()[0] {
            b'+' | b'#' => "(.*)",
            b'?' | b'&' => "(.*)",
            _ => "([^/?#]*)",
        });
        rest = &rest[close + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    Ok(Regex::new(&pattern)?)
}

/// Builds a snapshot from the plugins, first-loaded first.
fn build(plugins: &BTreeMap<String, Entry>) -> Snapshot {
    let mut entries: Vec<&Entry> = plugins.values().collect();
    entries.sort_by_key(|e| e.seq);
    let mut snap = Snapshot::default();
    let mut catalog = Catalog::default();
    let mut template_owner: HashMap<String, String> = HashMap::new();
    for e in entries {
        let name = e.plugin.name();
        for route in &e.tools {
            match snap.tools.get(route.tool.name.as_ref()) {
                Some(owner) => tracing::error!(
                    plugin = %name,
                    "tool `{}` refused: plugin `{}` already exposes that name; set `[names] prefix` in {name}.toml",
                    route.tool.name, owner.plugin.name()
                ),
                None => {
                    catalog.tools.push(route.tool.clone());
                    snap.tools
                        .insert(route.tool.name.to_string(), route.clone());
                }
            }
        }
        for r in &e.plugin.manifest().resources {
            match snap.resources.get(&r.uri) {
                Some(owner) => {
                    tracing::error!(plugin = %name, "resource `{}` refused: plugin `{}` already serves it", r.uri, owner.name())
                }
                None => {
                    catalog.resources.push(plugin::resource(r.clone()));
                    snap.resources.insert(r.uri.clone(), e.plugin.clone());
                }
            }
        }
        for (t, route) in e.plugin.manifest().templates.iter().zip(&e.templates) {
            match template_owner.get(&t.uri_template) {
                Some(owner) => {
                    tracing::error!(plugin = %name, "resource template `{}` refused: plugin `{owner}` already serves it", t.uri_template)
                }
                None => {
                    template_owner.insert(t.uri_template.clone(), name.to_string());
                    catalog
                        .resource_templates
                        .push(plugin::resource_template(t.clone()));
                    snap.templates.push(route.clone());
                }
            }
        }
        let prefix = &e.plugin.policy().prefix;
        for p in &e.plugin.manifest().prompts {
            let exposed = expose(prefix, &p.name);
            if !valid_name(&exposed) {
                tracing::error!(plugin = %name, "prompt `{}` refused: exposed name `{exposed}` is not valid", p.name);
            } else if let Some(owner) = snap.prompts.get(&exposed) {
                tracing::error!(plugin = %name, "prompt `{exposed}` refused: plugin `{}` already exposes that name", owner.plugin.name());
            } else {
                catalog.prompts.push(plugin::prompt(p, &exposed));
                snap.prompts.insert(
                    exposed,
                    Arc::new(PromptRoute {
                        plugin: e.plugin.clone(),
                        prompt: p.clone(),
                    }),
                );
            }
        }
    }
    catalog.tools.sort_by(|a, b| a.name.cmp(&b.name));
    catalog.resources.sort_by(|a, b| a.uri.cmp(&b.uri));
    catalog
        .resource_templates
        .sort_by(|a, b| a.uri_template.cmp(&b.uri_template));
    catalog.prompts.sort_by(|a, b| a.name.cmp(&b.name));
    snap.catalog = Arc::new(catalog);
    snap
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
        types::Error::InvalidParams(m) => BackendError::InvalidParams(m),
        types::Error::Failed(m) => {
            BackendError::Internal(format!("plugin `{}`: {m}", plugin.name()))
        }
    }
}

fn failure(plugin: &Plugin, f: Failure) -> BackendError {
    BackendError::Internal(format!("plugin `{}`: {f}", plugin.name()))
}

/// Why a value failed its schema, one line per problem, naming the field.
fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Option<String> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(10)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

impl Backend for Registry {
    fn catalog(&self) -> Arc<Catalog> {
        self.snapshot.load().catalog.clone()
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
        let arguments = Value::Object(arguments);
        if let Some(problems) = schema_errors(&route.input, &arguments) {
            return Ok(tool_error(format!(
                "invalid arguments for `{name}`: {problems}"
            )));
        }
        let request = Request::CallTool {
            name: route.guest_name.clone(),
            arguments: arguments.to_string(),
        };
        let (response, cost) = route.plugin.run(request, &cx).await;
        let plugin = &route.plugin;
        let mut result = match response {
            Err(Failure::Cancelled) => {
                return Err(BackendError::Internal("cancelled by the client".into()))
            }
            Err(f) => tool_error(format!("plugin `{}`: {f}", plugin.name())),
            Ok(Response::Tool(Ok(r))) => tool_result(plugin, &route, r),
            Ok(Response::Tool(Err(e))) => tool_error(match e {
                types::Error::InvalidParams(m) => format!("invalid arguments for `{name}`: {m}"),
                types::Error::NotFound(m) | types::Error::Failed(m) => m,
            }),
            Ok(_) => tool_error(format!(
                "plugin `{}`: answered a tool call with something else",
                plugin.name()
            )),
        };
        result.meta = Some(cost_meta(&cost));
        Ok(result)
    }

    async fn read_resource(
        &self,
        uri: &str,
        cx: CallContext,
    ) -> Result<ReadResourceResult, BackendError> {
        let snap = self.snapshot.load_full();
        let plugin = match snap.resources.get(uri) {
            Some(p) => p.clone(),
            None => snap
                .templates
                .iter()
                .find(|t| t.pattern.is_match(uri))
                .map(|t| t.plugin.clone())
                .ok_or_else(|| BackendError::NotFound {
                    what: "resource",
                    name: uri.to_string(),
                })?,
        };
        let (response, _) = plugin
            .run(
                Request::ReadResource {
                    uri: uri.to_string(),
                },
                &cx,
            )
            .await;
        match response.map_err(|f| failure(&plugin, f))? {
            Response::Resource(Ok(contents)) => {
                let size: usize = contents.iter().map(plugin::resource_size).sum();
                let max = plugin.policy().limits.max_output;
                if size as u64 > max {
                    return Err(failure(&plugin, Failure::OutputTooLarge(size as u64, max)));
                }
                Ok(ReadResourceResult::new(
                    contents
                        .into_iter()
                        .map(plugin::resource_contents)
                        .collect(),
                ))
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
        let (response, _) = plugin.run(request, &cx).await;
        match response.map_err(|f| failure(plugin, f))? {
            Response::Prompt(Ok(r)) => {
                let size: usize = r
                    .messages
                    .iter()
                    .map(|m| plugin::content_size(std::slice::from_ref(&m.content)))
                    .sum();
                let max = plugin.policy().limits.max_output;
                if size as u64 > max {
                    return Err(failure(plugin, Failure::OutputTooLarge(size as u64, max)));
                }
                let mut out = GetPromptResult::new(
                    r.messages.into_iter().map(plugin::prompt_message).collect(),
                );
                if let Some(d) = r.description {
                    out = out.with_description(d);
                }
                Ok(out)
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
        let (plugin, target) = match &reference {
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
                )
            }
            Reference::Resource(r) => {
                let route = snap
                    .templates
                    .iter()
                    .find(|t| t.template == r.uri)
                    .ok_or_else(|| BackendError::NotFound {
                        what: "resource template",
                        name: r.uri.clone(),
                    })?;
                (
                    route.plugin.clone(),
                    completions::Reference::ResourceTemplate(route.template.clone()),
                )
            }
            _ => {
                return Err(BackendError::InvalidParams(
                    "unknown completion reference type".into(),
                ))
            }
        };
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
        let (response, _) = plugin.run(request, &cx).await;
        match response.map_err(|f| failure(&plugin, f))? {
            Response::Completion(Ok(c)) => {
                let mut values = c.values;
                let has_more = c.has_more || values.len() > CompletionInfo::MAX_VALUES;
                values.truncate(CompletionInfo::MAX_VALUES);
                let mut info = CompletionInfo::default();
                info.values = values;
                info.total = c.total;
                info.has_more = Some(has_more);
                Ok(CompleteResult::new(info))
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
fn tool_result(plugin: &Plugin, route: &ToolRoute, r: plugin::tools::ToolResult) -> CallToolResult {
    let max = plugin.policy().limits.max_output;
    let size = plugin::content_size(&r.content) + r.structured.as_ref().map_or(0, |s| s.len());
    if size as u64 > max {
        return tool_error(format!(
            "plugin `{}`: {}",
            plugin.name(),
            Failure::OutputTooLarge(size as u64, max)
        ));
    }
    let structured = match r.structured.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            return tool_error(format!(
                "plugin `{}`: structured result is not JSON: {e}",
                plugin.name()
            ))
        }
    };
    if let (Some(validator), Some(value), false) = (&route.output, &structured, r.is_error) {
        if let Some(problems) = schema_errors(validator, value) {
            return tool_error(format!(
                "plugin `{}`: structured result does not match the output schema: {problems}",
                plugin.name()
            ));
        }
    }
    let content = r.content.into_iter().map(plugin::content).collect();
    let mut out = if r.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = structured;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_uris() {
        let p = template_pattern("test://template/{id}/data").unwrap();
        assert!(p.is_match("test://template/42/data"));
        assert!(!p.is_match("test://template/4/2/data"));
        assert!(!p.is_match("test://template/42/data/x"));
        let p = template_pattern("file:///{+path}").unwrap();
        assert!(p.is_match("file:///a/b/c.txt"));
        assert!(template_pattern("x://{").is_err());
    }

    #[test]
    fn exposed_names() {
        assert_eq!(expose("hello", "greet"), "hello_greet");
        assert_eq!(expose("", "greet"), "greet");
        assert!(valid_name("hello_greet-2"));
        assert!(!valid_name("hello.greet"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(!valid_name(""));
    }
}

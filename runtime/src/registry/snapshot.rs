//! Routes from exposed names and URIs to plugins, and the catalog clients
//! list: derived from each plugin once ([`entry`]) and from the whole set of
//! plugins at each change ([`build`]).
//!
//! Who serves a name or a URI depends only on which plugins are present,
//! never on the order they loaded in, so a restart cannot hand a name to
//! another plugin:
//! - exposed names are `PREFIX_ITEM`, and a prefix holds no `_` (the policy
//!   parser refuses one), so the first `_` splits every name one way only and
//!   two plugins with different prefixes can never produce the same name;
//! - a name or URI that two plugins claim anyway (a shared prefix, an
//!   unprefixed plugin, overlapping templates) is refused for every claimant,
//!   with a log line naming them all: it never means another plugin's item.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde_json::json;
use tokio::sync::Semaphore;

use super::schema::{self, Schema};
use super::templates::UriTemplate;
use crate::backend::{Catalog, Target, TaskSupport, TASK_KEYWORD};
use crate::plugin::{ListedTool, Plugin};
use crate::service::access::ItemKind;

/// The most resource templates of one plugin (overlaps are checked pairwise).
pub const MAX_TEMPLATES_PER_PLUGIN: usize = 256;

/// Exposed names must look like this (MCP's recommendation for tool names):
/// 1 to 64 letters, digits, `_` and `-`. The one check of that rule; a plugin
/// name `ward add` accepts is one too (`adopt::check_name`).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The exposed name of a plugin's item: `PREFIX_NAME`, or `NAME` with an empty prefix.
pub fn expose(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

/// One tool as routed: the plugin, the guest's own name, and its schemas.
pub(super) struct ToolRoute {
    pub plugin: Arc<Plugin>,
    pub guest_name: String,
    pub tool: Tool,
    pub input: Arc<Schema>,
    pub output: Option<Arc<Schema>>,
    /// The plugin's share of threads for costly validations.
    pub validations: Arc<Semaphore>,
    /// Whether it may run as a task (its input schema's `x-ward-task`).
    pub tasks: TaskSupport,
}

/// One prompt as routed: the plugin, and the prompt under its own name.
pub(super) struct PromptRoute {
    pub plugin: Arc<Plugin>,
    pub prompt: Prompt,
}

pub(super) struct TemplateRoute {
    pub plugin: Arc<Plugin>,
    pub template: UriTemplate,
    listed: ResourceTemplate,
}

struct ResourceRoute {
    plugin: Arc<Plugin>,
    uri: UriTemplate,
    listed: Resource,
}

/// A plugin with what was derived from it once, at insertion: its items
/// that are valid on their own, before they meet other plugins'.
pub(super) struct Entry {
    pub plugin: Arc<Plugin>,
    /// Its items refused on their own (logged when refused).
    refused: Vec<Refusal>,
    tools: Vec<Arc<ToolRoute>>,
    prompts: Vec<(String, Arc<PromptRoute>)>,
    resources: Vec<Arc<ResourceRoute>>,
    templates: Vec<Arc<TemplateRoute>>,
}

/// What every request reads: the catalog and the routes behind it.
#[derive(Default)]
pub struct Snapshot {
    pub(super) catalog: Arc<Catalog>,
    pub(super) tools: HashMap<String, Arc<ToolRoute>>,
    pub(super) prompts: HashMap<String, Arc<PromptRoute>>,
    resources: HashMap<String, Arc<Plugin>>,
    templates: Vec<Arc<TemplateRoute>>,
    /// Items refused because another plugin claims the same name or URIs.
    pub(super) conflicts: Vec<Refusal>,
    /// Items refused on their own, by plugin, then the conflicts.
    refusals: Vec<Refusal>,
    /// Whether any plugin's `[access]` asks for scopes, so that lists
    /// depend on who asks.
    restricted: bool,
}

/// An item ward does not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The plugin that listed it.
    pub plugin: String,
    /// What was refused and why, for the log and `ward check`.
    pub message: String,
}

impl Snapshot {
    /// The plugin serving `uri`: the one listing it, or the one whose
    /// template matches it (at most one plugin's can); with the key of the
    /// resource in its `[access]`: the URI, or the template.
    pub(super) fn resource_owner<'a>(&'a self, uri: &'a str) -> Option<(&'a Arc<Plugin>, &'a str)> {
        match self.resources.get(uri) {
            Some(plugin) => Some((plugin, uri)),
            None => self
                .templates
                .iter()
                .find(|t| t.template.matches(uri))
                .map(|t| (&t.plugin, t.template.as_str())),
        }
    }

    /// The route of a template, by its text (completion references name it).
    pub(super) fn template(&self, text: &str) -> Option<&Arc<TemplateRoute>> {
        self.templates.iter().find(|t| t.template.as_str() == text)
    }

    /// What `target` names: the plugin serving it, the kind of item, and
    /// the plugin's own name (or URI, or template) of it, which `[access]`
    /// keys use.
    pub(super) fn target<'a>(
        &'a self,
        target: &'a Target,
    ) -> Option<(&'a Arc<Plugin>, ItemKind, &'a str)> {
        match target {
            Target::Tool(name) => self
                .tools
                .get(name)
                .map(|r| (&r.plugin, ItemKind::Tool, r.guest_name.as_str())),
            Target::Prompt(name) | Target::PromptCompletion(name) => self
                .prompts
                .get(name)
                .map(|r| (&r.plugin, ItemKind::Prompt, r.prompt.name.as_str())),
            Target::Resource(uri) => self
                .resource_owner(uri)
                .map(|(plugin, key)| (plugin, ItemKind::Resource, key)),
            Target::TemplateCompletion(text) => self
                .template(text)
                .map(|t| (&t.plugin, ItemKind::Resource, t.template.as_str())),
        }
    }

    /// The catalog as a caller holding `scopes` sees it: without the items
    /// whose `[access]` scopes it lacks. The same catalog when no plugin
    /// restricts access.
    pub(super) fn visible(&self, scopes: &[String]) -> Arc<Catalog> {
        if !self.restricted {
            return self.catalog.clone();
        }
        let allowed = |plugin: &Plugin, kind: ItemKind, item: &str| {
            let access = &plugin.policy().access;
            access.is_open()
                || access
                    .required(kind, item)
                    .iter()
                    .all(|scope| scopes.contains(scope))
        };
        let c = &self.catalog;
        let tools = c
            .tools
            .iter()
            .filter(|t| {
                self.tools
                    .get(t.name.as_ref())
                    .is_some_and(|r| allowed(&r.plugin, ItemKind::Tool, &r.guest_name))
            })
            .cloned()
            .collect();
        let resources = c
            .resources
            .iter()
            .filter(|r| {
                self.resources
                    .get(r.uri.as_str())
                    .is_some_and(|p| allowed(p, ItemKind::Resource, &r.uri))
            })
            .cloned()
            .collect();
        let resource_templates = c
            .resource_templates
            .iter()
            .filter(|t| {
                self.template(&t.uri_template).is_some_and(|route| {
                    allowed(&route.plugin, ItemKind::Resource, &t.uri_template)
                })
            })
            .cloned()
            .collect();
        let prompts = c
            .prompts
            .iter()
            .filter(|p| {
                self.prompts
                    .get(&p.name)
                    .is_some_and(|r| allowed(&r.plugin, ItemKind::Prompt, &r.prompt.name))
            })
            .cloned()
            .collect();
        Arc::new(Catalog {
            tools,
            resources,
            resource_templates,
            prompts,
        })
    }

    /// Items refused because two plugins claim them.
    pub fn conflicts(&self) -> &[Refusal] {
        &self.conflicts
    }

    /// Every item refused: invalid on its own, or claimed by two plugins.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }
}

/// Derives routes and validators from a plugin once. Items that are invalid
/// on their own (a bad name, schema or template, a duplicate within the
/// plugin) are refused here, with a log line each.
pub(super) fn entry(plugin: Arc<Plugin>) -> Entry {
    let name = plugin.name().to_string();
    let prefix = plugin.policy().prefix.clone();
    let refused = std::cell::RefCell::new(Vec::new());
    let refuse = |what: &str, item: &str, why: String| {
        let message = format!("{what} `{item}` of plugin `{name}` refused: {why}");
        tracing::error!(plugin = %name, "{message}");
        refused.borrow_mut().push(Refusal {
            plugin: name.clone(),
            message,
        });
    };
    let validations = schema::validation_slots();
    let manifest = plugin.manifest();

    let mut tools: Vec<Arc<ToolRoute>> = Vec::new();
    for t in &manifest.tools {
        let exposed = expose(&prefix, &t.name);
        if tools.iter().any(|r| r.tool.name == exposed) {
            refuse("tool", &t.name, "the plugin lists that name twice".into());
            continue;
        }
        match tool_route(&plugin, t, &exposed, &validations) {
            Ok(route) => tools.push(Arc::new(route)),
            Err(e) => refuse("tool", &t.name, format!("{e:#}")),
        }
    }

    let mut prompts: Vec<(String, Arc<PromptRoute>)> = Vec::new();
    for p in &manifest.prompts {
        let exposed = expose(&prefix, &p.name);
        if !valid_name(&exposed) {
            refuse(
                "prompt",
                &p.name,
                format!("exposed name `{exposed}` does not match ^[a-zA-Z0-9_-]{{1,64}}$"),
            );
        } else if prompts.iter().any(|(n, _)| *n == exposed) {
            refuse("prompt", &p.name, "the plugin lists that name twice".into());
        } else {
            let route = PromptRoute {
                plugin: plugin.clone(),
                prompt: p.clone(),
            };
            prompts.push((exposed, Arc::new(route)));
        }
    }

    let mut resources: Vec<Arc<ResourceRoute>> = Vec::new();
    for r in &manifest.resources {
        if resources.iter().any(|o| o.uri.as_str() == r.uri) {
            refuse("resource", &r.uri, "the plugin lists that URI twice".into());
            continue;
        }
        match UriTemplate::parse_any(&r.uri) {
            Ok(uri) => resources.push(Arc::new(ResourceRoute {
                plugin: plugin.clone(),
                uri,
                listed: r.clone(),
            })),
            Err(e) => refuse("resource", &r.uri, e),
        }
    }

    let mut templates: Vec<Arc<TemplateRoute>> = Vec::new();
    for t in &manifest.templates {
        if templates.len() == MAX_TEMPLATES_PER_PLUGIN {
            refuse(
                "resource template",
                &t.uri_template,
                format!("a plugin may list at most {MAX_TEMPLATES_PER_PLUGIN} templates"),
            );
            continue;
        }
        if templates
            .iter()
            .any(|o| o.template.as_str() == t.uri_template)
        {
            refuse(
                "resource template",
                &t.uri_template,
                "the plugin lists it twice".into(),
            );
            continue;
        }
        match UriTemplate::parse(&t.uri_template) {
            Ok(template) => templates.push(Arc::new(TemplateRoute {
                plugin: plugin.clone(),
                template,
                listed: t.clone(),
            })),
            Err(e) => refuse("resource template", &t.uri_template, e),
        }
    }

    Entry {
        refused: refused.into_inner(),
        plugin,
        tools,
        prompts,
        resources,
        templates,
    }
}

fn tool_route(
    plugin: &Arc<Plugin>,
    t: &ListedTool,
    exposed: &str,
    validations: &Arc<Semaphore>,
) -> anyhow::Result<ToolRoute> {
    anyhow::ensure!(
        valid_name(exposed),
        "exposed name `{exposed}` does not match ^[a-zA-Z0-9_-]{{1,64}}$"
    );
    let (mut input_schema, input) = schema::compile(&t.input_schema, "input schema")?;
    anyhow::ensure!(
        input_schema.get("type") == Some(&json!("object")),
        "input schema must have \"type\": \"object\""
    );
    // A declaration to ward, not part of the arguments: not listed.
    let tasks = match input_schema.remove(TASK_KEYWORD) {
        None => TaskSupport::Forbidden,
        Some(value) => TaskSupport::from_keyword(&value).ok_or_else(|| {
            anyhow::anyhow!(
                "`{TASK_KEYWORD}` in the input schema must be \"optional\", \"required\" or \"forbidden\", not {value}"
            )
        })?,
    };
    let mut tool = Tool::new(
        exposed.to_string(),
        t.description.clone(),
        Arc::new(input_schema),
    );
    tool.title = t.title.clone();
    let output = match &t.output_schema {
        Some(text) => {
            let (output_schema, validator) = schema::compile(text, "output schema")?;
            tool = tool.with_raw_output_schema(Arc::new(output_schema));
            Some(validator)
        }
        None => None,
    };
    if let Some(annotations) = t.mcp_annotations() {
        tool = tool.with_annotations(annotations);
    }
    Ok(ToolRoute {
        plugin: plugin.clone(),
        guest_name: t.name.clone(),
        tool,
        input,
        output,
        validations: validations.clone(),
        tasks,
    })
}

/// Who claims what, for one kind of item.
struct Claims<'a, T> {
    by_key: BTreeMap<&'a str, Vec<(&'a str, &'a T)>>,
}

impl<'a, T> Claims<'a, T> {
    fn new() -> Self {
        Self {
            by_key: BTreeMap::new(),
        }
    }

    fn add(&mut self, key: &'a str, plugin: &'a str, item: &'a T) {
        self.by_key.entry(key).or_default().push((plugin, item));
    }

    /// The items claimed by one plugin only; the others become conflicts.
    fn settle(self, what: &str, conflicts: &mut Vec<Refusal>) -> Vec<(&'a str, &'a T)> {
        let mut served = Vec::new();
        for (key, claimants) in self.by_key {
            if let [one] = claimants[..] {
                served.push((key, one.1));
                continue;
            }
            for (plugin, _) in &claimants {
                let others = names_except(claimants.iter().map(|c| c.0), plugin);
                conflicts.push(Refusal {
                    plugin: plugin.to_string(),
                    message: format!(
                        "{what} `{key}` refused: plugins `{plugin}` and {others} both expose it, and \
                         neither may hold it; give one of them its own `[names] prefix` in its policy file"
                    ),
                });
            }
        }
        served
    }
}

fn names_except<'a>(names: impl Iterator<Item = &'a str>, except: &str) -> String {
    names
        .filter(|n| *n != except)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a snapshot from the whole set of plugins.
pub(super) fn build(plugins: &BTreeMap<String, Entry>) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut catalog = Catalog::default();
    let mut conflicts = Vec::new();

    let mut tools = Claims::new();
    let mut prompts = Claims::new();
    for (name, e) in plugins {
        for route in &e.tools {
            tools.add(route.tool.name.as_ref(), name, route);
        }
        for (exposed, route) in &e.prompts {
            prompts.add(exposed, name, route);
        }
    }
    for (name, route) in tools.settle("tool", &mut conflicts) {
        catalog.tools.push(route.tool.clone());
        snap.tools.insert(name.to_string(), route.clone());
    }
    for (name, route) in prompts.settle("prompt", &mut conflicts) {
        let mut listed = route.prompt.clone();
        listed.name = name.to_string();
        catalog.prompts.push(listed);
        snap.prompts.insert(name.to_string(), route.clone());
    }

    // URIs: a fixed URI or template of one plugin that could match one of
    // another plugin's is refused, and so is the other one.
    let mut clashes: Vec<[(&str, &str); 2]> = Vec::new();
    let fixed: Vec<(&str, &str)> = plugins
        .iter()
        .flat_map(|(n, e)| {
            e.resources
                .iter()
                .map(move |r| (n.as_str(), r.uri.as_str()))
        })
        .collect();
    let templates: Vec<(&str, &UriTemplate)> = plugins
        .iter()
        .flat_map(|(n, e)| e.templates.iter().map(move |t| (n.as_str(), &t.template)))
        .collect();
    let mut by_uri: HashMap<&str, &str> = HashMap::new();
    for &(plugin, uri) in &fixed {
        if let Some(first) = by_uri.insert(uri, plugin) {
            clashes.push([(first, uri), (plugin, uri)]);
        }
    }
    for &(plugin, uri) in &fixed {
        for &(owner, t) in &templates {
            if t.matches(uri) {
                clashes.push([(plugin, uri), (owner, t.as_str())]);
            }
        }
    }
    for (i, &(pa, a)) in templates.iter().enumerate() {
        for &(pb, b) in &templates[i + 1..] {
            if a.overlaps(b) {
                clashes.push([(pa, a.as_str()), (pb, b.as_str())]);
            }
        }
    }
    let mut refused: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for [a, b] in clashes.into_iter().filter(|[a, b]| a.0 != b.0) {
        refused.entry(a).or_default().push(b.0);
        refused.entry(b).or_default().push(a.0);
    }
    for e in plugins.values() {
        let name = e.plugin.name();
        for r in &e.resources {
            if !refused.contains_key(&(name, r.uri.as_str())) {
                catalog.resources.push(r.listed.clone());
                snap.resources
                    .insert(r.uri.as_str().to_string(), r.plugin.clone());
            }
        }
        for t in &e.templates {
            if !refused.contains_key(&(name, t.template.as_str())) {
                catalog.resource_templates.push(t.listed.clone());
                snap.templates.push(t.clone());
            }
        }
    }
    for ((plugin, uri), mut others) in refused {
        others.sort_unstable();
        others.dedup();
        let others = names_except(others.into_iter(), plugin);
        conflicts.push(Refusal {
            plugin: plugin.to_string(),
            message: format!(
                "resource `{uri}` refused: it could match URIs of plugin {others}, and no plugin may \
                 answer for another's URIs; remove one of the plugins or change its URIs"
            ),
        });
    }

    catalog.tools.sort_by(|a, b| a.name.cmp(&b.name));
    catalog.resources.sort_by(|a, b| a.uri.cmp(&b.uri));
    catalog
        .resource_templates
        .sort_by(|a, b| a.uri_template.cmp(&b.uri_template));
    catalog.prompts.sort_by(|a, b| a.name.cmp(&b.name));
    snap.catalog = Arc::new(catalog);
    snap.restricted = plugins
        .values()
        .any(|e| !e.plugin.policy().access.is_open());
    snap.refusals = plugins
        .values()
        .flat_map(|e| e.refused.iter().cloned())
        .chain(conflicts.iter().cloned())
        .collect();
    snap.conflicts = conflicts;
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The registry routes; the plugin answers.
//!
//! This room holds the live set of plugins and the immutable snapshot every
//! request reads. The control path (loader, watcher) inserts and removes
//! plugins; each change builds a new `Snapshot` of exposed names and URIs
//! → plugins from the whole set and swaps it in one step, so a request sees
//! one consistent version from start to end and calls in flight finish on
//! the plugin they started with.
//!
//! The other rooms:
//! - `snapshot.rs`: who serves what, whatever the load order (routes and
//!   the catalog), with `schema.rs` (plugin-supplied JSON Schemas, checked)
//!   and `templates.rs` (URI templates, matched);
//! - `serve.rs`: the request path, `Backend` (`crate::backend`) for the
//!   registry: route, admit, check arguments, take a cached answer, ask the
//!   plugin, and map its failure with `plugin::answer` (the one place that
//!   decides between an `isError` result and a JSON-RPC error);
//! - `admission.rs`: who may use an item (`[access]`) and how often
//!   (`[limits] rate`), checked before a guest runs.
//!
//! The registry never sees the guest's raw answers: `plugin/` hands it MCP
//! values, measured against `limits.max-output`, or a `PluginError`.

mod admission;
mod schema;
mod serve;
mod snapshot;
mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use crate::backend::{CatalogChange, ServerEvent};
use crate::plugin::Plugin;
use crate::service::rate::Limiter;
use crate::service::redis::Shared;
use crate::service::results::{ResultCache, DEFAULT_CACHE_BYTES};
use snapshot::{build, entry, Entry};
pub(crate) use snapshot::{valid_name, Snapshot};
// Public for the fuzz target (fuzz/fuzz_targets/uri_template.rs).
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

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

//! Start-up: build the runtime, load the plugin directory, and hand back the
//! registry the protocol layer serves. `serve` and `check` share this code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cache::Cache;
use crate::loader::{self, LoadError, Loader};
use crate::plugin::{PoolConfig, Runtime};
use crate::registry::Registry;
use crate::sandbox::fs::Protected;

/// How to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plugin directory.
    pub plugins: PathBuf,
    /// The compiled-artifact cache, or `None` to compile every time.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (falls back by itself if unavailable).
    pub pooling: bool,
    /// ward's files that no grant may reach, besides the cache, the plugin
    /// directory and the executable (always protected): the token file.
    pub protected: Protected,
}

/// The plugin directory used when none is given: `$XDG_DATA_HOME/ward/plugins`
/// or `~/.local/share/ward/plugins`.
pub fn default_plugin_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("ward/plugins"))
}

/// A started ward: the registry and the loader that fills it.
pub struct Started {
    /// What clients are served.
    pub registry: Arc<Registry>,
    /// Loads plugins for the watcher.
    pub loader: Loader,
    /// The plugins that failed to load, one error each.
    pub failures: Vec<LoadError>,
}

/// Builds the runtime and loads every plugin in the directory, compiling in
/// parallel; a plugin that fails is logged and skipped.
pub async fn start(config: &Config) -> Result<Started> {
    let runtime = Runtime::new(config.pooling.then(PoolConfig::default))?;
    let cache = match &config.cache_dir {
        Some(dir) => match Cache::open(dir) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!("{e:#}; compiling without a cache");
                None
            }
        },
        None => None,
    };
    let registry = Arc::new(Registry::new());
    let protected = config
        .protected
        .clone()
        .with_ward_state(config.cache_dir.as_deref());
    let loader = Loader::new(runtime, cache, registry.events()).protecting(protected);
    let failures = load_dir(&registry, &loader, &config.plugins).await?;
    Ok(Started {
        registry,
        loader,
        failures,
    })
}

/// Loads every plugin of `dir` into `registry`, in parallel; inserts them in
/// file-name order so that name collisions are settled the same way every time.
pub async fn load_dir(registry: &Registry, loader: &Loader, dir: &Path) -> Result<Vec<LoadError>> {
    let paths = loader::scan(dir)?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, path) in paths.into_iter().enumerate() {
        let loader = loader.clone();
        tasks.spawn(async move { (i, loader.load(&path).await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.context("a load task panicked")?);
    }
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    for (_, result) in results {
        match result {
            Ok(plugin) => registry.insert(Arc::new(plugin)),
            Err(e) => {
                tracing::error!("skipping plugin {e}");
                failures.push(e);
            }
        }
    }
    Ok(failures)
}

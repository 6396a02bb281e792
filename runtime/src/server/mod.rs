//! Running ward: everything `main.rs` calls once it has parsed the command
//! line, so the command line is only flags and exit codes, and tests can
//! run ward without the binary.
//!
//! - here: start-up. Build the runtime, load the plugin directory, and hand
//!   back the registry the protocol layer serves ([`start`]); `serve`,
//!   `check` and `call` share it.
//! - [`serve()`] (`serve.rs`): `ward serve`, the registry served over stdio
//!   and/or HTTP, with the watcher, metrics, audit log and signals.
//! - [`check()`] (`check.rs`): `ward check`, a [`Report`] of what loads.
//!
//! `serve` waits for the directory at most [`DEFAULT_STARTUP_WAIT`] before it
//! answers clients: in the usual case every plugin is loaded by then and the
//! first list a client asks for is complete (clients that never re-list see
//! everything), while a slow or hostile plugin can delay `initialize` by at
//! most that bound; it goes on loading in the background and appears with
//! `list_changed`, or is refused with a warning to clients. `check` waits for
//! every plugin.

mod check;
mod serve;

pub use check::{check, Report};
pub use serve::{serve, Http, Metrics, Serve};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rmcp::model::LoggingLevel;

use crate::audit::{AuditLog, AuditOptions};
use crate::backend::ServerEvent;
use crate::cache::Cache;
use crate::loader::{self, LoadError, Loader};
use crate::plugin::{PoolConfig, Runtime};
use crate::registry::{Change, Registry};
use crate::sandbox::fs::Protected;
use crate::sandbox::policy::format_duration;

/// How to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plugin directory.
    pub plugins: PathBuf,
    /// The compiled-artifact cache, or `None` to compile every time.
    pub cache_dir: Option<PathBuf>,
    /// The cache's size cap in bytes; least recently used entries go first.
    pub cache_max_size: u64,
    /// Use the pooling allocator (falls back by itself if unavailable).
    pub pooling: bool,
    /// How long one plugin may take to be read and compiled.
    pub compile_timeout: Duration,
    /// How long start-up waits for the plugins of the directory before
    /// serving; the ones still loading then appear as they finish (clients
    /// hear `list_changed`). `None`: wait for every plugin (`ward check`).
    pub startup_wait: Option<Duration>,
    /// ward's files that no grant may reach, besides the cache, the plugin
    /// directory and the executable (always protected): the token file.
    pub protected: Protected,
    /// The Redis that replicas share rate limits and cached results
    /// through (`--redis URL`), if any.
    pub redis: Option<String>,
    /// The in-process result cache's size in bytes (`--result-cache-size`).
    pub result_cache_bytes: u64,
}

/// How long `ward serve` waits for the plugin directory before it answers
/// clients unless configured: long enough for a cold start of a few large
/// plugins, well within the time clients give a server to start.
pub const DEFAULT_STARTUP_WAIT: Duration = Duration::from_secs(10);

/// The plugin directory used when none is given: `$XDG_DATA_HOME/ward/plugins`
/// or `~/.local/share/ward/plugins`.
pub fn default_plugin_dir() -> Option<PathBuf> {
    crate::dirs::data_home().map(|d| d.join("ward/plugins"))
}

/// The plugin directory `ward serve` uses: `dir`, else the default one,
/// created if missing. Either way it must be a directory.
pub fn plugin_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    let plugins = match dir {
        Some(dir) => dir,
        None => {
            let dir = default_plugin_dir()
                .context("no plugin directory given and $HOME is not set; pass --plugins DIR")?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
    };
    anyhow::ensure!(
        plugins.is_dir(),
        "plugin directory {} does not exist; create it or pass another --plugins DIR",
        plugins.display()
    );
    Ok(plugins)
}

/// An open audit log (or none) that is flushed when dropped, so the last
/// records of a run reach the file before ward exits.
pub struct Audit(Option<AuditLog>);

impl Audit {
    /// Opens the log if one is asked for.
    pub fn open(options: Option<&AuditOptions>) -> Result<Self> {
        Ok(Self(options.map(AuditLog::open).transpose()?))
    }

    /// The log, for `ServerOptions::audit`.
    pub fn log(&self) -> Option<AuditLog> {
        self.0.clone()
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        if let Some(log) = &self.0 {
            log.flush(Duration::from_secs(5));
            if log.dropped() > 0 {
                tracing::warn!("the audit log dropped {} records", log.dropped());
            }
        }
    }
}

/// A started ward: the registry and the loader that fills it.
pub struct Started {
    /// What clients are served.
    pub registry: Arc<Registry>,
    /// Loads plugins for the watcher.
    pub loader: Loader,
    /// The plugins that failed to load before start-up ended, one error each.
    pub failures: Vec<LoadError>,
    /// Still loading the plugins that outlasted the start-up wait, if any;
    /// finishes when they are all in the registry or refused.
    pub loading: Option<tokio::task::JoinHandle<()>>,
}

/// Builds the runtime and loads every plugin in the directory, compiling in
/// parallel, for at most `config.startup_wait`; plugins still loading then
/// continue in the background. A plugin that fails is logged and skipped.
pub async fn start(config: &Config) -> Result<Started> {
    let runtime = Runtime::new(config.pooling.then(PoolConfig::default))?;
    let cache = match &config.cache_dir {
        Some(dir) => match Cache::open(dir, config.cache_max_size) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!("{e:#}; compiling without a cache");
                None
            }
        },
        None => None,
    };
    let shared = match &config.redis {
        Some(url) => Some(Arc::new(crate::service::redis::Shared::connect(url).await?)),
        None => None,
    };
    let registry = Arc::new(Registry::with_shared(config.result_cache_bytes, shared));
    let protected = config
        .protected
        .clone()
        .with_ward_state(config.cache_dir.as_deref());
    let loader = Loader::new(runtime, cache, registry.events(), config.compile_timeout)
        .protecting(protected);
    let paths = loader::scan(&config.plugins)?;
    let total = paths.len();
    let mut batches = loader::load_set(&loader, paths, config.startup_wait);
    let mut failures = Vec::new();
    // Nothing is served before start-up ends, so the registry is built once
    // from everything loaded by then (one snapshot, not one per batch).
    let mut loaded = Vec::new();
    let mut done = 0;
    let wait = async {
        match config.startup_wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(wait);
    loop {
        tokio::select! {
            batch = batches.recv() => match batch {
                Some(batch) => {
                    done += batch.len();
                    loaded.extend(batch);
                }
                None => break,
            },
            _ = &mut wait => {
                failures.extend(apply(&registry, std::mem::take(&mut loaded), false));
                tracing::info!(
                    "{} of {total} plugins still loading after {}; serving the others, \
                     the rest appear as they finish",
                    total - done,
                    format_duration(config.startup_wait.unwrap_or_default()),
                );
                let background = registry.clone();
                let loading = tokio::spawn(async move {
                    while let Some(batch) = batches.recv().await {
                        apply(&background, batch, true);
                    }
                });
                return Ok(Started {
                    registry,
                    loader,
                    failures,
                    loading: Some(loading),
                });
            }
        }
    }
    failures.extend(apply(&registry, loaded, false));
    Ok(Started {
        registry,
        loader,
        failures,
        loading: None,
    })
}

/// Puts a batch of loaded plugins into `registry` in one change, and returns
/// the failures, logged (and told to clients if `announce`).
pub fn apply(registry: &Registry, batch: Vec<loader::Loaded>, announce: bool) -> Vec<LoadError> {
    let mut changes = Vec::new();
    let mut failures = Vec::new();
    for (_, result) in batch {
        match result {
            Ok(plugin) => changes.push(Change::Insert(Arc::new(plugin))),
            Err(e) => {
                let message = format!("skipping plugin {e}");
                tracing::error!("{message}");
                if announce {
                    let _ = registry.events().send(ServerEvent::Log {
                        level: LoggingLevel::Warning,
                        logger: "ward".into(),
                        message,
                    });
                }
                failures.push(e);
            }
        }
    }
    if !changes.is_empty() {
        registry.apply(changes);
    }
    failures
}

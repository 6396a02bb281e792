//! Bytes → a plugin ready to serve: read the wasm and its policy, compile (or
//! take from the cache), link, and ask the guest once what it offers. Runs
//! off the request path; compilation happens on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::broadcast;

use crate::backend::ServerEvent;
use crate::cache::{self, Cache};
use crate::plugin::{Plugin, Runtime};
use crate::sandbox::fs::Protected;
use crate::sandbox::policy::Policy;

/// Loads plugins for one runtime.
#[derive(Clone)]
pub struct Loader {
    runtime: Arc<Runtime>,
    cache: Option<Cache>,
    events: broadcast::Sender<ServerEvent>,
    /// ward's own files, out of every `[[fs]]` grant.
    protected: Arc<Protected>,
}

/// A plugin that could not be loaded, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error:#}", path.display())]
pub struct LoadError {
    /// The file that failed.
    pub path: PathBuf,
    /// Why.
    pub error: anyhow::Error,
}

/// The plugin name of a path: its file stem, if it is a `.wasm` file whose
/// name is not hidden or temporary.
pub fn plugin_name(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (!stem.is_empty() && !stem.starts_with('.') && !stem.starts_with('~')).then_some(stem)
}

/// The `.wasm` files of a directory, sorted by name.
pub fn scan(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugin directory {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| plugin_name(p).is_some() && p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

impl Loader {
    /// A loader compiling with `runtime`, caching in `cache` if given.
    pub fn new(
        runtime: Arc<Runtime>,
        cache: Option<Cache>,
        events: broadcast::Sender<ServerEvent>,
    ) -> Self {
        Self {
            runtime,
            cache,
            events,
            protected: Arc::default(),
        }
    }

    /// Refuses policies whose grants reach `protected` (ward's own files).
    pub fn protecting(mut self, protected: Protected) -> Self {
        self.protected = Arc::new(protected);
        self
    }

    /// Loads the plugin at `path` (a `.wasm` file) with the policy beside it.
    pub async fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        self.load_inner(path).await.map_err(|error| LoadError {
            path: path.to_path_buf(),
            error,
        })
    }

    async fn load_inner(&self, path: &Path) -> Result<Plugin> {
        let started = Instant::now();
        let name = plugin_name(path)
            .context("not a plugin file name (NAME.wasm)")?
            .to_string();
        let dir = path.parent().unwrap_or(Path::new("."));
        let policy =
            Policy::for_plugin(dir, &name, &self.protected).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Provenance (`[source]`, trust.toml): checked before anything is compiled.
        crate::adopt::trust::Trust::load(dir)?.check_pinned(&name, &policy.source)?;
        let (pin, pin_name) = (policy.source.clone(), name.clone());
        let (runtime, cache, file) = (self.runtime.clone(), self.cache.clone(), path.to_path_buf());
        let (component, cached, digest) = tokio::task::spawn_blocking(move || -> Result<_> {
            let wasm = std::fs::read(&file).context("reading it")?;
            if !wasm.starts_with(b"\0asm") {
                anyhow::bail!("not a WebAssembly file");
            }
            if is_core_module(&wasm) {
                anyhow::bail!(
                    "a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
                );
            }
            let digest = cache::digest(&wasm);
            crate::adopt::check_pin(&pin_name, &pin, &digest)?;
            let (component, cached) = match &cache {
                Some(cache) => cache.component(runtime.engine(), &wasm, &digest),
                None => wasmtime::component::Component::new(runtime.engine(), &wasm)
                    .map(|c| (c, false))
                    .map_err(anyhow::Error::from),
            }
            .context("compiling it")?;
            Ok((component, cached, digest))
        })
        .await
        .context("the compile task failed")??;
        let plugin = Plugin::new(
            self.runtime.clone(),
            &name,
            &component,
            policy,
            digest,
            self.events.clone(),
        )
        .await?;
        let m = plugin.manifest();
        tracing::debug!(
            plugin = %name,
            tools = m.tools.len(),
            resources = m.resources.len() + m.templates.len(),
            prompts = m.prompts.len(),
            cached,
            ms = started.elapsed().as_millis() as u64,
            "loaded {}", path.display()
        );
        Ok(plugin)
    }
}

/// A component's version field differs from a core module's: bytes 4..8 are
/// `01 00 00 00` for a core module and `0d 00 01 00` for a component.
fn is_core_module(wasm: &[u8]) -> bool {
    wasm.get(4..8) == Some(&[1, 0, 0, 0])
}

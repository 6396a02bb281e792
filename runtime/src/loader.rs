//! Bytes → a plugin ready to serve: read the wasm and its policy, compile (or
//! take from the cache), link, and ask the guest once what it offers.
//!
//! The plugin directory is untrusted input, so:
//! - plugin and policy files must be regular files: a symlink is followed
//!   only to a regular file; FIFOs, devices, sockets and directories are
//!   refused (checked before opening, and again on the opened file, which is
//!   opened non-blocking so a FIFO swapped in between cannot block);
//! - they are size-capped ([`MAX_WASM`], [`MAX_POLICY`]) before a byte is read;
//! - reading and compiling run on a thread of their own, never on the async
//!   workers that answer clients, under a deadline (`compile_timeout`). A
//!   compile cannot be interrupted: past the deadline the load fails and the
//!   thread is abandoned (it finishes, or not, on its own, and its result is
//!   dropped).
//!
//! [`load_set`] loads many plugins in parallel and hands the results back in
//! file-name order, which is what start-up and the watcher both use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument as _;

use crate::backend::ServerEvent;
use crate::cache::{self, Cache};
use crate::plugin::{Plugin, Runtime};
use crate::sandbox::fs::Protected;
use crate::sandbox::policy::{format_duration, Policy};

/// Largest plugin file (`NAME.wasm`) ward reads: 256 MiB.
pub const MAX_WASM: u64 = 256 << 20;
/// Largest policy file (`NAME.toml`) ward reads: 1 MiB.
pub const MAX_POLICY: u64 = 1 << 20;
/// How long reading and compiling one plugin may take unless configured.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads plugins for one runtime.
#[derive(Clone)]
pub struct Loader {
    runtime: Arc<Runtime>,
    cache: Option<Cache>,
    events: broadcast::Sender<ServerEvent>,
    compile_timeout: Duration,
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

/// The `NAME.wasm` entries of a directory, sorted by name, whatever their
/// file type: loading refuses those that are not regular files, with a reason.
pub fn scan(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugin directory {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| plugin_name(p).is_some())
        .collect();
    paths.sort();
    Ok(paths)
}

/// What the load thread hands back.
struct Compiled {
    policy: Policy,
    component: wasmtime::component::Component,
    cached: bool,
    digest: cache::Digest,
}

impl Loader {
    /// A loader compiling with `runtime`, caching in `cache` if given, giving
    /// each plugin `compile_timeout` to be read and compiled.
    pub fn new(
        runtime: Arc<Runtime>,
        cache: Option<Cache>,
        events: broadcast::Sender<ServerEvent>,
        compile_timeout: Duration,
    ) -> Self {
        Self {
            runtime,
            cache,
            events,
            compile_timeout,
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
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let span = crate::telemetry::load_span(&stem);
        self.load_inner(path)
            .instrument(span)
            .await
            .map_err(|error| LoadError {
                path: path.to_path_buf(),
                error,
            })
    }

    async fn load_inner(&self, path: &Path) -> Result<Plugin> {
        let started = Instant::now();
        let name = plugin_name(path)
            .context("not a plugin file name (NAME.wasm)")?
            .to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (runtime, cache, protected, file, plugin) = (
            self.runtime.clone(),
            self.cache.clone(),
            self.protected.clone(),
            path.to_path_buf(),
            name.clone(),
        );
        let span = crate::telemetry::compile_span(&name);
        // A thread of its own rather than tokio's blocking pool: a compile
        // that outlives its deadline is abandoned, and must hold no slot of
        // the pool and no runtime shutdown.
        std::thread::Builder::new()
            .name(format!("ward-load-{name}"))
            .spawn(move || {
                let _entered = span.enter();
                let compiled = compile(&runtime, cache.as_ref(), &protected, &file, &plugin);
                crate::telemetry::record_compile(&span, compiled.as_ref().ok().map(|c| c.cached));
                let _ = tx.send(compiled);
            })
            .context("starting a load thread")?;
        let Compiled {
            policy,
            component,
            cached,
            digest,
        } = match tokio::time::timeout(self.compile_timeout, rx).await {
            Ok(Ok(compiled)) => compiled?,
            Ok(Err(_)) => bail!("the load thread panicked"),
            Err(_) => bail!(
                "reading and compiling it took longer than its {} deadline (--compile-timeout); \
                 gave up on it (the compile thread finishes in the background)",
                format_duration(self.compile_timeout)
            ),
        };
        let plugin = Plugin::new(
            self.runtime.clone(),
            &name,
            &component,
            policy,
            digest,
            self.events.clone(),
        )
        .await?;
        let mismatches = crate::service::mismatches(plugin.policy(), plugin.manifest());
        if !mismatches.is_empty() {
            let file = path.with_extension("toml");
            bail!(
                "{}",
                mismatches
                    .iter()
                    .map(|m| format!("{}: {m}", file.display()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
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

/// Reads the policy and the wasm of plugin `name` at `path`, and compiles it
/// (or takes it from the cache). Blocking: runs on a load thread.
fn compile(
    runtime: &Runtime,
    cache: Option<&Cache>,
    protected: &Protected,
    path: &Path,
    name: &str,
) -> Result<Compiled> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy_path = dir.join(format!("{name}.toml"));
    let text = match crate::files::read_regular(&policy_path, MAX_POLICY, "policy")? {
        Some(bytes) => String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", policy_path.display()))?,
        // No policy file: the defaults, as an empty policy gives them.
        None => String::new(),
    };
    let policy = Policy::parse_with(&text, &policy_path, name, protected)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Provenance (`[source]`, trust.toml): checked before anything is compiled.
    crate::adopt::trust::Trust::load(dir)?.check_pinned(name, &policy.source)?;
    let wasm = crate::files::read_regular(path, MAX_WASM, "plugin")?
        .with_context(|| format!("{}: no longer there", path.display()))?;
    if !wasm.starts_with(b"\0asm") {
        bail!("not a WebAssembly file");
    }
    if is_core_module(&wasm) {
        bail!(
            "a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
        );
    }
    let digest = cache::digest(&wasm);
    crate::adopt::check_pin(name, &policy.source, &digest)?;
    let (component, cached) = match cache {
        Some(cache) => cache.component(runtime.engine(), &wasm, &digest),
        None => cache::compile(runtime.engine(), &wasm).map(|c| (c, false)),
    }
    .context("compiling it")?;
    Ok(Compiled {
        policy,
        component,
        cached,
        digest,
    })
}

/// One plugin's outcome in a [`load_set`]: its path and the plugin or why not.
pub type Loaded = (PathBuf, Result<Plugin, LoadError>);

/// Loads `paths` (sorted by name) in parallel and sends the results back in
/// batches, each to be applied at once: a result is held until every path
/// before it has finished, so name collisions settle in file-name order; but
/// never longer than `patience` after the start (then everything finished is
/// sent, and the rest as each finishes), so one slow plugin cannot keep the
/// others out. `None`: wait as long as it takes. The channel closes when all
/// are done.
pub fn load_set(
    loader: &Loader,
    paths: Vec<PathBuf>,
    patience: Option<Duration>,
) -> mpsc::UnboundedReceiver<Vec<Loaded>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut loads = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for (i, path) in paths.into_iter().enumerate() {
        let loader = loader.clone();
        let task = path.clone();
        let id = loads
            .spawn(async move {
                let result = loader.load(&task).await;
                (i, (task, result))
            })
            .id();
        ids.insert(id, (i, path));
    }
    tokio::spawn(async move {
        let deadline = patience.map(|p| tokio::time::Instant::now() + p);
        let mut held: BTreeMap<usize, Loaded> = BTreeMap::new();
        let mut next = 0;
        let mut patient = true;
        loop {
            let expired = async {
                match deadline {
                    Some(at) if patient => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = loads.join_next() => match joined {
                    Some(Ok((i, loaded))) => {
                        held.insert(i, loaded);
                    }
                    Some(Err(e)) => {
                        let (i, path) = ids.remove(&e.id()).expect("every task is known");
                        let error = anyhow::anyhow!("loading it failed unexpectedly: {e}");
                        held.insert(i, (path.clone(), Err(LoadError { path, error })));
                    }
                    None => break,
                },
                _ = expired => patient = false,
            }
            let mut batch = Vec::new();
            if patient {
                while let Some(loaded) = held.remove(&next) {
                    batch.push(loaded);
                    next += 1;
                }
            } else {
                batch.extend(std::mem::take(&mut held).into_values());
            }
            if !batch.is_empty() && tx.send(batch).is_err() {
                return;
            }
        }
    });
    rx
}

/// A component's version field differs from a core module's: bytes 4..8 are
/// `01 00 00 00` for a core module and `0d 00 01 00` for a component.
fn is_core_module(wasm: &[u8]) -> bool {
    wasm.get(4..8) == Some(&[1, 0, 0, 0])
}

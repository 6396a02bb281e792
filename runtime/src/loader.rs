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
//!
//! **Listings from the cache.** A plugin whose policy grants no files, no
//! environment and no network can list only what its bytes say, so what it
//! listed under a policy is kept in the cache ([`Cache::listing`], keyed by
//! the wasm's sha256 and the policy file's) and a restart serves it from
//! there: the wasm's digest is still checked against its pins (read and
//! hashed, or known from the file's unchanged identity,
//! `Cache::known_digest`), but its artifact is loaded and the plugin run
//! only on its first call (`Plugin::listed`). A thousand idle plugins then start in a fraction of
//! the time and hold no code in memory (BENCHMARKS.md, "many plugins").

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
    /// Load threads running at once: one per core. A thousand plugins on a
    /// thousand threads only fight over the cores and memory.
    turns: Arc<tokio::sync::Semaphore>,
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
    code: Code,
    cached: bool,
    /// Whether the wasm was read and hashed (not known by its identity).
    hashed: bool,
    digest: cache::Digest,
    /// The sha256 of the policy file's text, when its listing may be cached.
    listing_key: Option<cache::Digest>,
}

/// The plugin's code, or what it listed when that was in the cache.
enum Code {
    Compiled(wasmtime::component::Component),
    Listed(Listing),
}

/// What the cache keeps of a plugin's listing.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listing {
    manifest: crate::plugin::Manifest,
    memories: u32,
    tables: u32,
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
            turns: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
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

    /// Runs `work` (reading, hashing, compiling) on a thread of its own
    /// under the compile deadline, at most as many at once as there are
    /// cores. A thread rather than tokio's blocking pool: a compile that
    /// outlives its deadline is abandoned, and must hold no slot of the pool,
    /// no turn (its permit is given back), and no runtime shutdown.
    async fn on_load_thread<T: Send + 'static>(
        &self,
        name: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _turn = self.turns.acquire().await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("ward-load-{name}"))
            .spawn(move || {
                let _ = tx.send(work());
            })
            .context("starting a load thread")?;
        match tokio::time::timeout(self.compile_timeout, rx).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(_)) => bail!("the load thread panicked"),
            Err(_) => bail!(
                "reading and compiling it took longer than its {} deadline (--compile-timeout); \
                 gave up on it (the compile thread finishes in the background)",
                format_duration(self.compile_timeout)
            ),
        }
    }

    /// Where a plugin listed from the cache gets its code on its first call:
    /// the cached artifact of the wasm it was listed from, else that wasm
    /// compiled again from its file, which must still hold it (a replaced
    /// file is the watcher's to reload).
    fn code_source(&self, path: &Path, digest: cache::Digest) -> crate::plugin::CodeSource {
        let (loader, path) = (self.clone(), path.to_path_buf());
        Arc::new(move || {
            let (loader, path) = (loader.clone(), path.clone());
            Box::pin(async move {
                let name = plugin_name(&path).unwrap_or_default().to_string();
                let (runtime, cache, thread) =
                    (loader.runtime.clone(), loader.cache.clone(), name.clone());
                loader
                    .on_load_thread(&thread, move || -> Result<wasmtime::component::Component> {
                        let engine = runtime.engine();
                        let hit = cache.as_ref().and_then(|c| c.cached(engine, &digest));
                        let cached = hit.is_some();
                        let component = match hit {
                            Some(component) => component,
                            None => {
                                let wasm = crate::files::read_regular(&path, MAX_WASM, "plugin")?
                                    .with_context(|| {
                                        format!("{}: no longer there", path.display())
                                    })?;
                                if cache::digest(&wasm) != digest {
                                    bail!(
                                        "{} changed since it was listed; ward loads the new version",
                                        path.display()
                                    );
                                }
                                match &cache {
                                    Some(cache) => cache.component(engine, &wasm, &digest)?.0,
                                    None => cache::compile(engine, &wasm)?,
                                }
                            }
                        };
                        tracing::debug!(plugin = %name, cached, "loaded its code on its first call");
                        Ok(component)
                    })
                    .await?
            })
        })
    }

    async fn load_inner(&self, path: &Path) -> Result<Plugin> {
        let started = Instant::now();
        let name = plugin_name(path)
            .context("not a plugin file name (NAME.wasm)")?
            .to_string();
        let (runtime, cache, protected, file, plugin) = (
            self.runtime.clone(),
            self.cache.clone(),
            self.protected.clone(),
            path.to_path_buf(),
            name.clone(),
        );
        let span = crate::telemetry::compile_span(&name);
        let Compiled {
            policy,
            code,
            cached,
            hashed,
            digest,
            listing_key,
        } = self
            .on_load_thread(&name, move || {
                let _entered = span.enter();
                let compiled = compile(&runtime, cache.as_ref(), &protected, &file, &plugin);
                crate::telemetry::record_compile(&span, compiled.as_ref().ok().map(|c| c.cached));
                compiled
            })
            .await??;
        let plugin = match code {
            Code::Listed(listing) => Plugin::listed(
                self.runtime.clone(),
                &name,
                policy,
                digest,
                self.events.clone(),
                listing.manifest,
                crate::sandbox::Needs {
                    memories: listing.memories,
                    tables: listing.tables,
                },
                self.code_source(path, digest),
            ),
            Code::Compiled(component) => {
                let plugin = Plugin::new(
                    self.runtime.clone(),
                    &name,
                    &component,
                    policy,
                    digest,
                    self.events.clone(),
                )
                .await?;
                if let (Some(cache), Some(key)) = (&self.cache, listing_key) {
                    let needs = plugin.needs();
                    let listing = Listing {
                        manifest: plugin.manifest().clone(),
                        memories: needs.memories,
                        tables: needs.tables,
                    };
                    cache.store_listing(self.runtime.engine(), &digest, &key, &listing);
                }
                plugin
            }
        };
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
            hashed,
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
    let file = crate::files::open_regular(path, MAX_WASM, "plugin")?
        .with_context(|| format!("{}: no longer there", path.display()))?;
    // A file ward hashed before and that has not changed since is not read
    // again unless its code is needed (`Cache::known_digest`).
    let identities = cache.filter(|_| cache::identifiable(file.file()));
    let (mut digest, mut wasm) = match identities.and_then(|c| c.known_digest(path, &file.meta)) {
        Some(digest) => (digest, Wasm::Unread(file)),
        None => {
            let (digest, wasm) = checked_digest(identities, path, file, None)?;
            (digest, Wasm::Read(wasm))
        }
    };
    if crate::adopt::check_pin(name, &policy.source, &digest).is_err() {
        // A remembered digest the pin refuses is checked against the bytes
        // themselves before the file is refused.
        if let Wasm::Unread(file) = wasm {
            let (read, bytes) = checked_digest(identities, path, file, Some(&digest))?;
            (digest, wasm) = (read, Wasm::Read(bytes));
        }
        crate::adopt::check_pin(name, &policy.source, &digest)?;
    }
    // Only a plugin that can see nothing but its own bytes lists the same
    // under the same policy every time.
    // The key also names this ward, whose linker and listing format the
    // listing was made with. A listing is served only beside its artifact,
    // so the first call finds its code without the file (which may have
    // changed by then).
    let listing_key = (policy.fs.is_empty() && policy.env.is_empty() && policy.network.is_empty())
        .then(|| cache::digest(format!("{}\nlisting 1\n{text}", crate::VERSION).as_bytes()));
    if let (Some(cache), Some(key)) = (cache, &listing_key) {
        if let Some(listing) = cache
            .has_artifact(runtime.engine(), &digest)
            .then(|| cache.listing::<Listing>(runtime.engine(), &digest, key))
            .flatten()
        {
            return Ok(Compiled {
                policy,
                code: Code::Listed(listing),
                cached: true,
                hashed: matches!(wasm, Wasm::Read(_)),
                digest,
                listing_key,
            });
        }
    }
    // The code is needed after all: read it. Its bytes, not the digest
    // remembered for them, decide.
    let wasm = match wasm {
        Wasm::Read(wasm) => wasm,
        Wasm::Unread(file) => {
            let (read, wasm) = checked_digest(identities, path, file, Some(&digest))?;
            if read != digest {
                tracing::warn!(plugin = %name, "{}: its bytes are not those ward remembered by its identity; using the bytes", path.display());
                crate::adopt::check_pin(name, &policy.source, &read)?;
                digest = read;
            }
            wasm
        }
    };
    let (component, cached) = match cache {
        Some(cache) => cache.component(runtime.engine(), &wasm, &digest),
        None => cache::compile(runtime.engine(), &wasm).map(|c| (c, false)),
    }
    .context("compiling it")?;
    Ok(Compiled {
        policy,
        code: Code::Compiled(component),
        cached,
        hashed: true,
        digest,
        listing_key,
    })
}

/// A plugin file's bytes, or the opened file when its digest was known.
enum Wasm<'a> {
    Read(Vec<u8>),
    Unread(crate::files::Regular<'a>),
}

/// Reads a plugin file, checks that it is a component, and hashes it.
/// `identities`, when the file's filesystem qualifies, remembers the digest
/// by the file's identity, unless it is the one it already remembered.
fn checked_digest(
    identities: Option<&Cache>,
    path: &Path,
    mut file: crate::files::Regular<'_>,
    remembered: Option<&cache::Digest>,
) -> Result<(cache::Digest, Vec<u8>)> {
    let read_at = std::time::SystemTime::now();
    let wasm = file.read()?;
    if !wasm.starts_with(b"\0asm") {
        bail!("not a WebAssembly file");
    }
    if is_core_module(&wasm) {
        bail!(
            "a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
        );
    }
    let digest = cache::digest(&wasm);
    if let Some(cache) = identities.filter(|_| remembered != Some(&digest)) {
        if let Ok(after) = file.file().metadata() {
            cache.remember_digest(path, (&file.meta, &after), wasm.len(), &digest, read_at);
        }
    }
    Ok((digest, wasm))
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

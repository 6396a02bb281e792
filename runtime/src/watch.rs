//! Hot reload: directory events → loader → registry.
//!
//! The plugin directory is watched non-recursively. Events for `NAME.wasm`
//! and `NAME.toml` reload plugin `NAME`: loaded if its wasm exists, unloaded
//! if not. A replacement that fails to load leaves the previous version
//! serving and says why, in the log and to clients. A file still being
//! written (a slow copy) fails to load while it is incomplete; it is retried
//! quietly until it has been still for [`SETTLE`], so it is never loaded
//! half-written and a finished copy is picked up. Publishing by renaming a
//! complete file into place is the documented way and needs no retry.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use rmcp::model::LoggingLevel;
use tokio::sync::mpsc;

use crate::backend::ServerEvent;
use crate::loader::{self, LoadError, Loader};
use crate::plugin::Plugin;
use crate::registry::{Change, Registry};

/// How long events are gathered into one burst.
pub const DEBOUNCE: Duration = Duration::from_millis(40);
/// A file that changed more recently than this and fails to load is assumed
/// to be still in the middle of being written.
pub const SETTLE: Duration = Duration::from_millis(1500);

enum Work {
    Paths(Vec<PathBuf>),
    Rescan,
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    _debouncer: Box<dyn std::any::Any + Send>,
}

/// Starts watching `dir`, reloading into `registry` with `loader`. Changes
/// seen while `loading` (start-up's background load) runs are applied after
/// it, so a plugin is never loaded by both at once.
pub fn spawn(
    dir: PathBuf,
    registry: Arc<Registry>,
    loader: Loader,
    loading: Option<tokio::task::JoinHandle<()>>,
) -> Result<Watch> {
    let (tx, rx) = mpsc::unbounded_channel();
    let events = tx.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let work = match result {
            Ok(events) if events.iter().any(|e| e.need_rescan()) => Work::Rescan,
            Ok(events) => Work::Paths(
                events
                    .into_iter()
                    .filter(|e| is_change(&e.event.kind))
                    .flat_map(|e| e.event.paths)
                    .collect(),
            ),
            Err(errors) => {
                tracing::warn!("watching the plugin directory: {errors:?}; rescanning");
                Work::Rescan
            }
        };
        let _ = events.send(work);
    })
    .context("starting the directory watcher")?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    tokio::spawn(async move {
        if let Some(loading) = loading {
            let _ = loading.await;
        }
        run(dir, registry, loader, rx, tx).await
    });
    Ok(Watch {
        _debouncer: Box::new(debouncer),
    })
}

/// Whether an event may have changed the file. Opening or reading it does
/// not, and the loader's own reads would otherwise trigger a load of what it
/// just loaded (notify watches `IN_OPEN`); closing it after writing does
/// (notify reports `IN_CLOSE_WRITE` as an access).
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(access) => *access == AccessKind::Close(AccessMode::Write),
        _ => true,
    }
}

/// The plugin a path belongs to: `NAME.wasm` or `NAME.toml`.
fn affected(path: &Path) -> Option<String> {
    if path.extension().is_some_and(|e| e == "toml") {
        let stem = path.file_stem()?.to_str()?;
        return (!stem.starts_with('.')).then(|| stem.to_string());
    }
    loader::plugin_name(path).map(str::to_string)
}

async fn run(
    dir: PathBuf,
    registry: Arc<Registry>,
    loader: Loader,
    mut rx: mpsc::UnboundedReceiver<Work>,
    tx: mpsc::UnboundedSender<Work>,
) {
    while let Some(first) = rx.recv().await {
        // Everything queued so far is one burst.
        let mut rescan = false;
        let mut names = BTreeSet::new();
        let mut take = |work: Work| match work {
            Work::Rescan => rescan = true,
            Work::Paths(paths) => names.extend(
                paths
                    .iter()
                    .filter(|p| p.parent() == Some(&dir))
                    .filter_map(|p| affected(p)),
            ),
        };
        take(first);
        while let Ok(more) = rx.try_recv() {
            take(more);
        }
        if rescan {
            names.extend(registry.plugin_names());
            if let Ok(paths) = loader::scan(&dir) {
                names.extend(
                    paths
                        .iter()
                        .filter_map(|p| loader::plugin_name(p).map(str::to_string)),
                );
            }
        }
        if names.is_empty() {
            continue;
        }
        // Plugins of one burst load in parallel; results go in as they
        // finish, in file-name order where that costs little.
        let mut paths = Vec::new();
        let mut removed = Vec::new();
        for name in names {
            let wasm = dir.join(format!("{name}.wasm"));
            if wasm.symlink_metadata().is_ok() {
                paths.push(wasm);
            } else if registry.get(&name).is_some() {
                tracing::info!(plugin = %name, "{} removed; unloading", wasm.display());
                removed.push(Change::Remove(name));
            }
        }
        // Removals go in with the first batch: one list change, not two.
        let mut changes = removed;
        let mut batches = loader::load_set(&loader, paths, Some(SETTLE));
        while let Some(batch) = batches.recv().await {
            changes.extend(
                batch
                    .into_iter()
                    .filter_map(|(wasm, result)| settle(&dir, &registry, wasm, result, &tx)),
            );
            if !changes.is_empty() {
                registry.apply(std::mem::take(&mut changes));
            }
        }
        if !changes.is_empty() {
            registry.apply(changes);
        }
    }
}

/// The registry change a reload of `wasm` calls for, if any. A failure
/// shortly after the file changed is retried (it may still be being written);
/// otherwise it is logged and told to clients, and the old version serves on.
fn settle(
    dir: &Path,
    registry: &Registry,
    wasm: PathBuf,
    result: Result<Plugin, LoadError>,
    tx: &mpsc::UnboundedSender<Work>,
) -> Option<Change> {
    let name = loader::plugin_name(&wasm)?.to_string();
    let loaded = registry.get(&name).is_some();
    match result {
        Ok(plugin) if registry.get(&name).is_some_and(|old| old.same_as(&plugin)) => None,
        Ok(plugin) => Some(Change::Insert(Arc::new(plugin))),
        Err(e) => {
            let young = [wasm.clone(), dir.join(format!("{name}.toml"))]
                .iter()
                .any(|p| changed_within(p, SETTLE));
            if young {
                tracing::debug!(plugin = %name, "not loadable yet, perhaps still being written ({e}); retrying");
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(SETTLE).await;
                    let _ = tx.send(Work::Paths(vec![wasm]));
                });
                return None;
            }
            let message = if loaded {
                format!("plugin `{name}`: the new version failed to load, the previous one keeps serving: {e}")
            } else {
                format!("plugin `{name}` failed to load: {e}")
            };
            tracing::error!("{message}");
            let _ = registry.events().send(ServerEvent::Log {
                level: LoggingLevel::Warning,
                logger: "ward".into(),
                message,
            });
            None
        }
    }
}

fn changed_within(path: &Path, window: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < window)
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};

    use super::is_change;

    #[test]
    fn opening_a_file_is_no_change_and_closing_it_after_writing_is() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Any));
    }
}

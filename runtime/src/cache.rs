//! The compiled-artifact cache: compiling a component takes milliseconds to
//! seconds, loading its compiled artifact a fraction of a millisecond.
//!
//! Entries are keyed by the sha256 of the wasm and the engine's compatibility
//! hash (wasmtime version and every setting that affects code), so a changed
//! plugin or a new ward never reads a stale entry. Deserializing runs native
//! code that is trusted as is, so ward reads only files it wrote itself: the
//! cache directory is created private (0700), entries are written to a
//! temporary name and renamed into place, and an entry is read only when it
//! is a regular file owned by this user that nobody else can write. A corrupt
//! or incompatible entry is recompiled and overwritten, never fatal.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The sha256 of a plugin's wasm: its identity in the cache and the registry.
pub type Digest = [u8; 32];

/// The sha256 of `wasm`.
pub fn digest(wasm: &[u8]) -> Digest {
    Sha256::digest(wasm).into()
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Where the cache lives unless configured: `$XDG_CACHE_HOME/ward` or
/// `~/.cache/ward`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("ward"))
}

impl Cache {
    /// Opens (creating it private if missing) the cache at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the compiled-artifact cache {}", dir.display()))?;
        Ok(Self { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &Engine, digest: &Digest) -> PathBuf {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
    }

    /// The compiled component for `wasm` (whose [`digest`] is given), from
    /// the cache or compiled now (and then stored). Returns whether it was a
    /// cache hit.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &Digest,
    ) -> Result<(Component, bool)> {
        let path = self.path(engine, digest);
        if trusted(&path) {
            // SAFETY: `trusted` checked that this file is one ward wrote: a
            // regular file in ward's private cache directory, owned by this
            // user and writable by nobody else, written whole then renamed
            // into place. Its name carries the engine's compatibility hash,
            // and wasmtime checks the artifact's header before using it.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!("cache entry {} unusable ({e}); recompiling", path.display())
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!("could not write cache entry {}: {e:#}", path.display());
        }
        Ok((component, false))
    }

    fn store(&self, path: &Path, component: &Component) -> Result<()> {
        let bytes = component.serialize()?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)?;
        Ok(())
    }
}

/// Whether `path` is an entry this user wrote and nobody else can change.
fn trusted(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Some(dir) = path.parent().and_then(|d| std::fs::metadata(d).ok()) else {
        return false;
    };
    let uid = unsafe_free_euid();
    meta.is_file()
        && meta.uid() == uid
        && meta.mode() & 0o022 == 0
        && dir.uid() == uid
        && dir.mode() & 0o022 == 0
}

/// This process's effective user id, read from a file it creates.
fn unsafe_free_euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| {
        tempfile::tempfile()
            .and_then(|f| f.metadata())
            .map(|m| m.uid())
            .unwrap_or(u32::MAX)
    })
}

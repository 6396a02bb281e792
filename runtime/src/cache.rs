//! The compiled-artifact cache: compiling a component takes milliseconds to
//! seconds, loading its compiled artifact a fraction of a millisecond.
//!
//! Entries are keyed by the sha256 of the wasm and the engine's compatibility
//! hash (wasmtime version and every setting that affects code), so a changed
//! plugin or a new ward never reads a stale entry. Deserializing runs native
//! code that is trusted as is, so:
//!
//! - ward reads only files it wrote itself: the cache directory is created
//!   private (0700), entries are written to a temporary name and renamed into
//!   place, and an entry is read only when it is a regular file (never through
//!   a symlink) owned by this user that nobody else can write;
//! - an entry is **read into memory** and deserialized from there, never
//!   mapped from its file: a mapped file that someone truncates or rewrites
//!   under a running ward changes its code or kills it with SIGBUS;
//! - each entry starts with a header (the wasm's sha256, the artifact's length
//!   and its sha256) checked before deserializing, so a truncated or corrupt
//!   entry, or another wasm's artifact renamed to this key, is recompiled with
//!   a warning, never run. The header guards against accidents and swaps, not
//!   against a forger who can write the directory: that one is kept out by the
//!   directory's permissions and by refusing grants that cover it.
//!
//! The cache is bounded: after each store (and when opened) the least
//! recently used entries are removed until the total is under the cap
//! ([`DEFAULT_MAX_SIZE`] unless configured). A hit refreshes its entry's
//! modification time, which is the "last used" time.
//!
//! Beside an artifact, the cache may keep what the plugin **listed** under
//! one policy ([`Cache::listing`]), so that a restart can serve a plugin's
//! lists without loading its code or running it (the loader decides which
//! plugins qualify). A listing is data, not code: one that does not parse is
//! a miss. It goes when its artifact is evicted.
//!
//! So that a restart need not read and hash every plugin again (a thousand
//! plugins are ~170 MB of wasm), the cache also remembers the sha256 of each
//! plugin file it hashed by the file's **identity**: its path, device, inode,
//! size, modification and status-change times ([`Cache::known_digest`]). Any
//! write, rename onto the path, chmod or chown sets the status-change time to
//! now, which nobody can set back short of changing the system clock; a file
//! is remembered only once its status-change time is [`SETTLED`] in the past,
//! so a second change within the same clock tick cannot go unseen (git's
//! "racy" entries), and only if it did not change while being read. Only
//! local filesystems that keep that time themselves qualify ([`identifiable`]):
//! vfat makes it follow the modification time, and FUSE and network
//! filesystems let the other side set it. A remembered digest only saves a
//! read: the code run is always the artifact of that digest, checked
//! against the pins; when a pin refuses it or the code is needed, the file is
//! hashed again. Identities are not tied to artifacts: those unused for
//! [`STALE_IDENTITY`] are removed.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::sandbox::policy::format_size;

/// The sha256 of a plugin's wasm: its identity in the cache and the registry.
pub type Digest = [u8; 32];

/// The sha256 of `wasm`.
pub fn digest(wasm: &[u8]) -> Digest {
    Sha256::digest(wasm).into()
}

/// Whether the status-change time of `file` can stand for its contents
/// (see the module's documentation): it is on a local filesystem that keeps
/// that time itself.
pub fn identifiable(file: &std::fs::File) -> bool {
    /// ext2/3/4, xfs, btrfs, tmpfs, f2fs, zfs, bcachefs, overlayfs (whose
    /// files live on one of the others).
    const KEEPS_CTIME: [u64; 8] = [
        0xEF53,
        0x5846_5342,
        0x9123_683E,
        0x0102_1994,
        0xF2F5_2010,
        0x2FC1_2FC1,
        0xCA45_1A4E,
        0x794C_7630,
    ];
    rustix::fs::fstatfs(file).is_ok_and(|fs| KEEPS_CTIME.contains(&(fs.f_type as u64)))
}

/// The cache's size cap unless configured: 2 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 2 << 30;

/// What starts every entry: "ward cache, format 1".
const MAGIC: &[u8; 8] = b"wardc\0\0\x01";
/// Magic, the wasm's sha256, the artifact's length (u64, little-endian), the
/// artifact's sha256.
const HEADER: usize = 8 + 32 + 8 + 32;
/// Extension of entries; other names in the directory are left alone.
const EXTENSION: &str = "cwasm";
/// Extension of listings, named `<entry stem>-<policy key>.listing`.
const LISTING: &str = "listing";
/// Extension of file identities, named `<identity key>.ident`.
const IDENTITY: &str = "ident";
/// What starts an identity: "ward identity, format 1", then the sha256.
const IDENTITY_MAGIC: &[u8; 8] = b"wardi\0\0\x01";
/// How long before it was read a file must have last changed for its
/// digest to be remembered by its identity: file times tick coarsely (a few
/// milliseconds on Linux, a second or two elsewhere), and two writes within
/// one tick leave the same times.
pub const SETTLED: Duration = Duration::from_secs(2);
/// Identities unused this long are removed.
const STALE_IDENTITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest listing read back.
const MAX_LISTING: u64 = 4 << 20;
/// Temporary files older than this are leftovers of a ward that died while
/// storing, and are removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_size: u64,
    uid: u32,
    /// The engine's compatibility hash, the same for every entry of one
    /// engine and worth computing once (it hashes the whole configuration):
    /// a thousand plugins look up two paths each at start-up.
    engine_tag: std::sync::Arc<std::sync::Mutex<Option<(Engine, u64)>>>,
}

/// Where the cache lives unless configured: `$XDG_CACHE_HOME/ward` or
/// `~/.cache/ward`.
pub fn default_dir() -> Option<PathBuf> {
    crate::dirs::cache_home().map(|d| d.join("ward"))
}

impl Cache {
    /// Opens (creating it private if missing) the cache at `dir`, holding at
    /// most `max_size` bytes; trims it to that size now.
    pub fn open(dir: impl Into<PathBuf>, max_size: u64) -> Result<Self> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the compiled-artifact cache {}", dir.display()))?;
        let cache = Self {
            dir,
            max_size,
            uid: rustix::process::geteuid().as_raw(),
            engine_tag: Default::default(),
        };
        cache.evict(None);
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &Engine, digest: &Digest) -> PathBuf {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!(
            "{hex}-{:016x}.{EXTENSION}",
            self.engine_tag(engine)
        ))
    }

    fn engine_tag(&self, engine: &Engine) -> u64 {
        let mut memo = self
            .engine_tag
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*memo {
            Some((known, tag)) if Engine::same(known, engine) => *tag,
            _ => {
                let mut hasher = std::hash::DefaultHasher::new();
                engine.precompile_compatibility_hash().hash(&mut hasher);
                let tag = hasher.finish();
                *memo = Some((engine.clone(), tag));
                tag
            }
        }
    }

    fn listing_path(&self, engine: &Engine, digest: &Digest, key: &Digest) -> PathBuf {
        let entry = self.path(engine, digest);
        let stem = entry.file_stem().unwrap_or_default().to_string_lossy();
        let key: String = key[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{stem}-{key}.{LISTING}"))
    }

    /// Whether the cache holds an artifact for `digest`, marking it used
    /// now (a plugin served from its listing uses it on its first call, and
    /// must not look idle to eviction meanwhile). Its contents are checked
    /// when it is read.
    pub fn has_artifact(&self, engine: &Engine, digest: &Digest) -> bool {
        match self.open_checked(&self.path(engine, digest)) {
            Ok(Some((file, _))) => {
                let _ = file.set_modified(SystemTime::now());
                true
            }
            _ => false,
        }
    }

    /// What the plugin of `digest` listed under the policy whose key is
    /// `key`, if it was stored; anything unreadable is a miss.
    pub fn listing<T: serde::de::DeserializeOwned>(
        &self,
        engine: &Engine,
        digest: &Digest,
        key: &Digest,
    ) -> Option<T> {
        let path = self.listing_path(engine, digest, key);
        let read = || -> Result<Option<T>> {
            let Some((file, meta)) = self.open_checked(&path)? else {
                return Ok(None);
            };
            if meta.len() > MAX_LISTING {
                bail!("larger than {}", format_size(MAX_LISTING));
            }
            let mut text = Vec::with_capacity(meta.len() as usize);
            (&file).take(MAX_LISTING).read_to_end(&mut text)?;
            Ok(Some(serde_json::from_slice(&text)?))
        };
        read().unwrap_or_else(|e| {
            tracing::debug!(
                "listing {} unusable ({e:#}); asking the plugin",
                path.display()
            );
            None
        })
    }

    /// Keeps what the plugin of `digest` listed under the policy `key`.
    /// Best effort: a failure is a warning, and the next start asks again.
    pub fn store_listing<T: serde::Serialize>(
        &self,
        engine: &Engine,
        digest: &Digest,
        key: &Digest,
        listing: &T,
    ) {
        let path = self.listing_path(engine, digest, key);
        let write = || self.write_small(&path, &serde_json::to_vec(listing)?);
        if let Err(e) = write() {
            tracing::warn!("could not write cache listing {}: {e:#}", path.display());
        }
    }

    fn identity_path(path: &Path, meta: &std::fs::Metadata) -> String {
        let identity = format!(
            "ward identity 1\n{}\n{} {} {} {}.{:09} {}.{:09}",
            path.display(),
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        let key: String = Sha256::digest(identity)[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{key}.{IDENTITY}")
    }

    /// The sha256 of the file at `file` whose metadata (taken from the opened
    /// file, on an [`identifiable`] filesystem) is `meta`, if ward hashed it
    /// before and it has not changed since ([`Cache::remember_digest`]).
    /// Anything unreadable is a miss.
    pub fn known_digest(&self, file: &Path, meta: &std::fs::Metadata) -> Option<Digest> {
        let path = self.dir.join(Self::identity_path(file, meta));
        let (file, entry) = self.open_checked(&path).ok()??;
        let mut bytes = Vec::with_capacity(40);
        (&file).take(41).read_to_end(&mut bytes).ok()?;
        if bytes.len() != 40 || &bytes[..8] != IDENTITY_MAGIC {
            tracing::debug!(
                "file identity {} unusable; hashing the file",
                path.display()
            );
            return None;
        }
        // Used now, for [`STALE_IDENTITY`]; once a day is often enough.
        let day = Duration::from_secs(24 * 3600);
        if entry
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age > day)
        {
            let _ = file.set_modified(SystemTime::now());
        }
        bytes[8..].try_into().ok()
    }

    /// Remembers `digest` as the sha256 of the file at `file`, of `len`
    /// bytes, read starting at `read_at` from an [`identifiable`] filesystem,
    /// whose metadata was `before` the read and `after` it; unless it changed
    /// meanwhile, or less than [`SETTLED`] before the read, when a second
    /// change could leave the same identity. Best effort: a failure is a
    /// warning.
    pub fn remember_digest(
        &self,
        file: &Path,
        (before, after): (&std::fs::Metadata, &std::fs::Metadata),
        len: usize,
        digest: &Digest,
        read_at: SystemTime,
    ) {
        let unchanged = Self::identity_path(file, before) == Self::identity_path(file, after)
            && len as u64 == before.len();
        let changed = u64::try_from(before.ctime()).ok().and_then(|secs| {
            let nanos = (before.ctime_nsec() as u32) % 1_000_000_000;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        });
        let settled = changed.is_some_and(|changed| {
            read_at
                .duration_since(changed)
                .is_ok_and(|ago| ago >= SETTLED)
        });
        if unchanged && settled {
            let path = self.dir.join(Self::identity_path(file, before));
            let mut bytes = IDENTITY_MAGIC.to_vec();
            bytes.extend_from_slice(digest);
            if let Err(e) = self.write_small(&path, &bytes) {
                tracing::warn!("could not write file identity {}: {e:#}", path.display());
            }
        }
    }

    /// Writes a small file of the cache whole, private, renamed into place.
    fn write_small(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(bytes)?;
        tmp.persist(path)?;
        Ok(())
    }

    /// The compiled component for `wasm` (whose [`digest`] is given), from
    /// the cache or [`compile`]d now (and then stored). Returns whether it
    /// was a cache hit.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &Digest,
    ) -> Result<(Component, bool)> {
        if let Some(component) = self.cached(engine, digest) {
            return Ok((component, true));
        }
        let component = compile(engine, wasm)?;
        let path = self.path(engine, digest);
        match self.store(&path, digest, &component) {
            Ok(()) => self.evict(Some(&path)),
            Err(e) => tracing::warn!("could not write cache entry {}: {e:#}", path.display()),
        }
        Ok((component, false))
    }

    /// The compiled component of the wasm whose sha256 is `digest`, if the
    /// cache holds a good one; an unusable entry is a warning and a miss.
    pub fn cached(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let path = self.path(engine, digest);
        match self.read(&path, digest) {
            Ok(None) => None,
            Ok(Some(entry)) => {
                // SAFETY: the bytes are a private copy in memory (nothing can
                // change them while wasmtime uses them), read from a regular
                // file in ward's private directory that this user owns and
                // nobody else can write, written whole by `store` and renamed
                // into place; its header names this wasm and its sha256
                // matches. Its name carries the engine's compatibility hash,
                // and wasmtime checks the artifact's own header too.
                #[allow(unsafe_code)]
                match unsafe { Component::deserialize(engine, &entry[HEADER..]) } {
                    Ok(component) => Some(component),
                    Err(e) => {
                        tracing::warn!(
                            "cache entry {} unusable ({e}); recompiling",
                            path.display()
                        );
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    "cache entry {} unusable ({e:#}); recompiling",
                    path.display()
                );
                None
            }
        }
    }

    /// The entry at `path` with its header checked, or `None` if there is none.
    fn read(&self, path: &Path, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let Some((file, meta)) = self.open_checked(path)? else {
            return Ok(None);
        };
        if meta.len() > self.max_size {
            bail!(
                "{} is larger than the cache's cap of {}",
                format_size(meta.len()),
                format_size(self.max_size)
            );
        }
        let mut entry = Vec::with_capacity(meta.len() as usize);
        (&file)
            .take(self.max_size + 1)
            .read_to_end(&mut entry)
            .context("reading it")?;
        check_header(&entry, digest)?;
        // Last used now: what eviction goes by. Best effort.
        let _ = file.set_modified(SystemTime::now());
        Ok(Some(entry))
    }

    /// Opens a file of the cache if it is one ward wrote: a regular file
    /// (never through a symlink) owned by this user in a directory nobody
    /// else can write. `None` if there is none.
    fn open_checked(&self, path: &Path) -> Result<Option<(std::fs::File, std::fs::Metadata)>> {
        let file = match std::fs::File::options()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("opening it (a symlink is never followed)"),
        };
        let meta = file.metadata().context("reading its metadata")?;
        let dir = std::fs::metadata(&self.dir).context("reading the directory's metadata")?;
        if !meta.is_file() {
            bail!("not a regular file");
        }
        if meta.uid() != self.uid || meta.mode() & 0o022 != 0 {
            bail!("not owned by this user, or writable by others");
        }
        if dir.uid() != self.uid || dir.mode() & 0o022 != 0 {
            bail!("its directory is not owned by this user, or writable by others");
        }
        Ok(Some((file, meta)))
    }

    fn store(&self, path: &Path, digest: &Digest, component: &Component) -> Result<()> {
        let artifact = component.serialize()?;
        let size = (HEADER + artifact.len()) as u64;
        if size > self.max_size {
            bail!(
                "the artifact ({}) is larger than the cache's cap of {}",
                format_size(size),
                format_size(self.max_size)
            );
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&header(digest, &artifact))?;
        tmp.write_all(&artifact)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)?;
        Ok(())
    }

    /// Removes the least recently used entries (never `keep`) until the
    /// cache is within its cap, and temporary files left by a ward that died.
    fn evict(&self, keep: Option<&Path>) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        let mut listings = Vec::new();
        let mut total = 0;
        for item in dir.flatten() {
            let Ok(meta) = item.metadata() else { continue };
            let path = item.path();
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = item.file_name();
            let name = name.to_string_lossy();
            if !meta.is_file() {
                continue;
            }
            if name.starts_with(".tmp") {
                if now.duration_since(used).is_ok_and(|age| age > STALE_TEMP) {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if path.extension().is_some_and(|e| e == IDENTITY) {
                if now
                    .duration_since(used)
                    .is_ok_and(|age| age > STALE_IDENTITY)
                {
                    let _ = std::fs::remove_file(&path);
                }
            } else if path.extension().is_some_and(|e| e == EXTENSION) {
                total += meta.len();
                entries.push((used, meta.len(), path));
            } else if path.extension().is_some_and(|e| e == LISTING) {
                listings.push(path);
            }
        }
        if total <= self.max_size {
            return;
        }
        entries.sort();
        let (mut removed, mut freed) = (0, 0);
        for (_, len, path) in entries {
            if total <= self.max_size {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                freed += len;
                removed += 1;
                // Its listings go with it.
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let prefix = format!("{stem}-");
                for listing in &listings {
                    if listing
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                    {
                        let _ = std::fs::remove_file(listing);
                    }
                }
            }
        }
        tracing::info!(
            "compiled-artifact cache {}: removed the {removed} least recently used entries ({}) to stay under its cap of {}",
            self.dir.display(),
            format_size(freed),
            format_size(self.max_size)
        );
    }
}

/// Compiles `wasm` on a thread pool of its own. wasmtime compiles functions
/// in parallel on the current rayon pool; on the shared global pool, a huge
/// plugin's thousands of functions queue ahead of every other plugin's
/// (measured: `hello` missed a 1 s deadline behind `python-hello`, and an
/// abandoned compile would keep delaying everyone). With a pool each, the
/// OS shares the CPU between compiles.
pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ward-compile-{i}"))
        .build()
        .context("starting compile threads")?;
    Ok(pool.install(|| Component::new(engine, wasm))?)
}

fn header(digest: &Digest, artifact: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(digest);
    header.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    header.extend_from_slice(&Sha256::digest(artifact));
    header
}

/// Checks that `entry` is a whole entry for the wasm of `digest`.
fn check_header(entry: &[u8], digest: &Digest) -> Result<()> {
    if entry.len() < HEADER || &entry[..8] != MAGIC {
        bail!("not an entry of this ward version");
    }
    if &entry[8..40] != digest {
        bail!("it holds the artifact of another wasm");
    }
    let len = u64::from_le_bytes(entry[40..48].try_into().expect("8 bytes"));
    let artifact = &entry[HEADER..];
    if artifact.len() as u64 != len {
        bail!(
            "truncated or extended: {} bytes of artifact where its header says {len}",
            artifact.len()
        );
    }
    if Sha256::digest(artifact).as_slice() != &entry[48..HEADER] {
        bail!("corrupt: the artifact's sha256 does not match its header");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_catch_truncation_corruption_and_swaps() {
        let digest = [7; 32];
        let artifact = b"artifact bytes".to_vec();
        let mut entry = header(&digest, &artifact);
        entry.extend_from_slice(&artifact);
        check_header(&entry, &digest).unwrap();
        assert!(check_header(&entry, &[8; 32]).is_err(), "swapped");
        assert!(
            check_header(&entry[..entry.len() - 1], &digest).is_err(),
            "truncated"
        );
        assert!(
            check_header(&entry[..HEADER - 1], &digest).is_err(),
            "short header"
        );
        let mut corrupt = entry.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert!(check_header(&corrupt, &digest).is_err(), "corrupt");
    }

    /// A file's digest is remembered only once the file has settled, and
    /// any change to it (here a write that keeps its size) is a miss.
    #[test]
    fn digests_are_known_by_identity_only_for_settled_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("c"), 1 << 20).unwrap();
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, b"one").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let now = SystemTime::now();
        let read = (&meta, &meta);
        cache.remember_digest(&path, read, 3, &[1; 32], now);
        assert_eq!(
            cache.known_digest(&path, &meta),
            None,
            "read right after it changed"
        );
        cache.remember_digest(&path, read, 2, &[1; 32], now + SETTLED);
        assert_eq!(cache.known_digest(&path, &meta), None, "short read");
        cache.remember_digest(&path, read, 3, &[1; 32], now + SETTLED);
        assert_eq!(cache.known_digest(&path, &meta), Some([1; 32]));
        // The same file under another path (another plugin's name) is not known.
        assert_eq!(cache.known_digest(&dir.path().join("q.wasm"), &meta), None);

        // Same size, modification time put back: only the status-change
        // time tells, and it does.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        (&file).write_all(b"two").unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
        let changed = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (changed.len(), changed.modified().unwrap()),
            (meta.len(), meta.modified().unwrap())
        );
        assert_eq!(cache.known_digest(&path, &changed), None);
        // Changed while being read: not remembered.
        cache.remember_digest(&path, (&meta, &changed), 3, &[2; 32], now + SETTLED);
        assert_eq!(cache.known_digest(&path, &meta), Some([1; 32]));
        assert_eq!(cache.known_digest(&path, &changed), None);

        // A forged identity others could write is never believed.
        let ident = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == IDENTITY))
            .unwrap();
        std::fs::set_permissions(&ident, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(cache.known_digest(&path, &meta), None);
    }

    #[test]
    fn eviction_keeps_the_cache_under_its_cap_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("c"), 250).unwrap();
        let now = SystemTime::now();
        for (name, age) in [("a", 30), ("b", 20), ("c", 10)] {
            let path = cache.dir().join(format!("{name}.{EXTENSION}"));
            std::fs::write(&path, [0; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        std::fs::write(cache.dir().join("notes.txt"), [0; 1000]).unwrap();
        let keep = cache.dir().join(format!("a.{EXTENSION}"));
        cache.evict(Some(&keep));
        let mut left: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a.cwasm", "c.cwasm", "notes.txt"]);
    }
}

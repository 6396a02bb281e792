//! Filesystem: the only place ward opens a host directory for a guest.
//!
//! Design decisions:
//! - **Opened once, at load.** Each `[[fs]]` grant is opened when its policy
//!   is loaded, as a directory handle, and every call of that plugin version
//!   gets those same handles ([`FsGrants::apply`] shares them; nothing is
//!   opened per call). A grant is never re-opened by path: with nested grants
//!   (rw `./w`, ro `./w/pub`) a guest could otherwise replace `pub` by a
//!   symlink in one call and read wherever it points through `/pub` in the
//!   next (issue 11).
//! - **No symlink between resolving and opening.** The host path is
//!   canonicalised when the policy is parsed (the operator's own symlinks are
//!   followed then, once), and opened one component at a time from `/`
//!   without following symlinks: a symlink swapped in after the check is
//!   refused, never followed.
//! - **Confinement inside a grant is wasmtime-wasi's.** Each handle becomes
//!   a preopen with `FsPerms` (so `ro` is read-only in every operation) and
//!   cap-std's path resolution (so `..`, absolute paths and symlinks cannot
//!   leave the grant). Nothing else of the host's filesystem is visible.
//! - **ward's own files are out of every grant** ([`Protected`]): a grant
//!   over the compiled-artifact cache could patch native code that ward maps
//!   and runs, one over the plugin directory could rewrite the plugin's own
//!   policy, one over the token file reads the HTTP credential.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::policy::{FsGrant, FsMode};

/// The `[[fs]]` grants of one policy, each directory opened once when the
/// policy was loaded. Reads as a slice of [`FsGrant`]s.
#[derive(Clone, Default)]
pub struct FsGrants {
    grants: Vec<FsGrant>,
    /// The opened directories as wasmtime-wasi preopens. Cloning shares the
    /// handles (an `Arc` each), so every call sees the same directories.
    preopens: WasiFilesystemCtx,
}

impl FsGrants {
    /// True when no directory is granted.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Gives a call's context exactly the granted directories, as opened at
    /// load.
    pub fn apply(&self, ctx: &mut WasiCtx) {
        *ctx.filesystem() = self.preopens.clone();
    }
}

impl Deref for FsGrants {
    type Target = [FsGrant];
    fn deref(&self) -> &[FsGrant] {
        &self.grants
    }
}

impl<'a> IntoIterator for &'a FsGrants {
    type Item = &'a FsGrant;
    type IntoIter = std::slice::Iter<'a, FsGrant>;
    fn into_iter(self) -> Self::IntoIter {
        self.grants.iter()
    }
}

/// Equal when the grants are: the same paths, guest paths and modes, opened
/// on the same directories (so a reload notices a directory replaced under
/// the same name).
impl PartialEq for FsGrants {
    fn eq(&self, other: &Self) -> bool {
        self.grants == other.grants
    }
}

impl Eq for FsGrants {}

impl fmt::Debug for FsGrants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.grants).finish()
    }
}

/// Which directory a grant opened: its device and inode when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirId {
    dev: u64,
    ino: u64,
}

/// Opens the grants of one policy, in order, while it is parsed.
pub(crate) struct Opener {
    grants: Vec<FsGrant>,
    builder: WasiCtxBuilder,
}

impl Opener {
    pub(crate) fn new() -> Self {
        Self {
            grants: Vec::new(),
            builder: WasiCtxBuilder::new(),
        }
    }

    /// Opens `host` (canonical, checked against [`Protected`]) for the guest
    /// at `guest`.
    pub(crate) fn open(&mut self, host: PathBuf, guest: String, mode: FsMode) -> io::Result<()> {
        let dir = open_dir_nofollow(&host)?;
        let stat = rustix::fs::fstat(&dir)?;
        let perms = match mode {
            FsMode::Ro => FsPerms::ReadOnly,
            FsMode::Rw => FsPerms::ReadWrite,
        };
        // wasmtime-wasi 48 only takes a path; this one names exactly the
        // directory `dir` holds, whatever has happened to `host` since.
        self.builder
            .preopened_dir(fd_path(&dir), &guest, perms)
            .map_err(|e| match e.downcast::<io::Error>() {
                Ok(e) => e,
                Err(e) => io::Error::other(format!("{e:#}")),
            })?;
        self.grants.push(FsGrant {
            host,
            guest,
            mode,
            dir: DirId {
                dev: stat.st_dev as u64,
                ino: stat.st_ino as u64,
            },
        });
        Ok(())
    }

    pub(crate) fn finish(mut self) -> FsGrants {
        FsGrants {
            grants: self.grants,
            preopens: self.builder.build().filesystem().clone(),
        }
    }
}

/// Opens the directory at the canonical path `path`, refusing a symlink in
/// any component: it must still be what the path named when it was
/// canonicalised.
fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    let flags = open_flags();
    let mut dir = rustix::fs::openat(rustix::fs::CWD, "/", flags, Mode::empty())?;
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => {
                dir = rustix::fs::openat(&dir, name, flags, Mode::empty()).map_err(|e| {
                    if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::LOOP {
                        io::Error::other(format!(
                            "{} changed since it was checked: a symlink or file replaced a directory in it",
                            path.display()
                        ))
                    } else {
                        e.into()
                    }
                })?;
            }
            _ => {
                return Err(io::Error::other(format!(
                    "{} is not a canonical path",
                    path.display()
                )))
            }
        }
    }
    Ok(dir)
}

/// Opening a directory only to hold it: `O_PATH` needs no read permission on
/// the directories passed through.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A path that opens the very file `fd` holds.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let dir = "/proc/self/fd";
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let dir = "/dev/fd";
    Path::new(dir).join(fd.as_raw_fd().to_string())
}

/// ward's own files, which no grant may reach: the compiled-artifact cache,
/// the plugin directory, the HTTP token file, ward's executable (and any
/// other path serve adds). Guest writes happen as ward's user, so without
/// this a broad grant such as `host = "/home/me"` would hand a plugin
/// ward's state. Paths are compared canonical.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    paths: Vec<ProtectedPath>,
}

#[derive(Debug, Clone)]
struct ProtectedPath {
    path: PathBuf,
    what: String,
    /// Whether a grant may lie inside it (the plugin directory: ward reads
    /// only the files directly in it, so `./data` beside the policy is fine).
    inside_allowed: bool,
}

impl Protected {
    /// Protects `path` (a file or a directory; resolved now, also if it does
    /// not exist yet), named `what` in errors: a grant that contains it, is
    /// it or lies inside it is refused.
    pub fn add(&mut self, path: &Path, what: &str) -> &mut Self {
        self.paths.push(ProtectedPath {
            path: resolve(path),
            what: what.to_string(),
            inside_allowed: false,
        });
        self
    }

    /// Adds ward's state that every `serve` has: the compiled-artifact cache
    /// (if one is used) and ward's own executable.
    pub fn with_ward_state(mut self, cache_dir: Option<&Path>) -> Self {
        if let Some(dir) = cache_dir {
            self.add(dir, "ward's compiled-artifact cache");
        }
        if let Ok(exe) = std::env::current_exe() {
            self.add(&exe, "ward's own executable");
        }
        self
    }

    /// These paths and `plugin_dir`, where a grant may name a subdirectory
    /// but not the directory itself or one above it.
    pub(crate) fn with_plugin_dir(&self, plugin_dir: &Path) -> Protected {
        let mut protected = self.clone();
        protected.paths.push(ProtectedPath {
            path: resolve(plugin_dir),
            what: "the plugin directory".into(),
            inside_allowed: true,
        });
        protected
    }

    /// Why a grant of the canonical `host`, written as `found`, is refused,
    /// if it is.
    pub(crate) fn check(&self, host: &Path, found: &str) -> Option<String> {
        let shown = if Path::new(found.trim_matches('"')) == host {
            found.to_string()
        } else {
            format!("{found} ({})", host.display())
        };
        self.paths.iter().find_map(|p| {
            let (what, path) = (&p.what, p.path.display());
            if host == p.path {
                let instead = if p.inside_allowed {
                    "grant a subdirectory of it, such as \"./data\""
                } else {
                    "grant another directory"
                };
                Some(format!("{shown} is {what} {path}; {instead}"))
            } else if p.path.starts_with(host) {
                Some(format!(
                    "{shown} covers {what} {path}; grant a narrower directory"
                ))
            } else if host.starts_with(&p.path) && !p.inside_allowed {
                Some(format!(
                    "{shown} lies inside {what} {path}; grant a directory outside it"
                ))
            } else {
                None
            }
        })
    }
}

/// `path` canonical; if it does not exist, its nearest existing ancestor
/// canonical and the rest appended.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => resolve(parent).join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_refused_when_it_reaches_a_protected_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("cache/sub")).unwrap();
        std::fs::create_dir_all(root.join("plugins/data")).unwrap();
        std::fs::write(root.join("token"), "t").unwrap();
        let mut protected = Protected::default();
        protected
            .add(&root.join("cache"), "the cache")
            .add(&root.join("token"), "the token file")
            .add(&root.join("not-yet/created"), "later");
        let protected = protected.with_plugin_dir(&root.join("plugins"));
        let check = |host: &Path| protected.check(host, "\"x\"");

        let covers = check(&root).unwrap();
        assert!(covers.contains("covers the cache"), "{covers}");
        let is = check(&root.join("cache")).unwrap();
        assert!(
            is.contains(&format!("is the cache {}", root.join("cache").display())),
            "{is}"
        );
        let inside = check(&root.join("cache/sub")).unwrap();
        assert!(inside.contains("lies inside the cache"), "{inside}");
        let is = check(&root.join("plugins")).unwrap();
        assert!(is.contains("is the plugin directory"), "{is}");
        let later = check(&root.join("not-yet")).unwrap();
        assert!(later.contains("covers later"), "{later}");
        // A subdirectory of the plugin directory is a fine grant; so is a
        // sibling whose name starts the same.
        assert_eq!(check(&root.join("plugins/data")), None);
        std::fs::create_dir(root.join("cache2")).unwrap();
        assert_eq!(check(&root.join("cache2")), None);
    }

    #[test]
    fn a_symlink_swapped_in_after_the_check_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        assert!(open_dir_nofollow(&root.join("a/b")).is_ok());
        std::fs::remove_dir(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("a/b")).unwrap();
        let e = open_dir_nofollow(&root.join("a/b")).unwrap_err();
        assert!(
            e.to_string().contains("changed since it was checked"),
            "{e}"
        );
        std::fs::rename(root.join("a"), root.join("a2")).unwrap();
        std::os::unix::fs::symlink(root.join("a2"), root.join("a")).unwrap();
        assert!(open_dir_nofollow(&root.join("a/b")).is_err());
    }

    #[test]
    fn every_call_gets_the_directory_opened_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("granted")).unwrap();
        let mut opener = Opener::new();
        opener
            .open(root.join("granted"), "/g".into(), FsMode::Ro)
            .unwrap();
        let grants = opener.finish();
        let stat = std::fs::metadata(root.join("granted")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            grants[0].dir,
            DirId {
                dev: stat.dev(),
                ino: stat.ino()
            }
        );
        // Replaced by a directory of the same name: a reload sees the change.
        std::fs::rename(root.join("granted"), root.join("moved")).unwrap();
        std::fs::create_dir(root.join("granted")).unwrap();
        let mut again = Opener::new();
        again
            .open(root.join("granted"), "/g".into(), FsMode::Ro)
            .unwrap();
        assert_ne!(grants, again.finish());
    }
}

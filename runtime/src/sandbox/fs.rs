//! Filesystem: the only place ward opens a host directory for a guest.
//!
//! Each `[[fs]]` grant becomes one preopen at its guest path, with
//! wasmtime-wasi's `FsPerms` (so `ro` is read-only in every operation) and
//! cap-std's path resolution (so `..`, absolute paths and symlinks cannot
//! leave the grant). Nothing else of the host's filesystem is visible.

use anyhow::{Context, Result};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::policy::{FsGrant, FsMode};

/// Resources (open files, streams, sockets, ...) one call may hold at once.
/// Every open file is a host file descriptor; the cap keeps one plugin from
/// exhausting the process's descriptors and starving the others.
pub const MAX_OPEN_RESOURCES: usize = 512;

/// Preopens every grant.
pub fn apply(builder: &mut WasiCtxBuilder, grants: &[FsGrant]) -> Result<()> {
    for grant in grants {
        let perms = match grant.mode {
            FsMode::Ro => FsPerms::ReadOnly,
            FsMode::Rw => FsPerms::ReadWrite,
        };
        builder
            .preopened_dir(&grant.host, &grant.guest, perms)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "opening {} for guest path {}",
                    grant.host.display(),
                    grant.guest
                )
            })?;
    }
    Ok(())
}

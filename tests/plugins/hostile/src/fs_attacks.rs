//! Filesystem attacks that span calls: what one call leaves behind in a
//! read-write grant must not change what the next call can reach through
//! another grant (issue 11, item 7).

use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct SymlinkSwap {
    /// An empty directory (as the guest sees it) to replace.
    path: String,
    /// What the symlink put in its place points to, such as `../outside`.
    target: String,
}

/// Removes the empty directory `path` and puts a symlink to `target` in its
/// place: with nested grants (rw `./w`, ro `./w/pub`), a host that re-opens
/// `./w/pub` by path on the next call would follow it.
fn symlink_swap(a: SymlinkSwap) -> Result<String> {
    std::fs::remove_dir(&a.path)?;
    // std's symlink for WASI is unstable: use the preopen holding `path`.
    for (dir, root) in wasi::filesystem::preopens::get_directories() {
        let inside = a.path.strip_prefix(root.trim_end_matches('/'));
        if let Some(rel) = inside.and_then(|rest| rest.strip_prefix('/')) {
            dir.symlink_at(&a.target, rel)
                .map_err(|e| Error::failed(format!("symlink: {e:?}")))?;
            return Ok(format!("{} -> {}", a.path, a.target));
        }
    }
    Err(Error::failed(format!("no grant holds {}", a.path)))
}

/// Registers the filesystem attack tools.
pub fn register(p: &mut Plugin) {
    p.tool(
        "symlink_swap",
        "Replaces the empty directory `path` by a symlink to `target`",
        symlink_swap,
    );
}

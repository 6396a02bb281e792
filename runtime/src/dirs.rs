//! ward's default directories: the XDG base directories, with the fallbacks
//! the XDG spec gives under `$HOME`. One lookup, so the plugin directory and
//! the cache agree on what an empty or unset variable means.

use std::path::PathBuf;

/// `$var` if set and not empty, else `$HOME/home_relative`; `None` if
/// neither is set.
fn xdg(var: &str, home_relative: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_relative)))
}

/// `$XDG_DATA_HOME` or `~/.local/share`.
pub(crate) fn data_home() -> Option<PathBuf> {
    xdg("XDG_DATA_HOME", ".local/share")
}

/// `$XDG_CACHE_HOME` or `~/.cache`.
pub(crate) fn cache_home() -> Option<PathBuf> {
    xdg("XDG_CACHE_HOME", ".cache")
}

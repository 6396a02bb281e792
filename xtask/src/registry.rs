//! The outside programs the integration tests run, each started by the test
//! that needs it on a loopback port: Debian's `docker-registry` (the CNCF
//! distribution registry, `tests/integration/oci.rs`), `openssl` (test
//! keys) and `redis-server` (replicas sharing rate limits and cached
//! results, `tests/integration/team.rs`). Installed with apt-get only when
//! missing, as root (CI and the development machines are).

use anyhow::{bail, Result};

use crate::util;

/// Debian packages and the command each provides.
const PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("openssl", "openssl"),
    ("redis-server", "redis-server"),
];

/// Installs whichever of [`PACKAGES`] is missing.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, command)| !on_path(command))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    util::step(format!(
        "installing {} (for the integration tests)",
        missing.join(", ")
    ));
    util::apt_install(&missing)?;
    for (package, command) in PACKAGES {
        if !on_path(command) {
            bail!("`{command}` is still missing after installing the Debian package {package}");
        }
    }
    Ok(())
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

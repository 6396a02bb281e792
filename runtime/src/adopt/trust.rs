//! The operator's trust settings: `DIR/trust.toml` beside the plugins.
//!
//! ```toml
//! require-signatures = true      # add, upgrade and loading pinned plugins need a signature
//! keys = ["keys/team.pub"]       # trusted EC P-256 public keys (PEM), relative to this file
//! ```
//!
//! With `require-signatures`, `ward add` and `ward upgrade` refuse an
//! artifact without a valid signature by one of `keys`, and the loader
//! refuses a plugin whose policy does not pin its bytes (`[source] sha256`)
//! and name a listed key as the one that signed them (`[source] signed-by`,
//! which `ward add` writes after verifying). So a `.wasm` dropped in by
//! hand, swapped behind ward's back, or signed by a key that was since
//! removed from the list does not load. The policy file itself is trusted:
//! whoever can write `NAME.toml` decides the plugin's grants anyway.
//!
//! A plugin named `trust` would have this file as its policy, so `ward add`
//! refuses that name.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::signature::TrustedKey;
use crate::sandbox::policy::Source;

/// The trust file's name in the plugin directory.
pub const FILE: &str = "trust.toml";

/// Trust settings.
#[derive(Debug, Default)]
pub struct Trust {
    /// Whether every add, upgrade and pinned plugin needs a signature.
    pub require_signatures: bool,
    /// Keys whose signatures are accepted.
    pub keys: Vec<TrustedKey>,
    /// The file, if there is one.
    pub path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    require_signatures: bool,
    #[serde(default)]
    keys: Vec<PathBuf>,
}

impl Trust {
    /// The settings of plugin directory `dir`: its `trust.toml`, or none.
    pub fn load(dir: &Path) -> Result<Trust> {
        let path = dir.join(FILE);
        let meta = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Trust::default()),
            other => other.with_context(|| format!("reading {}", path.display()))?,
        };
        if !meta.is_file() || meta.len() > 64 << 10 {
            bail!(
                "{}: not a trust file (expected a small TOML file)",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: File = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {} (expected `require-signatures = true|false` and `keys = [\"KEY.pub\", …]`)",
                path.display(),
                e.message().trim()
            )
        })?;
        let keys = file
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                TrustedKey::read(&dir.join(key))
                    .with_context(|| format!("{}: keys[{i}]", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        if file.require_signatures && keys.is_empty() {
            bail!(
                "{}: require-signatures is set but `keys` lists no public key, so nothing could be added or loaded",
                path.display()
            );
        }
        Ok(Trust {
            require_signatures: file.require_signatures,
            keys,
            path: Some(path),
        })
    }

    /// Whether `fingerprint` is one of the trusted keys.
    pub fn trusts(&self, fingerprint: &str) -> bool {
        self.keys.iter().any(|k| k.fingerprint() == fingerprint)
    }

    /// The loader's check: with `require-signatures`, plugin `name` loads
    /// only pinned and signed by a trusted key.
    pub fn check_pinned(&self, name: &str, source: &Source) -> Result<()> {
        if !self.require_signatures {
            return Ok(());
        }
        let file = self.path.as_deref().unwrap_or(Path::new(FILE)).display();
        if source.sha256.is_none() {
            bail!(
                "{file} requires signatures, and {name}.toml pins no `[source] sha256`: add the plugin with `ward add` from a signed artifact"
            );
        }
        match &source.signed_by {
            Some(key) if self.trusts(key) => Ok(()),
            Some(key) => bail!(
                "{file} requires signatures, and {name}.toml says it was signed by {key}, which is not among its keys: trust that key or add the plugin again"
            ),
            None => bail!(
                "{file} requires signatures, and {name}.toml records no verified signature (`[source] signed-by`): add the plugin with `ward add --key` from a signed artifact"
            ),
        }
    }
}

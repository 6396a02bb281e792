//! The official MCP Python SDK (`mcp`, PyPI), which the integration test
//! `py_client` (tests/integration/py_client.rs) drives ward with over
//! Streamable HTTP and a bearer token, through `tests/py-client/client.py`.
//! Two majors, each pinned by a requirements file beside the script
//! (`tests/py-client/mcp-1.txt`, `mcp-2.txt`) and installed with pip into
//! its own venv, `<repo>/.tools/py-client/mcp-1` and `mcp-2` (gitignored),
//! only when the pinned version is missing; `cargo xtask test` does it
//! before `cargo test`. (Not the componentize-py venv `.tools/python`: the
//! SDK's dependencies stay out of the plugin toolchain.)

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util;

/// The venvs, each named after its requirements file.
pub const VENVS: [&str; 2] = ["mcp-1", "mcp-2"];

/// Installs each pinned SDK unless it is there already.
pub fn ensure() -> Result<()> {
    let root = util::root();
    for name in VENVS {
        let requirements = root.join("tests/py-client").join(format!("{name}.txt"));
        ensure_venv(&root.join(".tools/py-client").join(name), &requirements)?;
    }
    Ok(())
}

/// The version `requirements` pins `mcp` at (its `mcp==X` line).
fn pinned(requirements: &Path) -> Result<String> {
    let text = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("mcp=="))
        .map(str::to_owned)
        .with_context(|| format!("{} pins no `mcp==VERSION`", requirements.display()))
}

/// The version of `mcp` installed in the venv of `python`, if any.
fn installed(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('mcp'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn ensure_venv(venv: &Path, requirements: &Path) -> Result<()> {
    let version = pinned(requirements)?;
    let python = venv.join("bin/python");
    if installed(&python).as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    util::step(format!(
        "installing the MCP Python SDK (mcp {version}) for the py_client integration test into {}",
        venv.display()
    ));
    if !python.is_file() {
        let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        util::run(Command::new(python3).args(["-m", "venv"]).arg(venv))?;
    }
    util::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
    )?;
    match installed(&python) {
        Some(found) if found == version => Ok(()),
        found => bail!(
            "pip installed {} but the venv has mcp {found:?}, not {version}",
            requirements.display()
        ),
    }
}

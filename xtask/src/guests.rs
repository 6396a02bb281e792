//! Rust guest plugins: the guest workspace in plugins/ (its own target
//! directory, target/guest, so guest builds never wait on the host's
//! `target/` lock), built for wasm32-wasip2 and published into a plugin
//! directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, root, step};

/// The Rust target guests build for.
pub const TARGET: &str = "wasm32-wasip2";

/// Where the guest workspace builds.
fn target_dir() -> PathBuf {
    root().join("target").join("guest")
}

/// `cargo xtask plugins`: plugins/* -> target/plugins/NAME.wasm (+ NAME.toml).
pub fn plugins() -> Result<()> {
    let out = root().join("target").join("plugins");
    let crates = rust_crates(&root().join("plugins"))?;
    build_and_publish(&crates, &out, true)?;
    make_data_dir(&out)
}

/// `cargo xtask test-plugins`: tests/plugins/* -> target/test-plugins/NAME.wasm.
pub fn test_plugins() -> Result<()> {
    let out = root().join("target").join("test-plugins");
    let crates = rust_crates(&root().join("tests").join("plugins"))?;
    build_and_publish(&crates, &out, false)
}

/// The Rust crates directly under `dir` (directories with a Cargo.toml),
/// sorted. Each crate's package name must be its directory name: that is the
/// plugin's name.
fn rust_crates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut crates = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            let name = path
                .file_name()
                .context("a crate directory has a name")?
                .to_string_lossy()
                .into_owned();
            crates.push((name, path));
        }
    }
    crates.sort();
    if crates.is_empty() {
        bail!("no Rust crates in {}", dir.display());
    }
    Ok(crates)
}

/// Installs the wasm32-wasip2 target if rustup lacks it.
fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(o)
            if o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => util::run(Command::new("rustup").args(["target", "add", TARGET]))
            .with_context(|| format!("cannot install the {TARGET} target")),
        Err(e) => {
            step(format!(
                "rustup not found ({e}); assuming the {TARGET} target is installed"
            ));
            Ok(())
        }
    }
}

fn build_and_publish(crates: &[(String, PathBuf)], out: &Path, with_policies: bool) -> Result<()> {
    ensure_target()?;
    let names: Vec<&str> = crates.iter().map(|(n, _)| n.as_str()).collect();
    step(format!("building {} for {TARGET}", names.join(", ")));
    let mut cargo = util::cargo();
    cargo
        .current_dir(root().join("plugins"))
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(root().join("plugins").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir());
    for name in &names {
        cargo.args(["-p", name]);
    }
    util::run(&mut cargo)?;

    let built = target_dir().join(TARGET).join("release");
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, dir) in crates {
        // A cdylib's file uses the crate name (dashes become underscores), a binary's keeps them.
        let candidates = [
            built.join(format!("{}.wasm", name.replace('-', "_"))),
            built.join(format!("{name}.wasm")),
        ];
        let wasm = candidates.iter().find(|p| p.is_file()).with_context(|| {
            format!(
                "cargo built no {}; is the package in {} named `{name}`?",
                candidates[0].display(),
                dir.display()
            )
        })?;
        let bytes = fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let dest = out.join(format!("{name}.wasm"));
        let wrote = util::publish(&bytes, &dest)?;
        step(format!(
            "{} {} ({} KiB)",
            if wrote { "wrote" } else { "unchanged" },
            dest.display(),
            bytes.len() / 1024
        ));
        let policy = dir.join(format!("{name}.toml"));
        if with_policies && policy.is_file() {
            let text =
                fs::read(&policy).with_context(|| format!("cannot read {}", policy.display()))?;
            let dest = out.join(format!("{name}.toml"));
            if util::publish(&text, &dest)? {
                step(format!("wrote {}", dest.display()));
            }
        }
    }
    Ok(())
}

/// target/plugins/data/: the directory the `files` example policy grants.
fn make_data_dir(out: &Path) -> Result<()> {
    let data = out.join("data");
    fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let readme = data.join("README.txt");
    if !readme.exists() {
        fs::write(
            &readme,
            "This directory is granted to the `files` example plugin as /data (read-write)\n\
             by target/plugins/files.toml. Try the tool files_list with {\"path\": \"/data\"}.\n",
        )
        .with_context(|| format!("cannot write {}", readme.display()))?;
    }
    Ok(())
}

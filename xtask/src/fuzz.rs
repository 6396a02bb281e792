//! `cargo xtask fuzz`: the fuzz targets in `fuzz/` (the parsers that take
//! untrusted bytes), each run for a bounded time with cargo-fuzz and
//! libFuzzer.
//!
//! cargo-fuzz is installed project-locally into `<repo>/.tools/cargo-fuzz/`
//! at a pinned version when missing. It passes `-Z` flags to rustc, which the
//! machines' stable toolchain accepts with `RUSTC_BOOTSTRAP=1`. Targets are
//! built without a sanitizer: ward's code denies `unsafe`, so what the
//! fuzzers look for is panics, hangs, runaway memory and broken invariants
//! (each target asserts its own). Seeds live in `fuzz/seeds/TARGET/`; the
//! growing corpus in `fuzz/corpus/TARGET/` and crashes in
//! `fuzz/artifacts/TARGET/` (both gitignored).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::util;

/// `cargo-fuzz`, from crates.io.
pub const CARGO_FUZZ_VERSION: &str = "0.13.1";
/// Every target in `fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &["stdio_line", "policy", "uri_template", "http_request"];

/// Runs `targets` (all if empty) for `seconds` each.
pub fn run(seconds: u64, targets: &[String]) -> Result<()> {
    let root = util::root();
    let cargo_fuzz = ensure_cargo_fuzz(&root)?;
    let fuzz = root.join("fuzz");
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets.iter().map(String::as_str).collect()
    };
    for target in chosen {
        let corpus = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = fuzz.join("seeds").join(target);
        let mut cmd = fuzz_command(&cargo_fuzz, &fuzz);
        cmd.args(["run", "--sanitizer", "none", target])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-timeout=10",
            "-rss_limit_mb=4096",
            "-max_len=65536",
            "-print_final_stats=1",
        ]);
        util::step(format!("fuzzing {target} for {seconds}s"));
        util::run(&mut cmd)?;
    }
    Ok(())
}

fn fuzz_command(cargo_fuzz: &Path, fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_fuzz);
    // Run as `cargo-fuzz fuzz ...`, the way cargo runs a subcommand.
    cmd.arg("fuzz")
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", fuzz_dir.join("target"));
    cmd
}

/// The pinned cargo-fuzz, installed into `.tools/cargo-fuzz` when missing.
fn ensure_cargo_fuzz(root: &Path) -> Result<std::path::PathBuf> {
    let install = root.join(".tools").join("cargo-fuzz");
    let bin = install.join("bin").join("cargo-fuzz");
    let installed = Command::new(&bin)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION));
    if !installed {
        util::run(
            util::cargo()
                .args(["install", "cargo-fuzz", "--locked", "--version"])
                .arg(CARGO_FUZZ_VERSION)
                .arg("--root")
                .arg(&install),
        )?;
    }
    Ok(bin)
}

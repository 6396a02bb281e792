//! `cargo xtask bench [ARGS]...`: builds `ward`, `ward-bench` and
//! `native-greet` in release and the Rust example plugins, then runs
//! `target/release/ward-bench ARGS...` from the repository root. ARGS go to
//! ward-bench (`cargo xtask bench -- --help`), e.g. `--memory-calls 100000`
//! for a shorter memory run or `--only roundtrip,startup`. See BENCHMARKS.md.

use std::process::Command;

use anyhow::Result;

use crate::util::{self, root, step};

/// Builds everything the benchmarks need and runs them.
pub fn run(args: &[String]) -> Result<()> {
    let root = root();
    util::run(util::cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "ward",
        "-p",
        "ward-bench",
    ]))?;
    // Only the Rust examples (hello, stats, fetch) are benchmarked.
    crate::guests::plugins()?;
    step("running the benchmarks (results table on stdout, progress on stderr)");
    util::run(
        Command::new(root.join("target").join("release").join("ward-bench"))
            .current_dir(&root)
            .args(args),
    )
}

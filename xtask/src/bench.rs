//! `cargo xtask bench [ARGS]...`: builds `ward`, `ward-bench` and
//! `native-greet` in release and the example plugins, then runs
//! `target/release/ward-bench ARGS...` from the repository root. ARGS go to
//! ward-bench (`cargo xtask bench -- --help`), e.g. `--memory-calls 100000`
//! for a shorter memory run or `--only roundtrip,startup`. See BENCHMARKS.md.
//!
//! The `python` benchmark also needs the Python and JavaScript example
//! plugins (`python-hello`, `js-hello`: componentize-py and componentize-js,
//! built as `cargo xtask plugins` does), the MCP Python SDK venv
//! `.tools/py-client/mcp-2` (xtask/src/pyclient.rs) and, for its JavaScript
//! half, Node and the TypeScript SDK in `.tools/ts-client`
//! (xtask/src/tsclient.rs); they are installed here when that benchmark is
//! selected. If the TypeScript SDK cannot be installed, the JavaScript half
//! is skipped with the reason in the table.

use std::process::Command;

use anyhow::Result;

use crate::util::{self, root, step};

/// Whether ward-bench's `--only` (default: every benchmark) selects `name`.
fn selects(args: &[String], name: &str) -> bool {
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--only=") {
            only = Some(v.to_string());
        } else if a == "--only" {
            only = it.next().cloned();
        }
    }
    only.is_none_or(|v| v.split(',').any(|b| b.trim() == name))
}

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
    let help = args.iter().any(|a| a == "--help" || a == "-h");
    if !help && selects(args, "python") {
        // Every example plugin (python-hello and js-hello among them), and
        // the SDK servers they are compared with.
        crate::example_plugins()?;
        crate::pyclient::ensure()?;
        if let Err(e) = crate::tsclient::ensure() {
            eprintln!(
                "warning: the TypeScript SDK could not be installed ({e:#}); the js half of the python benchmark will be skipped"
            );
        }
    } else {
        // The Rust examples (hello, stats, fetch) are enough.
        crate::guests::plugins()?;
    }
    step("running the benchmarks (results table on stdout, progress on stderr)");
    util::run(
        Command::new(root.join("target").join("release").join("ward-bench"))
            .current_dir(&root)
            .args(args),
    )
}

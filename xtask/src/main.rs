//! Build orchestration for ward: `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! Each task is a module with a `run` function; add a variant to [`Task`] and
//! a module to add one (python/js plugin builds, benchmarks, ...). Progress
//! goes to stderr.

mod bench;
mod conformance;
mod cplugin;
mod fuzz;
mod guests;
mod polyglot;
mod promtool;
mod pyclient;
mod registry;
mod test;
mod tsclient;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ward's build tasks.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "ward's build tasks",
    version
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the example plugins (plugins/*) into target/plugins/NAME.wasm,
    /// with their example policies (NAME.toml) and target/plugins/data/.
    Plugins,
    /// Build the test plugins (tests/plugins/*) into target/test-plugins/NAME.wasm.
    TestPlugins,
    /// Run the official MCP conformance suite (pinned, installed into
    /// .tools/conformance) against `ward serve --http`, compared with
    /// tests/conformance-baseline.toml.
    Conformance,
    /// Run the fuzz targets in fuzz/ (all, or the ones named) for SECONDS
    /// each; cargo-fuzz is installed into .tools/ when missing.
    Fuzz {
        /// How long to run each target.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
    /// Build all plugins, then run `cargo test --workspace [ARGS]...`.
    Test {
        /// Passed on to `cargo test --workspace`, e.g. `-- --nocapture`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build ward and ward-bench in release and the example plugins, then run
    /// the benchmarks (BENCHMARKS.md); ARGS go to ward-bench, e.g.
    /// `-- --memory-calls 100000` or `-- --only roundtrip,startup`.
    Bench {
        /// Passed on to `target/release/ward-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Every example plugin: the Rust ones (plugins/*/Cargo.toml), then the
/// Python and JavaScript ones (plugins/*/app.py, plugins/*/package.json),
/// then the C ones (plugins/*/*.c).
pub(crate) fn example_plugins() -> Result<()> {
    guests::plugins()?;
    let root = util::root();
    polyglot::build_all(
        &root,
        &root.join("plugins"),
        &root.join("target").join("plugins"),
    )?;
    cplugin::build_all(
        &root,
        &root.join("plugins"),
        &root.join("target").join("plugins"),
    )
    .map(drop)
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Plugins => example_plugins(),
        Task::TestPlugins => guests::test_plugins(),
        Task::Conformance => conformance::run(),
        Task::Fuzz { seconds, targets } => fuzz::run(seconds, &targets),
        Task::Test { args } => test::run(&args),
        Task::Bench { args } => bench::run(&args),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

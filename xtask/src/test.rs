//! `cargo xtask test`: the README's test command.

use anyhow::Result;

use crate::{conformance, fuzz, guests, pyclient, tsclient, util};

/// How long CI runs each fuzz target (`WARD_FUZZ_SECONDS` overrides it;
/// `cargo xtask fuzz` runs longer).
const CI_FUZZ_SECONDS: u64 = 20;

/// Builds every plugin the tests load, installs what tests use from outside
/// (the OCI registry; promtool; Node and the TypeScript MCP SDK for
/// `ts_client`; the Python MCP SDK for `py_client`), runs the host
/// workspace's tests, each fuzz target for a bounded time
/// (`WARD_SKIP_FUZZ=1` skips them), then the MCP conformance suite
/// (`WARD_SKIP_CONFORMANCE=1` skips it).
pub fn run(args: &[String]) -> Result<()> {
    crate::example_plugins()?;
    guests::test_plugins()?;
    crate::registry::ensure()?;
    crate::promtool::ensure();
    tsclient::ensure()?;
    pyclient::ensure()?;
    util::run(
        util::cargo()
            .current_dir(util::root())
            .args(["test", "--workspace"])
            .args(args),
    )?;
    if skipped("WARD_SKIP_FUZZ") {
        util::step("skipping the fuzz targets (WARD_SKIP_FUZZ=1)");
    } else {
        let seconds = std::env::var("WARD_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CI_FUZZ_SECONDS);
        fuzz::run(seconds, &[])?;
    }
    if skipped("WARD_SKIP_CONFORMANCE") {
        util::step("skipping the conformance suite (WARD_SKIP_CONFORMANCE=1)");
        return Ok(());
    }
    conformance::run()
}

fn skipped(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1")
}

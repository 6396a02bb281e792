//! `cargo xtask test`: the README's test command.

use anyhow::Result;

use crate::{conformance, guests, util};

/// Builds every plugin the tests load, runs the host workspace's tests, then
/// the MCP conformance suite (`WARD_SKIP_CONFORMANCE=1` skips it).
pub fn run(args: &[String]) -> Result<()> {
    crate::example_plugins()?;
    guests::test_plugins()?;
    crate::registry::ensure()?;
    util::run(
        util::cargo()
            .current_dir(util::root())
            .args(["test", "--workspace"])
            .args(args),
    )?;
    if std::env::var_os("WARD_SKIP_CONFORMANCE").is_some_and(|v| v == "1") {
        util::step("skipping the conformance suite (WARD_SKIP_CONFORMANCE=1)");
        return Ok(());
    }
    conformance::run()
}

//! `cargo xtask test`: the README's test command.

use anyhow::Result;

use crate::{guests, util};

/// Builds every plugin the tests load, then runs the host workspace's tests.
pub fn run(args: &[String]) -> Result<()> {
    guests::plugins()?;
    guests::test_plugins()?;
    util::run(util::cargo().current_dir(util::root()).args(["test", "--workspace"]).args(args))
}

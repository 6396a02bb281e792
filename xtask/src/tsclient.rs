//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, npm), which
//! the integration test `ts_client` (tests/integration/ts_client.rs) drives
//! ward with, through `tests/ts-client/client.mjs` on the pinned Node 22 of
//! `cargo xtask conformance`. Installed project-locally into
//! `<repo>/.tools/ts-client/` (gitignored), only when the pinned version is
//! missing; `cargo xtask test` does it before `cargo test`.

use anyhow::Result;

use crate::{conformance, util};

/// `@modelcontextprotocol/sdk`, from npm: the newest 1.x.
pub const SDK_VERSION: &str = "1.32.2";

/// Installs Node 22 (with the conformance suite) and the pinned SDK unless
/// they are there already.
pub fn ensure() -> Result<()> {
    let root = util::root();
    conformance::ensure_suite(&root)?;
    let dir = root.join(".tools/ts-client");
    let client = dir.join("node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js");
    conformance::npm_ensure(
        &dir,
        "the TypeScript MCP SDK for the ts_client integration test (cargo xtask test)",
        &[("@modelcontextprotocol/sdk", SDK_VERSION)],
        &[&client],
    )
}

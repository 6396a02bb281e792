//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, npm), which
//! the integration test `ts_client` (tests/integration/ts_client.rs) drives
//! ward with, through `tests/ts-client/client.mjs` on the pinned Node 22 of
//! `cargo xtask conformance`; and the MCP Inspector
//! (`@modelcontextprotocol/inspector`, npm), whose `--cli` mode the same test
//! file runs against ward as the README's quick start does. Installed
//! project-locally into `<repo>/.tools/ts-client/` and
//! `<repo>/.tools/inspector/` (gitignored), each only when its pinned version
//! is missing; `cargo xtask test` does it before `cargo test`.

use anyhow::Result;

use crate::{conformance, util};

/// `@modelcontextprotocol/sdk`, from npm: the newest 1.x.
pub const SDK_VERSION: &str = "1.32.2";

/// `@modelcontextprotocol/inspector`, from npm: the newest stable (2.x, whose
/// launcher takes `--cli`; it needs Node >= 22.19, which the pinned Node 22
/// is). Its own dependencies (the 2.x SDK packages among them) stay in its
/// own directory, apart from the 1.x SDK above.
pub const INSPECTOR_VERSION: &str = "2.12.0";

/// Installs Node 22 (with the conformance suite), the pinned SDK and the
/// pinned Inspector unless they are there already.
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
    )?;
    // The package's `bin` (`mcp-inspector`): the launcher that dispatches
    // `--cli` to clients/cli/build/index.js. Its postinstall is a no-op when
    // installed as a dependency (the published clients ship prebuilt).
    let dir = root.join(".tools/inspector");
    let inspector = dir.join("node_modules/@modelcontextprotocol/inspector/clients");
    conformance::npm_ensure(
        &dir,
        "the MCP Inspector CLI for the ts_client integration test (cargo xtask test)",
        &[("@modelcontextprotocol/inspector", INSPECTOR_VERSION)],
        &[
            &inspector.join("launcher/build/index.js"),
            &inspector.join("cli/build/index.js"),
        ],
    )
}

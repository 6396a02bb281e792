//! ward: an MCP server that serves the tools, resources and prompts of
//! WebAssembly component plugins, each in its own sandbox.
//!
//! The data path, one module per step (README.md, "How ward is built", names
//! every file):
//!
//! ```text
//! stdin line → protocol (`transport` reads it, `jsonrpc` classifies it; rmcp;
//!   the MCP handler, `server`) → registry (exposed name / URI → plugin;
//!   `admission` with `service`: the caller's scopes, the plugin's rate limits;
//!   the input schema; a cached answer) → plugin (`answer` builds the guest
//!   request, `call` runs it in a fresh Store of its current version) in its
//!   sandbox (`sandbox::Sandbox`: files, environment, network, memory, fuel,
//!   clock, budget, output) → guest export → `plugin::answer` (validated,
//!   size-capped MCP values; a failure becomes an `isError` result or an error
//!   that `protocol::answer` makes the JSON-RPC error) → stdout line
//! ```
//!
//! The control path: `watch` (directory events) → `loader` (read, validate,
//! compile or take from `cache`, ask the guest once what it offers) →
//! `registry` (atomic swap) → list_changed to clients.
//!
//! Design decisions:
//! - **A fresh instance per call.** Instantiation from an `InstancePre` costs
//!   microseconds, and it means a trap, a leak or stray state in one call can
//!   never reach another.
//! - **Deny by default.** A plugin without a policy file gets no files, no
//!   environment, no network, and default memory, fuel and time limits. Each
//!   capability is enforced in exactly one module under `sandbox`.
//! - **stdout is the protocol.** Logs and guest output go to stderr.
//! - **The protocol layer never touches wasmtime**; it sees a `Backend`
//!   (`backend.rs`).

// MCP logging (`notifications/message`, `logging/setLevel`) is marked
// deprecated by SEP-2577, but clients of both eras still use it and ward serves it.
#![allow(deprecated)]

// The public surface is what the `ward` binary (main.rs, cli/), the
// integration tests (tests/) and the fuzz targets (fuzz/) use; everything
// else is crate-private.
pub mod adopt;
pub mod audit;
pub(crate) mod backend;
pub mod cache;
pub(crate) mod dirs;
pub(crate) mod files;
pub mod inspect;
pub mod loader;
pub mod manifest;
pub(crate) mod metrics;
pub(crate) mod plugin;
pub mod protocol;
pub mod registry;
pub mod sandbox;
pub mod scaffold;
pub mod server;
pub mod service;
pub mod telemetry;
pub(crate) mod watch;

/// `ward --version`: ward's version and the plugin contract it serves
/// (components built against any `ward:plugin@0.1.x` load).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), ", plugin WIT ward:plugin@0.1.1");

pub use protocol::{ServerOptions, WardServer};

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_names_the_wit_package_ward_serves() {
        let wit = include_str!("../../wit/plugin.wit");
        let package = super::VERSION.rsplit(' ').next().unwrap();
        assert!(
            wit.contains(&format!("\npackage {package};")),
            "wit/plugin.wit is not {package}"
        );
    }
}

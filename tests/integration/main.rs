//! Integration tests: each starts the real `ward serve` binary on a temporary
//! plugin directory built from the example and test plugins, and talks MCP to
//! it over its stdin/stdout. Build the plugins first: `cargo xtask test` does.

// MCP logging is deprecated by SEP-2577 in rmcp's model, but ward serves it.
#![allow(deprecated)]

mod util;

mod adopt;
mod c_plugin;
mod cache;
mod cli;
mod client_requests;
mod fetch;
mod http;
mod jwt;
mod metrics;
mod oci;
mod plugin_dir;
mod polyglot;
mod protocol_lines;
mod py_client;
mod reload;
mod sandbox;
mod surface;
mod tasks;
mod team;
mod team_attacks;
mod telemetry;
mod tools;
mod ts_client;

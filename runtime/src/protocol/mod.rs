//! MCP over stdio and HTTP: the rmcp server handler and the transports. Knows MCP, not wasmtime.
//!
//! - `server`: [`WardServer`], a hand-written rmcp `ServerHandler` with one
//!   method per MCP request, speaking the legacy `initialize` era
//!   (2025-06-18, 2025-11-25) and the stateless 2026-07-28 era
//!   (`server/discover`, per-request `_meta`, cache hints,
//!   `subscriptions/listen`). It holds a `Backend` (`crate::backend`) and
//!   nothing else of ward.
//! - `transport`: newline-delimited JSON-RPC on byte streams, where every
//!   hostile line gets its JSON-RPC error and the server keeps serving;
//!   `serve_stdio_with` for `ward serve`, `WardServer::serve_io` for any
//!   other byte streams.
//!   Beside it, one concern each: `pagination` (cursors, and what the four
//!   `*/list` results share, so one handler serves them), `notify` (which
//!   event reaches which listener as which notification) and `answer` (how
//!   a request to a plugin ends: the one error mapping, audit outcome,
//!   metrics, span).
//! - `client`: what a guest asks a legacy client (sampling, elicitation,
//!   roots), checked against the client's capabilities before it is sent.
//! - `replay`: the same questions to a 2026-07-28 client, as
//!   input-required results: the guest is stopped at its first unanswered
//!   question and replayed with the answers; `requestState` is sealed.
//! - `tasks` (a child of `server`): `tools/call` as a task, the
//!   `io.modelcontextprotocol/tasks` extension of 2026-07-28: rmcp's task
//!   manager runs the call, the guest's questions become the task's input
//!   requests, `tasks/cancel` interrupts the guest.
//! - [`http`]: Streamable HTTP at `/mcp` for `ward serve --http`, both eras,
//!   with Host/Origin checks, an optional bearer token and graceful shutdown.
//!
//! The handler does not know its transport: tests drive it over in-memory
//! pipes with rmcp's own client.

mod answer;
mod client;
pub mod http;
pub mod jsonrpc;
mod notify;
mod pagination;
mod replay;
mod server;
mod transport;

#[cfg(test)]
mod tests;

pub(crate) use answer::to_mcp_error;
pub use http::HttpOptions;
pub(crate) use replay::StateKey;
pub use server::{ServerOptions, WardServer};
pub(crate) use transport::serve_stdio_with;

/// Locks a mutex whose data stays valid even if a holder panicked (a set of
/// URIs, a level, a table of tasks).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

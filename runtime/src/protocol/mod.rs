//! MCP over stdio: the rmcp server handler and the transport. Knows MCP, not wasmtime.

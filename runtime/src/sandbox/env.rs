//! Environment: only the variables the policy lists, with their literal
//! values. The host's environment is never inherited, and the guest gets no
//! arguments and an empty stdin.

use wasmtime_wasi::WasiCtxBuilder;

/// Sets exactly the granted variables.
pub fn apply(builder: &mut WasiCtxBuilder, vars: &[(String, String)]) {
    builder.envs(vars);
}

//! Composes the capabilities into the WASI context of one call. Each
//! capability decides in its own module; this is only where they meet.

use std::sync::Arc;

use anyhow::Result;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::outbound::Network;
use super::output::Captured;
use super::policy::Policy;
use super::{env, outbound};

/// The WASI context for one call of a plugin with this policy: no stdin, no
/// arguments, captured stdout/stderr, and only the granted directories,
/// variables and network destinations.
pub fn wasi_ctx(policy: &Policy, net: &Arc<Network>, output: &Captured) -> Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(output.stream()).stderr(output.stream());
    env::apply(&mut builder, &policy.env);
    outbound::apply_sockets(&mut builder, net);
    let mut ctx = builder.build();
    policy.fs.apply(&mut ctx);
    Ok(ctx)
}

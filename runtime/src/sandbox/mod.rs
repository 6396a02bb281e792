//! The sandbox: a plugin's policy, and one module per capability, each
//! enforced in exactly one place.

pub mod env;
pub mod fs;
pub mod limits;
pub mod lookup;
pub mod net;
pub mod outbound;
pub mod output;
pub mod policy;
pub mod wasi;

pub use net::{classify, AddrClass, AllowEntry, HostPattern, NetPolicy};
pub use policy::{
    format_duration, format_size, FsGrant, FsMode, Limits, Policy, PolicyError, Problem,
};

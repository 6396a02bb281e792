//! The sandbox: a plugin's policy, and one module per capability, each
//! enforced in exactly one place.

pub mod net;
pub mod policy;

pub use net::{AddrClass, AllowEntry, HostPattern, NetPolicy, classify};
pub use policy::{FsGrant, FsMode, Limits, Policy, PolicyError, Problem, format_duration, format_size};

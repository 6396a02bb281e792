//! The sandbox: a plugin's policy, and one module per capability, each
//! enforced in exactly one place.

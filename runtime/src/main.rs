//! The `ward` command line.
fn main() {}

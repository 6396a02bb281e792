// A plain WASI 0.2 command (`wasi:cli/run`), not a ward plugin: ward must
// refuse to load it with a clear message, and keep serving the others.
// Build: `cargo xtask test-plugins` -> target/test-plugins/notward.wasm
fn main() {
    println!("I am not a ward plugin.");
}

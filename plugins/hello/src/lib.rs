// The smallest ward plugin: one tool, `greet`.
//
// Build: `cargo xtask plugins` (-> target/plugins/hello.wasm), or from plugins/:
//        `cargo build --release -p hello` (-> target/guest/wasm32-wasip2/release/hello.wasm).
// Run:   `ward serve --plugins target/plugins`; the tool is exposed as `hello_greet`.
//        A policy `hello.toml` with `[env] GREETING = "Howdy"` changes the greeting.
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

fn greet(args: Greet) -> String {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".into());
    format!("{greeting}, {}!", args.name)
}

// What the plugin requests (ward.toml beside Cargo.toml), for `ward inspect` and `ward add`.
ward_guest::manifest!();

ward_guest::plugin!(|p| {
    p.tool("greet", "Greets someone by name", greet).read_only(true);
});

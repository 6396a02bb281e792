//! {{name}}: a ward plugin. Build it with `./build.sh` (-> dist/{{name}}.wasm).
use ward_guest::prelude::*;

/// The arguments of `greet`: doc comments become the JSON Schema's descriptions.
#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

fn greet(args: Greet) -> String {
    format!("Hello, {}!", args.name)
}

// What the plugin requests (ward.toml beside Cargo.toml), for `ward inspect`.
ward_guest::manifest!();

ward_guest::plugin!(|p| {
    p.tool("greet", "Greets someone by name", greet).read_only(true);
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        assert_eq!(greet(Greet { name: "Ada".into() }), "Hello, Ada!");
    }
}

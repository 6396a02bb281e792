//! Write [ward](https://github.com/) plugins in plain Rust.
//!
//! A ward plugin is a WebAssembly component (`wasm32-wasip2`) that serves MCP
//! tools, resources, resource templates, prompts and completions. This crate
//! hides the component plumbing (`wit-bindgen`, the `ward:plugin` WIT
//! package): you write ordinary functions and register them in one macro.
//!
//! ```no_run
//! // Cargo.toml:
//! //   [lib] crate-type = ["cdylib"]
//! //   [dependencies]
//! //   ward-guest = { path = ".../sdk-guest" }
//! //   serde = { version = "1", features = ["derive"] }
//! //   schemars = "1"
//! // Build: cargo build --release --target wasm32-wasip2
//! // Serve: cp target/wasm32-wasip2/release/greeter.wasm plugins/ && ward serve --plugins plugins
//! use ward_guest::prelude::*;
//!
//! /// The arguments of `greet`: the doc comments become the JSON Schema's descriptions.
//! #[derive(Deserialize, JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! fn greet(args: Greet) -> Result<String> {
//!     if args.name.is_empty() {
//!         fail!("name must not be empty"); // an `isError` result
//!     }
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! /// Structured output: the schema of `Sum` becomes the tool's output schema.
//! #[derive(Deserialize, JsonSchema)]
//! struct Numbers { numbers: Vec<f64> }
//! #[derive(Serialize, JsonSchema)]
//! struct Sum { sum: f64 }
//!
//! fn sum(args: Numbers) -> Structured<Sum> {
//!     let sum = args.numbers.iter().sum();
//!     Structured::new(Sum { sum }).text(format!("The sum is {sum}."))
//! }
//!
//! /// Prompt arguments: `String` fields are required, `Option<String>` optional.
//! #[derive(Deserialize, JsonSchema)]
//! struct Review {
//!     /// The code to review.
//!     code: String,
//!     /// What to focus on.
//!     focus: Option<String>,
//! }
//!
//! ward_guest::plugin!(|p| {
//!     p.tool("greet", "Greets someone by name", greet).read_only(true);
//!     p.tool("sum", "Adds numbers", sum);
//!     p.tool("now", "Says hello without arguments", || "hello");
//!     p.resource("notes://readme", "readme", || "Read me first.")
//!         .description("The plugin's notes")
//!         .mime_type("text/plain");
//!     p.resource_template("notes://{id}", "note", |v: &Vars| format!("note {}", &v["id"]))
//!         .description("One note by id")
//!         .suggest("id", &["1", "2", "42"]);
//!     p.prompt("review", "Asks for a code review", |a: Review| {
//!         format!("Review this code, focusing on {}:\n{}", a.focus.as_deref().unwrap_or("anything"), a.code)
//!     })
//!     .complete("focus", |typed, _ctx| {
//!         ["security", "style", "speed"].into_iter().filter(|v| v.starts_with(typed)).map(String::from).collect::<Vec<_>>()
//!     });
//! });
//! ```
//!
//! # How it works
//!
//! [`plugin!`] exports all four interfaces of the `ward:plugin/plugin` world
//! (`tools`, `resources`, `prompts`, `completions`) and implements them over
//! what your function registers: a plugin that registers only tools simply
//! lists no resources or prompts. ward runs every request in a fresh
//! instance, so the registration function runs once per request; it is cheap
//! (names and function pointers; schemas are computed only when ward lists
//! the plugin's items, once at load). Do not keep state between calls.
//!
//! * **Tools** ([`Plugin::tool`]) take nothing or one argument struct that
//!   implements `serde::Deserialize` + `schemars::JsonSchema` (its schema is
//!   the tool's `input-schema`; ward validates calls against it), and return
//!   anything [`IntoToolResult`]: `String`, `&str`, [`Content`],
//!   `Vec<Content>`, [`ToolResult`], [`Structured<T>`] (sets the
//!   `output-schema` and `structured` content), or a [`Result`] of these.
//!   An `Err` becomes a failed call (MCP `isError` with the error's text);
//!   a name that was not registered becomes `not-found`. A string argument
//!   that HTTP clients should also send as a header (`Mcp-Param-Region`,
//!   SEP-2243, for gateways that route on it) carries
//!   `#[schemars(extend("x-mcp-header" = "Region"))]`; ward then refuses a
//!   2026-07-28 HTTP call whose header does not match the argument. A tool
//!   that may run long declares [`ToolBuilder::task`]: a 2026-07-28 client
//!   that supports tasks then polls it instead of waiting on one request.
//! * **Resources** ([`Plugin::resource`]) have a fixed URI; **resource
//!   templates** ([`Plugin::resource_template`]) an RFC 6570 template whose
//!   `{var}` (one segment) and `{+var}` (may span `/`) the SDK matches, handing
//!   you the [`Vars`]. Both return anything [`IntoContents`]: text, bytes or
//!   [`ResourceContents`].
//! * **Prompts** ([`Plugin::prompt`]) take nothing or an argument struct whose
//!   fields are `String` (required) or `Option<String>` (optional); doc
//!   comments describe the arguments. They return anything
//!   [`IntoPromptResult`]: text, a [`Content`], `Vec<PromptMessage>` or a
//!   [`PromptResult`].
//! * **Completions** hang off prompts and templates:
//!   [`PromptBuilder::complete`] / [`TemplateBuilder::complete`] take a
//!   closure, `suggest` a fixed list filtered by prefix.
//! * **Host helpers**: [`log`], [`progress`], [`cancelled`],
//!   [`resource_updated`], [`lists_changed`].
//!
//! Your crate needs `serde` (with `derive`) and `schemars` 1.x as
//! dependencies for the derives; everything else comes from this crate.
//! Standard Rust I/O works as WASI allows: `std::fs` sees the directories
//! the plugin's policy grants, `std::env::var` the variables it sets.
#![deny(missing_docs)]

extern crate self as ward_guest;

/// The generated bindings for the `ward:plugin` WIT package. You should not
/// need them: the types worth using are re-exported at the crate root.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ward:plugin/plugin",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "ward_guest::bindings",
        runtime_path: "ward_guest::__private::wit_bindgen::rt",
    });
}

pub mod client;
mod content;
mod error;
mod exports;
mod host;
mod plugin;
mod template;
#[cfg(test)]
mod tests;

pub use bindings::exports::ward::plugin::prompts::{PromptMessage, PromptResult, Role};
pub use bindings::exports::ward::plugin::tools::ToolResult;
pub use bindings::ward::plugin::types::{Content, Media, ResourceBody, ResourceContents, ResourceLink};
pub use content::{IntoContents, IntoPromptResult, IntoToolResult, Structured};
pub use error::{Error, ErrorKind, Result};
pub use host::{cancelled, lists_changed, log, progress, resource_updated, Level};
pub use plugin::{
    Args, Plugin, PromptBuilder, PromptHandler, ResourceBuilder, TaskSupport, TemplateBuilder, ToolBuilder,
    ToolHandler,
};
pub use template::Vars;

/// `serde_json`, re-exported for building JSON values.
pub use serde_json as json;

/// Everything a plugin usually needs: `use ward_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        cancelled, fail, lists_changed, log, progress, resource_updated, Args, Content, Error, Level, Plugin, PromptMessage,
        PromptResult, ResourceContents, ResourceLink, Result, Structured, TaskSupport, ToolResult, Vars,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// Declares the plugin: exports the `ward:plugin` interfaces, served by
/// what the given function registers.
///
/// The argument is a closure or a function taking `&mut Plugin`:
///
/// ```ignore
/// ward_guest::plugin!(|p| { p.tool("greet", "Greets someone by name", greet); });
/// // or
/// fn register(p: &mut ward_guest::Plugin) { /* ... */ }
/// ward_guest::plugin!(register);
/// ```
///
/// Use it once, in the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! plugin {
    ($register:expr $(,)?) => {
        #[doc(hidden)]
        fn __ward_guest_register(plugin: &mut $crate::Plugin) {
            $crate::__private::register(plugin, $register)
        }

        #[doc(hidden)]
        struct __WardGuest;

        impl $crate::__private::tools::Guest for __WardGuest {
            fn list_tools() -> $crate::__private::Vec<$crate::__private::tools::Tool> {
                $crate::__private::list_tools(__ward_guest_register)
            }
            fn call_tool(
                name: $crate::__private::String,
                arguments: $crate::__private::String,
            ) -> $crate::__private::WitResult<$crate::ToolResult> {
                $crate::__private::call_tool(__ward_guest_register, name, arguments)
            }
        }

        impl $crate::__private::resources::Guest for __WardGuest {
            fn list_resources() -> $crate::__private::Vec<$crate::__private::resources::Resource> {
                $crate::__private::list_resources(__ward_guest_register)
            }
            fn list_resource_templates() -> $crate::__private::Vec<$crate::__private::resources::ResourceTemplate> {
                $crate::__private::list_resource_templates(__ward_guest_register)
            }
            fn read_resource(
                uri: $crate::__private::String,
            ) -> $crate::__private::WitResult<$crate::__private::Vec<$crate::ResourceContents>> {
                $crate::__private::read_resource(__ward_guest_register, uri)
            }
        }

        impl $crate::__private::prompts::Guest for __WardGuest {
            fn list_prompts() -> $crate::__private::Vec<$crate::__private::prompts::Prompt> {
                $crate::__private::list_prompts(__ward_guest_register)
            }
            fn get_prompt(
                name: $crate::__private::String,
                arguments: $crate::__private::Vec<($crate::__private::String, $crate::__private::String)>,
            ) -> $crate::__private::WitResult<$crate::PromptResult> {
                $crate::__private::get_prompt(__ward_guest_register, name, arguments)
            }
        }

        impl $crate::__private::completions::Guest for __WardGuest {
            fn complete(
                target: $crate::__private::completions::Reference,
                argument: $crate::__private::String,
                value: $crate::__private::String,
                context: $crate::__private::Vec<($crate::__private::String, $crate::__private::String)>,
            ) -> $crate::__private::WitResult<$crate::__private::completions::Completion> {
                $crate::__private::complete(__ward_guest_register, target, argument, value, context)
            }
        }

        $crate::bindings::export!(__WardGuest with_types_in $crate::bindings);
        $crate::__identity!();
    };
}

/// Embeds the plugin's manifest (what it requests: directories, environment
/// variables, hosts, limits, each with a reason) from a TOML file beside
/// `Cargo.toml`, `ward.toml` by default, into the component's `ward:manifest`
/// custom section. `ward inspect` shows it beside what the operator granted,
/// and `ward add --grant-requested` grants exactly it. The format is in
/// ward's `docs/manifest.md`:
///
/// ```ignore
/// ward_guest::manifest!();               // ./ward.toml
/// ward_guest::manifest!("plugin.toml");  // another file beside Cargo.toml
/// ```
///
/// Use it once, in the crate root. A plugin without a manifest requests
/// nothing. The file is checked by ward when it reads the component, not here.
#[macro_export]
macro_rules! manifest {
    () => {
        $crate::manifest!("ward.toml");
    };
    ($path:literal) => {
        $crate::__section!(
            "ward:manifest",
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path))
        );
    };
}

/// Writes the crate's Cargo metadata (version, description, authors,
/// licence, repository, homepage) into the custom sections that
/// `wasm-metadata` reads. [`plugin!`] calls it. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __identity {
    () => {
        $crate::__section!("version", env!("CARGO_PKG_VERSION").as_bytes());
        $crate::__section!("description", env!("CARGO_PKG_DESCRIPTION").as_bytes());
        $crate::__section!("authors", env!("CARGO_PKG_AUTHORS").as_bytes());
        $crate::__section!("licenses", env!("CARGO_PKG_LICENSE").as_bytes());
        $crate::__section!("source", env!("CARGO_PKG_REPOSITORY").as_bytes());
        $crate::__section!("homepage", env!("CARGO_PKG_HOMEPAGE").as_bytes());
    };
}

/// A custom section holding `$bytes` (a constant `&[u8]`) in the component's
/// core module, where `wasm-component-ld` keeps it. Only on wasm targets, so
/// host builds (`cargo test`) are unaffected. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __section {
    ($name:literal, $bytes:expr) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            const BYTES: &[u8] = $bytes;
            #[used]
            #[link_section = $name]
            static SECTION: [u8; BYTES.len()] = $crate::__private::to_array(BYTES);
        };
    };
}

/// Support for the code [`plugin!`] generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::ward::plugin::{completions, prompts, resources, tools};
    pub use crate::exports::*;
    pub use std::string::String;
    pub use std::vec::Vec;
    pub use wit_bindgen;

    /// The result type of the exported functions.
    pub type WitResult<T> = core::result::Result<T, crate::bindings::ward::plugin::types::Error>;

    /// Copies a constant byte string into an array, for a `#[link_section]` static.
    pub const fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        out
    }

    /// Calls the registration closure (lets `|p| { .. }` infer its argument type).
    pub fn register<F: FnOnce(&mut crate::Plugin)>(plugin: &mut crate::Plugin, f: F) {
        f(plugin)
    }
}

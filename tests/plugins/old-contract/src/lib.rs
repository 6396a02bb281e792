// A plugin built against ward:plugin@0.1.0 exactly as it was published
// (wit/plugin.wit here is a frozen copy; never edit it), with raw
// wit-bindgen and no SDK, the way an author outside this repository built
// one. ward must load it and serve it unchanged after every additive change
// of the WIT: `greet` exercises the 0.1.0 `tools` export, `ask_name` the
// 0.1.0 `client.elicit` import (replayed on MCP 2026-07-28).
// Build: `cargo xtask test-plugins` -> target/test-plugins/old-contract.wasm

wit_bindgen::generate!({
    path: "wit",
    world: "ward:plugin/tools-plugin@0.1.0",
});

use exports::ward::plugin::tools::{Guest, Tool, ToolResult};
use ward::plugin::client;
use ward::plugin::types::{Content, Error};

struct OldContract;

fn text(s: String) -> ToolResult {
    ToolResult {
        content: vec![Content::Text(s)],
        structured: None,
        is_error: false,
    }
}

/// The string value of `"key":"..."` in flat JSON: this plugin has no JSON
/// library, like many a minimal guest.
fn field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[start..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

impl Guest for OldContract {
    fn list_tools() -> Vec<Tool> {
        let no_args = r#"{"type":"object","properties":{"name":{"type":"string"}}}"#;
        vec![
            Tool {
                name: "greet".into(),
                title: None,
                description: "Greets by name (ward:plugin@0.1.0)".into(),
                input_schema: no_args.into(),
                output_schema: None,
                annotations: None,
            },
            Tool {
                name: "ask_name".into(),
                title: None,
                description: "Asks the user's name with client.elicit (ward:plugin@0.1.0)".into(),
                input_schema: r#"{"type":"object"}"#.into(),
                output_schema: None,
                annotations: None,
            },
        ]
    }

    fn call_tool(name: String, arguments: String) -> Result<ToolResult, Error> {
        match name.as_str() {
            "greet" => {
                let who = field(&arguments, "name").unwrap_or_else(|| "world".into());
                Ok(text(format!("Hello from 0.1.0, {who}!")))
            }
            "ask_name" => {
                let params = r#"{"message":"What is your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}"#;
                let answer = client::elicit(params)?;
                let who = field(&answer, "name").unwrap_or_else(|| "nobody".into());
                Ok(text(format!("0.1.0 plugin met {who}")))
            }
            other => Err(Error::NotFound(other.into())),
        }
    }
}

export!(OldContract);

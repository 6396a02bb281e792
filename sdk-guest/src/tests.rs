//! The exported interfaces, driven natively over a test registry.

use crate::bindings::exports::ward::plugin::completions::Reference;
use crate::bindings::ward::plugin::types::{Error as W, ResourceBody};
use crate::exports::*;
use crate::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

#[derive(Serialize, JsonSchema)]
struct Out {
    len: usize,
}

#[derive(Deserialize, JsonSchema)]
struct PromptArgs {
    /// The first.
    first: String,
    /// The second.
    second: Option<String>,
}

fn register(p: &mut Plugin) {
    p.tool("greet", "Greets", |a: Greet| format!("Hello, {}!", a.name)).title("Greeter").read_only(true);
    p.tool("fails", "Fails", || -> Result<String> { Err(std::io::Error::other("disk on fire").into()) });
    p.tool("len", "Length", |a: Greet| Structured::new(Out { len: a.name.len() }));
    p.resource("x://fixed", "fixed", || "fixed text").mime_type("text/plain").description("Fixed");
    p.resource_template("x://item/{id}", "item", |v: &Vars| format!("item {}", &v["id"]))
        .mime_type("text/plain")
        .suggest("id", &["1", "10", "2"]);
    p.prompt("two", "Two args", |a: PromptArgs| format!("{} {}", a.first, a.second.unwrap_or_default()))
        .complete("first", |v, _| vec![format!("{v}!")]);
}

#[test]
fn tools() {
    let tools = list_tools(register);
    assert_eq!(tools.len(), 3);
    let schema: serde_json::Value = serde_json::from_str(&tools[0].input_schema).unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["name"]["description"], "Who to greet.");
    assert_eq!(tools[0].title.as_deref(), Some("Greeter"));
    assert_eq!(tools[0].annotations.as_ref().unwrap().read_only, Some(true));
    assert!(tools[0].output_schema.is_none());
    let fails_schema: serde_json::Value = serde_json::from_str(&tools[1].input_schema).unwrap();
    assert_eq!(fails_schema["type"], "object");
    assert!(tools[2].output_schema.as_deref().unwrap().contains("\"len\""));

    let r = call_tool(register, "greet".into(), r#"{"name":"Ada"}"#.into()).unwrap();
    assert!(matches!(&r.content[..], [Content::Text(t)] if t == "Hello, Ada!"));
    assert!(!r.is_error);
    assert!(matches!(call_tool(register, "fails".into(), "{}".into()), Err(W::Failed(m)) if m == "disk on fire"));
    assert!(matches!(call_tool(register, "nope".into(), "{}".into()), Err(W::NotFound(_))));
    assert!(matches!(call_tool(register, "greet".into(), "{}".into()), Err(W::InvalidParams(_))));
    let r = call_tool(register, "len".into(), r#"{"name":"Ada"}"#.into()).unwrap();
    assert_eq!(r.structured.as_deref(), Some(r#"{"len":3}"#));
}

#[test]
fn resources() {
    assert_eq!(list_resources(register)[0].description.as_deref(), Some("Fixed"));
    assert_eq!(list_resource_templates(register)[0].uri_template, "x://item/{id}");
    let c = read_resource(register, "x://fixed".into()).unwrap();
    assert_eq!(c[0].uri, "x://fixed");
    assert_eq!(c[0].mime_type.as_deref(), Some("text/plain"));
    let c = read_resource(register, "x://item/7".into()).unwrap();
    assert!(matches!(&c[0].body, ResourceBody::Text(t) if t == "item 7"));
    assert_eq!(c[0].uri, "x://item/7");
    assert!(matches!(read_resource(register, "x://other".into()), Err(W::NotFound(_))));
}

#[test]
fn prompts_and_completions() {
    let prompts = list_prompts(register);
    let args: Vec<_> = prompts[0].arguments.iter().map(|a| (a.name.as_str(), a.required)).collect();
    assert_eq!(args, [("first", true), ("second", false)]);
    assert_eq!(prompts[0].arguments[0].description.as_deref(), Some("The first."));
    let r = get_prompt(register, "two".into(), vec![("first".into(), "a".into())]).unwrap();
    assert!(matches!(&r.messages[0].content, Content::Text(t) if t == "a "));

    let c = complete(register, Reference::ResourceTemplate("x://item/{id}".into()), "id".into(), "1".into(), vec![])
        .unwrap();
    assert_eq!(c.values, ["1", "10"]);
    let c = complete(register, Reference::Prompt("two".into()), "first".into(), "x".into(), vec![]).unwrap();
    assert_eq!(c.values, ["x!"]);
    let c = complete(register, Reference::Prompt("two".into()), "second".into(), "x".into(), vec![]).unwrap();
    assert!(c.values.is_empty());
    assert!(complete(register, Reference::Prompt("nope".into()), "a".into(), "".into(), vec![]).is_err());
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Numbers {
    small: u8,
    count: u32,
    big: u64,
    index: usize,
    maybe: Option<u32>,
    many: Vec<u64>,
    positive: std::num::NonZeroU32,
    signed: i32,
    ratio: f64,
    nested: Inner,
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Inner {
    depth: u16,
}

#[derive(Serialize, JsonSchema)]
struct Total {
    total: u64,
}

fn register_numbers(p: &mut Plugin) {
    p.tool("sum", "Sums", |_: Numbers| Structured::new(Total { total: 0 }));
}

/// schemars' `uint32`/`uint`/`double`... formats are not JSON Schema's, and
/// the TypeScript SDK's AJV warns about each: numbers carry type and bounds only.
#[test]
fn numbers_have_standard_schemas() {
    let tools = list_tools(register_numbers);
    let input: serde_json::Value = serde_json::from_str(&tools[0].input_schema).unwrap();
    let p = &input["properties"];
    let unsigned = serde_json::json!({"type": "integer", "minimum": 0});
    assert_eq!(p["count"], unsigned);
    assert_eq!(p["big"], unsigned);
    assert_eq!(p["index"], unsigned);
    assert_eq!(p["small"], serde_json::json!({"type": "integer", "minimum": 0, "maximum": 255}));
    assert_eq!(p["maybe"], serde_json::json!({"type": ["integer", "null"], "minimum": 0}));
    assert_eq!(p["many"]["items"], unsigned);
    assert_eq!(p["positive"], serde_json::json!({"type": "integer", "minimum": 1}));
    assert_eq!(p["signed"], serde_json::json!({"type": "integer"}));
    assert_eq!(p["ratio"], serde_json::json!({"type": "number"}));
    assert_eq!(input["$defs"]["Inner"]["properties"]["depth"], serde_json::json!({"type": "integer", "minimum": 0, "maximum": 65535}));
    let output: serde_json::Value = serde_json::from_str(tools[0].output_schema.as_deref().unwrap()).unwrap();
    assert_eq!(output["properties"]["total"], unsigned);
    for schema in [&tools[0].input_schema, tools[0].output_schema.as_ref().unwrap()] {
        assert!(!schema.contains("\"format\""), "{schema}");
    }
}

#[test]
fn a_task_tool_declares_it_in_its_input_schema() {
    fn register(p: &mut Plugin) {
        p.tool("long", "Long", |a: Greet| a.name).task(TaskSupport::Required);
        p.tool("short", "Short", || "now");
    }
    let tools = list_tools(register);
    let long: serde_json::Value = serde_json::from_str(&tools[0].input_schema).unwrap();
    assert_eq!(long["x-ward-task"], "required");
    assert_eq!(long["properties"]["name"]["description"], "Who to greet.");
    let short: serde_json::Value = serde_json::from_str(&tools[1].input_schema).unwrap();
    assert!(short.get("x-ward-task").is_none());

    // A question asked before the task says so in `ask`'s JSON.
    let input = crate::client::Input::elicit("ok", serde_json::json!({})).before_task();
    assert!(format!("{input:?}").contains("before_task: true"));
}

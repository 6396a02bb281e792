//! The registry a plugin fills in, and the builders that refine its items.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::bindings::exports::ward::plugin::prompts::PromptResult;
use crate::bindings::exports::ward::plugin::tools::{Annotations, ToolResult};
use crate::bindings::ward::plugin::types::ResourceContents;
use crate::content::{schema_of, schema_settings, IntoContents, IntoPromptResult, IntoToolResult};
use crate::error::{Error, Result};
use crate::template::Vars;

type ToolFn = Box<dyn Fn(&str) -> Result<ToolResult>>;
type ReadFn = Box<dyn Fn(&str, Option<&str>) -> Result<Vec<ResourceContents>>>;
type TemplateFn = Box<dyn Fn(&Vars, Option<&str>) -> Result<Vec<ResourceContents>>>;
type PromptFn = Box<dyn Fn(&[(String, String)]) -> Result<PromptResult>>;
type CompleteFn = Box<dyn Fn(&str, &Args) -> Vec<String>>;

pub(crate) struct ToolDef {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: fn() -> String,
    pub output_schema: fn() -> Option<String>,
    pub annotations: Option<Annotations>,
    /// `x-ward-task` in the listed input schema.
    pub task: Option<TaskSupport>,
    pub call: ToolFn,
}

pub(crate) struct ResourceDef {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub read: ReadFn,
}

pub(crate) struct TemplateDef {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub read: TemplateFn,
    pub completers: Vec<(String, CompleteFn)>,
}

pub(crate) struct PromptDef {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// (name, description, required), computed lazily from the argument type.
    pub arguments: fn() -> Vec<(String, Option<String>, bool)>,
    pub get: PromptFn,
    pub completers: Vec<(String, CompleteFn)>,
}

/// The registry of a plugin's tools, resources, resource templates, prompts
/// and completions. The [`plugin!`](crate::plugin) macro hands one to your
/// registration function.
///
/// ward runs every request in a fresh instance, so registration runs once per
/// request: keep it cheap (it only stores names and function pointers; JSON
/// Schemas are computed only when ward lists the plugin's items).
#[derive(Default)]
pub struct Plugin {
    listing: bool,
    pub(crate) tools: Vec<ToolDef>,
    pub(crate) resources: Vec<ResourceDef>,
    pub(crate) templates: Vec<TemplateDef>,
    pub(crate) prompts: Vec<PromptDef>,
}

impl Plugin {
    pub(crate) fn build(listing: bool, register: fn(&mut Plugin)) -> Plugin {
        let mut p = Plugin { listing, ..Plugin::default() };
        register(&mut p);
        p
    }

    /// True while ward is asking what the plugin offers (at load time), false
    /// while it serves a call, a read, a prompt or a completion.
    pub fn is_listing(&self) -> bool {
        self.listing
    }

    /// Registers a tool.
    ///
    /// `handler` is a function or closure taking either nothing or one
    /// argument struct that implements `serde::Deserialize` and
    /// `schemars::JsonSchema` (its schema, doc comments included, becomes the
    /// tool's `input-schema`). It returns anything that implements
    /// [`IntoToolResult`]: `String`, `&str`, [`Content`](crate::Content),
    /// `Vec<Content>`, [`ToolResult`], [`Structured<T>`](crate::Structured) (which
    /// also sets the `output-schema`), or a `Result` of one of them.
    pub fn tool<M, H: ToolHandler<M>>(
        &mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> ToolBuilder<'_> {
        self.tools.push(ToolDef {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: H::input_schema,
            output_schema: H::output_schema,
            annotations: None,
            task: None,
            call: Box::new(move |args| handler.call(args)),
        });
        ToolBuilder(self.tools.last_mut().expect("just pushed"))
    }

    /// Registers a resource with a fixed URI. `read` returns its contents:
    /// text, bytes or anything else that implements [`IntoContents`].
    pub fn resource<R: IntoContents, F: Fn() -> R + 'static>(
        &mut self,
        uri: impl Into<String>,
        name: impl Into<String>,
        read: F,
    ) -> ResourceBuilder<'_> {
        self.resources.push(ResourceDef {
            uri: uri.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            size: None,
            read: Box::new(move |uri, mime| read().into_contents(uri, mime)),
        });
        ResourceBuilder(self.resources.last_mut().expect("just pushed"))
    }

    /// Registers a family of resources described by an RFC 6570 URI
    /// template, such as `notes://{folder}/{name}` (`{var}` matches one
    /// segment, `{+var}` may span `/`). The SDK matches the URI and hands
    /// `read` the [`Vars`].
    pub fn resource_template<R: IntoContents, F: Fn(&Vars) -> R + 'static>(
        &mut self,
        uri_template: impl Into<String>,
        name: impl Into<String>,
        read: F,
    ) -> TemplateBuilder<'_> {
        self.templates.push(TemplateDef {
            uri_template: uri_template.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            read: Box::new(move |vars, mime| read(vars).into_contents(vars.uri(), mime)),
            completers: Vec::new(),
        });
        TemplateBuilder(self.templates.last_mut().expect("just pushed"))
    }

    /// Registers a prompt.
    ///
    /// `handler` takes either nothing or one argument struct that implements
    /// `serde::Deserialize` and `schemars::JsonSchema` and whose fields are
    /// `String` (a required argument) or `Option<String>` (an optional one);
    /// each field's doc comment becomes the argument's description. It returns
    /// anything that implements [`IntoPromptResult`].
    pub fn prompt<M, H: PromptHandler<M>>(
        &mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> PromptBuilder<'_> {
        self.prompts.push(PromptDef {
            name: name.into(),
            title: None,
            description: Some(description.into()),
            arguments: H::arguments,
            get: Box::new(move |args| handler.get(args)),
            completers: Vec::new(),
        });
        PromptBuilder(self.prompts.last_mut().expect("just pushed"))
    }
}

/// Refines a tool just registered with [`Plugin::tool`].
pub struct ToolBuilder<'a>(&'a mut ToolDef);

impl ToolBuilder<'_> {
    /// A human-readable title.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.0.title = Some(title.into());
        self
    }
    fn hint(self, set: impl FnOnce(&mut Annotations)) -> Self {
        let a = self.0.annotations.get_or_insert(Annotations {
            read_only: None,
            destructive: None,
            idempotent: None,
            open_world: None,
        });
        set(a);
        self
    }
    /// Replaces the input schema derived from the argument type with a
    /// hand-written JSON Schema (JSON text), for keywords a derived schema
    /// cannot express (`allOf`, `if`/`then`/`else`, `$anchor`). ward checks
    /// arguments against it before the call, so the argument type only has
    /// to hold what the schema admits:
    /// `.input_schema(|| r#"{"type": "object", ...}"#.into())`.
    pub fn input_schema(self, schema: fn() -> String) -> Self {
        self.0.input_schema = schema;
        self
    }
    /// Lets the tool run as a task (MCP 2026-07-28's tasks extension): ward
    /// answers a client that declares the extension with a task it polls,
    /// when the call lasts longer than a moment, so a long call does not
    /// hold a request open. In the task, the tool's questions
    /// ([`client`](crate::client)) wait for the client's answers; a question
    /// marked [`Input::before_task`](crate::client::Input::before_task) is
    /// asked before the task starts. Nothing changes in the tool's code:
    /// it runs as a task or as an ordinary call, whichever the client gets.
    pub fn task(self, support: TaskSupport) -> Self {
        self.0.task = Some(support);
        self
    }
    /// Hint: the tool does not change its environment.
    pub fn read_only(self, yes: bool) -> Self {
        self.hint(|a| a.read_only = Some(yes))
    }
    /// Hint: the tool may destroy or overwrite data.
    pub fn destructive(self, yes: bool) -> Self {
        self.hint(|a| a.destructive = Some(yes))
    }
    /// Hint: calling it twice with the same arguments has no further effect.
    pub fn idempotent(self, yes: bool) -> Self {
        self.hint(|a| a.idempotent = Some(yes))
    }
    /// Hint: the tool talks to the world outside the plugin.
    pub fn open_world(self, yes: bool) -> Self {
        self.hint(|a| a.open_world = Some(yes))
    }
}

/// Whether a tool may run as a task ([`ToolBuilder::task`]). ward reads it
/// from the keyword `"x-ward-task"` at the top of the tool's input schema,
/// which the SDK writes (a plugin written without the SDK may write it
/// itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// A task for clients that declare the extension, an ordinary call for
    /// the others.
    Optional,
    /// Only as a task: a 2026-07-28 client that does not declare the
    /// extension is refused (a legacy client still gets an ordinary call).
    Required,
}

impl TaskSupport {
    fn keyword(self) -> &'static str {
        match self {
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}

/// The input schema `schema` declaring `task`, if any.
pub(crate) fn with_task(schema: String, task: Option<TaskSupport>) -> String {
    let Some(task) = task else { return schema };
    match serde_json::from_str::<serde_json::Value>(&schema) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.insert("x-ward-task".into(), task.keyword().into());
            serde_json::Value::Object(object).to_string()
        }
        // ward refuses a schema that is not an object, with a message.
        _ => schema,
    }
}

/// Refines a resource just registered with [`Plugin::resource`].
pub struct ResourceBuilder<'a>(&'a mut ResourceDef);

impl ResourceBuilder<'_> {
    /// A human-readable title.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.0.title = Some(title.into());
        self
    }
    /// What the resource is.
    pub fn description(self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }
    /// Its MIME type (also used for contents returned as bare text or bytes).
    pub fn mime_type(self, mime_type: impl Into<String>) -> Self {
        self.0.mime_type = Some(mime_type.into());
        self
    }
    /// Its size in bytes, if known.
    pub fn size(self, size: u64) -> Self {
        self.0.size = Some(size);
        self
    }
}

/// Refines a resource template just registered with
/// [`Plugin::resource_template`].
pub struct TemplateBuilder<'a>(&'a mut TemplateDef);

impl TemplateBuilder<'_> {
    /// A human-readable title.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.0.title = Some(title.into());
        self
    }
    /// What the resources are.
    pub fn description(self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }
    /// Their MIME type (also used for contents returned as bare text or bytes).
    pub fn mime_type(self, mime_type: impl Into<String>) -> Self {
        self.0.mime_type = Some(mime_type.into());
        self
    }
    /// Completes variable `var`: `complete(value, context)` returns
    /// suggestions, best first, for the partial `value`; `context` holds the
    /// variables the user already filled in.
    pub fn complete<C: IntoIterator<Item = String>>(
        self,
        var: impl Into<String>,
        complete: impl Fn(&str, &Args) -> C + 'static,
    ) -> Self {
        self.0.completers.push((var.into(), Box::new(move |v, c| complete(v, c).into_iter().collect())));
        self
    }
    /// Completes variable `var` from a fixed list: the values that start with
    /// what the user typed.
    pub fn suggest(self, var: impl Into<String>, values: &'static [&'static str]) -> Self {
        self.complete(var, move |v, _| prefixed(values, v))
    }
}

/// Refines a prompt just registered with [`Plugin::prompt`].
pub struct PromptBuilder<'a>(&'a mut PromptDef);

impl PromptBuilder<'_> {
    /// A human-readable title.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.0.title = Some(title.into());
        self
    }
    /// Completes argument `arg`: `complete(value, context)` returns
    /// suggestions, best first, for the partial `value`; `context` holds the
    /// arguments the user already filled in.
    pub fn complete<C: IntoIterator<Item = String>>(
        self,
        arg: impl Into<String>,
        complete: impl Fn(&str, &Args) -> C + 'static,
    ) -> Self {
        self.0.completers.push((arg.into(), Box::new(move |v, c| complete(v, c).into_iter().collect())));
        self
    }
    /// Completes argument `arg` from a fixed list: the values that start with
    /// what the user typed.
    pub fn suggest(self, arg: impl Into<String>, values: &'static [&'static str]) -> Self {
        self.complete(arg, move |v, _| prefixed(values, v))
    }
}

fn prefixed(values: &[&str], prefix: &str) -> Vec<String> {
    values.iter().filter(|v| v.starts_with(prefix)).map(|v| v.to_string()).collect()
}

/// Name/value pairs: the arguments already filled in, given to a completion.
#[derive(Debug, Clone, Default)]
pub struct Args(pub(crate) Vec<(String, String)>);

impl Args {
    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    /// All pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn parse_args<A: DeserializeOwned>(json: &str) -> Result<A> {
    serde_json::from_str(json).map_err(|e| Error::invalid_params(format!("invalid arguments: {e}")))
}

const EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// A function that can serve as a tool: `Fn() -> R` or `Fn(A) -> R` where
/// `A: Deserialize + JsonSchema` and `R: IntoToolResult`. The type parameter
/// `M` only tells the two shapes apart; you never name it.
pub trait ToolHandler<M>: 'static {
    /// The JSON Schema of the arguments.
    fn input_schema() -> String;
    /// The JSON Schema of the structured output, if any.
    fn output_schema() -> Option<String>;
    /// Runs the tool on JSON arguments.
    fn call(&self, arguments: &str) -> Result<ToolResult>;
}

impl<F, R> ToolHandler<fn() -> R> for F
where
    F: Fn() -> R + 'static,
    R: IntoToolResult,
{
    fn input_schema() -> String {
        EMPTY_OBJECT_SCHEMA.to_owned()
    }
    fn output_schema() -> Option<String> {
        R::output_schema()
    }
    fn call(&self, _: &str) -> Result<ToolResult> {
        self().into_tool_result()
    }
}

impl<F, A, R> ToolHandler<fn(A) -> R> for F
where
    F: Fn(A) -> R + 'static,
    A: DeserializeOwned + JsonSchema,
    R: IntoToolResult,
{
    fn input_schema() -> String {
        schema_of::<A>()
    }
    fn output_schema() -> Option<String> {
        R::output_schema()
    }
    fn call(&self, arguments: &str) -> Result<ToolResult> {
        self(parse_args(arguments)?).into_tool_result()
    }
}

/// A function that can serve as a prompt: `Fn() -> R` or `Fn(A) -> R`
/// where `A: Deserialize + JsonSchema` (fields `String` or `Option<String>`)
/// and `R: IntoPromptResult`.
pub trait PromptHandler<M>: 'static {
    /// The prompt's arguments: (name, description, required).
    fn arguments() -> Vec<(String, Option<String>, bool)>;
    /// Renders the prompt.
    fn get(&self, arguments: &[(String, String)]) -> Result<PromptResult>;
}

impl<F, R> PromptHandler<fn() -> R> for F
where
    F: Fn() -> R + 'static,
    R: IntoPromptResult,
{
    fn arguments() -> Vec<(String, Option<String>, bool)> {
        Vec::new()
    }
    fn get(&self, _: &[(String, String)]) -> Result<PromptResult> {
        self().into_prompt_result()
    }
}

impl<F, A, R> PromptHandler<fn(A) -> R> for F
where
    F: Fn(A) -> R + 'static,
    A: DeserializeOwned + JsonSchema,
    R: IntoPromptResult,
{
    fn arguments() -> Vec<(String, Option<String>, bool)> {
        let schema = schema_settings().into_generator().into_root_schema_for::<A>();
        let value = schema.as_value();
        let required: Vec<&str> = value
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let Some(properties) = value.get("properties").and_then(|p| p.as_object()) else {
            return Vec::new();
        };
        properties
            .iter()
            .map(|(name, prop)| {
                let description = prop.get("description").and_then(|d| d.as_str()).map(str::to_owned);
                (name.clone(), description, required.contains(&name.as_str()))
            })
            .collect()
    }
    fn get(&self, arguments: &[(String, String)]) -> Result<PromptResult> {
        let object: serde_json::Map<String, serde_json::Value> =
            arguments.iter().map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone()))).collect();
        let args = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| Error::invalid_params(format!("invalid arguments: {e}")))?;
        self(args).into_prompt_result()
    }
}

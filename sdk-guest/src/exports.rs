//! The four exported interfaces, implemented over a [`Plugin`] registry.
//! Called from the code the `plugin!` macro generates.
#![allow(missing_docs)]

use crate::bindings::exports::ward::plugin::completions::{Completion, Reference};
use crate::bindings::exports::ward::plugin::prompts::{Prompt, PromptArgument, PromptResult};
use crate::bindings::exports::ward::plugin::resources::{Resource, ResourceTemplate};
use crate::bindings::exports::ward::plugin::tools::{Tool, ToolResult};
use crate::bindings::ward::plugin::types::{Error as WitError, ResourceContents};
use crate::error::Error;
use crate::plugin::{Args, Plugin};
use crate::template::match_uri;

type Register = fn(&mut Plugin);
type WitResult<T> = Result<T, WitError>;

/// Values sent for one completion at most (MCP's limit).
const MAX_COMPLETIONS: usize = 100;

pub fn list_tools(register: Register) -> Vec<Tool> {
    Plugin::build(true, register)
        .tools
        .into_iter()
        .map(|t| Tool {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema: crate::plugin::with_task((t.input_schema)(), t.task),
            output_schema: (t.output_schema)(),
            annotations: t.annotations,
        })
        .collect()
}

pub fn call_tool(register: Register, name: String, arguments: String) -> WitResult<ToolResult> {
    let p = Plugin::build(false, register);
    let tool = p
        .tools
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::not_found(format!("no tool named `{name}`")))?;
    Ok((tool.call)(&arguments)?)
}

pub fn list_resources(register: Register) -> Vec<Resource> {
    Plugin::build(true, register)
        .resources
        .into_iter()
        .map(|r| Resource {
            uri: r.uri,
            name: r.name,
            title: r.title,
            description: r.description,
            mime_type: r.mime_type,
            size: r.size,
        })
        .collect()
}

pub fn list_resource_templates(register: Register) -> Vec<ResourceTemplate> {
    Plugin::build(true, register)
        .templates
        .into_iter()
        .map(|t| ResourceTemplate {
            uri_template: t.uri_template,
            name: t.name,
            title: t.title,
            description: t.description,
            mime_type: t.mime_type,
        })
        .collect()
}

pub fn read_resource(register: Register, uri: String) -> WitResult<Vec<ResourceContents>> {
    let p = Plugin::build(false, register);
    if let Some(r) = p.resources.iter().find(|r| r.uri == uri) {
        return Ok((r.read)(&r.uri, r.mime_type.as_deref())?);
    }
    for t in &p.templates {
        if let Some(vars) = match_uri(&t.uri_template, &uri) {
            return Ok((t.read)(&vars, t.mime_type.as_deref())?);
        }
    }
    Err(Error::not_found(format!("no resource `{uri}`")).into())
}

pub fn list_prompts(register: Register) -> Vec<Prompt> {
    Plugin::build(true, register)
        .prompts
        .into_iter()
        .map(|p| Prompt {
            name: p.name,
            title: p.title,
            description: p.description,
            arguments: (p.arguments)()
                .into_iter()
                .map(|(name, description, required)| PromptArgument { name, title: None, description, required })
                .collect(),
        })
        .collect()
}

pub fn get_prompt(register: Register, name: String, arguments: Vec<(String, String)>) -> WitResult<PromptResult> {
    let p = Plugin::build(false, register);
    let prompt = p
        .prompts
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::not_found(format!("no prompt named `{name}`")))?;
    Ok((prompt.get)(&arguments)?)
}

pub fn complete(
    register: Register,
    target: Reference,
    argument: String,
    value: String,
    context: Vec<(String, String)>,
) -> WitResult<Completion> {
    let p = Plugin::build(false, register);
    let completers = match &target {
        Reference::Prompt(name) => {
            &p.prompts
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| Error::not_found(format!("no prompt named `{name}`")))?
                .completers
        }
        Reference::ResourceTemplate(template) => {
            &p.templates
                .iter()
                .find(|t| &t.uri_template == template)
                .ok_or_else(|| Error::not_found(format!("no resource template `{template}`")))?
                .completers
        }
    };
    let mut values = match completers.iter().find(|(a, _)| *a == argument) {
        Some((_, complete)) => complete(&value, &Args(context)),
        None => Vec::new(),
    };
    let total = values.len();
    values.truncate(MAX_COMPLETIONS);
    Ok(Completion { has_more: total > values.len(), total: u32::try_from(total).ok(), values })
}

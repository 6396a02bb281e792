//! WIT values → MCP values. The one place guest data becomes protocol data.
//! Every field is carried over; `answer.rs` measures the MCP value against
//! `limits.max-output` (`sandbox::output::output_size`), so nothing here
//! needs to know the cap.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rmcp::model::{
    ContentBlock, Prompt, PromptArgument, PromptMessage, Resource, ResourceContents,
    ResourceTemplate, Role,
};

use super::bindings::{prompts, resources, tools, types};
use super::error::GuestError;
use super::manifest::{Hints, ListedTool};

/// A guest's own error.
pub fn guest_error(e: types::Error) -> GuestError {
    match e {
        types::Error::NotFound(m) => GuestError::NotFound(m),
        types::Error::InvalidParams(m) => GuestError::InvalidParams(m),
        types::Error::Failed(m) => GuestError::Failed(m),
    }
}

/// One content block.
pub fn content(c: types::Content) -> ContentBlock {
    match c {
        types::Content::Text(t) => ContentBlock::text(t),
        types::Content::Image(m) => ContentBlock::image(BASE64.encode(&m.data), m.mime_type),
        types::Content::Audio(m) => ContentBlock::audio(BASE64.encode(&m.data), m.mime_type),
        types::Content::ResourceLink(l) => ContentBlock::resource_link(link(l)),
        types::Content::Resource(r) => ContentBlock::resource(resource_contents(r)),
    }
}

fn link(l: types::ResourceLink) -> Resource {
    let mut r = Resource::new(l.uri, l.name);
    r.title = l.title;
    r.description = l.description;
    r.mime_type = l.mime_type;
    r.size = l.size;
    r
}

/// The contents of a resource.
pub fn resource_contents(r: types::ResourceContents) -> ResourceContents {
    let contents = match r.body {
        types::ResourceBody::Text(t) => ResourceContents::text(t, r.uri),
        types::ResourceBody::Blob(b) => ResourceContents::blob(BASE64.encode(&b), r.uri),
    };
    match r.mime_type {
        Some(m) => contents.with_mime_type(m),
        None => contents,
    }
}

/// A listed resource.
pub fn resource(r: resources::Resource) -> Resource {
    let mut out = Resource::new(r.uri, r.name);
    out.title = r.title;
    out.description = r.description;
    out.mime_type = r.mime_type;
    out.size = r.size;
    out
}

/// A listed resource template.
pub fn resource_template(t: resources::ResourceTemplate) -> ResourceTemplate {
    let mut out = ResourceTemplate::new(t.uri_template, t.name);
    out.title = t.title;
    out.description = t.description;
    out.mime_type = t.mime_type;
    out
}

/// A listed tool.
pub fn tool(t: tools::Tool) -> ListedTool {
    ListedTool {
        name: t.name,
        title: t.title,
        description: t.description,
        input_schema: t.input_schema,
        output_schema: t.output_schema,
        annotations: t.annotations.map(|a| Hints {
            read_only: a.read_only,
            destructive: a.destructive,
            idempotent: a.idempotent,
            open_world: a.open_world,
        }),
    }
}

/// A listed prompt, under its own name.
pub fn prompt(p: prompts::Prompt) -> Prompt {
    let arguments = p
        .arguments
        .into_iter()
        .map(|a| {
            let mut arg = PromptArgument::new(a.name).with_required(a.required);
            arg.title = a.title;
            arg.description = a.description;
            arg
        })
        .collect::<Vec<_>>();
    let mut out = Prompt::new(
        p.name,
        p.description,
        (!arguments.is_empty()).then_some(arguments),
    );
    out.title = p.title;
    out
}

/// One prompt message.
pub fn prompt_message(m: prompts::PromptMessage) -> PromptMessage {
    let role = match m.role {
        prompts::Role::User => Role::User,
        prompts::Role::Assistant => Role::Assistant,
    };
    PromptMessage::new(role, content(m.content))
}

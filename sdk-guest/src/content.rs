//! Content, tool results and the conversions from what handlers return.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde_json::Value;

use crate::bindings::exports::ward::plugin::prompts::{PromptMessage, PromptResult, Role};
use crate::bindings::exports::ward::plugin::tools::ToolResult;
use crate::bindings::ward::plugin::types::{
    Content, Media, ResourceBody, ResourceContents, ResourceLink,
};
use crate::error::{Error, Result};

impl Content {
    /// Text content.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text(text.into())
    }
    /// An image: raw bytes (ward base64-encodes them) and a MIME type such as `image/png`.
    pub fn image(data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        Content::Image(Media { data: data.into(), mime_type: mime_type.into() })
    }
    /// A sound: raw bytes and a MIME type such as `audio/wav`.
    pub fn audio(data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        Content::Audio(Media { data: data.into(), mime_type: mime_type.into() })
    }
    /// A link to a resource the client may read later.
    pub fn link(link: ResourceLink) -> Self {
        Content::ResourceLink(link)
    }
    /// An embedded resource.
    pub fn embedded(contents: ResourceContents) -> Self {
        Content::Resource(contents)
    }
}

impl ResourceLink {
    /// A link with just a URI and a name; set the other fields as needed.
    pub fn new(uri: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceLink {
            uri: uri.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            size: None,
        }
    }
}

impl ResourceContents {
    /// Text contents of the resource at `uri`.
    pub fn text(uri: impl Into<String>, mime_type: Option<&str>, text: impl Into<String>) -> Self {
        ResourceContents {
            uri: uri.into(),
            mime_type: mime_type.map(str::to_owned),
            body: ResourceBody::Text(text.into()),
        }
    }
    /// Binary contents of the resource at `uri` (ward base64-encodes them).
    pub fn blob(uri: impl Into<String>, mime_type: Option<&str>, data: impl Into<Vec<u8>>) -> Self {
        ResourceContents {
            uri: uri.into(),
            mime_type: mime_type.map(str::to_owned),
            body: ResourceBody::Blob(data.into()),
        }
    }
}

impl ToolResult {
    /// A successful result with these contents.
    pub fn new(content: Vec<Content>) -> Self {
        ToolResult { content, structured: None, is_error: false }
    }
    /// A successful result with one text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(vec![Content::text(text)])
    }
    /// A failed result (MCP `isError`) whose text says why. Returning
    /// `Err(Error::failed(..))` from a tool has the same effect.
    pub fn error(text: impl Into<String>) -> Self {
        ToolResult { content: vec![Content::text(text)], structured: None, is_error: true }
    }
    /// Adds a content item.
    pub fn with(mut self, content: Content) -> Self {
        self.content.push(content);
        self
    }
}

impl PromptMessage {
    /// A message spoken by the user.
    pub fn user(content: impl Into<Content>) -> Self {
        PromptMessage { role: Role::User, content: content.into() }
    }
    /// A message spoken by the assistant.
    pub fn assistant(content: impl Into<Content>) -> Self {
        PromptMessage { role: Role::Assistant, content: content.into() }
    }
}

impl PromptResult {
    /// A rendered prompt made of these messages.
    pub fn new(messages: Vec<PromptMessage>) -> Self {
        PromptResult { description: None, messages }
    }
    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}
impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_owned())
    }
}
impl From<ResourceContents> for Content {
    fn from(r: ResourceContents) -> Self {
        Content::Resource(r)
    }
}
impl From<ResourceLink> for Content {
    fn from(l: ResourceLink) -> Self {
        Content::ResourceLink(l)
    }
}

/// A tool's typed, structured output (MCP `structuredContent`).
///
/// Returning `Structured<T>` (or `Result<Structured<T>>`) from a tool makes
/// the SDK publish `T`'s JSON Schema as the tool's `output-schema`, send the
/// value as `structured`, and, unless you add content yourself with
/// [`Structured::text`] or [`Structured::with`], a text item holding the
/// value's JSON (as MCP recommends for older clients).
pub struct Structured<T> {
    value: T,
    content: Vec<Content>,
}

impl<T: Serialize + JsonSchema> Structured<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self { value, content: Vec::new() }
    }
    /// Adds a text rendering for the model (replaces the default JSON text).
    pub fn text(self, text: impl Into<String>) -> Self {
        self.with(Content::text(text))
    }
    /// Adds a content item (replaces the default JSON text).
    pub fn with(mut self, content: Content) -> Self {
        self.content.push(content);
        self
    }
}

/// JSON Schema (draft 2020-12) of `T`, as text.
pub(crate) fn schema_of<T: JsonSchema>() -> String {
    let schema = schema_settings().into_generator().into_root_schema_for::<T>();
    serde_json::to_string(&schema).expect("a JSON Schema serializes")
}

/// How ward-guest generates every schema: draft 2020-12, with only the
/// formats JSON Schema defines on numbers ([`standard_number_format`]).
pub(crate) fn schema_settings() -> SchemaSettings {
    SchemaSettings::draft2020_12().with_transform(RecursiveTransform(standard_number_format))
}

/// The formats JSON Schema (draft 2020-12, section 7.3) defines.
const STANDARD_FORMATS: &[&str] = &[
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
    "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
    "json-pointer", "relative-json-pointer", "regex",
];

/// schemars marks Rust's numbers with OpenAPI-style formats (`uint32`, `uint`,
/// `int64`, `double`, ...) that JSON Schema does not define, and clients'
/// validators warn about each (AJV in the TypeScript MCP SDK: `unknown format
/// "uint32" ignored in schema`). Drops them from numeric schemas: the type and
/// bounds already say what they meant, and an unsigned number keeps (or gets)
/// `minimum: 0`.
fn standard_number_format(schema: &mut Schema) {
    let is_number = |t: &Value| matches!(t.as_str(), Some("integer" | "number"));
    let numeric = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().any(is_number),
        Some(t) => is_number(t),
        None => false,
    };
    let Some(format) = schema.get("format").and_then(Value::as_str) else {
        return;
    };
    if !numeric || STANDARD_FORMATS.contains(&format) {
        return;
    }
    let unsigned = format.starts_with("uint");
    schema.remove("format");
    if unsigned && schema.get("minimum").is_none() && schema.get("exclusiveMinimum").is_none() {
        schema.insert("minimum".into(), 0.into());
    }
}

/// What a tool handler may return: text, content, a [`ToolResult`], a
/// [`Structured`] value, or a `Result` of any of them whose error converts
/// into [`Error`] (an `Err` becomes a failed call, which ward reports as an
/// `isError` result).
pub trait IntoToolResult {
    /// The output schema this return type implies, if any.
    fn output_schema() -> Option<String> {
        None
    }
    /// Converts into the result sent to ward.
    fn into_tool_result(self) -> Result<ToolResult>;
}

impl IntoToolResult for ToolResult {
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(self)
    }
}
impl IntoToolResult for String {
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(ToolResult::text(self))
    }
}
impl IntoToolResult for &str {
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(ToolResult::text(self))
    }
}
impl IntoToolResult for Content {
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(ToolResult::new(vec![self]))
    }
}
impl IntoToolResult for Vec<Content> {
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(ToolResult::new(self))
    }
}
impl<T: Serialize + JsonSchema> IntoToolResult for Structured<T> {
    fn output_schema() -> Option<String> {
        Some(schema_of::<T>())
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        let json = serde_json::to_string(&self.value)
            .map_err(|e| Error::failed(format!("cannot serialize the tool's output: {e}")))?;
        let content = if self.content.is_empty() { vec![Content::Text(json.clone())] } else { self.content };
        Ok(ToolResult { content, structured: Some(json), is_error: false })
    }
}
impl<T: IntoToolResult, E: Into<Error>> IntoToolResult for std::result::Result<T, E> {
    fn output_schema() -> Option<String> {
        T::output_schema()
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        self.map_err(Into::into)?.into_tool_result()
    }
}

/// What a resource handler may return: text (`String`, `&str`), bytes
/// (`Vec<u8>`, `&'static [u8]`), a [`ResourceBody`], full
/// [`ResourceContents`] (one or several), or a `Result` of any of them. Text
/// and bytes are sent as the contents of the URI that was read, with the
/// MIME type given at registration.
pub trait IntoContents {
    /// Converts into the contents sent to ward.
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>>;
}

impl IntoContents for ResourceBody {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        Ok(vec![ResourceContents { uri: uri.to_owned(), mime_type: mime_type.map(str::to_owned), body: self }])
    }
}
impl IntoContents for String {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        ResourceBody::Text(self).into_contents(uri, mime_type)
    }
}
impl IntoContents for &str {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        ResourceBody::Text(self.to_owned()).into_contents(uri, mime_type)
    }
}
impl IntoContents for Vec<u8> {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        ResourceBody::Blob(self).into_contents(uri, mime_type)
    }
}
impl IntoContents for &'static [u8] {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        ResourceBody::Blob(self.to_vec()).into_contents(uri, mime_type)
    }
}
impl<const N: usize> IntoContents for &'static [u8; N] {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        ResourceBody::Blob(self.to_vec()).into_contents(uri, mime_type)
    }
}
impl IntoContents for ResourceContents {
    fn into_contents(self, _: &str, _: Option<&str>) -> Result<Vec<ResourceContents>> {
        Ok(vec![self])
    }
}
impl IntoContents for Vec<ResourceContents> {
    fn into_contents(self, _: &str, _: Option<&str>) -> Result<Vec<ResourceContents>> {
        Ok(self)
    }
}
impl<T: IntoContents, E: Into<Error>> IntoContents for std::result::Result<T, E> {
    fn into_contents(self, uri: &str, mime_type: Option<&str>) -> Result<Vec<ResourceContents>> {
        self.map_err(Into::into)?.into_contents(uri, mime_type)
    }
}

/// What a prompt handler may return: text or a [`Content`] (one user
/// message), a list of [`PromptMessage`]s, a full [`PromptResult`], or a
/// `Result` of any of them.
pub trait IntoPromptResult {
    /// Converts into the rendered prompt sent to ward.
    fn into_prompt_result(self) -> Result<PromptResult>;
}

impl IntoPromptResult for PromptResult {
    fn into_prompt_result(self) -> Result<PromptResult> {
        Ok(self)
    }
}
impl IntoPromptResult for Vec<PromptMessage> {
    fn into_prompt_result(self) -> Result<PromptResult> {
        Ok(PromptResult::new(self))
    }
}
impl IntoPromptResult for Content {
    fn into_prompt_result(self) -> Result<PromptResult> {
        Ok(PromptResult::new(vec![PromptMessage::user(self)]))
    }
}
impl IntoPromptResult for String {
    fn into_prompt_result(self) -> Result<PromptResult> {
        Content::Text(self).into_prompt_result()
    }
}
impl IntoPromptResult for &str {
    fn into_prompt_result(self) -> Result<PromptResult> {
        Content::text(self).into_prompt_result()
    }
}
impl<T: IntoPromptResult, E: Into<Error>> IntoPromptResult for std::result::Result<T, E> {
    fn into_prompt_result(self) -> Result<PromptResult> {
        self.map_err(Into::into)?.into_prompt_result()
    }
}

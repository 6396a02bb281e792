// Bytes outside the text of a tool result, against `limits.max-output`:
// listed only when HOSTILE_OVERSIZE is set (by a policy).
//
// Each item returns `bytes` bytes in the field named `field`.
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Oversize {
    /// Which field to fill: error, invalid, link-title, link-description,
    /// link-mime, embedded-mime, image-mime.
    field: String,
    /// How many bytes to put in it.
    bytes: usize,
}

fn tool(a: Oversize) -> Result<ToolResult> {
    let big = "x".repeat(a.bytes);
    let mut link = ResourceLink::new("hostile://link", "link");
    let content = match a.field.as_str() {
        "error" => return Err(Error::failed(big)),
        "invalid" => return Err(Error::invalid_params(big)),
        "link-title" => Content::link({ link.title = Some(big); link }),
        "link-description" => Content::link({ link.description = Some(big); link }),
        "link-mime" => Content::link({ link.mime_type = Some(big); link }),
        "embedded-mime" => Content::embedded(ResourceContents::text("hostile://e", Some(&big), "e")),
        "image-mime" => Content::image(vec![0u8; 4], big),
        other => return Err(Error::invalid_params(format!("unknown field {other}"))),
    };
    Ok(ToolResult::new(vec![content]))
}

#[derive(Deserialize, JsonSchema)]
struct PromptArgs {
    /// error, description or text.
    field: String,
    /// How many bytes.
    bytes: String,
}

fn prompt(a: PromptArgs) -> Result<PromptResult> {
    let big = "x".repeat(a.bytes.parse().unwrap_or(0));
    match a.field.as_str() {
        "error" => Err(Error::failed(big)),
        "description" => Ok(PromptResult::new(vec![PromptMessage::user("hi")]).description(big)),
        _ => Ok(PromptResult::new(vec![PromptMessage::user(big)])),
    }
}

fn read(vars: &Vars) -> Result<ResourceContents> {
    let big = "x".repeat(vars["bytes"].parse().unwrap_or(0));
    match &vars["field"] {
        "error" => Err(Error::failed(big)),
        "mime" => Ok(ResourceContents::text(vars.uri(), Some(&big), "m")),
        _ => Ok(ResourceContents::text(vars.uri(), None, big)),
    }
}

/// Completing `bytes` with a number N answers 100 values of N/100 bytes each.
fn complete(value: &str, _: &Args) -> Vec<String> {
    let n: usize = value.parse().unwrap_or(0);
    (0..100).map(|i| format!("{i:03}{}", "x".repeat(n / 100))).collect()
}

pub fn register(p: &mut Plugin) {
    if std::env::var_os("HOSTILE_OVERSIZE").is_none() {
        return;
    }
    p.tool("oversize", "Returns `bytes` bytes in the field `field`", tool);
    p.prompt("oversize", "Returns `bytes` bytes in the field `field`", prompt)
        .complete("bytes", complete);
    p.resource_template("oversize://hostile/{field}/{bytes}", "oversize", read)
        .description("Returns `bytes` bytes in the field `field`")
        .complete("bytes", complete);
}

//! What a plugin offers, as it listed it once at load: MCP values, except a
//! tool's schemas, which stay text for the registry to check
//! (`registry/schema.rs`). Items carry the plugin's own names; the registry
//! exposes them under its prefix.

use rmcp::model::{Prompt, Resource, ResourceTemplate, ToolAnnotations};

/// What a plugin offers, as it listed it at load (kept in the cache with its
/// artifact, hence serde).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Its tools.
    pub tools: Vec<ListedTool>,
    /// Its fixed resources.
    pub resources: Vec<Resource>,
    /// Its resource templates.
    pub templates: Vec<ResourceTemplate>,
    /// Its prompts, under their own names.
    pub prompts: Vec<Prompt>,
    /// Whether it exports `completions`.
    pub completions: bool,
}

/// A tool as the plugin listed it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListedTool {
    /// Its own name.
    pub name: String,
    /// Its title.
    pub title: Option<String>,
    /// What it does.
    pub description: String,
    /// Its input schema, as JSON text.
    pub input_schema: String,
    /// Its output schema, as JSON text.
    pub output_schema: Option<String>,
    /// What it says of its behaviour.
    pub annotations: Option<Hints>,
}

/// A tool's hints about its behaviour (MCP tool annotations, without the title).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hints {
    /// It changes nothing.
    pub read_only: Option<bool>,
    /// It may destroy something.
    pub destructive: Option<bool>,
    /// Calling it twice does what calling it once does.
    pub idempotent: Option<bool>,
    /// It reaches beyond a closed world (the network, say).
    pub open_world: Option<bool>,
}

impl ListedTool {
    /// Its annotations as MCP lists them: the hints, with the title.
    pub fn mcp_annotations(&self) -> Option<ToolAnnotations> {
        let a = self.annotations?;
        let mut out = match &self.title {
            Some(t) => ToolAnnotations::with_title(t.clone()),
            None => ToolAnnotations::new(),
        };
        out.read_only_hint = a.read_only;
        out.destructive_hint = a.destructive;
        out.idempotent_hint = a.idempotent;
        out.open_world_hint = a.open_world;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_carry_the_hints_and_the_title() {
        let mut tool = ListedTool {
            name: "greet".into(),
            title: Some("Greet".into()),
            description: String::new(),
            input_schema: "{}".into(),
            output_schema: None,
            annotations: None,
        };
        assert!(tool.mcp_annotations().is_none());
        tool.annotations = Some(Hints {
            read_only: Some(true),
            ..Hints::default()
        });
        let a = tool.mcp_annotations().unwrap();
        assert_eq!(a.title.as_deref(), Some("Greet"));
        assert_eq!(a.read_only_hint, Some(true));
        assert_eq!(a.destructive_hint, None);
    }
}

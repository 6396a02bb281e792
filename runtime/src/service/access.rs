//! Who may use which item: a plugin's `[access]` section and the check
//! against a caller's OAuth scopes.
//!
//! ```toml
//! [access]
//! scopes = ["weather:read"]          # needed for every item of the plugin
//! [access.tools]
//! forecast = ["weather:forecast"]    # needed for this tool too
//! [access.resources]
//! "weather://stations" = ["weather:stations"]   # a URI or a URI template
//! [access.prompts]
//! brief = ["weather:brief"]
//! ```
//!
//! Design decisions:
//! - **Scopes add up.** An item needs the plugin's scopes *and* its own; a
//!   caller needs every one of them. There is no way to make an item more
//!   open than its plugin.
//! - **A name that is not the plugin's is an error**, found when the plugin
//!   is loaded and its items are known: a misspelt tool in `[access.tools]`
//!   would otherwise leave that tool guarded by less than the operator meant.
//! - **No caller means the local user.** stdio (unless `--stdio-scopes`
//!   restricts it) and an HTTP listener without authentication serve their
//!   one user, who may use everything; the check applies to a [`Caller`]
//!   that carries scopes.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::audit::Caller;
use crate::sandbox::policy::{found, join_key, Problems};

/// The kinds of item `[access]` names, with their table and what they are
/// called in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// `[access.tools]`, by the plugin's own tool name.
    Tool,
    /// `[access.resources]`, by URI or URI template.
    Resource,
    /// `[access.prompts]`, by the plugin's own prompt name.
    Prompt,
}

impl ItemKind {
    /// The policy key of this kind's table.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tool => "access.tools",
            Self::Resource => "access.resources",
            Self::Prompt => "access.prompts",
        }
    }

    /// What the item is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Resource => "resource",
            Self::Prompt => "prompt",
        }
    }
}

/// A plugin's `[access]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Scopes every item of the plugin needs.
    pub scopes: Vec<String>,
    /// Scopes single items need besides, by kind and the plugin's own name
    /// (or URI / URI template) of the item.
    pub items: BTreeMap<(ItemKind, String), Vec<String>>,
}

impl Access {
    /// Whether the section asks for anything.
    pub fn is_open(&self) -> bool {
        self.scopes.is_empty() && self.items.values().all(Vec::is_empty)
    }

    /// Every scope `item` of kind `kind` needs: the plugin's, then its own.
    pub fn required(&self, kind: ItemKind, item: &str) -> Vec<String> {
        let mut scopes = self.scopes.clone();
        if let Some(own) = self.items.get(&(kind, item.to_string())) {
            for scope in own {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
        scopes
    }

    /// The names in `[access.*]` tables that are not items of the plugin,
    /// as messages naming the key; `has(kind, name)` says whether the plugin
    /// has that item.
    pub fn unknown_items(&self, has: impl Fn(ItemKind, &str) -> bool) -> Vec<String> {
        self.items
            .keys()
            .filter(|(kind, name)| !has(*kind, name))
            .map(|(kind, name)| {
                format!(
                    "{} names no {} of the plugin; correct the name or remove the key",
                    join_key(kind.key(), name),
                    kind.noun()
                )
            })
            .collect()
    }
}

/// The scopes of `required` that `caller` lacks; none for the local user
/// (no caller).
pub fn missing(caller: Option<&Caller>, required: &[String]) -> Vec<String> {
    match caller.and_then(|c| c.scopes.as_ref()) {
        None => Vec::new(),
        Some(held) => required
            .iter()
            .filter(|scope| !held.contains(scope))
            .cloned()
            .collect(),
    }
}

/// Parses `[access]`.
pub(crate) fn parse(p: &mut Problems, table: &Table) -> Access {
    p.check_keys(
        "access",
        table,
        &["scopes", "tools", "resources", "prompts"],
    );
    let mut access = Access::default();
    if let Some(v) = table.get("scopes") {
        access.scopes = scopes(p, "access.scopes", v);
    }
    for kind in [ItemKind::Tool, ItemKind::Resource, ItemKind::Prompt] {
        let key = kind.key();
        let Some(items) = table
            .get(key.trim_start_matches("access."))
            .and_then(|v| p.table(key, v))
        else {
            continue;
        };
        for (name, v) in items {
            let scopes = scopes(p, &join_key(key, name), v);
            access.items.insert((kind, name.clone()), scopes);
        }
    }
    access
}

/// An array of scope names: non-empty strings without spaces (OAuth scopes
/// are space-separated in tokens).
fn scopes(p: &mut Problems, key: &str, v: &Value) -> Vec<String> {
    let expected = "an array of scope names such as [\"weather:read\"]";
    let Some(items) = v.as_array() else {
        p.invalid(key, format!("expected {expected}, found {}", found(v)));
        return Vec::new();
    };
    let mut scopes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') =>
            {
                if !scopes.iter().any(|o| o == s) {
                    scopes.push(s.to_string());
                }
            }
            _ => p.invalid(
                &format!("{key}[{i}]"),
                format!(
                    "expected a scope name (printable ASCII without spaces, quotes or backslashes), found {}",
                    found(item)
                ),
            ),
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(scopes: &[&str]) -> Caller {
        Caller {
            scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
            ..Caller::default()
        }
    }

    #[test]
    fn an_item_needs_its_plugins_scopes_and_its_own() {
        let mut access = Access {
            scopes: vec!["weather:read".into()],
            ..Access::default()
        };
        access.items.insert(
            (ItemKind::Tool, "forecast".into()),
            vec!["weather:forecast".into(), "weather:read".into()],
        );
        assert_eq!(
            access.required(ItemKind::Tool, "forecast"),
            ["weather:read", "weather:forecast"]
        );
        assert_eq!(access.required(ItemKind::Tool, "now"), ["weather:read"]);
        assert_eq!(
            access.required(ItemKind::Prompt, "forecast"),
            ["weather:read"]
        );
        let required = access.required(ItemKind::Tool, "forecast");
        assert_eq!(
            missing(Some(&caller(&["weather:read"])), &required),
            ["weather:forecast"]
        );
        assert!(missing(
            Some(&caller(&["weather:forecast", "weather:read"])),
            &required
        )
        .is_empty());
        assert!(missing(None, &required).is_empty(), "the local user");
        let unrestricted = Caller::default();
        assert!(missing(Some(&unrestricted), &required).is_empty());
        assert_eq!(
            access.unknown_items(|kind, name| kind == ItemKind::Tool && name == "now"),
            ["access.tools.forecast names no tool of the plugin; correct the name or remove the key"]
        );
    }
}

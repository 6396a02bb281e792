//! What ward adds in front of plugins when it serves a team: who may use
//! an item (`access`), how often (`rate`), and answers kept for the next
//! caller who asks the same (`results`).
//!
//! Each is read from the plugin's policy file (`[access]`, the rate keys of
//! `[limits]`, `[cache]`) and checked by the registry before a guest runs:
//! a refused or cached request costs no guest run.

pub(crate) mod access;
pub(crate) mod rate;
pub(crate) mod redis;
pub mod results;

use crate::plugin::Manifest;
use crate::sandbox::policy::Policy;
use access::ItemKind;

/// What in the policy's `[access]` and `[cache]` does not fit the items the
/// plugin lists, one message per key: a misspelt name would leave an item
/// guarded by less than the operator meant, so the plugin is refused.
pub fn mismatches(policy: &Policy, manifest: &Manifest) -> Vec<String> {
    let has = |kind: ItemKind, name: &str| match kind {
        ItemKind::Tool => manifest.tools.iter().any(|t| t.name == name),
        ItemKind::Prompt => manifest.prompts.iter().any(|p| p.name == name),
        ItemKind::Resource => {
            manifest.resources.iter().any(|r| r.uri == name)
                || manifest.templates.iter().any(|t| t.uri_template == name)
        }
    };
    let mut problems = policy.access.unknown_items(has);
    for name in &policy.cache.tools {
        let tool = manifest.tools.iter().find(|t| t.name == *name).map(|t| {
            t.annotations.map_or((false, false), |a| {
                (a.read_only == Some(true), a.idempotent == Some(true))
            })
        });
        problems.extend(results::uncacheable(name, tool));
    }
    problems
}

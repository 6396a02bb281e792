//! `ward check` as a function: load the whole plugin directory as `serve`
//! would, waiting for every plugin, and report what loaded, what failed and
//! what a loaded plugin lists but ward refuses to serve. The command line
//! prints the [`Report`] and turns [`Report::passed`] into the exit code.

use std::fmt;

use anyhow::Result;

use super::Config;
use crate::loader::LoadError;

/// What `ward check` found.
pub struct Report {
    /// The plugins that loaded.
    pub loaded: Vec<String>,
    /// The plugins that did not, one error each.
    pub failures: Vec<LoadError>,
    /// Items a loaded plugin lists but ward does not serve, one message each.
    pub refusals: Vec<String>,
    /// Tools, resources, resource templates and prompts served.
    pub counts: [usize; 4],
}

impl Report {
    /// Whether every plugin loaded and every item it lists is served.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.refusals.is_empty()
    }
}

/// Loads every plugin of `config.plugins` (set `startup_wait` to `None` to
/// wait for them all) and reports.
pub async fn check(config: &Config) -> Result<Report> {
    let started = super::start(config).await?;
    let catalog = crate::backend::Backend::catalog(&*started.registry);
    let snapshot = started.registry.snapshot();
    Ok(Report {
        loaded: started.registry.plugin_names(),
        refusals: snapshot
            .refusals()
            .iter()
            .map(|refusal| refusal.message.clone())
            .collect(),
        failures: started.failures,
        counts: [
            catalog.tools.len(),
            catalog.resources.len(),
            catalog.resource_templates.len(),
            catalog.prompts.len(),
        ],
    })
}

/// One line per plugin (`ok`, `FAILED`), per refused item (`REFUSED`), and
/// the totals.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for name in &self.loaded {
            writeln!(f, "ok      {name}")?;
        }
        for failure in &self.failures {
            writeln!(f, "FAILED  {failure}")?;
        }
        for refusal in &self.refusals {
            writeln!(f, "REFUSED {refusal}")?;
        }
        let [tools, resources, templates, prompts] = self.counts;
        writeln!(
            f,
            "{tools} tools, {resources} resources, {templates} resource templates, {prompts} prompts"
        )
    }
}

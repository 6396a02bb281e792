//! A loaded plugin: its compiled component, ready to instantiate, what it
//! offers, and its sandbox (built once from its policy).
//!
//! Everything above this module sees MCP values: the generated bindings
//! (`bindings.rs`) and the guest's raw requests and answers (`call.rs`)
//! stay in here.
//! - `answer.rs`: one method per MCP request ([`Plugin::call_tool`], ...),
//!   each answer measured against `limits.max-output` in one place;
//! - `call.rs`: one call = one fresh store in the plugin's sandbox;
//! - `convert.rs`: WIT values → MCP values;
//! - `manifest.rs`: what the plugin offers, listed once at load;
//! - `error.rs`: why a plugin gave no answer ([`PluginError`]), and the one
//!   mapping of that to an `isError` result or a JSON-RPC error ([`answer()`]);
//! - `state.rs`: a call's store data and the host functions guests import.

mod answer;
mod bindings;
mod call;
mod convert;
pub mod engine;
mod error;
mod manifest;
mod state;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::sync::broadcast;
use wasmtime::component::{Component, InstancePre};

pub use answer::Completing;
use bindings::{completions, prompts, resources, tools};
pub use call::{Cost, Ran};
use call::{Request, Response};
pub use engine::{PoolConfig, Runtime};
pub use error::{answer, Answer, ErrorKind, GuestError, Item, PluginError, Stage};
pub use manifest::{Hints, ListedTool, Manifest};
pub use state::CallState;

use crate::backend::{CallContext, ServerEvent};
use crate::cache::Digest;
use crate::sandbox::policy::Policy;
use crate::sandbox::{Needs, Sandbox};

/// Which of ward's interfaces a component exports, found once at load.
pub(crate) struct Exports {
    tools: Option<tools::GuestIndices>,
    resources: Option<resources::GuestIndices>,
    prompts: Option<prompts::GuestIndices>,
    completions: Option<completions::GuestIndices>,
}

impl Exports {
    fn find(pre: &InstancePre<CallState>) -> Result<Self> {
        let exports = Self {
            tools: tools::GuestIndices::new(pre).ok(),
            resources: resources::GuestIndices::new(pre).ok(),
            prompts: prompts::GuestIndices::new(pre).ok(),
            completions: completions::GuestIndices::new(pre).ok(),
        };
        if exports.tools.is_none() && exports.resources.is_none() && exports.prompts.is_none() {
            bail!(
                "the component exports none of ward:plugin/tools, resources or prompts (@0.1.x); \
                 build it against the WIT in ward's wit/ directory (world `plugin`)"
            );
        }
        Ok(exports)
    }
}

/// A plugin ready to serve.
pub struct Plugin {
    name: Arc<str>,
    sandbox: Sandbox,
    runtime: Arc<Runtime>,
    pre: InstancePre<CallState>,
    exports: Exports,
    server: broadcast::Sender<ServerEvent>,
    manifest: Manifest,
    digest: Digest,
}

impl Plugin {
    /// Links a compiled component, checks that it is a ward plugin, and asks
    /// it (once, under its own limits) what it offers.
    pub async fn new(
        runtime: Arc<Runtime>,
        name: &str,
        component: &Component,
        policy: Policy,
        digest: Digest,
        server: broadcast::Sender<ServerEvent>,
    ) -> Result<Self> {
        let pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("linking its imports")?;
        let exports = Exports::find(&pre)?;
        // Pool slots per instance; a component that instantiates imported
        // modules cannot say, so it is counted at the pool's per-component cap.
        let needs = component.resources_required().map_or(
            Needs {
                memories: 16,
                tables: 16,
            },
            |r| Needs {
                memories: r.num_memories,
                tables: r.num_tables,
            },
        );
        let sandbox = Sandbox::new(name, policy, runtime.shared(), needs);
        let mut plugin = Self {
            name: name.into(),
            sandbox,
            runtime,
            pre,
            exports,
            server,
            manifest: Manifest::default(),
            digest,
        };
        let ran = plugin.run(Request::Manifest, &CallContext::default()).await;
        match ran.answer.context("listing what it offers")? {
            Response::Manifest(m) => plugin.manifest = m,
            _ => unreachable!("a manifest request answers with a manifest"),
        }
        Ok(plugin)
    }

    /// The same plugin, asked again what it offers: for a plugin that said
    /// its lists changed (`host.lists-changed`).
    pub async fn relisted(&self) -> Result<Self> {
        Self::new(
            self.runtime.clone(),
            &self.name,
            self.pre.component(),
            self.policy().clone(),
            self.digest,
            self.server.clone(),
        )
        .await
    }

    /// The plugin's name (its file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's name, shared (as a [`PluginError`] holds it).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// Its policy.
    pub fn policy(&self) -> &Policy {
        self.sandbox.policy()
    }

    /// The sha256 of its wasm.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Records this plugin as the one serving a request, for the audit log.
    pub fn record(&self, served: &crate::backend::ServedBy) {
        served.plugin(&self.name, self.digest, &self.policy().env);
    }

    /// What it offers.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether `other` is this same plugin: the same wasm under the same
    /// policy (a reload that changes nothing).
    pub fn same_as(&self, other: &Plugin) -> bool {
        self.digest == other.digest && self.policy() == other.policy()
    }
}

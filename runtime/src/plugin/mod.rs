//! A loaded plugin: its compiled component, ready to instantiate, what it
//! offers, and its sandbox (built once from its policy).
//!
//! The code may come later than the rest: a plugin whose listing the loader
//! took from the cache ([`Plugin::listed`]) is served from that listing and
//! loads its code on its first call, so that an idle plugin costs neither
//! start-up time nor memory for code it may never run.
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
pub use error::{answer, ErrorKind, Item, PluginError, Stage};
pub use manifest::{ListedTool, Manifest};
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

/// A plugin's code, linked: what each call instantiates.
struct Code {
    pre: InstancePre<CallState>,
    exports: Exports,
}

impl Code {
    fn link(runtime: &Runtime, component: &Component) -> Result<Self> {
        let pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("linking its imports")?;
        let exports = Exports::find(&pre)?;
        Ok(Self { pre, exports })
    }
}

/// Where a plugin's code comes from on its first call when it was not loaded
/// with the plugin: the loader's read-check-compile-or-cache path, which
/// fails if the file no longer holds the wasm the plugin was listed from.
pub type CodeSource = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Component>> + Send>>
        + Send
        + Sync,
>;

/// Pool slots one instance of `component` takes; a component that
/// instantiates imported modules cannot say, so it is counted at the pool's
/// per-component cap.
pub(crate) fn needs(component: &Component) -> Needs {
    component.resources_required().map_or(
        Needs {
            memories: 16,
            tables: 16,
        },
        |r| Needs {
            memories: r.num_memories,
            tables: r.num_tables,
        },
    )
}

/// A plugin ready to serve.
pub struct Plugin {
    name: Arc<str>,
    sandbox: Sandbox,
    runtime: Arc<Runtime>,
    /// Set at load, or on the first call from `source`.
    code: Arc<tokio::sync::OnceCell<Code>>,
    source: Option<CodeSource>,
    needs: Needs,
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
        let code = Code::link(&runtime, component)?;
        let needs = needs(component);
        let sandbox = Sandbox::new(name, policy, runtime.shared(), needs);
        let mut plugin = Self {
            name: name.into(),
            sandbox,
            runtime,
            code: Arc::new(tokio::sync::OnceCell::new_with(Some(code))),
            source: None,
            needs,
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

    /// A plugin served from what it listed before (`manifest`, taken from
    /// the cache by the loader), whose code is loaded from `source` on its
    /// first call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn listed(
        runtime: Arc<Runtime>,
        name: &str,
        policy: Policy,
        digest: Digest,
        server: broadcast::Sender<ServerEvent>,
        manifest: Manifest,
        needs: Needs,
        source: CodeSource,
    ) -> Self {
        let sandbox = Sandbox::new(name, policy, runtime.shared(), needs);
        Self {
            name: name.into(),
            sandbox,
            runtime,
            code: Arc::default(),
            source: Some(source),
            needs,
            server,
            manifest,
            digest,
        }
    }

    /// Its linked code, loaded now if this is its first call. The load runs
    /// on a task of its own: a caller that stops waiting (its deadline, a
    /// cancel, a client gone) never abandons it half way, and callers
    /// meanwhile wait for that one load rather than start their own. A
    /// failed load is not kept: the next call tries again.
    async fn code(&self) -> Result<&Code> {
        if let Some(code) = self.code.get() {
            return Ok(code);
        }
        let source = self
            .source
            .clone()
            .context("the plugin has no code and nowhere to load it from")?;
        let (cell, runtime) = (self.code.clone(), self.runtime.clone());
        tokio::spawn(async move {
            cell.get_or_try_init(|| async {
                let component = source().await?;
                Code::link(&runtime, &component)
            })
            .await
            .map(|_| ())
        })
        .await
        .context("the task loading its code failed")??;
        self.code.get().context("its code vanished after loading")
    }

    /// The same plugin, asked again what it offers: for a plugin that said
    /// its lists changed (`host.lists-changed`).
    pub async fn relisted(&self) -> Result<Self> {
        let component = self.code().await?.pre.component().clone();
        Self::new(
            self.runtime.clone(),
            &self.name,
            &component,
            self.policy().clone(),
            self.digest,
            self.server.clone(),
        )
        .await
    }

    /// Pool slots one instance takes (kept with a cached listing).
    pub(crate) fn needs(&self) -> Needs {
        self.needs
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

//! One call = one store: a fresh instance in the plugin's sandbox, run to
//! completion, a trap, the deadline or cancellation, then thrown away.
//! Every limit is the sandbox's (`crate::sandbox`); this is only the call.

use std::time::Duration;

use tracing::Instrument as _;
use wasmtime::component::Instance;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{completions, prompts, resources, tools, types};
use super::state::{CallState, RequestState};
use super::Plugin;
use crate::backend::CallContext;
use crate::sandbox::output::Captured;
use crate::sandbox::{Clock, Stop};
use crate::telemetry;

pub use crate::sandbox::Failure;

/// What to ask the guest.
pub(crate) enum Request {
    /// Everything it offers (once, at load).
    Manifest,
    CallTool {
        name: String,
        arguments: String,
    },
    ReadResource {
        uri: String,
    },
    GetPrompt {
        name: String,
        arguments: Vec<(String, String)>,
    },
    Complete {
        target: completions::Reference,
        argument: String,
        value: String,
        context: Vec<(String, String)>,
    },
}

impl Request {
    /// The guest export it calls, for its span's name.
    fn function(&self) -> &'static str {
        match self {
            Request::Manifest => "list",
            Request::CallTool { .. } => "call-tool",
            Request::ReadResource { .. } => "read-resource",
            Request::GetPrompt { .. } => "get-prompt",
            Request::Complete { .. } => "complete",
        }
    }
}

/// What the guest answered.
pub(crate) enum Response {
    Manifest(Manifest),
    Tool(Result<tools::ToolResult, types::Error>),
    Resource(Result<Vec<types::ResourceContents>, types::Error>),
    Prompt(Result<prompts::PromptResult, types::Error>),
    Completion(Result<completions::Completion, types::Error>),
}

/// What a plugin offers, as it listed it at load.
#[derive(Debug, Default, Clone)]
pub struct Manifest {
    /// Its tools.
    pub tools: Vec<tools::Tool>,
    /// Its fixed resources.
    pub resources: Vec<resources::Resource>,
    /// Its resource templates.
    pub templates: Vec<resources::ResourceTemplate>,
    /// Its prompts.
    pub prompts: Vec<prompts::Prompt>,
    /// Whether it exports `completions`.
    pub completions: bool,
}

/// What one call cost, reported to the client and the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Fuel units consumed.
    pub fuel: u64,
    /// Peak memory of all memories and tables, in bytes.
    pub peak_memory: u64,
    /// Wall-clock time, instantiation included.
    pub duration: Duration,
}

/// How a call ended.
pub(crate) struct Ran {
    /// The guest's answer, or why there is none.
    pub response: Result<Response, Failure>,
    /// What the call cost.
    pub cost: Cost,
    /// Whether the guest said its lists changed (`host.lists-changed`).
    pub lists_changed: bool,
}

impl Ran {
    fn failed(failure: Failure) -> Self {
        Self {
            response: Err(failure),
            cost: Cost::default(),
            lists_changed: false,
        }
    }
}

impl Plugin {
    /// Runs `request` in a fresh instance in the plugin's sandbox.
    pub(crate) async fn run(&self, request: Request, cx: &CallContext) -> Ran {
        if let Some(served) = &cx.served {
            self.record(served);
        }
        if cx.pin.is_some_and(|pin| pin != self.digest) {
            return Ran::failed(Failure::Replaced);
        }
        let sandbox = &self.sandbox;
        // Counted in `ward_calls_waiting`, then `ward_calls_running`, until
        // its ticket is returned (or the call is abandoned).
        let waiting = crate::metrics::waiting(&self.name);
        let (clock, ticket) = match sandbox.admit(&cx.cancel).await {
            Ok(admitted) => admitted,
            Err(failure) => {
                tracing::warn!(plugin = %self.name, "call failed: {failure}");
                return Ran::failed(failure);
            }
        };
        drop(waiting);
        let running = crate::metrics::running(&self.name);
        tracing::debug!(plugin = %self.name, "call started");
        let output = Captured::default();
        let mut store = match self.store(cx, &clock, &output) {
            Ok(store) => store,
            Err(e) => return Ran::failed(Failure::Trap(format!("{e:#}"))),
        };
        let function = request.function();
        let mut guest = tracing::Span::none();
        let outcome = clock
            .race(async {
                let instance = self
                    .pre
                    .instantiate_async(&mut store)
                    .instrument(telemetry::instantiate_span(&self.name))
                    .await?;
                guest = telemetry::guest_span(&self.name, function);
                dispatch(&self.exports, &mut store, &instance, request)
                    .instrument(guest.clone())
                    .await
            })
            .await;
        let limits = &store.data().limits;
        let lists_changed = store.data().request.lists_changed;
        let cost = Cost {
            fuel: sandbox.fuel_used(&store),
            peak_memory: limits.peak_memory(),
            duration: clock.elapsed(),
        };
        let result = match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(sandbox.explain(Stop::Error(e), limits, &output)),
            Err(why) => Err(sandbox.explain(Stop::Interrupt(why), limits, &output)),
        };
        telemetry::record_guest(&guest, cost.fuel, cost.peak_memory, result.as_ref().err());
        drop(guest);
        // The store first: its pool slots are free before the ticket lets
        // the next call in.
        drop(store);
        drop(ticket);
        drop(running);
        output.log(&self.name);
        match &result {
            Ok(_) => {
                tracing::debug!(plugin = %self.name, fuel = cost.fuel, peak_memory = cost.peak_memory, duration_us = cost.duration.as_micros() as u64, "call done")
            }
            Err(Failure::Suspended(_)) => {
                tracing::debug!(plugin = %self.name, duration_us = cost.duration.as_micros() as u64, "call stopped to wait for the client")
            }
            Err(e) => {
                tracing::warn!(plugin = %self.name, fuel = cost.fuel, peak_memory = cost.peak_memory, duration_us = cost.duration.as_micros() as u64, "call failed: {e}")
            }
        }
        if let Some(served) = &cx.served {
            served.cost(cost.fuel, cost.peak_memory, cost.duration);
        }
        crate::metrics::call_cost(&self.name, cost.fuel, cost.peak_memory);
        Ran {
            response: result,
            cost,
            lists_changed,
        }
    }

    fn store(
        &self,
        cx: &CallContext,
        clock: &Clock,
        output: &Captured,
    ) -> anyhow::Result<Store<CallState>> {
        let prepared = self.sandbox.prepare(clock, output)?;
        let state = CallState {
            wasi: prepared.wasi,
            http: WasiHttpCtx::new(),
            http_hooks: prepared.http_hooks,
            table: prepared.table,
            limits: prepared.limits,
            request: RequestState::new(self.name.clone(), cx, Some(self.server.clone())),
        };
        let mut store = Store::new(self.runtime.engine(), state);
        self.sandbox.arm(&mut store)?;
        Ok(store)
    }
}

async fn dispatch(
    exports: &super::Exports,
    store: &mut Store<CallState>,
    instance: &Instance,
    request: Request,
) -> wasmtime::Result<Response> {
    let missing =
        |what: &str| wasmtime::format_err!("the plugin does not export ward:plugin/{what}");
    Ok(match request {
        Request::Manifest => {
            let mut m = Manifest::default();
            if let Some(ix) = &exports.tools {
                m.tools = ix
                    .load(&mut *store, instance)?
                    .call_list_tools(&mut *store)
                    .await?;
            }
            if let Some(ix) = &exports.resources {
                let guest = ix.load(&mut *store, instance)?;
                m.resources = guest.call_list_resources(&mut *store).await?;
                m.templates = guest.call_list_resource_templates(&mut *store).await?;
            }
            if let Some(ix) = &exports.prompts {
                m.prompts = ix
                    .load(&mut *store, instance)?
                    .call_list_prompts(&mut *store)
                    .await?;
            }
            m.completions = exports.completions.is_some();
            Response::Manifest(m)
        }
        Request::CallTool { name, arguments } => {
            let ix = exports.tools.as_ref().ok_or_else(|| missing("tools"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Tool(guest.call_call_tool(&mut *store, &name, &arguments).await?)
        }
        Request::ReadResource { uri } => {
            let ix = exports
                .resources
                .as_ref()
                .ok_or_else(|| missing("resources"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Resource(guest.call_read_resource(&mut *store, &uri).await?)
        }
        Request::GetPrompt { name, arguments } => {
            let ix = exports.prompts.as_ref().ok_or_else(|| missing("prompts"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Prompt(
                guest
                    .call_get_prompt(&mut *store, &name, &arguments)
                    .await?,
            )
        }
        Request::Complete {
            target,
            argument,
            value,
            context,
        } => {
            let ix = exports
                .completions
                .as_ref()
                .ok_or_else(|| missing("completions"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Completion(
                guest
                    .call_complete(&mut *store, &target, &argument, &value, &context)
                    .await?,
            )
        }
    })
}

//! One call = one store: a fresh instance in the plugin's sandbox, run to
//! completion, a trap, the deadline or cancellation, then thrown away.
//! Every limit is the sandbox's (`crate::sandbox`); this is only the call.

use std::time::Duration;

use tracing::Instrument as _;
use wasmtime::component::Instance;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{completions, prompts, tools, types};
use super::convert;
use super::error::{PluginError, Stage};
use super::manifest::Manifest;
use super::state::{CallState, RequestState};
use super::Plugin;
use crate::backend::CallContext;
use crate::sandbox::output::Captured;
use crate::sandbox::{Clock, Failure, Stop};
use crate::telemetry;

/// What to ask the guest, borrowing what the caller already holds.
pub(super) enum Request<'a> {
    /// Everything it offers (once, at load).
    Manifest,
    CallTool {
        name: &'a str,
        /// JSON (the bindings take it as a `String`).
        arguments: &'a String,
    },
    ReadResource {
        uri: &'a str,
    },
    GetPrompt {
        name: &'a str,
        arguments: &'a [(String, String)],
    },
    Complete {
        target: completions::Reference,
        argument: &'a str,
        value: &'a str,
        context: &'a [(String, String)],
    },
}

impl Request<'_> {
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

/// What the guest answered, as the bindings hold it.
pub(super) enum Response {
    Manifest(Manifest),
    Tool(Result<tools::ToolResult, types::Error>),
    Resource(Result<Vec<types::ResourceContents>, types::Error>),
    Prompt(Result<prompts::PromptResult, types::Error>),
    Completion(Result<completions::Completion, types::Error>),
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

/// How a call ended: its answer, or why there is none, and what it cost.
pub struct Ran<T> {
    /// The answer, or why there is none.
    pub answer: Result<T, PluginError>,
    /// What the call cost.
    pub cost: Cost,
    /// Whether the guest said its lists changed (`host.lists-changed`).
    pub lists_changed: bool,
}

impl<T> Ran<T> {
    /// A call that failed before the guest ran.
    pub(super) fn failed(plugin: &std::sync::Arc<str>, failure: Failure) -> Self {
        Self::answered(Err(PluginError::stopped(
            plugin,
            Stage::Instantiate,
            failure,
        )))
    }

    /// An answer given without running the guest.
    pub(super) fn answered(answer: Result<T, PluginError>) -> Self {
        Self {
            answer,
            cost: Cost::default(),
            lists_changed: false,
        }
    }

    /// The same call, with its answer turned into another.
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> Result<U, PluginError>) -> Ran<U> {
        Ran {
            answer: self.answer.and_then(f),
            cost: self.cost,
            lists_changed: self.lists_changed,
        }
    }
}

impl Plugin {
    /// Runs `request` in a fresh instance in the plugin's sandbox.
    pub(super) async fn run(&self, request: Request<'_>, cx: &CallContext) -> Ran<Response> {
        if let Some(served) = &cx.served {
            self.record(served);
        }
        if cx.pin.is_some_and(|pin| pin != self.digest) {
            return Ran::failed(&self.name, Failure::Replaced);
        }
        let sandbox = &self.sandbox;
        // Counted in `ward_calls_waiting`, then `ward_calls_running`, until
        // its ticket is returned (or the call is abandoned).
        let waiting = crate::metrics::waiting(&self.name);
        let (clock, ticket) = match sandbox.admit(&cx.cancel).await {
            Ok(admitted) => admitted,
            Err(failure) => {
                tracing::warn!(plugin = %self.name, "call failed: {failure}");
                return Ran::failed(&self.name, failure);
            }
        };
        drop(waiting);
        // The first call of a plugin listed from the cache loads its code,
        // within the call's time and cancellation.
        let code = match clock.race(self.code()).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => {
                tracing::warn!(plugin = %self.name, "call failed: loading its code: {e:#}");
                return Ran::failed(&self.name, Failure::Unloadable);
            }
            Err(why) => {
                let failure = sandbox.interrupted(why);
                tracing::warn!(plugin = %self.name, "call failed while loading its code: {failure}");
                return Ran::failed(&self.name, failure);
            }
        };
        let running = crate::metrics::running(&self.name);
        tracing::debug!(plugin = %self.name, "call started");
        let output = Captured::default();
        let mut store = match self.store(cx, &clock, &output) {
            Ok(store) => store,
            Err(e) => return Ran::failed(&self.name, Failure::Trap(format!("{e:#}"))),
        };
        let function = request.function();
        let mut guest = tracing::Span::none();
        let mut stage = Stage::Instantiate;
        let outcome = clock
            .race(async {
                let instance = code
                    .pre
                    .instantiate_async(&mut store)
                    .instrument(telemetry::instantiate_span(&self.name))
                    .await?;
                stage = Stage::Call;
                guest = telemetry::guest_span(&self.name, function);
                dispatch(&code.exports, &mut store, &instance, request)
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
            answer: result.map_err(|f| PluginError::stopped(&self.name, stage, f)),
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
    request: Request<'_>,
) -> wasmtime::Result<Response> {
    let missing =
        |what: &str| wasmtime::format_err!("the plugin does not export ward:plugin/{what}");
    Ok(match request {
        Request::Manifest => {
            let mut m = Manifest::default();
            if let Some(ix) = &exports.tools {
                let tools = ix
                    .load(&mut *store, instance)?
                    .call_list_tools(&mut *store)
                    .await?;
                m.tools = tools.into_iter().map(convert::tool).collect();
            }
            if let Some(ix) = &exports.resources {
                let guest = ix.load(&mut *store, instance)?;
                let resources = guest.call_list_resources(&mut *store).await?;
                m.resources = resources.into_iter().map(convert::resource).collect();
                let templates = guest.call_list_resource_templates(&mut *store).await?;
                m.templates = templates
                    .into_iter()
                    .map(convert::resource_template)
                    .collect();
            }
            if let Some(ix) = &exports.prompts {
                let prompts = ix
                    .load(&mut *store, instance)?
                    .call_list_prompts(&mut *store)
                    .await?;
                m.prompts = prompts.into_iter().map(convert::prompt).collect();
            }
            m.completions = exports.completions.is_some();
            Response::Manifest(m)
        }
        Request::CallTool { name, arguments } => {
            let ix = exports.tools.as_ref().ok_or_else(|| missing("tools"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Tool(guest.call_call_tool(&mut *store, name, arguments).await?)
        }
        Request::ReadResource { uri } => {
            let ix = exports
                .resources
                .as_ref()
                .ok_or_else(|| missing("resources"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Resource(guest.call_read_resource(&mut *store, uri).await?)
        }
        Request::GetPrompt { name, arguments } => {
            let ix = exports.prompts.as_ref().ok_or_else(|| missing("prompts"))?;
            let guest = ix.load(&mut *store, instance)?;
            Response::Prompt(guest.call_get_prompt(&mut *store, name, arguments).await?)
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
                    .call_complete(&mut *store, &target, argument, value, context)
                    .await?,
            )
        }
    })
}

//! One call = one store: a fresh instance with the plugin's limits, run to
//! completion, a trap, the deadline or cancellation, then thrown away.

use std::time::{Duration, Instant};

use wasmtime::component::{Instance, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{completions, prompts, resources, tools, types};
use super::state::{CallState, Interrupt, RequestState};
use super::Plugin;
use crate::backend::CallContext;
use crate::sandbox::fs::MAX_OPEN_RESOURCES;
use crate::sandbox::limits::MemoryLimiter;
use crate::sandbox::outbound::HttpHooks;
use crate::sandbox::output::Captured;
use crate::sandbox::policy::{format_duration, format_size, Limits};

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

/// Why a call did not produce an answer. Each names the limit and, where
/// one applies, the policy key that raises it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The per-call fuel budget ran out.
    #[error("fuel exhausted after {0} units; raise `limits.fuel` in the plugin's policy")]
    Fuel(u64),
    /// The wall-clock limit passed.
    #[error("timed out after {}; raise `limits.timeout` in the plugin's policy", format_duration(*.0))]
    Timeout(Duration),
    /// The client cancelled the request.
    #[error("cancelled by the client")]
    Cancelled,
    /// The memory budget was exceeded.
    #[error("memory limit of {} exceeded; raise `limits.memory` in the plugin's policy", format_size(*.0))]
    Memory(u64),
    /// The guest recursed too deeply.
    #[error("stack overflow (the plugin recursed too deeply)")]
    StackOverflow,
    /// The guest panicked; the message is its own.
    #[error("the plugin panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin produced more than `limits.max-output`.
    #[error("result of {} exceeds the output limit of {}; raise `limits.max-output` in the plugin's policy", format_size(*.0), format_size(*.1))]
    OutputTooLarge(u64, u64),
    /// The plugin answered with something ward cannot use.
    #[error("invalid answer from the plugin: {0}")]
    Invalid(String),
}

impl Plugin {
    /// Runs `request` in a fresh instance under the plugin's limits.
    pub(crate) async fn run(
        &self,
        request: Request,
        cx: &CallContext,
    ) -> (Result<Response, Failure>, Cost) {
        if let Some(served) = &cx.served {
            served.plugin(&self.name, self.digest, &self.policy.env);
        }
        let _permit = self.permits.acquire().await;
        tracing::debug!(plugin = %self.name, "call started");
        let start = Instant::now();
        let limits = &self.policy.limits;
        let deadline = start + limits.timeout;
        let output = Captured::default();
        let mut store = match self.store(cx, deadline, &output) {
            Ok(store) => store,
            Err(e) => return (Err(Failure::Trap(format!("{e:#}"))), Cost::default()),
        };

        let work = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            dispatch(&self.exports, &mut store, &instance, request).await
        };
        let outcome = tokio::select! {
            biased;
            result = work => Some(result),
            _ = cx.cancel.cancelled() => None,
            _ = tokio::time::sleep_until(deadline.into()) => None,
        };

        let fuel = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data();
        let cost = Cost {
            fuel,
            peak_memory: state.limiter.peak(),
            duration: start.elapsed(),
        };
        let result = match outcome {
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(classify(e, state, &output, limits)),
            None if cx.cancel.is_cancelled() => Err(Failure::Cancelled),
            None => Err(Failure::Timeout(limits.timeout)),
        };
        output.log(&self.name);
        match &result {
            Ok(_) => {
                tracing::debug!(plugin = %self.name, fuel = cost.fuel, peak_memory = cost.peak_memory, duration_us = cost.duration.as_micros() as u64, "call done")
            }
            Err(e) => {
                tracing::warn!(plugin = %self.name, fuel = cost.fuel, peak_memory = cost.peak_memory, duration_us = cost.duration.as_micros() as u64, "call failed: {e}")
            }
        }
        if let Some(served) = &cx.served {
            served.cost(cost.fuel, cost.peak_memory, cost.duration);
        }
        (result, cost)
    }

    fn store(
        &self,
        cx: &CallContext,
        deadline: Instant,
        output: &Captured,
    ) -> anyhow::Result<Store<CallState>> {
        let limits = &self.policy.limits;
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_OPEN_RESOURCES);
        let state = CallState {
            wasi: crate::sandbox::wasi::wasi_ctx(&self.policy, &self.net, output)?,
            http: WasiHttpCtx::new(),
            http_hooks: HttpHooks::new(self.net.clone()),
            table,
            limiter: MemoryLimiter::new(limits.memory),
            request: RequestState::new(self.name.clone(), cx, Some(self.server.clone()), deadline),
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(limits.fuel)?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            Ok(match cx.data_mut().request.should_interrupt() {
                Some(_) => UpdateDeadline::Interrupt,
                None => UpdateDeadline::Yield(1),
            })
        });
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

/// Names the reason a call trapped, from the trap and what the store saw.
fn classify(
    error: wasmtime::Error,
    state: &CallState,
    output: &Captured,
    limits: &Limits,
) -> Failure {
    if state.limiter.exceeded() {
        return Failure::Memory(state.limiter.limit());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::Fuel(limits.fuel),
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(Trap::Interrupt) => match state.request.interrupted {
            Some(Interrupt::Cancelled) => Failure::Cancelled,
            _ => Failure::Timeout(limits.timeout),
        },
        Some(trap) => match output.panic_message() {
            Some(message) => Failure::Panic(message),
            None if *trap == Trap::MemoryOutOfBounds => Failure::Trap(format!(
                "{trap} (often the guest's own stack overflowing: deep recursion in the plugin)"
            )),
            None => Failure::Trap(trap.to_string()),
        },
        None => Failure::Trap(format!("{error:#}")),
    }
}

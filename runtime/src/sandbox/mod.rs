//! The sandbox: a plugin's policy, and one module per capability, each
//! enforced in exactly one place.
//!
//! [`Sandbox`] is built once per plugin load and owns every per-call limit
//! end to end: [`Sandbox::admit`] waits for the plugin's share of the host
//! (`budget.rs`) and starts the call's clock (`clock.rs`),
//! [`Sandbox::prepare`] makes the call's WASI context, resource table and
//! memory limiter (`limits.rs`), [`Sandbox::arm`] sets fuel and the epoch
//! deadline on its store, and [`Sandbox::explain`] turns how the call stopped
//! into the user's message (`trap.rs`).

pub mod budget;
pub(crate) mod clock;
pub(crate) mod env;
pub(crate) mod fs;
pub(crate) mod limits;
pub(crate) mod lookup;
pub(crate) mod net;
pub(crate) mod outbound;
pub(crate) mod output;
pub(crate) mod policy;
pub(crate) mod trap;
pub(crate) mod wasi;

pub use policy::Policy;

use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

pub(crate) use budget::{Needs, Shared, Ticket};
pub(crate) use clock::{Clock, Interrupt};
pub(crate) use trap::{Failure, Stop};

use budget::PluginShare;
use limits::MemoryLimiter;
use outbound::{HttpHooks, Network};
use output::Captured;

/// One plugin's sandbox, built once per load from its policy.
pub struct Sandbox {
    plugin: Arc<str>,
    /// The policy file's name, such as `hello.toml`, for messages.
    file: Arc<str>,
    policy: Arc<Policy>,
    net: Arc<Network>,
    share: PluginShare,
}

/// The limits of one call, kept in its store.
pub struct CallLimits {
    pub(crate) memory: MemoryLimiter,
    pub(crate) clock: Clock,
}

impl CallLimits {
    /// The most memory the instance held at once, in bytes.
    pub fn peak_memory(&self) -> u64 {
        self.memory.peak()
    }
}

/// What a call's store needs from the sandbox.
pub struct Prepared {
    /// Its WASI context: files, env, sockets, captured stdio.
    pub wasi: WasiCtx,
    /// Its resource table, capped at its share of host handles.
    pub table: ResourceTable,
    /// Its wasi:http hooks.
    pub http_hooks: HttpHooks,
    /// Its memory limiter and clock.
    pub limits: CallLimits,
}

/// A store whose data holds a call's [`CallLimits`].
pub trait Limited: Send + 'static {
    /// The call's limits.
    fn limits(&mut self) -> &mut CallLimits;
}

impl Sandbox {
    /// The sandbox of plugin `plugin` under `policy`, whose instances need
    /// `needs` of the pool, drawing on the process's `shared` budgets.
    pub fn new(plugin: &str, policy: Policy, shared: &Arc<Shared>, needs: Needs) -> Self {
        let share = PluginShare::new(shared, policy.limits.concurrency, needs);
        Self {
            plugin: plugin.into(),
            file: format!("{plugin}.toml").into(),
            net: Arc::new(Network::new(plugin, policy.network.clone())),
            policy: Arc::new(policy),
            share,
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Starts a call's clock and waits, within its timeout and until the
    /// client cancels, for the plugin's share of the host to let it run.
    /// Drop the ticket after the call's store, so that its pool slots are
    /// free before the next call starts.
    pub async fn admit(&self, cancel: &CancellationToken) -> Result<(Clock, Ticket), Failure> {
        let clock = Clock::start(self.policy.limits.timeout, cancel);
        match clock.race(self.share.acquire(&self.plugin)).await {
            Ok(ticket) => Ok((clock, ticket)),
            Err(Interrupt::Cancelled) => Err(Failure::Cancelled),
            Err(Interrupt::Timeout) => Err(Failure::Timeout {
                after: self.policy.limits.timeout,
                queued: true,
                file: self.file.clone(),
            }),
        }
    }

    /// A call's WASI context, resource table and limits; `output` captures
    /// its stdout and stderr.
    pub fn prepare(&self, clock: &Clock, output: &Captured) -> Result<Prepared> {
        let mut table = ResourceTable::new();
        table.set_max_capacity(self.share.handles_per_call() as usize);
        Ok(Prepared {
            wasi: wasi::wasi_ctx(&self.policy, &self.net, output)?,
            table,
            http_hooks: HttpHooks::new(self.net.clone()),
            limits: CallLimits {
                memory: MemoryLimiter::new(self.policy.limits.memory),
                clock: clock.clone(),
            },
        })
    }

    /// Arms a fresh store: the memory limiter, the fuel budget, and the epoch
    /// callback that stops a running guest at the deadline or on cancellation.
    pub fn arm<T: Limited>(&self, store: &mut Store<T>) -> Result<()> {
        store.limiter(|s| &mut s.limits().memory);
        store.set_hostcall_fuel(hostcall_bytes(&self.policy.limits) as usize);
        store.set_fuel(self.policy.limits.fuel)?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            Ok(match cx.data_mut().limits().clock.tick() {
                Some(_) => UpdateDeadline::Interrupt,
                None => UpdateDeadline::Yield(1),
            })
        });
        Ok(())
    }

    /// Fuel the call has used so far.
    pub fn fuel_used<T>(&self, store: &Store<T>) -> u64 {
        self.policy
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0))
    }

    /// Why a call stopped, in the user's words.
    pub fn explain(&self, stop: Stop, limits: &CallLimits, output: &Captured) -> Failure {
        trap::explain(stop, limits, &self.policy.limits, &self.file, output)
    }

    /// Names why a call stopped before its guest ran (the client cancelled,
    /// or its time ran out loading the plugin's code).
    pub fn interrupted(&self, why: Interrupt) -> Failure {
        match why {
            Interrupt::Cancelled => Failure::Cancelled,
            Interrupt::Timeout => Failure::Timeout {
                after: self.policy.limits.timeout,
                queued: false,
                file: self.file.clone(),
            },
        }
    }
}

/// The most data the host copies out of the guest for one host call:
/// strings and lists the guest passes, counted per element, so a list of a
/// million entries that all point at one buffer costs a million buffers.
/// The guest's own memory limit, and never more than wasmtime's default of
/// 128 MiB.
pub(crate) fn hostcall_bytes(limits: &policy::Limits) -> u64 {
    limits.memory.min(MAX_HOSTCALL_BYTES)
}

/// wasmtime's default hostcall fuel.
const MAX_HOSTCALL_BYTES: u64 = 128 << 20;

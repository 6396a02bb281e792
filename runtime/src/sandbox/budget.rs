//! Host resources every plugin draws from: file descriptors and the slots of
//! the instance pool, shared fairly.
//!
//! Per-call caps alone let a plugin with many concurrent calls take all of a
//! shared resource (measured: 45 calls holding 500 sockets each exhausted the
//! process's descriptors, and 270 sleeping calls of one plugin made every
//! other plugin's instantiation fail). So every call reserves what it may
//! use before it starts: its handle cap out of the process-wide handle
//! budget, and one component instance plus its memories and tables out of the
//! pool. Calls that find the budget spent wait their turn (FIFO, bounded by
//! their timeout) instead of failing. No plugin may hold more than
//! [`SHARE_DIVISOR`]⁻¹ of any of them, so at least that many busy plugins are
//! needed to make others wait, and none can make them fail.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// One plugin may hold at most this fraction (1/N) of every shared budget.
pub const SHARE_DIVISOR: u32 = 4;
/// Most open handles (files, sockets, streams, pollables: resource-table
/// entries) one call may hold, however large the budget.
pub const MAX_HANDLES_PER_CALL: u32 = 512;
/// Fewest handles a call gets, however small the budget: enough for WASI's
/// stdio, preopens and an HTTP request.
pub const MIN_HANDLES_PER_CALL: u32 = 32;
/// Descriptors kept for ward itself (its connections, cache and plugin
/// files, the watcher): at least this many, and at least 1/8 of the limit.
pub const MIN_RESERVE: u64 = 256;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (Linux caps
/// the hard limit at `fs.nr_open`), and returns the soft limit in effect.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(1 << 20);
    if now.current.is_some_and(|soft| soft < hard) {
        let raised = Rlimit {
            current: Some(hard),
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!("open-file limit raised to {hard}"),
            Err(e) => tracing::warn!("could not raise the open-file limit to {hard}: {e}"),
        }
    }
    fd_limit()
}

/// The soft `RLIMIT_NOFILE` in effect.
pub fn fd_limit() -> u64 {
    let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    now.current.unwrap_or(1 << 20)
}

/// Sizes of the instance pool, when ward uses one.
#[derive(Debug, Clone, Copy)]
pub struct PoolTotals {
    /// Component instances live at once.
    pub instances: u32,
    /// Linear memories live at once.
    pub memories: u32,
    /// Tables live at once.
    pub tables: u32,
}

/// Pool slots one instance of a component takes besides the instance itself
/// (from `Component::resources_required`).
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Linear memories it defines.
    pub memories: u32,
    /// Tables it defines.
    pub tables: u32,
}

/// The process-wide budgets, one per process.
pub struct Shared {
    handles: Arc<Semaphore>,
    handle_total: u32,
    pool: Option<Pool>,
}

struct Pool {
    totals: PoolTotals,
    instances: Arc<Semaphore>,
    memories: Arc<Semaphore>,
    tables: Arc<Semaphore>,
}

impl Shared {
    /// Budgets for a process allowed `fd_limit` descriptors, using `pool`.
    pub fn new(fd_limit: u64, pool: Option<PoolTotals>) -> Arc<Self> {
        let reserve = MIN_RESERVE.max(fd_limit / 8);
        let handle_total = fd_limit
            .saturating_sub(reserve)
            .clamp(1, u32::MAX as u64 >> 4) as u32;
        let pool = pool.map(|totals| Pool {
            totals,
            instances: Arc::new(Semaphore::new(totals.instances as usize)),
            memories: Arc::new(Semaphore::new(totals.memories as usize)),
            tables: Arc::new(Semaphore::new(totals.tables as usize)),
        });
        tracing::debug!(
            "host handles for plugins: {handle_total} of {fd_limit} descriptors ({reserve} kept for ward)"
        );
        Arc::new(Self {
            handles: Arc::new(Semaphore::new(handle_total as usize)),
            handle_total,
            pool,
        })
    }

    /// Descriptors all plugins together may hold.
    pub fn handle_total(&self) -> u32 {
        self.handle_total
    }
}

/// One plugin's share: how many of its calls may run at once, and what each
/// reserves from the process-wide budgets.
pub struct PluginShare {
    shared: Arc<Shared>,
    calls: Arc<Semaphore>,
    max_calls: u32,
    handles_per_call: u32,
    needs: Needs,
}

impl PluginShare {
    /// The share of a plugin allowed `concurrency` calls at once (its
    /// policy), whose instances need `needs`. (Its preopened directories are
    /// opened once at load, not per call, so they are ward's reserve.)
    pub fn new(shared: &Arc<Shared>, concurrency: u32, needs: Needs) -> Self {
        let share = |total: u32| (total / SHARE_DIVISOR).max(1);
        let handle_share = share(shared.handle_total);
        let handles_per_call = (handle_share / concurrency.max(1))
            .clamp(MIN_HANDLES_PER_CALL, MAX_HANDLES_PER_CALL)
            .min(handle_share);
        let mut max_calls = concurrency
            .min(handle_share / handles_per_call.max(1))
            .max(1);
        if let Some(pool) = &shared.pool {
            let t = pool.totals;
            max_calls = max_calls
                .min(share(t.instances))
                .min(share(t.memories) / needs.memories.max(1))
                .min(share(t.tables) / needs.tables.max(1))
                .max(1);
        }
        Self {
            shared: shared.clone(),
            calls: Arc::new(Semaphore::new(max_calls as usize)),
            max_calls,
            handles_per_call,
            needs,
        }
    }

    /// Open handles one call may hold (its resource table's capacity).
    pub fn handles_per_call(&self) -> u32 {
        self.handles_per_call
    }

    /// Calls of this plugin that may run at once.
    pub fn max_calls(&self) -> u32 {
        self.max_calls
    }

    /// Waits until this plugin may start one more call and the process has
    /// room for it, in FIFO order. `plugin` is for the log line a wait gets.
    pub async fn acquire(&self, plugin: &str) -> Ticket {
        let own = [
            (&self.calls, 1, "the plugin's calls at once"),
            (&self.shared.handles, self.handles_per_call, "host handles"),
        ];
        let pool = self.shared.pool.iter().flat_map(|p| {
            [
                (&p.instances, 1, "pool instances"),
                (&p.memories, self.needs.memories, "pool memories"),
                (&p.tables, self.needs.tables, "pool tables"),
            ]
        });
        let mut ticket = Ticket(Vec::with_capacity(5));
        // Always in this order, so that no two calls wait on each other.
        for (semaphore, n, what) in own.into_iter().chain(pool) {
            if n == 0 {
                continue;
            }
            let permit = match semaphore.clone().try_acquire_many_owned(n) {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => {
                    tracing::debug!(plugin, "a call waits its turn: {what} are all in use");
                    semaphore
                        .clone()
                        .acquire_many_owned(n)
                        .await
                        .expect("budgets are never closed")
                }
                Err(TryAcquireError::Closed) => unreachable!("budgets are never closed"),
            };
            ticket.0.push(permit);
        }
        ticket
    }
}

/// What one call reserved; dropping it (after the call's store, so that the
/// pool slots are free again) lets the next call in.
pub struct Ticket(Vec<OwnedSemaphorePermit>);

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: PoolTotals = PoolTotals {
        instances: 256,
        memories: 1024,
        tables: 1024,
    };
    const ONE: Needs = Needs {
        memories: 1,
        tables: 1,
    };

    #[test]
    fn a_plugin_gets_a_quarter_of_every_budget() {
        let shared = Shared::new(20_000, Some(POOL));
        assert_eq!(shared.handle_total(), 17_500);
        let s = PluginShare::new(&shared, 1024, ONE);
        assert_eq!(s.max_calls(), 64, "a quarter of 256 instances");
        assert!(s.max_calls() * s.handles_per_call() <= 17_500 / 4);
        // Sixteen memories per instance: a quarter of 1024 memories is 16 calls.
        let s = PluginShare::new(
            &shared,
            64,
            Needs {
                memories: 16,
                tables: 1,
            },
        );
        assert_eq!(s.max_calls(), 16);
    }

    #[test]
    fn handles_per_call_scale_with_the_limit_between_bounds() {
        let big = Shared::new(1 << 20, None);
        assert_eq!(PluginShare::new(&big, 64, ONE).handles_per_call(), 512);
        let small = Shared::new(1024, None);
        let s = PluginShare::new(&small, 64, ONE);
        assert_eq!(s.handles_per_call(), MIN_HANDLES_PER_CALL);
        assert_eq!(s.max_calls(), 192 / 32);
        assert_eq!(PluginShare::new(&small, 1, ONE).handles_per_call(), 192);
    }

    #[tokio::test]
    async fn calls_past_the_share_wait_and_others_do_not() {
        let shared = Shared::new(20_000, Some(POOL));
        let greedy = PluginShare::new(&shared, 1024, ONE);
        let mut held = Vec::new();
        for _ in 0..greedy.max_calls() {
            held.push(greedy.acquire("greedy").await);
        }
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            greedy.acquire("greedy"),
        );
        assert!(waiting.await.is_err(), "a call past the share must wait");
        let other = PluginShare::new(&shared, 64, ONE);
        let _ticket = other.acquire("other").await;
        held.pop();
        let _next = greedy.acquire("greedy").await;
    }
}

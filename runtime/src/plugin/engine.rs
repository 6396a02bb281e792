//! The one wasmtime [`Engine`] and [`Linker`] every plugin shares.
//!
//! The engine is configured once for the whole process: async support (calls
//! run on tokio), fuel (a deterministic per-call CPU budget), epoch
//! interruption (the wall clock and cancellation), and the pooling allocator
//! when the machine has the address space for it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::state::CallState;
use crate::sandbox::budget::{self, PoolTotals, Shared};
use crate::sandbox::policy::MEMORY_BOUNDS;

/// How often the epoch advances. A running guest yields to tokio once per
/// tick, which is when timeouts and cancellation are noticed.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits of the pooling allocator; see [`Runtime::new`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How many instances may be live at once across all plugins.
    pub instances: u32,
    /// The largest linear memory one instance may reserve, in bytes.
    pub max_memory: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            instances: 256,
            // The policy's largest `limits.memory`: the memory limiter, not
            // the pool, is the one limit a guest meets.
            max_memory: *MEMORY_BOUNDS.end(),
        }
    }
}

/// Regions the pool decommits at once (`decommit_batch_size`).
const DECOMMIT_BATCH: usize = 16;

/// Slots that may sit in decommit batches at once: wasmtime keeps a batch
/// per shard (one shard per core, at most 16), and a batch being flushed has
/// been taken out while the next fills.
fn decommit_margin() -> u32 {
    let shards = std::thread::available_parallelism().map_or(16, |n| n.get().min(16)) as u32;
    2 * DECOMMIT_BATCH as u32 * shards
}

/// Memories and tables the pool holds per instance on average; a component
/// with more gets fewer concurrent calls (`sandbox::budget`).
const SLOTS_PER_INSTANCE: u32 = 4;
/// Core instances (modules) one component may instantiate.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;

impl PoolConfig {
    fn totals(&self) -> PoolTotals {
        PoolTotals {
            instances: self.instances,
            memories: self.instances * SLOTS_PER_INSTANCE,
            tables: self.instances * SLOTS_PER_INSTANCE,
        }
    }
}

/// The engine, the linker, the epoch ticker, and the host resources all
/// plugins share.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    shared: Arc<Shared>,
    _ticker: Ticker,
}

impl Runtime {
    /// Builds the engine. With `pool` set, instances come from a pooling
    /// allocator (fast instantiation); if the machine refuses the address
    /// space it needs, ward falls back to on-demand allocation and says why.
    pub fn new(pool: Option<PoolConfig>) -> Result<Arc<Self>> {
        let (engine, pool) = match pool {
            Some(pool) => match Engine::new(&config(Some(&pool))) {
                Ok(engine) => (engine, Some(pool.totals())),
                Err(e) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({e:#}); allocating instances on demand"
                    );
                    (Engine::new(&config(None))?, None)
                }
            },
            None => (Engine::new(&config(None))?, None),
        };
        let linker = linker(&engine)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Arc::new(Self {
            engine,
            linker,
            shared: Shared::new(budget::fd_limit(), pool),
            _ticker: ticker,
        }))
    }

    /// The host resources all plugins share (descriptors, pool slots).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with WASI 0.2, wasi:http and ward's `host` interface.
    pub fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }
}

fn config(pool: Option<&PoolConfig>) -> Config {
    let mut config = Config::new();
    config.async_support(true);
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    // A guest's own stack is bounded well below the fiber stack it runs on, so
    // deep recursion ends as a clean stack-overflow trap.
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(4 << 20);
    if let Some(pool) = pool {
        let mut p = PoolingAllocationConfig::default();
        let totals = pool.totals();
        p.total_component_instances(totals.instances);
        // A counter only (no memory is reserved per core instance): set so
        // high that it never runs out before the instances do, which
        // `sandbox::budget` accounts for with memories and tables.
        p.total_core_instances(totals.instances * CORE_INSTANCES_PER_COMPONENT);
        // Slots waiting in a decommit batch (below) are neither free nor
        // counted by `sandbox::budget`, which releases a call's share when its
        // store is dropped: the pool holds that many more than the budget, so
        // a call the budget admitted always finds its slots.
        p.total_memories(totals.memories + decommit_margin());
        p.total_tables(totals.tables + decommit_margin());
        p.max_memory_size(pool.max_memory as usize);
        p.max_memories_per_component(16);
        p.max_tables_per_component(16);
        p.max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT);
        p.total_stacks(totals.instances);
        // Every slot may stay warm for the module that last used it (wasmtime
        // keeps 100 by default): with more plugins than that, calls spread
        // over them found their slot taken and mapped their memory image
        // anew on every call (BENCHMARKS.md, benchmark 9).
        p.max_unused_warm_slots(totals.memories + decommit_margin());
        // Reset the first 64 KiB of a reused slot in place (memset, or a
        // copy of the initial image) and give the rest back to the OS
        // (madvise), so that no page of one instance is visible to the next.
        // The madvise calls are batched, `DECOMMIT_BATCH` regions at a time:
        // a slot waiting in a batch is not free (see `decommit_margin`).
        // Measured against 1 MiB unbatched: 22 vs 48 µs per fresh instance
        // of `hello` (BENCHMARKS.md, benchmark 6).
        // `pagemap_scan` is off on purpose: wasmtime 48 resets only the dirty
        // pages that are *present*, so a page swapped out (or under
        // migration) keeps the previous instance's data (issue 11, item 8;
        // upstream PR 14357). Its cost is in BENCHMARKS.md ("Slot reset").
        p.linear_memory_keep_resident(64 << 10);
        p.table_keep_resident(64 << 10);
        p.decommit_batch_size(DECOMMIT_BATCH);
        p.pagemap_scan(wasmtime::Enabled::No);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    config
}

fn linker(engine: &Engine) -> Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI 0.2")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    // Name lookups are ward's own: only names the plugin's policy grants.
    fn lookup(s: &mut CallState) -> crate::sandbox::lookup::LookupCtx<'_> {
        crate::sandbox::lookup::LookupCtx {
            table: &mut s.table,
            network: s.http_hooks.network(),
        }
    }
    crate::sandbox::lookup::add_to_linker(&mut linker, lookup)
        .map_err(anyhow::Error::from)
        .context("linking ward's wasi:sockets/ip-name-lookup")?;
    bindings::host::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking ward:plugin/host")?;
    bindings::client::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking ward:plugin/client")?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread, for as
/// long as the runtime lives.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("ward-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

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
            max_memory: 4 << 30,
        }
    }
}

/// The engine, the linker, and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    _ticker: Ticker,
}

impl Runtime {
    /// Builds the engine. With `pool` set, instances come from a pooling
    /// allocator (fast instantiation); if the machine refuses the address
    /// space it needs, ward falls back to on-demand allocation and says why.
    pub fn new(pool: Option<PoolConfig>) -> Result<Arc<Self>> {
        let engine = match pool {
            Some(pool) => match Engine::new(&config(Some(&pool))) {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({e:#}); allocating instances on demand"
                    );
                    Engine::new(&config(None))?
                }
            },
            None => Engine::new(&config(None))?,
        };
        let linker = linker(&engine)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Arc::new(Self {
            engine,
            linker,
            _ticker: ticker,
        }))
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
        p.total_component_instances(pool.instances);
        p.total_core_instances(pool.instances * 4);
        p.total_memories(pool.instances * 4);
        p.total_tables(pool.instances * 4);
        p.max_memory_size(pool.max_memory as usize);
        p.max_memories_per_component(16);
        p.max_tables_per_component(16);
        p.max_core_instances_per_component(64);
        p.total_stacks(pool.instances);
        // Reset the first 1 MiB of a reused slot in place instead of
        // returning it to the OS (madvise, TLB shoot-downs, re-faults), and
        // with pagemap_scan (Linux 6.7+; ignored elsewhere) only the pages
        // the guest dirtied: a fresh instance + greet, slot reset included,
        // measured 27.0 µs → 10.7 µs (BENCHMARKS.md, benchmark 6; 256 KiB
        // and 4 MiB measured the same). Memory and tables are still zeroed
        // for the next instance; at most 1 MiB per slot stays resident.
        p.linear_memory_keep_resident(1 << 20);
        p.table_keep_resident(64 << 10);
        p.pagemap_scan(wasmtime::Enabled::Auto);
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

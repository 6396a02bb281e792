//! Benchmark 4's baseline: a plugin's tool run in-process with plain
//! wasmtime, in two engine configurations that differ only in fuel metering
//! and epoch interruption. Everything else mirrors ward's engine
//! (runtime/src/plugin/engine.rs): async support, the pooling allocator, one
//! fresh store and instance per call from a cached `InstancePre`, WASI 0.2
//! with an empty context, and ward's `host` interface stubbed out.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ward:plugin/plugin",
        exports: { default: async },
    });
}

use bindings::exports::ward::plugin::tools;
use bindings::ward::plugin::host;

/// Same as ward's `EPOCH_TICK`.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Same as ward's default `limits.fuel`.
const FUEL: u64 = 10_000_000_000;

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for State {
    fn log(&mut self, _level: host::LogLevel, _message: String) {}
    fn progress(&mut self, _progress: f64, _total: Option<f64>, _message: Option<String>) {}
    fn cancelled(&mut self) -> bool {
        false
    }
    fn resource_updated(&mut self, _uri: String) {}
    fn lists_changed(&mut self) {}
}

/// The benchmark has no client: every question fails.
fn no_client() -> Result<String, bindings::ward::plugin::types::Error> {
    Err(bindings::ward::plugin::types::Error::Failed(
        "no client".into(),
    ))
}

impl bindings::ward::plugin::client::Host for State {
    fn create_message(
        &mut self,
        _params: String,
    ) -> Result<String, bindings::ward::plugin::types::Error> {
        no_client()
    }
    fn elicit(&mut self, _params: String) -> Result<String, bindings::ward::plugin::types::Error> {
        no_client()
    }
    fn list_roots(&mut self) -> Result<String, bindings::ward::plugin::types::Error> {
        no_client()
    }
    fn ask(
        &mut self,
        _requests: String,
    ) -> Vec<Result<String, bindings::ward::plugin::types::Error>> {
        vec![no_client()]
    }
    fn supports(&mut self, _method: String) -> bool {
        false
    }
}

impl bindings::ward::plugin::types::Host for State {}

/// Pooling-allocator settings to try (wasmtime's defaults: 0, 1, off).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `linear_memory_keep_resident` (tables: at most 64 KiB of it).
    pub keep_resident: usize,
    /// `decommit_batch_size`.
    pub decommit_batch: usize,
    /// `pagemap_scan(Auto)`.
    pub pagemap_scan: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            keep_resident: 0,
            decommit_batch: 1,
            pagemap_scan: false,
        }
    }
}

/// One engine configuration with one component ready to instantiate.
pub struct Runner {
    fuel: bool,
    epoch: bool,
    engine: Engine,
    pre: InstancePre<State>,
    tools: tools::GuestIndices,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runner {
    /// `fuel`: fuel metering on (as in ward); `epoch`: epoch interruption
    /// on, with ward's 5 ms ticker and yield-on-deadline callback.
    pub fn new(wasm: &Path, fuel: bool, epoch: bool) -> Result<Self> {
        Self::tuned(wasm, fuel, epoch, &Tuning::default())
    }

    /// [`Runner::new`] with pooling-allocator settings that ward leaves at
    /// wasmtime's defaults.
    pub fn tuned(wasm: &Path, fuel: bool, epoch: bool, tuning: &Tuning) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(fuel);
        config.epoch_interruption(epoch);
        config.max_wasm_stack(1 << 20);
        config.async_stack_size(4 << 20);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(16);
        p.total_core_instances(64);
        p.total_memories(64);
        p.total_tables(64);
        p.max_memory_size(4 << 30);
        p.max_memories_per_component(16);
        p.max_tables_per_component(16);
        p.max_core_instances_per_component(64);
        p.total_stacks(16);
        p.linear_memory_keep_resident(tuning.keep_resident);
        p.table_keep_resident(tuning.keep_resident.min(1 << 16));
        p.decommit_batch_size(tuning.decommit_batch);
        if tuning.pagemap_scan {
            p.pagemap_scan(wasmtime::Enabled::Auto);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
        // Not `define_unknown_imports_as_traps`: it shadows semver-compatible
        // WASI definitions (an import of wasi:cli/environment@0.2.6 gets a
        // trap instead of wasmtime-wasi's @0.2.12).
        let pre = linker.instantiate_pre(&component)?;
        let tools = tools::GuestIndices::new(&pre)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        if epoch {
            let (engine, stop) = (engine.clone(), stop_ticker.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        }
        Ok(Self {
            fuel,
            epoch,
            engine,
            pre,
            tools,
            stop_ticker,
        })
    }

    /// One call in a fresh store: instantiate, call `call-tool`, drop.
    /// Returns the wall time and the fuel consumed (0 when unmetered).
    pub async fn call(&self, tool: &String, arguments: &String) -> Result<(Duration, u64)> {
        let start = Instant::now();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        if self.fuel {
            store.set_fuel(FUEL)?;
        }
        if self.epoch {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        }
        let instance = self.pre.instantiate_async(&mut store).await?;
        let guest = self.tools.load(&mut store, &instance)?;
        let result = guest.call_call_tool(&mut store, tool, arguments).await?;
        let fuel = if self.fuel {
            FUEL - store.get_fuel()?
        } else {
            0
        };
        // Dropping the store returns the instance's slot to the pool, which
        // resets its memory (madvise or memset): part of every call's cost.
        drop(store);
        let elapsed = start.elapsed();
        match result {
            Ok(r) if !r.is_error => Ok((elapsed, fuel)),
            Ok(r) => anyhow::bail!("tool {tool} returned an error: {:?}", r.content),
            Err(e) => anyhow::bail!("tool {tool} failed: {e:?}"),
        }
    }
}

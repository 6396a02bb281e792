//! `ward-bench`: ward's benchmarks, run by `cargo xtask bench` (which builds
//! this binary, `ward` and `native-greet` in release, and the plugins, first).
//!
//! 1. `roundtrip`: sequential tools/call round trips of `hello_greet` over
//!    stdio pipes, ward vs `native-greet` (the same tool written directly on
//!    rmcp). Goal: ward p50 ≤ 1.2× native p50 (ideally 1.0×).
//! 2. `throughput`: pipelined tools/call with 1, 16 and 64 in flight over one
//!    connection. Goal: ward ≥ native at 16 and at 64 in flight.
//! 3. `startup`: spawn → first tools/list answer with 20 plugins, cold and
//!    warm compiled-artifact cache. Goal: warm ≤ 50 ms.
//! 4. `cpu`: a CPU-bound tool in-process with plain wasmtime, with and
//!    without fuel + epoch interruption, and through ward. Goal: ≤ 1.3×.
//! 5. `memory`: ward's RSS idle with 20 plugins, after 10k and after 1M
//!    calls. Goal: RSS(1M) ≤ 1.1× RSS(10k).
//! 6. `instance`: fresh instance + call + slot reset, in-process.
//! 7. `pool`: 200 sequential `fetch_get` calls (one HTTP GET each) to a
//!    loopback server, with ward's connection reuse and without it
//!    (`WARD_HTTP_POOL=off`). No goal; the ratio is recorded.
//! 8. `python`: `python-hello` through ward vs the official Python SDK
//!    server with the same `greet` tool (`bench/py/greet_server.py`), and
//!    `js-hello` vs the TypeScript SDK (`bench/js/greet_server.mjs`), over
//!    stdio (src/sdk.rs). Goal: ward's p50 below the SDK server's.
//! 9. `many`: 1,000 copies of hello: warm start-up to a full tools/list, idle
//!    RSS per plugin, a call with 1,000 loaded vs with 1 (src/scale.rs).
//!    Goals: ≤ 200 ms, ≤ 0.2 MiB per plugin, call cost independent of N.
//! 10. `soak`: 1,000,000 calls over 200 plugins at 64 in flight while a
//!    plugin is replaced every second (src/scale.rs). Goals: no lost or
//!    wrong answers, RSS last 10 % ≤ 1.05× first 10 %; p99 recorded.
//!
//! Every ratio is computed from figures measured in the same run.

mod client;
mod inproc;
mod scale;
mod sdk;
mod site;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use client::{call_template, rss, Server};

/// ward's benchmarks (see BENCHMARKS.md).
#[derive(Parser)]
#[command(name = "ward-bench")]
struct Args {
    /// The ward binary [default: `ward` beside this binary].
    #[arg(long)]
    ward: Option<PathBuf>,
    /// The native rmcp baseline [default: `native-greet` beside this binary].
    #[arg(long)]
    native: Option<PathBuf>,
    /// Built example plugins (`cargo xtask plugins`).
    #[arg(long, default_value = "target/plugins")]
    plugins: PathBuf,
    /// Scratch directory (plugin copies, caches, server logs); recreated.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Which benchmarks, comma-separated:
    /// roundtrip,throughput,startup,cpu,memory,instance,pool,python,many,soak.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "roundtrip,throughput,startup,cpu,memory,instance,pool,python,many,soak"
    )]
    only: Vec<String>,
    /// Timed sequential round trips per server.
    #[arg(long, default_value_t = 20_000)]
    roundtrips: usize,
    /// Pipelined calls per throughput measurement.
    #[arg(long, default_value_t = 200_000)]
    throughput_calls: u64,
    /// Calls before the last memory reading (the first is after 10k).
    #[arg(long, default_value_t = 1_000_000)]
    memory_calls: u64,
    /// Start-ups per cache state.
    #[arg(long, default_value_t = 10)]
    startups: usize,
    /// Calls per configuration in the CPU benchmark.
    #[arg(long, default_value_t = 100)]
    cpu_calls: usize,
    /// How many numbers `stats_describe` summarises in the CPU benchmark.
    #[arg(long, default_value_t = 100_000)]
    cpu_numbers: usize,
    /// Sequential `fetch_get` calls (HTTP requests) per timed round of the
    /// pool benchmark.
    #[arg(long, default_value_t = 200)]
    pool_requests: usize,
    /// Timed rounds per setting (pooled, not pooled), interleaved.
    #[arg(long, default_value_t = 50)]
    pool_rounds: usize,
    /// Timed sequential round trips per server in the `python` benchmark
    /// (ward + python-hello vs the Python SDK; ward + js-hello vs the
    /// TypeScript SDK).
    #[arg(long, default_value_t = 5_000)]
    sdk_roundtrips: usize,
    /// The Python with the MCP Python SDK (`mcp`) installed.
    #[arg(long, default_value = ".tools/py-client/mcp-2/bin/python")]
    sdk_python: PathBuf,
    /// The Node that runs the TypeScript SDK server [default: the pinned
    /// Node 22 in .tools/conformance if present, else `node` on PATH].
    #[arg(long)]
    node: Option<PathBuf>,
    /// The node_modules holding `@modelcontextprotocol/sdk` and `zod`.
    #[arg(long, default_value = ".tools/ts-client/node_modules")]
    ts_sdk: PathBuf,
    /// Plugins (copies of hello) in the `many` benchmark.
    #[arg(long, default_value_t = 1_000)]
    many: usize,
    /// Warm start-ups to a full tools/list in the `many` benchmark.
    #[arg(long, default_value_t = 5)]
    many_startups: usize,
    /// Timed round trips per server and pattern in the `many` benchmark.
    #[arg(long, default_value_t = 10_000)]
    many_roundtrips: usize,
    /// Calls in the soak (after a warm-up of 5 % of them, at most 50,000).
    #[arg(long, default_value_t = 1_000_000)]
    soak_calls: u64,
    /// Plugins (copies of hello) the soak's calls are spread over.
    #[arg(long, default_value_t = 200)]
    soak_plugins: usize,
    /// Calls in flight during the soak.
    #[arg(long, default_value_t = 64)]
    soak_in_flight: usize,
    /// How often the soak replaces a plugin file, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    soak_replace_ms: u64,
    /// How often the soak samples ward's RSS, in milliseconds.
    #[arg(long, default_value_t = 200)]
    soak_sample_ms: u64,
}

/// One line of the summary table.
struct Row {
    what: String,
    measured: String,
    goal: String,
    /// measured / goal, oriented so that ≤ 1.0 meets the goal.
    ratio: Option<f64>,
}

struct Bench {
    args: Args,
    ward: PathBuf,
    native: PathBuf,
    rows: Vec<Row>,
    notes: Vec<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?;
    let dir = here.parent().context("exe has no directory")?;
    let ward = args.ward.clone().unwrap_or_else(|| dir.join("ward"));
    let native = args
        .native
        .clone()
        .unwrap_or_else(|| dir.join("native-greet"));
    for p in [&ward, &native] {
        ensure!(
            p.is_file(),
            "{} not found; build it first (cargo xtask bench does)",
            p.display()
        );
    }
    ensure!(
        args.plugins.join("hello.wasm").is_file(),
        "{} has no hello.wasm; run `cargo xtask plugins`",
        args.plugins.display()
    );
    if args.work_dir.exists() {
        std::fs::remove_dir_all(&args.work_dir)?;
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let mut b = Bench {
        args,
        ward,
        native,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    eprintln!(
        "ward-bench: ward = {}, native = {}",
        b.ward.display(),
        b.native.display()
    );
    eprintln!("ward-bench: machine: {}", machine());
    let only = b.args.only.clone();
    let started = Instant::now();
    for name in &only {
        let t = Instant::now();
        eprintln!("\n== {name}");
        match name.as_str() {
            "roundtrip" => b.roundtrip()?,
            "throughput" => b.throughput()?,
            "startup" => b.startup()?,
            "cpu" => b.cpu()?,
            "memory" => b.memory()?,
            "instance" => b.instance()?,
            "pool" => b.pool()?,
            "python" => b.python()?,
            "many" => b.many()?,
            "soak" => b.soak()?,
            other => bail!("unknown benchmark {other:?}"),
        }
        eprintln!("   ({:.1} s)", t.elapsed().as_secs_f64());
    }
    print!("{}", b.report(started.elapsed()));
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = l[9..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb as f64 / (1024.0 * 1024.0))
        })
        .unwrap_or(0.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!("{cpu}, {cores} cores, {mem:.1} GiB RAM, load average {load}")
}

/// Lists `server`'s tools until `tool` is among them (its plugin loaded), at
/// most two minutes.
fn wait_for_tool(server: &mut Server, tool: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = server.request("tools/list", json!({}))?;
        let tools = list["tools"].as_array().cloned().unwrap_or_default();
        if tools.iter().any(|t| t["name"] == tool) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{tool} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `p` in [0, 1] of sorted `v`.
fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Summary of a latency sample: p50/p90/p99/max in µs.
fn summary(v: &mut [Duration]) -> String {
    v.sort_unstable();
    format!(
        "p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs (n = {})",
        us(pct(v, 0.5)),
        us(pct(v, 0.9)),
        us(pct(v, 0.99)),
        us(*v.last().unwrap()),
        v.len()
    )
}

/// Appends a custom section named `name` with `payload` to a component (or
/// module): id 0, the section size, the name's length and bytes, the payload.
/// It changes the bytes (so the sha256, so the cache key) and nothing else.
fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = wasm.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

impl Bench {
    fn work(&self, p: &str) -> PathBuf {
        self.args.work_dir.join(p)
    }

    fn spawn_ward(&self, plugins: &Path, cache: Option<&Path>, log: &str) -> Result<Server> {
        self.spawn_ward_env(plugins, cache, log, &[])
    }

    /// [`Self::spawn_ward`] with `env` set in ward's environment.
    fn spawn_ward_env(
        &self,
        plugins: &Path,
        cache: Option<&Path>,
        log: &str,
        env: &[(&str, &str)],
    ) -> Result<Server> {
        let mut cmd = Command::new(&self.ward);
        cmd.arg("serve").arg("--plugins").arg(plugins);
        match cache {
            Some(c) => cmd.arg("--cache-dir").arg(c),
            None => cmd.arg("--no-cache"),
        };
        cmd.env_remove("WARD_LOG")
            .env_remove("WARD_CACHE_DIR")
            .env_remove("WARD_HTTP_POOL")
            .envs(env.iter().copied());
        Server::spawn(cmd, &self.work(log))
    }

    fn spawn_native(&self) -> Result<Server> {
        Server::spawn(Command::new(&self.native), &self.work("native.log"))
    }

    /// A directory with only `hello.wasm` (and its policy, if any).
    fn hello_dir(&self) -> Result<PathBuf> {
        let dir = self.work("hello");
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(self.args.plugins.join("hello.wasm"), dir.join("hello.wasm"))?;
        }
        Ok(dir)
    }

    /// 20 copies of hello, each with distinct bytes: `hello00` .. `hello19`.
    fn twenty_dir(&self) -> Result<PathBuf> {
        let dir = self.work("twenty");
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            let hello = std::fs::read(self.args.plugins.join("hello.wasm"))?;
            for i in 0..20 {
                let name = format!("hello{i:02}");
                let bytes = with_custom_section(&hello, "ward-bench", name.as_bytes());
                std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
            }
        }
        Ok(dir)
    }

    // ---------------------------------------------------------------- 1

    fn roundtrip(&mut self) -> Result<()> {
        let n = self.args.roundtrips;
        let block = 1000.min(n).max(1);
        let template = call_template("hello_greet", &json!({"name": "bench"}));
        let hello = self.hello_dir()?;
        let cache = self.work("cache-hello");
        let mut ward = self.spawn_ward(&hello, Some(&cache), "ward-roundtrip.log")?;
        let mut native = self.spawn_native()?;
        ward.handshake()?;
        native.handshake()?;
        // Both answer the same thing.
        let (_, w) = ward.timed_call(&template)?;
        let (_, nv) = native.timed_call(&template)?;
        let text = |v: &Value| {
            v["result"]["content"][0]["text"]
                .as_str()
                .map(str::to_owned)
        };
        ensure!(
            text(&w) == text(&nv),
            "ward and native answer differently: {w} vs {nv}"
        );
        for _ in 0..2000.min(n) {
            ward.timed_call(&template)?;
            native.timed_call(&template)?;
        }
        // Interleaved blocks, so that load from elsewhere hits both alike.
        let (mut tw, mut tn, mut inner) = (Vec::new(), Vec::new(), Vec::new());
        let mut fuel = 0;
        while tw.len() < n {
            for _ in 0..block.min(n - tw.len()) {
                let (d, v) = ward.timed_call(&template)?;
                tw.push(d);
                let cost = &v["result"]["_meta"]["ward/cost"];
                let dur = cost["durationMs"]
                    .as_f64()
                    .context("no ward/cost.durationMs")?;
                fuel = cost["fuel"].as_u64().unwrap_or(0);
                inner.push(Duration::from_secs_f64(dur / 1e3));
            }
            for _ in 0..block.min(n - tn.len()) {
                tn.push(native.timed_call(&template)?.0);
            }
        }
        ward.shutdown()?;
        native.shutdown()?;
        eprintln!("   ward   round trip: {}", summary(&mut tw));
        eprintln!("   native round trip: {}", summary(&mut tn));
        eprintln!(
            "   ward in-process (ward/cost.durationMs): {}; fuel {fuel}",
            summary(&mut inner)
        );
        let (w50, w99, n50, n99) = (pct(&tw, 0.5), pct(&tw, 0.99), pct(&tn, 0.5), pct(&tn, 0.99));
        let (i50, i99) = (pct(&inner, 0.5), pct(&inner, 0.99));
        self.rows.push(Row {
            what: "1. hello_greet round trip p50, ward vs native rmcp".into(),
            measured: format!(
                "{:.1} µs vs {:.1} µs = {:.2}×",
                us(w50),
                us(n50),
                us(w50) / us(n50)
            ),
            goal: "≤ 1.2× (goal 1.0×)".into(),
            ratio: Some(us(w50) / us(n50) / 1.2),
        });
        self.rows.push(Row {
            what: "   round trip p99, ward vs native rmcp".into(),
            measured: format!(
                "{:.1} µs vs {:.1} µs = {:.2}×",
                us(w99),
                us(n99),
                us(w99) / us(n99)
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        self.rows.push(Row {
            what: "   ward-internal per call (ward/cost.durationMs) p50 / p99".into(),
            measured: format!("{:.1} µs / {:.1} µs; {fuel} fuel", us(i50), us(i99)),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- 2

    fn throughput(&mut self) -> Result<()> {
        let calls = self.args.throughput_calls;
        let template = call_template("hello_greet", &json!({"name": "bench"}));
        let hello = self.hello_dir()?;
        let cache = self.work("cache-hello");
        let mut rates = Vec::new();
        for (label, is_ward) in [("ward", true), ("native", false)] {
            let mut server = if is_ward {
                self.spawn_ward(&hello, Some(&cache), "ward-throughput.log")?
            } else {
                self.spawn_native()?
            };
            server.handshake()?;
            server.pipelined(&template, (calls / 10).max(1000), 16)?; // warm-up
            for in_flight in [1usize, 16, 64] {
                let (elapsed, errors) = server.pipelined(&template, calls, in_flight)?;
                ensure!(
                    errors == 0,
                    "{label}: {errors} error answers with {in_flight} in flight"
                );
                let rate = calls as f64 / elapsed.as_secs_f64();
                eprintln!(
                    "   {label:6} {in_flight:2} in flight: {calls} calls in {:.2} s = {rate:.0} calls/s",
                    elapsed.as_secs_f64()
                );
                rates.push((label, in_flight, rate));
            }
            server.shutdown()?;
        }
        let get = |l: &str, k: usize| rates.iter().find(|r| r.0 == l && r.1 == k).unwrap().2;
        for k in [16, 64, 1] {
            let (w, n) = (get("ward", k), get("native", k));
            let goal = k != 1;
            self.rows.push(Row {
                what: if k == 16 {
                    "2. throughput, 16 in flight, ward vs native rmcp".into()
                } else {
                    format!("   throughput, {k} in flight, ward vs native rmcp")
                },
                measured: format!("{w:.0}/s vs {n:.0}/s = {:.2}×", w / n),
                goal: if goal {
                    "≥ native (≥ 1.0×)".into()
                } else {
                    "(no goal)".into()
                },
                ratio: goal.then(|| n / w),
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- 3

    /// Spawn → initialize → tools/list answer; returns that time and the
    /// number of tools listed.
    fn time_startup(
        &self,
        mut cmd_server: impl FnMut() -> Result<Server>,
    ) -> Result<(Duration, usize)> {
        let start = Instant::now();
        let mut server = cmd_server()?;
        server.handshake()?;
        let list = server.request("tools/list", json!({}))?;
        let elapsed = start.elapsed();
        let tools = list["tools"].as_array().map_or(0, Vec::len);
        server.shutdown()?;
        Ok((elapsed, tools))
    }

    fn startup(&mut self) -> Result<()> {
        let runs = self.args.startups.max(1);
        let twenty = self.twenty_dir()?;
        let mut cold = Vec::new();
        for i in 0..runs {
            let cache = self.work(&format!("cache-cold-{i}"));
            let (d, tools) =
                self.time_startup(|| self.spawn_ward(&twenty, Some(&cache), "ward-startup.log"))?;
            ensure!(
                tools == 20,
                "cold start-up listed {tools} tools, expected 20"
            );
            cold.push(d);
            std::fs::remove_dir_all(&cache).ok();
        }
        let warm_cache = self.work("cache-twenty");
        // Populate the cache once.
        self.time_startup(|| self.spawn_ward(&twenty, Some(&warm_cache), "ward-startup.log"))?;
        let mut warm = Vec::new();
        for _ in 0..runs {
            let (d, tools) = self
                .time_startup(|| self.spawn_ward(&twenty, Some(&warm_cache), "ward-startup.log"))?;
            ensure!(
                tools == 20,
                "warm start-up listed {tools} tools, expected 20"
            );
            warm.push(d);
        }
        let mut none = Vec::new();
        for _ in 0..runs {
            none.push(
                self.time_startup(|| self.spawn_ward(&twenty, None, "ward-startup.log"))?
                    .0,
            );
        }
        let mut native = Vec::new();
        for _ in 0..runs {
            native.push(self.time_startup(|| self.spawn_native())?.0);
        }
        let mut empty = Vec::new();
        let empty_dir = self.work("empty");
        std::fs::create_dir_all(&empty_dir)?;
        for _ in 0..runs {
            empty.push(
                self.time_startup(|| {
                    self.spawn_ward(&empty_dir, Some(&warm_cache), "ward-startup.log")
                })?
                .0,
            );
        }
        for v in [&mut cold, &mut warm, &mut none, &mut native, &mut empty] {
            v.sort_unstable();
        }
        let line = |v: &[Duration]| {
            format!(
                "median {:.1} ms, min {:.1} ms, max {:.1} ms",
                ms(pct(v, 0.5)),
                ms(v[0]),
                ms(*v.last().unwrap())
            )
        };
        eprintln!("   ward, 20 plugins, cold cache:  {}", line(&cold));
        eprintln!("   ward, 20 plugins, warm cache:  {}", line(&warm));
        eprintln!("   ward, 20 plugins, --no-cache:  {}", line(&none));
        eprintln!("   ward, no plugins:              {}", line(&empty));
        eprintln!("   native rmcp server:            {}", line(&native));
        let w = ms(pct(&warm, 0.5));
        self.rows.push(Row {
            what: "3. start-up to first tools/list, 20 plugins, warm cache (median)".into(),
            measured: format!("{w:.1} ms (min {:.1})", ms(warm[0])),
            goal: "≤ 50 ms".into(),
            ratio: Some(w / 50.0),
        });
        self.rows.push(Row {
            what: "   same, cold cache (fresh --cache-dir) / --no-cache".into(),
            measured: format!(
                "{:.1} ms / {:.1} ms",
                ms(pct(&cold, 0.5)),
                ms(pct(&none, 0.5))
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        self.rows.push(Row {
            what: "   floors: ward with no plugins / native rmcp server".into(),
            measured: format!(
                "{:.1} ms / {:.1} ms",
                ms(pct(&empty, 0.5)),
                ms(pct(&native, 0.5))
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- 4

    fn cpu(&mut self) -> Result<()> {
        let n = self.args.cpu_calls.max(5);
        let stats = self.args.plugins.join("stats.wasm");
        ensure!(
            stats.is_file(),
            "{} missing; run `cargo xtask plugins`",
            stats.display()
        );
        let numbers: Vec<f64> = (0..self.args.cpu_numbers)
            .map(|i| ((i * 7919) % 10007) as f64 * 0.25)
            .collect();
        let arguments = json!({ "numbers": numbers });
        let arguments_text = arguments.to_string();
        let describe = "describe".to_string();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // plain, fuel + epochs, fuel only, epochs only.
        let runners = [(false, false), (true, true), (true, false), (false, true)]
            .into_iter()
            .map(|(f, e)| inproc::Runner::new(&stats, f, e))
            .collect::<Result<Vec<_>>>()?;

        // Through ward: the same component, the same arguments.
        let dir = self.work("cpu");
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&stats, dir.join("stats.wasm"))?;
        let template = call_template("stats_describe", &arguments);
        let mut ward = self.spawn_ward(&dir, Some(&self.work("cache-cpu")), "ward-cpu.log")?;
        ward.handshake()?;

        // Round robin, one call of each configuration in turn, so that load
        // from elsewhere on the machine hits all of them alike.
        let warm = (n / 5).max(2);
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); runners.len()];
        let (mut rt_ward, mut inner) = (Vec::new(), Vec::new());
        let (mut fuel, mut ward_fuel) = (0, 0);
        for i in 0..n + warm {
            for (k, runner) in runners.iter().enumerate() {
                let (d, f) = rt.block_on(runner.call(&describe, &arguments_text))?;
                if i >= warm {
                    times[k].push(d);
                }
                if k == 1 {
                    fuel = f;
                }
            }
            let (d, v) = ward.timed_call(&template)?;
            ensure!(
                v["result"]["isError"] != json!(true),
                "stats_describe failed: {v}"
            );
            if i < warm {
                continue;
            }
            let cost = &v["result"]["_meta"]["ward/cost"];
            inner.push(Duration::from_secs_f64(
                cost["durationMs"].as_f64().context("no durationMs")? / 1e3,
            ));
            ward_fuel = cost["fuel"].as_u64().unwrap_or(0);
            rt_ward.push(d);
        }
        drop(runners);
        for v in &mut times {
            v.sort_unstable();
        }
        let [plain, metered, fuel_only, epoch_only]: [Vec<Duration>; 4] =
            times.try_into().expect("four configurations");
        ward.shutdown()?;
        inner.sort_unstable();
        rt_ward.sort_unstable();

        let min = |v: &[Duration]| ms(v[0]);
        eprintln!(
            "   minima: plain {:.3} ms, fuel + epochs {:.3} ms, fuel only {:.3} ms, epochs only {:.3} ms, ward in-call {:.3} ms",
            min(&plain), min(&metered), min(&fuel_only), min(&epoch_only), min(&inner)
        );
        let p = ms(pct(&plain, 0.5));
        let m = ms(pct(&metered, 0.5));
        let w = ms(pct(&inner, 0.5));
        let r = ms(pct(&rt_ward, 0.5));
        eprintln!(
            "   stats_describe over {} numbers ({} KiB of arguments), medians of {} calls:",
            self.args.cpu_numbers,
            arguments_text.len() / 1024,
            plain.len()
        );
        eprintln!(
            "   in-process, plain wasmtime (no fuel, no epochs): {p:.3} ms (p90 {:.3})",
            ms(pct(&plain, 0.9))
        );
        eprintln!(
            "   in-process, fuel + epoch interruption:          {m:.3} ms (p90 {:.3}); {fuel} fuel",
            ms(pct(&metered, 0.9))
        );
        let (fo, eo) = (ms(pct(&fuel_only, 0.5)), ms(pct(&epoch_only, 0.5)));
        eprintln!(
            "   in-process, fuel only:                          {fo:.3} ms (p90 {:.3})",
            ms(pct(&fuel_only, 0.9))
        );
        eprintln!(
            "   in-process, epoch interruption only:            {eo:.3} ms (p90 {:.3})",
            ms(pct(&epoch_only, 0.9))
        );
        eprintln!("   ward, ward/cost.durationMs:                      {w:.3} ms (p90 {:.3}); {ward_fuel} fuel", ms(pct(&inner, 0.9)));
        eprintln!(
            "   ward, round trip over stdio:                     {r:.3} ms (p90 {:.3})",
            ms(pct(&rt_ward, 0.9))
        );
        self.rows.push(Row {
            what: format!("4. CPU-bound tool (stats_describe, {} numbers): ward in-call time vs plain wasmtime", self.args.cpu_numbers),
            measured: format!("{w:.2} ms vs {p:.2} ms = {:.2}×", w / p),
            goal: "≤ 1.3×".into(),
            ratio: Some(w / p / 1.3),
        });
        self.rows.push(Row {
            what: "   fuel + epochs alone (same engine set-up, in-process)".into(),
            measured: format!("{m:.2} ms vs {p:.2} ms = {:.2}×", m / p),
            goal: "(≤ 1.3×)".into(),
            ratio: None,
        });
        self.rows.push(Row {
            what: "   fuel only / epochs only (in-process)".into(),
            measured: format!("{:.2}× / {:.2}×", fo / p, eo / p),
            goal: "(no goal)".into(),
            ratio: None,
        });
        self.rows.push(Row {
            what: "   ward round trip over stdio (JSON parse, schema check, pipes)".into(),
            measured: format!("{r:.2} ms = {:.2}× plain in-process", r / p),
            goal: "(no goal)".into(),
            ratio: None,
        });
        if fuel != ward_fuel {
            self.notes.push(format!(
                "cpu: fuel in-process {fuel} vs in ward {ward_fuel}"
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- 6

    /// Not one of the goals: what one fresh instance + `greet` costs
    /// in-process with ward's engine set-up (fuel + epochs, pooling), and
    /// with pooling-allocator settings ward does not use, to tell the
    /// runtime what per-call work is worth changing.
    fn instance(&mut self) -> Result<()> {
        let hello = self.args.plugins.join("hello.wasm");
        let n = self.args.roundtrips.max(1000);
        let tool = "greet".to_string();
        let args = r#"{"name":"bench"}"#.to_string();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let variants = [
            ("wasmtime pooling defaults", inproc::Tuning::default()),
            (
                "+ linear_memory_keep_resident 64 KiB",
                inproc::Tuning {
                    keep_resident: 64 << 10,
                    ..Default::default()
                },
            ),
            (
                "+ linear_memory_keep_resident 256 KiB",
                inproc::Tuning {
                    keep_resident: 256 << 10,
                    ..Default::default()
                },
            ),
            (
                "+ linear_memory_keep_resident 1 MiB (ward until 2026-12-06)",
                inproc::Tuning {
                    keep_resident: 1 << 20,
                    ..Default::default()
                },
            ),
            (
                "+ linear_memory_keep_resident 4 MiB",
                inproc::Tuning {
                    keep_resident: 4 << 20,
                    ..Default::default()
                },
            ),
            (
                "+ keep_resident 256 KiB + pagemap_scan",
                inproc::Tuning {
                    keep_resident: 256 << 10,
                    pagemap_scan: true,
                    ..Default::default()
                },
            ),
            (
                "+ keep_resident 1 MiB + pagemap_scan (unsafe: issue 11)",
                inproc::Tuning {
                    keep_resident: 1 << 20,
                    pagemap_scan: true,
                    ..Default::default()
                },
            ),
            (
                "+ keep_resident 4 MiB + pagemap_scan",
                inproc::Tuning {
                    keep_resident: 4 << 20,
                    pagemap_scan: true,
                    ..Default::default()
                },
            ),
            (
                "+ decommit_batch_size 16",
                inproc::Tuning {
                    decommit_batch: 16,
                    ..Default::default()
                },
            ),
            (
                "+ keep_resident 64 KiB + decommit_batch_size 16 (ward)",
                inproc::Tuning {
                    keep_resident: 64 << 10,
                    decommit_batch: 16,
                    ..Default::default()
                },
            ),
            (
                "+ keep_resident 2 MiB",
                inproc::Tuning {
                    keep_resident: 2 << 20,
                    ..Default::default()
                },
            ),
        ];
        let mut base = None;
        for (label, tuning) in variants {
            let runner = inproc::Runner::tuned(&hello, true, true, &tuning)?;
            let (tool, args) = (tool.clone(), args.clone());
            // On a tokio worker, as in ward (a multi-threaded process: page
            // table changes cost TLB shoot-downs across threads).
            let mut times = rt.block_on(rt.spawn(async move {
                for _ in 0..n / 5 {
                    runner.call(&tool, &args).await?;
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(runner.call(&tool, &args).await?.0);
                }
                anyhow::Ok(v)
            }))??;
            eprintln!("   {label:45} {}", summary(&mut times));
            let p50 = us(pct(&times, 0.5));
            let rel = *base.get_or_insert(p50);
            self.rows.push(Row {
                what: format!("6. fresh instance + greet in-process: {label}"),
                measured: format!("p50 {p50:.1} µs ({:.2}×)", p50 / rel),
                goal: "(informational)".into(),
                ratio: None,
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- 5

    fn memory(&mut self) -> Result<()> {
        let total = self.args.memory_calls.max(20_000);
        let twenty = self.twenty_dir()?;
        let cache = self.work("cache-twenty");
        let mut ward = self.spawn_ward(&twenty, Some(&cache), "ward-memory.log")?;
        ward.handshake()?;
        let list = ward.request("tools/list", json!({}))?;
        ensure!(
            list["tools"].as_array().map_or(0, Vec::len) == 20,
            "expected 20 tools"
        );
        std::thread::sleep(Duration::from_millis(500));
        let pid = ward.pid();
        let (idle, _) = rss(pid)?;
        // Spread the calls over the 20 plugins, one chunk each in turn.
        let templates: Vec<String> = (0..20)
            .map(|i| call_template(&format!("hello{i:02}_greet"), &json!({"name": "bench"})))
            .collect();
        let mut done = 0u64;
        let mut chunk_ix = 0;
        let mut run_to = |target: u64, ward: &mut Server| -> Result<()> {
            while done < target {
                let k = (target - done).min(1000);
                let (_, errors) = ward.pipelined(&templates[chunk_ix % 20], k, 16)?;
                ensure!(errors == 0, "{errors} error answers");
                chunk_ix += 1;
                done += k;
            }
            Ok(())
        };
        let t = Instant::now();
        run_to(10_000, &mut ward)?;
        let (at10k, _) = rss(pid)?;
        run_to(100_000.min(total), &mut ward)?;
        let (at100k, _) = rss(pid)?;
        let mut last_report = Instant::now();
        let mut step = 100_000;
        while step < total {
            step = (step + 100_000).min(total);
            run_to(step, &mut ward)?;
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!("   ... {step} calls, RSS {:.1} MiB", mib(rss(pid)?.0));
                last_report = Instant::now();
            }
        }
        let (at_total, hwm) = rss(pid)?;
        let elapsed = t.elapsed();
        ward.shutdown()?;
        eprintln!(
            "   RSS idle {:.1} MiB; after 10k calls {:.1} MiB; after 100k {:.1} MiB; after {total} {:.1} MiB (peak {:.1} MiB); {total} calls in {:.1} s",
            mib(idle), mib(at10k), mib(at100k), mib(at_total), mib(hwm), elapsed.as_secs_f64()
        );
        self.rows.push(Row {
            what: format!("5. RSS after {total} calls vs after 10k (20 plugins, 16 in flight)"),
            measured: format!(
                "{:.1} MiB vs {:.1} MiB = {:.3}×",
                mib(at_total),
                mib(at10k),
                at_total as f64 / at10k as f64
            ),
            goal: "≤ 1.1×".into(),
            ratio: Some(at_total as f64 / at10k as f64 / 1.1),
        });
        self.rows.push(Row {
            what: "   RSS idle with 20 plugins / peak (VmHWM)".into(),
            measured: format!("{:.1} MiB / {:.1} MiB", mib(idle), mib(hwm)),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- 7

    /// One plugin making sequential HTTP requests to a loopback server:
    /// `fetch_get` calls of one GET each, through two wards side by side, one
    /// reusing connections (the default), one with `WARD_HTTP_POOL=off` (a
    /// connection per request, as before the pool). Rounds alternate between
    /// the two, and which goes first, so that load from elsewhere hits both
    /// alike.
    fn pool(&mut self) -> Result<()> {
        let n = self.args.pool_requests.max(1);
        let rounds = self.args.pool_rounds.max(1);
        let fetch = self.args.plugins.join("fetch.wasm");
        ensure!(
            fetch.is_file(),
            "{} not found; run `cargo xtask plugins`",
            fetch.display()
        );
        let site = site::Site::start()?;
        let dir = self.work("fetch");
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&fetch, dir.join("fetch.wasm"))?;
        std::fs::write(
            dir.join("fetch.toml"),
            format!("[network]\nallow = [\"127.0.0.1:{}\"]\n", site.port),
        )?;
        let cache = self.work("cache-fetch");
        let mut on = self.spawn_ward_env(&dir, Some(&cache), "ward-pool-on.log", &[])?;
        let mut off = self.spawn_ward_env(
            &dir,
            Some(&cache),
            "ward-pool-off.log",
            &[("WARD_HTTP_POOL", "off")],
        )?;
        let url = format!("http://127.0.0.1:{}/", site.port);
        let template = call_template("fetch_get", &json!({ "url": url }));
        let call = |server: &mut Server| -> Result<Duration> {
            let (d, v) = server.timed_call(&template)?;
            let result = &v["result"];
            ensure!(
                result["isError"] != json!(true) && result["content"][0]["text"] == site::BODY,
                "fetch_get failed: {v}"
            );
            Ok(d)
        };
        for server in [&mut on, &mut off] {
            server.handshake()?;
            wait_for_tool(server, "fetch_get")?;
            for _ in 0..50 {
                call(server)?;
            }
        }
        // Index 0: pooled; 1: not pooled.
        let mut totals: [Vec<Duration>; 2] = Default::default();
        let mut calls: [Vec<Duration>; 2] = Default::default();
        let mut opened = [0usize; 2];
        for round in 0..rounds {
            for k in 0..2 {
                let which = (round + k) % 2;
                let server = if which == 0 { &mut on } else { &mut off };
                let before = site.accepted();
                let start = Instant::now();
                for _ in 0..n {
                    calls[which].push(call(server)?);
                }
                totals[which].push(start.elapsed());
                opened[which] += site.accepted() - before;
            }
        }
        on.shutdown()?;
        off.shutdown()?;
        for t in &mut totals {
            t.sort_unstable();
        }
        let (on_total, off_total) = (pct(&totals[0], 0.5), pct(&totals[1], 0.5));
        let per_round = |k: usize| opened[k] as f64 / rounds as f64;
        eprintln!(
            "   {n} sequential fetch_get calls, median of {rounds} rounds: pooled {:.1} ms (min {:.1}), not pooled {:.1} ms (min {:.1}); connections opened per round {:.1} vs {:.1}",
            ms(on_total),
            ms(totals[0][0]),
            ms(off_total),
            ms(totals[1][0]),
            per_round(0),
            per_round(1),
        );
        let [mut on_calls, mut off_calls] = calls;
        eprintln!("   per call, pooled:     {}", summary(&mut on_calls));
        eprintln!("   per call, not pooled: {}", summary(&mut off_calls));
        self.rows.push(Row {
            what: format!(
                "7. {n} sequential HTTP GETs from one plugin (fetch_get, loopback server), pooled vs not (median of {rounds} rounds)"
            ),
            measured: format!(
                "{:.1} ms vs {:.1} ms = {:.2}× faster",
                ms(on_total),
                ms(off_total),
                ms(off_total) / ms(on_total)
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        let (on50, off50) = (pct(&on_calls, 0.5), pct(&off_calls, 0.5));
        self.rows.push(Row {
            what: "   per call p50, pooled vs not; connections opened per round".into(),
            measured: format!(
                "{:.1} µs vs {:.1} µs; {:.1} vs {:.1}",
                us(on50),
                us(off50),
                per_round(0),
                per_round(1)
            ),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }

    fn report(&self, elapsed: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n## ward-bench results\n");
        let _ = writeln!(s, "machine: {}", machine());
        let _ = writeln!(s, "total time: {:.0} s\n", elapsed.as_secs_f64());
        let _ = writeln!(
            s,
            "| benchmark | measured | goal | measured/goal | verdict |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in &self.rows {
            let (ratio, verdict) = match r.ratio {
                Some(x) => (format!("{x:.2}"), if x <= 1.0 { "met" } else { "MISSED" }),
                None => (String::new(), ""),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.what, r.measured, r.goal, ratio, verdict
            );
        }
        let _ = writeln!(s, "\n(measured/goal is oriented so that ≤ 1.00 meets the goal; for throughput it is goal/measured.)");
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

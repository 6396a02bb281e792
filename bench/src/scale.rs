//! Benchmarks 9, `many` (ward with many plugins: warm start-up, idle RSS
//! per plugin, the cost of a call with many loaded) and 10, `soak` (a long
//! pipelined run over many plugins while plugins are replaced).
//!
//! Both use copies of hello named `hello0000`, `hello0001`, ..., each with a
//! custom section naming it (distinct bytes, so distinct cache keys), and
//! share one compiled-artifact cache, `cache-many`: the soak's plugins are
//! the first of `many`'s, so after `many` the soak starts warm.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::client::{call_template, rss, Server};
use crate::{mib, ms, pct, summary, us, with_custom_section, Bench, Row};

/// The name of copy `i`.
fn copy_name(i: usize) -> String {
    format!("hello{i:04}")
}

/// The number of tools `server` lists, following `nextCursor` through every
/// page (ward pages lists, 100 items a page by default), as a client would.
fn tool_count(server: &mut Server) -> Result<usize> {
    let mut count = 0;
    let mut params = json!({});
    for _ in 0..100_000 {
        let mut list = server.request("tools/list", params)?;
        count += list["tools"].as_array().map_or(0, Vec::len);
        match list.get_mut("nextCursor").map(Value::take) {
            Some(Value::String(cursor)) => params = json!({ "cursor": cursor }),
            _ => return Ok(count),
        }
    }
    anyhow::bail!("tools/list never ended")
}

/// Lists tools (every page) until there are `n`, at most `limit`; returns
/// how many listings it took.
fn wait_for_count(
    server: &mut Server,
    n: usize,
    limit: Duration,
    pause: Duration,
) -> Result<usize> {
    let deadline = Instant::now() + limit;
    let mut lists = 0;
    loop {
        lists += 1;
        let found = tool_count(server)?;
        if found == n {
            return Ok(lists);
        }
        ensure!(found < n, "listed {found} tools, expected {n}");
        ensure!(
            Instant::now() < deadline,
            "only {found} of {n} tools after {} s",
            limit.as_secs()
        );
        std::thread::sleep(pause);
    }
}

/// RssAnon and RssFile of `pid` (bytes): anonymous memory vs file-backed
/// pages (the mapped compiled artifacts of the cache count there).
fn rss_split(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// Mean of `v`.
fn mean(v: &[u64]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

impl Bench {
    /// `n` copies of hello in `work/NAME` (created once).
    fn copies_dir(&self, name: &str, n: usize) -> Result<PathBuf> {
        let dir = self.work(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            let hello = std::fs::read(self.args.plugins.join("hello.wasm"))?;
            for i in 0..n {
                let name = copy_name(i);
                let bytes = with_custom_section(&hello, "ward-bench", name.as_bytes());
                std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
            }
        }
        Ok(dir)
    }

    /// Starts ward on `dir` until it lists `n` tools (compiling what the
    /// cache lacks), then stops it.
    fn populate(&self, dir: &Path, cache: &Path, n: usize, log: &str) -> Result<()> {
        let t = Instant::now();
        let mut ward = self.spawn_ward(dir, Some(cache), log)?;
        ward.handshake()?;
        wait_for_count(
            &mut ward,
            n,
            Duration::from_secs(3600),
            Duration::from_millis(500),
        )?;
        ward.shutdown()?;
        eprintln!(
            "   cache populated for {n} plugins in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Spawn → initialize → the first tools/list that lists `n` tools.
    /// Returns that time and how many lists it took.
    fn time_full_list(&self, dir: &Path, cache: &Path, n: usize) -> Result<(Duration, usize)> {
        let start = Instant::now();
        let mut ward = self.spawn_ward(dir, Some(cache), "ward-many.log")?;
        ward.handshake()?;
        let lists = wait_for_count(
            &mut ward,
            n,
            Duration::from_secs(600),
            Duration::from_millis(1),
        )?;
        let elapsed = start.elapsed();
        ward.shutdown()?;
        Ok((elapsed, lists))
    }

    // ---------------------------------------------------------------- 9

    pub(crate) fn many(&mut self) -> Result<()> {
        let n = self.args.many.max(1);
        let runs = self.args.many_startups.max(1);
        let dir = self.copies_dir(&format!("many-{n}"), n)?;
        let cache = self.work("cache-many");
        self.populate(&dir, &cache, n, "ward-many.log")?;

        // Warm start-up to a full tools/list.
        let mut warm = Vec::new();
        let mut extra_lists = 0;
        for _ in 0..runs {
            let (d, lists) = self.time_full_list(&dir, &cache, n)?;
            extra_lists += lists - 1;
            warm.push(d);
        }
        warm.sort_unstable();
        let empty_dir = self.work("empty");
        std::fs::create_dir_all(&empty_dir)?;
        let mut empty = Vec::new();
        for _ in 0..runs {
            empty.push(self.time_full_list(&empty_dir, &cache, 0)?.0);
        }
        empty.sort_unstable();
        eprintln!(
            "   warm start-up to a full tools/list, {n} plugins: median {:.1} ms, min {:.1} ms, max {:.1} ms ({runs} runs, every page of the paginated list; {extra_lists} listings came back incomplete and were repeated)",
            ms(pct(&warm, 0.5)),
            ms(warm[0]),
            ms(*warm.last().unwrap())
        );
        eprintln!(
            "   same, empty directory: median {:.1} ms",
            ms(pct(&empty, 0.5))
        );

        // Idle RSS: N plugins vs an empty directory, 500 ms after the list.
        let mut base = self.spawn_ward(&empty_dir, Some(&cache), "ward-many-empty.log")?;
        base.handshake()?;
        tool_count(&mut base)?;
        let mut full = self.spawn_ward(&dir, Some(&cache), "ward-many.log")?;
        full.handshake()?;
        wait_for_count(
            &mut full,
            n,
            Duration::from_secs(600),
            Duration::from_millis(5),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        let (rss0, _) = rss(base.pid())?;
        let (rss_n, _) = rss(full.pid())?;
        let (anon0, file0) = rss_split(base.pid());
        let (anon_n, file_n) = rss_split(full.pid());
        base.shutdown()?;
        let per = (rss_n as f64 - rss0 as f64) / n as f64;
        eprintln!(
            "   RSS idle: {:.1} MiB with {n} plugins, {:.1} MiB with none: {:.3} MiB per plugin",
            mib(rss_n),
            mib(rss0),
            per / (1024.0 * 1024.0)
        );
        let per_anon = (anon_n as f64 - anon0 as f64) / n as f64 / (1024.0 * 1024.0);
        let per_file = (file_n as f64 - file0 as f64) / n as f64 / (1024.0 * 1024.0);
        eprintln!(
            "   of which RssAnon {:.1} vs {:.1} MiB ({per_anon:.3} MiB per plugin), RssFile {:.1} vs {:.1} MiB ({per_file:.3} MiB per plugin)",
            mib(anon_n),
            mib(anon0),
            mib(file_n),
            mib(file0)
        );

        // The cost of a call: ward with 1 plugin vs ward with N (one tool
        // of the N, and calls spread over all N), interleaved blocks.
        let calls = self.args.many_roundtrips.max(1);
        let block = 500.min(calls);
        let mut one = self.spawn_ward(
            &self.hello_dir()?,
            Some(&self.work("cache-hello")),
            "ward-many-one.log",
        )?;
        one.handshake()?;
        wait_for_count(
            &mut one,
            1,
            Duration::from_secs(600),
            Duration::from_millis(50),
        )?;
        let single = call_template("hello_greet", &json!({"name": "bench"}));
        let first = call_template(
            &format!("{}_greet", copy_name(0)),
            &json!({"name": "bench"}),
        );
        let spread: Vec<String> = (0..n)
            .map(|i| {
                call_template(
                    &format!("{}_greet", copy_name(i)),
                    &json!({"name": "bench"}),
                )
            })
            .collect();
        let check = |v: &Value| -> Result<()> {
            ensure!(
                v["result"]["content"][0]["text"] == "Hello, bench!",
                "unexpected answer {v}"
            );
            Ok(())
        };
        for i in 0..(calls / 10).max(n.min(5000)) {
            check(&one.timed_call(&single)?.1)?;
            check(&full.timed_call(&first)?.1)?;
            check(&full.timed_call(&spread[i % n])?.1)?;
        }
        let (mut t1, mut tn, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        let mut k = 0;
        while t1.len() < calls {
            let b = block.min(calls - t1.len());
            for _ in 0..b {
                t1.push(one.timed_call(&single)?.0);
            }
            for _ in 0..b {
                tn.push(full.timed_call(&first)?.0);
            }
            for _ in 0..b {
                ts.push(full.timed_call(&spread[k % n])?.0);
                k += 1;
            }
        }
        let (rss_after, _) = rss(full.pid())?;
        one.shutdown()?;
        full.shutdown()?;
        eprintln!(
            "   round trip, 1 plugin loaded:            {}",
            summary(&mut t1)
        );
        eprintln!(
            "   round trip, {n} loaded, one tool:        {}",
            summary(&mut tn)
        );
        eprintln!(
            "   round trip, {n} loaded, spread over all: {}",
            summary(&mut ts)
        );
        eprintln!(
            "   RSS with {n} plugins after {} calls: {:.1} MiB",
            2 * calls,
            mib(rss_after)
        );

        let w = ms(pct(&warm, 0.5));
        self.rows.push(Row {
            what: format!("9. warm start-up to a full tools/list, {n} plugins (median of {runs})"),
            measured: format!(
                "{w:.1} ms (min {:.1}; empty directory {:.1})",
                ms(warm[0]),
                ms(pct(&empty, 0.5))
            ),
            goal: "≤ 200 ms (1,000 plugins)".into(),
            ratio: Some(w / 200.0),
        });
        let per_mib = per / (1024.0 * 1024.0);
        self.rows.push(Row {
            what: format!("   RSS idle per plugin: (RSS with {n} − RSS with none) / {n}"),
            measured: format!(
                "{per_mib:.3} MiB ({:.1} MiB vs {:.1} MiB)",
                mib(rss_n),
                mib(rss0)
            ),
            goal: "≤ 0.2 MiB".into(),
            ratio: Some(per_mib / 0.2),
        });
        self.rows.push(Row {
            what: "   of which anonymous (RssAnon) / file-backed (RssFile) per plugin".into(),
            measured: format!("{per_anon:.3} MiB / {per_file:.3} MiB"),
            goal: "(no goal)".into(),
            ratio: None,
        });
        let (p1, pn, ps) = (us(pct(&t1, 0.5)), us(pct(&tn, 0.5)), us(pct(&ts, 0.5)));
        self.rows.push(Row {
            what: format!(
                "   greet round trip p50, {n} plugins loaded (calls spread over all) vs 1"
            ),
            measured: format!("{ps:.1} µs vs {p1:.1} µs = {:.2}×", ps / p1),
            goal: "≤ 1.1× (independent of N)".into(),
            ratio: Some(ps / p1 / 1.1),
        });
        self.rows.push(Row {
            what: format!("   same, {n} loaded, always the same tool, vs 1"),
            measured: format!("{pn:.1} µs vs {p1:.1} µs = {:.2}×", pn / p1),
            goal: "(no goal)".into(),
            ratio: None,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- 10

    pub(crate) fn soak(&mut self) -> Result<()> {
        let p = self.args.soak_plugins.max(1);
        let calls = self.args.soak_calls.max(1);
        let in_flight = self.args.soak_in_flight.max(1);
        let every = Duration::from_millis(self.args.soak_replace_ms.max(1));
        let dir = self.copies_dir("soak", p)?;
        let cache = self.work("cache-many");
        self.populate(&dir, &cache, p, "ward-soak-populate.log")?;
        let log = self.work("ward-soak.log");
        let mut ward = self.spawn_ward(&dir, Some(&cache), "ward-soak.log")?;
        ward.handshake()?;
        wait_for_count(
            &mut ward,
            p,
            Duration::from_secs(600),
            Duration::from_millis(20),
        )?;
        let pid = ward.pid();
        let (idle, _) = rss(pid)?;
        let tools: Vec<String> = (0..p).map(|i| format!("{}_greet", copy_name(i))).collect();
        // Request `id` calls tool `id % p` with name `c{id}`: the answer must
        // be `Hello, c{id}!`, so a mixed-up answer is caught too.
        let line = |id: u64, buf: &mut Vec<u8>| {
            use std::io::Write as _;
            let _ = writeln!(
                buf,
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"name":"c{id}"}}}}}}"#,
                tools[(id % p as u64) as usize]
            );
        };

        // Warm-up (every plugin's first calls), outside the measured run.
        let warm = (calls / 20).clamp(1000.min(calls), 50_000);
        let mut warm_bad = 0u64;
        ward.pipelined_each(warm, in_flight, Duration::from_secs(60), line, |l| {
            if l.contains("\"error\":") || l.contains("\"isError\":true") {
                warm_bad += 1;
            }
            Ok(())
        })?;
        ensure!(warm_bad == 0, "{warm_bad} error answers in the warm-up");
        let (after_warm, _) = rss(pid)?;
        let loads_before = count_loads(&log);

        // The measured run.
        let base = ward.next_id();
        let t0 = Instant::now();
        let sent: Vec<AtomicU64> = (0..calls).map(|_| AtomicU64::new(0)).collect();
        let mut answered = vec![0u8; calls as usize];
        let mut latency: Vec<u32> = Vec::with_capacity(calls as usize);
        let (mut rpc_errors, mut tool_errors, mut wrong_text, mut unknown) =
            (0u64, 0u64, 0u64, 0u64);
        let mut samples_err: Vec<String> = Vec::new();
        let stop = AtomicBool::new(false);
        let samples: Mutex<Vec<u64>> = Mutex::new(Vec::new());
        let replaced = AtomicU64::new(0);
        let hello = std::fs::read(self.args.plugins.join("hello.wasm"))?;
        let sample_every = Duration::from_millis(self.args.soak_sample_ms.max(10));
        let (elapsed, seen) = std::thread::scope(|s| -> Result<(Duration, u64)> {
            // RSS sampler.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((r, _)) = rss(pid) {
                        samples.lock().unwrap().push(r);
                    }
                    std::thread::sleep(sample_every);
                }
            });
            // Replacer: every `every`, the next plugin in turn gets new bytes
            // (never seen before: a new version, compiled on load), written
            // to a hidden temporary name and renamed over the old file.
            let replacer = s.spawn(|| -> Result<()> {
                let mut r = 0u64;
                let mut next = Instant::now() + every;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    next += every;
                    let k = (r % p as u64) as usize;
                    let name = copy_name(k);
                    let bytes = with_custom_section(
                        &with_custom_section(&hello, "ward-bench", name.as_bytes()),
                        "ward-bench-soak",
                        format!("replacement {r}").as_bytes(),
                    );
                    let tmp = dir.join(format!(".{name}.tmp"));
                    std::fs::write(&tmp, bytes)?;
                    std::fs::rename(&tmp, dir.join(format!("{name}.wasm")))?;
                    r += 1;
                    replaced.store(r, Ordering::Relaxed);
                }
                Ok(())
            });
            let result = ward.pipelined_each(
                calls,
                in_flight,
                Duration::from_secs(60),
                |id, buf| {
                    sent[(id - base) as usize]
                        .store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    line(id, buf);
                },
                |l| {
                    let now = t0.elapsed().as_nanos() as u64;
                    let v: Value = serde_json::from_str(l)?;
                    let Some(id) = v["id"].as_u64() else {
                        unknown += 1;
                        return Ok(());
                    };
                    let ix = id.wrapping_sub(base);
                    if ix >= calls {
                        unknown += 1;
                        return Ok(());
                    }
                    let ix = ix as usize;
                    answered[ix] = answered[ix].saturating_add(1);
                    latency.push(
                        ((now.saturating_sub(sent[ix].load(Ordering::Relaxed))) / 1000) as u32,
                    );
                    let mut bad = |what: &str, count: &mut u64| {
                        *count += 1;
                        if samples_err.len() < 5 {
                            samples_err.push(format!("{what}: {}", l.trim_end()));
                        }
                    };
                    if v.get("error").is_some() {
                        bad("JSON-RPC error", &mut rpc_errors);
                    } else if v["result"]["isError"] == json!(true) {
                        bad("isError", &mut tool_errors);
                    } else if v["result"]["content"][0]["text"].as_str()
                        != Some(format!("Hello, c{id}!").as_str())
                    {
                        bad("wrong text", &mut wrong_text);
                    }
                    Ok(())
                },
            );
            stop.store(true, Ordering::Relaxed);
            replacer.join().expect("replacer panicked")?;
            result
        })?;
        let replacements = replaced.load(Ordering::Relaxed);
        // Let the last replacement land before counting reloads.
        std::thread::sleep(Duration::from_millis(1500));
        let listed = if seen == calls {
            Some(tool_count(&mut ward)?)
        } else {
            None
        };
        let (end, hwm) = rss(pid).unwrap_or((0, 0));
        ward.shutdown()?;
        let reloads = count_loads(&log).saturating_sub(loads_before);
        let lost = answered.iter().filter(|&&a| a == 0).count() as u64;
        let duplicates = answered
            .iter()
            .map(|&a| a.saturating_sub(1) as u64)
            .sum::<u64>();
        let wrong = rpc_errors + tool_errors + wrong_text + unknown + duplicates;
        for e in &samples_err {
            eprintln!("   {e}");
        }
        let samples = samples.into_inner().unwrap();
        let tenth = (samples.len() / 10).max(1);
        let (first, last) = (
            mean(&samples[..tenth.min(samples.len())]),
            mean(&samples[samples.len().saturating_sub(tenth)..]),
        );
        let growth = last / first;
        latency.sort_unstable();
        let lat = |q: f64| -> f64 {
            if latency.is_empty() {
                0.0
            } else {
                latency[((latency.len() - 1) as f64 * q).round() as usize] as f64
            }
        };
        let rate = seen as f64 / elapsed.as_secs_f64();
        eprintln!(
            "   {seen} of {calls} answered in {:.1} s ({rate:.0} calls/s), {in_flight} in flight over {p} plugins; {replacements} replacements written, {reloads} loads logged",
            elapsed.as_secs_f64()
        );
        eprintln!(
            "   lost {lost}; JSON-RPC errors {rpc_errors}, isError {tool_errors}, wrong text {wrong_text}, duplicate answers {duplicates}, unknown ids {unknown}"
        );
        eprintln!(
            "   latency p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
            lat(0.5),
            lat(0.9),
            lat(0.99),
            lat(0.999),
            lat(1.0)
        );
        eprintln!(
            "   RSS: idle {:.1} MiB, after warm-up ({warm} calls) {:.1} MiB; {} samples, first 10 % {:.1} MiB, last 10 % {:.1} MiB ({growth:.3}×); at the end {:.1} MiB, peak {:.1} MiB; tools listed at the end {listed:?}",
            mib(idle),
            mib(after_warm),
            samples.len(),
            first / (1024.0 * 1024.0),
            last / (1024.0 * 1024.0),
            mib(end),
            mib(hwm)
        );
        self.rows.push(Row {
            what: format!(
                "10. soak: {calls} calls over {p} plugins, {in_flight} in flight, a plugin replaced every {:.1} s: lost / wrong answers",
                every.as_secs_f64()
            ),
            measured: format!(
                "{lost} lost, {wrong} wrong ({rpc_errors} JSON-RPC errors, {tool_errors} isError, {wrong_text} wrong text, {duplicates} duplicates); {replacements} replacements, {reloads} reloads logged"
            ),
            goal: "0 (measured/goal = the count)".into(),
            ratio: Some((lost + wrong) as f64),
        });
        self.rows.push(Row {
            what: "    RSS, mean of the last 10 % of samples vs the first 10 %".into(),
            measured: format!(
                "{:.1} MiB vs {:.1} MiB = {growth:.3}× ({} samples; peak {:.1} MiB)",
                last / (1024.0 * 1024.0),
                first / (1024.0 * 1024.0),
                samples.len(),
                mib(hwm)
            ),
            goal: "≤ 1.05×".into(),
            ratio: Some(growth / 1.05),
        });
        self.rows.push(Row {
            what: "    latency p50 / p99 / max (write of the request → its answer read); rate"
                .into(),
            measured: format!(
                "{:.1} / {:.1} / {:.1} µs; {rate:.0} calls/s",
                lat(0.5),
                lat(0.99),
                lat(1.0)
            ),
            goal: "(recorded)".into(),
            ratio: None,
        });
        Ok(())
    }
}

/// How many times ward logged `serving plugin` in `log` (once per load or
/// reload applied).
fn count_loads(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|s| s.matches("serving plugin `").count() as u64)
        .unwrap_or(0)
}

//! Hot-reload latency: time from renaming a plugin into the watched
//! directory to the `notifications/tools/list_changed` a connected client
//! receives. Prints p50/p95 over many drops.
//!
//! Run: `cargo build --release -p ward -p ward-bench && cargo xtask plugins &&
//! target/release/reload-latency [DROPS]` (ward and hello.wasm are found in
//! target/release and target/plugins).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let drops: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100);
    let exe = std::env::current_exe()?;
    let release = exe.parent().unwrap();
    let repo: PathBuf = release.parent().unwrap().parent().unwrap().to_path_buf();
    let ward = release.join("ward");
    let hello = std::fs::read(repo.join("target/plugins/hello.wasm"))?;
    let dir = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;

    let mut child = Command::new(&ward)
        .args(["serve", "--plugins"])
        .arg(dir.path())
        .arg("--cache-dir")
        .arg(cache.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"bench","version":"0"}}}}}}"#
    )?;
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )?;
    rx.recv_timeout(Duration::from_secs(10))?;

    // Alternate between adding and removing one plugin: every drop changes
    // the tool list. The same bytes each time, so after the first drop the
    // compiled artifact comes from the cache, as it does for an operator.
    let mut latencies = Vec::new();
    for i in 0..drops * 2 {
        let adding = i % 2 == 0;
        let started = if adding {
            publish(dir.path(), &hello)?
        } else {
            let t = Instant::now();
            std::fs::remove_file(dir.path().join("p.wasm"))?;
            t
        };
        loop {
            let (at, line) = rx.recv_timeout(Duration::from_secs(10))?;
            if line.contains("notifications/tools/list_changed") {
                if adding && i > 0 {
                    latencies.push(at - started);
                }
                break;
            }
        }
    }
    drop(stdin);
    let _ = child.wait();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "reload latency (rename → tools/list_changed), {} drops: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    Ok(())
}

/// Writes `bytes` under a temporary name and renames it to `p.wasm`;
/// returns the instant of the rename.
fn publish(dir: &Path, bytes: &[u8]) -> anyhow::Result<Instant> {
    let tmp = dir.join(".p.wasm.tmp");
    std::fs::write(&tmp, bytes)?;
    let t = Instant::now();
    std::fs::rename(&tmp, dir.join("p.wasm"))?;
    Ok(t)
}

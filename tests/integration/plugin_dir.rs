//! The plugin directory as an attacker shapes it (issue 11, item 2): FIFOs,
//! symlinks to devices and streams, oversized files, slow compiles. Each time
//! ward answers `initialize` promptly, keeps serving the other plugins, and
//! says which file it refused and why.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::util::*;

/// Starts ward on `dir` (extra `args` after `serve --plugins DIR`), failing
/// the test if `initialize` is not answered within 20 s.
async fn start_promptly(dir: &Path, args: &[&str]) -> Ward {
    let mut cmd = serve_command(dir);
    cmd.args(args);
    match tokio::time::timeout(
        Duration::from_secs(20),
        Ward::start_command(cmd, Era::Legacy("2025-11-25")),
    )
    .await
    {
        Ok(ward) => ward,
        Err(_) => panic!("ward did not answer initialize within 20 s"),
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

async fn hello_answers(ward: &Ward) {
    let r = ward.call("hello_greet", json!({"name": "Neighbour"})).await;
    assert!(
        !is_error(&r) && text(&r).contains("Neighbour"),
        "another plugin stopped answering: {r:?}"
    );
}

/// Waits until ward logged a refusal of `file` containing every `words`.
async fn refused(ward: &Ward, file: &str, words: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = ward.log();
        if log
            .lines()
            .any(|l| l.contains(file) && words.iter().all(|w| l.contains(w)))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal of {file} saying {words:?}; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fifos_named_like_plugins_or_policies_are_refused_without_blocking() {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    mkfifo(&dir.path().join("stats.toml"));
    mkfifo(&dir.path().join("pipe.wasm"));
    let ward = start_promptly(dir.path(), &[]).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    hello_answers(&ward).await;
    refused(&ward, "stats.toml", &["not a regular file"]).await;
    refused(&ward, "pipe.wasm", &["not a regular file"]).await;
}

#[tokio::test]
async fn symlinks_are_followed_only_to_regular_files() {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("hello", "stdin");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(wasm("stats"), elsewhere.path().join("stats.wasm")).unwrap();
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap()
    };
    link(Path::new("/dev/zero"), "zero.wasm");
    // Reading this would read ward's own stdin: the client's messages.
    link(Path::new("/proc/self/fd/0"), "stdin.toml");
    link(&elsewhere.path().join("stats.wasm"), "linked.wasm");
    let ward = start_promptly(dir.path(), &[]).await;
    assert_eq!(
        ward.tool_names().await,
        vec!["hello_greet", "linked_describe"]
    );
    hello_answers(&ward).await;
    refused(&ward, "zero.wasm", &["not a regular file"]).await;
    refused(&ward, "stdin.toml", &["not a regular file"]).await;
}

#[tokio::test]
async fn a_policy_linked_to_dev_zero_is_refused() {
    // Run only where reading /dev/zero cannot take the machine's memory: this
    // is the fixed code's test; on the code of issue 11 it read until OOM.
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("hello", "zero");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.toml")).unwrap();
    let ward = start_promptly(dir.path(), &[]).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    refused(&ward, "zero.toml", &["not a regular file"]).await;
}

#[tokio::test]
async fn oversized_files_are_refused_naming_the_cap() {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("hello", "verbose");
    // A 40 GiB sparse file: no disk space, but its size says 40 GiB.
    let big = std::fs::File::create(dir.path().join("big.wasm")).unwrap();
    big.set_len(40 << 30).unwrap();
    // A 2 MiB policy of comments: valid TOML, over the 1 MiB cap.
    let line = format!("# {}\n", "x".repeat(1021));
    dir.policy("verbose", &line.repeat(2048));
    let ward = start_promptly(dir.path(), &[]).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    hello_answers(&ward).await;
    refused(&ward, "big.wasm", &["larger than", "256 MiB"]).await;
    refused(&ward, "verbose.toml", &["larger than", "1 MiB"]).await;
}

#[tokio::test]
async fn a_compile_past_its_deadline_is_refused_and_the_rest_serve() {
    // hello comes from a warm cache; the Python plugin takes seconds to
    // compile, so it cannot finish within a 1 s deadline.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let warm = start_promptly(dir.path(), &["--cache-dir", cache_dir]).await;
    warm.wait_log("cached=false").await;
    drop(warm);
    dir.plugin("python-hello", "python-hello");
    let ward = start_promptly(
        dir.path(),
        &["--cache-dir", cache_dir, "--compile-timeout", "1"],
    )
    .await;
    assert_eq!(
        ward.tool_names().await,
        vec!["hello_greet"],
        "{}",
        ward.log()
    );
    hello_answers(&ward).await;
    refused(&ward, "python-hello.wasm", &["compiling", "1s"]).await;
}

#[tokio::test]
async fn a_slow_plugin_loads_in_the_background_after_the_startup_wait() {
    let dir = Dir::new();
    dir.plugin("hello", "hello")
        .plugin("python-hello", "python-hello");
    let mut ward = start_promptly(dir.path(), &["--no-cache", "--startup-wait", "0"]).await;
    // Answered before the seconds-long compile finished…
    let first = ward.tool_names().await;
    assert!(
        !first.iter().any(|n| n.starts_with("python-hello")),
        "{first:?}"
    );
    // …and the slow plugin appears later, announced. (A cold compile of
    // python-hello on a busy machine can take a while: allow two minutes.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let names = ward.tool_names().await;
        if names.iter().any(|n| n == "python-hello_greet") {
            assert!(names.iter().any(|n| n == "hello_greet"), "{names:?}");
            break;
        }
        match tokio::time::timeout_at(deadline, ward.notes.recv()).await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("ward went away; log:\n{}", ward.log()),
            Err(_) => panic!("python-hello never appeared; log:\n{}", ward.log()),
        }
    }
    hello_answers(&ward).await;
}

#[tokio::test]
async fn check_waits_for_everything_and_fails_on_any_refusal() {
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    mkfifo(&dir.path().join("stats.toml"));
    let mut cmd = tokio::process::Command::new(ward_bin());
    cmd.arg("check")
        .arg(dir.path())
        .env("WARD_CACHE_DIR", repo().join("target/test-cache"))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("ward check did not finish within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("ok      hello"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("FAILED")
            && l.contains("stats.toml")
            && l.contains("not a regular file")),
        "{stdout}"
    );
}

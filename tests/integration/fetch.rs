//! The `fetch` example plugin: GET over wasi:http, HTML as Markdown, text as
//! is, and errors (policy refusal, HTTP status, content type) as tool errors.

use serde_json::json;

use crate::util::*;

const PAGE: &str = "<!doctype html><html><head><title>Test page</title>\
    <style>body { color: red }</style><script>alert('no')</script></head>\
    <body><h1>Title</h1><p>Some <b>bold</b> text and \
    <a href=\"https://example.com/docs\">the docs</a>.</p></body></html>";

/// A loopback HTTP/1.1 server answering by path: `/` an HTML page,
/// `/notes.txt` plain text, `/logo.png` an image, `/old` a redirect, anything
/// else 404.
async fn site() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, headers, body): (&str, &str, &[u8]) = match path {
                    "/" => (
                        "200 OK",
                        "content-type: text/html; charset=utf-8\r\n",
                        PAGE.as_bytes(),
                    ),
                    "/notes.txt" => (
                        "200 OK",
                        "content-type: text/plain\r\n",
                        b"plain <b>text</b>, as is\n",
                    ),
                    "/logo.png" => ("200 OK", "content-type: image/png\r\n", b"\x89PNG"),
                    "/old" => ("301 Moved Permanently", "location: /\r\n", b""),
                    _ => ("404 Not Found", "content-type: text/plain\r\n", b"not here"),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
            });
        }
    });
    port
}

async fn get(ward: &Ward, url: String) -> (bool, String) {
    let result = ward.call("fetch_get", json!({ "url": url })).await;
    (is_error(&result), text(&result))
}

#[tokio::test]
async fn fetch_returns_pages_as_markdown_and_refuses_what_the_policy_does_not_allow() {
    let (port, other) = (site().await, site().await);
    let dir = Dir::new();
    // Loopback is reached only when that very address (and port) is listed;
    // `.invalid` names never resolve.
    dir.plugin("fetch", "fetch").policy(
        "fetch",
        &format!("[network]\nallow = [\"127.0.0.1:{port}\", \"no-such-host.invalid:80\"]\n"),
    );
    let ward = Ward::start(dir.path()).await;
    let base = format!("http://127.0.0.1:{port}");

    let (err, page) = get(&ward, format!("{base}/")).await;
    assert!(!err, "{page}");
    assert!(page.contains("# Title"), "{page}");
    assert!(
        page.contains("[the docs](https://example.com/docs)"),
        "{page}"
    );
    assert!(page.contains("**bold**"), "{page}");
    assert!(!page.contains('<'), "HTML left in the Markdown: {page}");
    assert!(!page.contains("alert") && !page.contains("color"), "{page}");

    let (err, plain) = get(&ward, format!("{base}/notes.txt")).await;
    assert!(!err, "{plain}");
    assert_eq!(plain, "plain <b>text</b>, as is\n");

    // Another port of the same address is not listed: ward refuses it, and
    // logs the entry that would allow it.
    let (err, refused) = get(&ward, format!("http://127.0.0.1:{other}/")).await;
    assert!(err, "{refused}");
    assert!(
        refused.contains("refused by ward's network policy") && refused.contains("network.allow"),
        "{refused}"
    );
    ward.wait_log(&format!("add \"127.0.0.1:{other}\" to `network.allow`"))
        .await;
    // A name that resolves to loopback is refused too, even on the listed port.
    let (err, named) = get(&ward, format!("http://localhost:{port}/")).await;
    assert!(err, "{named}");
    assert!(
        named.contains("refused by ward's network policy"),
        "{named}"
    );

    let (err, missing) = get(&ward, format!("{base}/nope")).await;
    assert!(err, "{missing}");
    assert!(missing.contains("HTTP 404 Not Found"), "{missing}");

    let (err, moved) = get(&ward, format!("{base}/old")).await;
    assert!(err, "{moved}");
    assert!(
        moved.contains("HTTP 301") && moved.contains("redirects are not followed"),
        "{moved}"
    );

    let (err, image) = get(&ward, format!("{base}/logo.png")).await;
    assert!(err, "{image}");
    assert!(image.contains("image/png"), "{image}");

    let (err, dns) = get(&ward, "http://no-such-host.invalid/".into()).await;
    assert!(err, "{dns}");
    assert!(
        dns.contains("no-such-host.invalid") && dns.contains("DNS"),
        "{dns}"
    );

    let (err, ftp) = get(&ward, "ftp://127.0.0.1/".into()).await;
    assert!(err, "{ftp}");
    assert!(ftp.contains("http:// or https://"), "{ftp}");
}

/// A loopback HTTP/1.1 server that keeps connections alive and answers
/// every path with `page PATH` as text; it counts the connections it accepted.
async fn keep_alive_site() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head: Vec<u8> = buf.drain(..end).collect();
                    let head = String::from_utf8_lossy(&head);
                    let body = format!("page {}", head.split_whitespace().nth(1).unwrap_or("/"));
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

/// Outgoing connections are kept alive per plugin: one plugin's sequential
/// requests share one connection, another plugin opens its own, and a host
/// the policy does not list stays refused while a connection is open.
#[tokio::test]
async fn fetch_reuses_one_connection_per_plugin() {
    use std::sync::atomic::Ordering::SeqCst;
    let ((port, accepted), other) = (keep_alive_site().await, site().await);
    let dir = Dir::new();
    let policy = format!("[network]\nallow = [\"127.0.0.1:{port}\"]\n");
    dir.plugin("fetch", "fetch").policy("fetch", &policy);
    dir.plugin("fetch", "mirror").policy("mirror", &policy);
    let ward = Ward::start(dir.path()).await;
    let base = format!("http://127.0.0.1:{port}");

    for i in 0..20 {
        let (err, page) = get(&ward, format!("{base}/{i}")).await;
        assert!(!err, "{page}");
        assert_eq!(page, format!("page /{i}"));
    }
    assert_eq!(accepted.load(SeqCst), 1, "20 calls of one plugin");

    let (err, refused) = get(&ward, format!("http://127.0.0.1:{other}/")).await;
    assert!(
        err && refused.contains("refused by ward's network policy"),
        "{refused}"
    );

    for i in 0..5 {
        let result = ward
            .call("mirror_get", json!({ "url": format!("{base}/m{i}") }))
            .await;
        assert!(!is_error(&result), "{}", text(&result));
        assert_eq!(text(&result), format!("page /m{i}"));
    }
    assert_eq!(
        accepted.load(SeqCst),
        2,
        "a second plugin, its own connection"
    );
    let (err, page) = get(&ward, format!("{base}/last")).await;
    assert!(!err, "{page}");
    assert_eq!(accepted.load(SeqCst), 2);
}

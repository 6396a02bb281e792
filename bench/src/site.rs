//! A loopback HTTP/1.1 server for the connection-pool benchmark: keeps
//! connections alive, answers every GET with a short text, and counts the
//! connections it accepted. It runs on a single-threaded tokio runtime of its
//! own thread, so that a new connection costs it an accept and a task, no
//! thread.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What every request is answered with (`text/plain`).
pub const BODY: &str = "ok\n";

/// A running server; it stops with the process.
pub struct Site {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Site {
    pub fn start() -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("bench-site".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("a tokio listener from a std one");
                    while let Ok((socket, _)) = listener.accept().await {
                        counter.fetch_add(1, SeqCst);
                        let _ = socket.set_nodelay(true);
                        tokio::spawn(serve(socket));
                    }
                })
            })?;
        Ok(Self { port, accepted })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(SeqCst)
    }
}

/// Answers the requests of one connection until the client closes it.
async fn serve(mut socket: tokio::net::TcpStream) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // A GET has no body: the head ends the request.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if socket.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

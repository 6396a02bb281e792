//! What a guest outputs: its answers, measured against `limits.max-output`,
//! and its stdout and stderr, captured, capped, and sent to the log.
//!
//! An answer is measured as the JSON the client receives ([`output_size`]):
//! every field counts, whatever the method, so no byte a plugin returns
//! escapes the cap. A guest's error text is cut to the cap ([`cut`]) with a
//! note, so the client still learns why.
//!
//! stdout of ward is the MCP channel, so a guest's prints must never reach
//! it. They are kept in memory up to a cap (guarding against a guest that
//! prints without end) and logged on stderr when the call ends. Writes past
//! the cap succeed and are dropped, so a chatty guest keeps running rather
//! than panicking on a failed print.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::sandbox::policy::format_size;

/// Bytes of `value` as JSON: the measure of `limits.max-output` for every
/// answer a plugin gives. Counts without building the text.
pub fn output_size<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing MCP types into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A guest's error text, cut to at most `max` bytes (at a character
/// boundary) with a note saying so.
pub fn cut(mut text: String, max: u64) -> String {
    if text.len() as u64 <= max {
        return text;
    }
    let mut end = max as usize;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let total = text.len() as u64;
    text.truncate(end);
    text.push_str(&format!(
        " [… cut: the plugin's message of {} exceeds the output limit of {}]",
        format_size(total),
        format_size(max)
    ));
    text
}

/// Bytes of stdout plus stderr kept per call.
pub const MAX_CAPTURED_OUTPUT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    dropped: u64,
}

/// Both output streams of one call, sharing one cap.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    buffer: Arc<Mutex<Buffer>>,
}

impl Captured {
    /// A sink for one stream (stdout or stderr) writing into this capture.
    pub fn stream(&self) -> CapturedStream {
        CapturedStream {
            buffer: self.buffer.clone(),
        }
    }

    /// Logs what the guest printed, one line per log record, then clears it.
    pub fn log(&self, plugin: &str) {
        let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buf.kept.is_empty() {
            return;
        }
        for line in String::from_utf8_lossy(&buf.kept).lines() {
            tracing::info!(plugin, "guest output: {line}");
        }
        if buf.dropped > 0 {
            tracing::warn!(
                plugin,
                "guest output: {} more bytes dropped (cap {MAX_CAPTURED_OUTPUT} bytes per call)",
                buf.dropped
            );
        }
        *buf = Buffer::default();
    }

    /// The message of a Rust-style panic the guest printed, if any.
    pub fn panic_message(&self) -> Option<String> {
        let buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buf.kept);
        let mut lines = text.lines().skip_while(|l| !l.contains("panicked at"));
        let at = lines.next()?;
        let message = lines.next().unwrap_or("").trim();
        Some(if message.is_empty() {
            at.trim().to_string()
        } else {
            message.to_string()
        })
    }

    fn write(buffer: &Mutex<Buffer>, bytes: &[u8]) {
        let mut buf = buffer.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_CAPTURED_OUTPUT.saturating_sub(buf.kept.len());
        let keep = room.min(bytes.len());
        buf.kept.extend_from_slice(&bytes[..keep]);
        buf.dropped += (bytes.len() - keep) as u64;
    }
}

/// One of the guest's output streams.
#[derive(Debug, Clone)]
pub struct CapturedStream {
    buffer: Arc<Mutex<Buffer>>,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Captured::write(&self.buffer, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Captured::write(&self.buffer, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_json_text() {
        let v = serde_json::json!({"a": "x\"y", "b": [1, 2]});
        assert_eq!(
            output_size(&v),
            serde_json::to_string(&v).unwrap().len() as u64
        );
    }

    #[test]
    fn long_errors_are_cut_with_a_note() {
        assert_eq!(cut("short".into(), 10), "short");
        let cut_text = cut("é".repeat(1000), 1001);
        assert!(cut_text.starts_with(&"é".repeat(500)));
        assert!(!cut_text.starts_with(&"é".repeat(501)));
        assert!(
            cut_text.contains(
                "cut: the plugin's message of 2.0 KiB exceeds the output limit of 1001 B"
            ),
            "{cut_text}"
        );
    }
}

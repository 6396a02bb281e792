//! Newline-delimited JSON-RPC over a byte stream (stdio), hardened against
//! hostile input.
//!
//! Why not rmcp's own `AsyncRwTransport`: it drops unparsable lines without
//! a reply (so a client waits forever), answers shape errors without the
//! request id, and answers a known method with malformed params as "method
//! not found"; and rmcp's server ends when the first message is a
//! notification or a response. Here every line is classified first
//! ([`jsonrpc`](super::jsonrpc): a line over the cap is -32600 and skipped
//! to its newline; the table of the other cases is there),
//! and only well-formed messages reach rmcp. If rmcp's session set-up still
//! gives up (a notification before `initialize`), the session is started
//! again on the same streams. Nothing ends the server but EOF on the input
//! or a closed output.
//!
//! Batches: JSON-RPC batching was removed from MCP in 2025-06-18, the oldest
//! version ward speaks, so a batch is one -32600 for the whole array.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorData, RequestId};
use rmcp::service::{serve_server_with_ct, ServerInitializeError};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{encode_line, error_line, Inbound};
use super::server::{ServerOptions, WardServer};
use crate::backend::Backend;

/// Messages parsed ahead of rmcp. Small: it only smooths bursts, and a full
/// queue makes the reader stop reading, which is the backpressure we want.
const INBOUND_QUEUE: usize = 32;
/// Lines waiting for the writer. A client that stops reading stdout
/// eventually stalls ward's replies instead of growing this without bound.
const OUTBOUND_QUEUE: usize = 1024;
/// How long to let queued replies drain to a slow reader once the session is over.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
/// After EOF on the input, how long requests still running may take to
/// finish and be answered. Clients that pipe a script into `ward serve` and
/// close stdin still get every answer; a hung call cannot keep ward alive.
const EOF_GRACE: Duration = Duration::from_secs(60);

/// Serves MCP on the process's stdin/stdout until stdin reaches EOF.
///
/// When both are pipes (as MCP clients start servers) they are driven by the
/// I/O reactor through rmcp's [`stdio_pipes`](rmcp::transport::stdio_pipes),
/// which reopens them non-blocking on private file descriptions; otherwise
/// (a terminal, a file) it falls back to tokio's blocking-pool stdio, which
/// costs a thread hop per read and write (measured 75–100 µs vs 38 µs per
/// round trip).
pub async fn serve_stdio<B: Backend>(backend: Arc<B>) -> anyhow::Result<()> {
    serve_stdio_with(backend, ServerOptions::default()).await
}

/// [`serve_stdio`] with non-default options.
pub async fn serve_stdio_with<B: Backend>(
    backend: Arc<B>,
    options: ServerOptions,
) -> anyhow::Result<()> {
    let (reader, writer) = rmcp::transport::stdio_pipes();
    WardServer::with_options(backend, options)
        .serve_io(reader, writer)
        .await
}

/// Serves MCP on any byte streams until `reader` reaches EOF or `writer`
/// fails. Used by [`serve_stdio`] and by tests over in-memory pipes.
pub async fn serve_io<B, R, W>(backend: Arc<B>, reader: R, writer: W) -> anyhow::Result<()>
where
    B: Backend,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    WardServer::new(backend).serve_io(reader, writer).await
}

impl<B: Backend> WardServer<B> {
    /// Serves this handler's connection on `reader`/`writer` with ward's
    /// hardened line transport; see [`serve_io`]. (Named apart from rmcp's
    /// `ServiceExt::serve`, which still works for rmcp's own transports.)
    pub async fn serve_io<R, W>(self, reader: R, writer: W) -> anyhow::Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let max_line = self.options().max_line_bytes;
        let server = Arc::new(self);
        // Cancelled when the output is gone: then nobody can hear us.
        let output_closed = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
        let (in_tx, in_rx) = mpsc::channel::<ClientJsonRpcMessage>(INBOUND_QUEUE);
        let writer_task = tokio::spawn(write_lines(writer, out_rx, output_closed.clone()));
        let reader_task = tokio::spawn(read_lines(reader, max_line, in_tx, out_tx.clone()));
        let transport = LineTransport {
            inbound: Arc::new(Mutex::new(in_rx)),
            outbound: out_tx,
            output_closed: output_closed.clone(),
            in_flight: Arc::default(),
        };

        let session_ct = CancellationToken::new();
        loop {
            match serve_server_with_ct(server.clone(), transport.clone(), session_ct.child_token())
                .await
            {
                Ok(running) => {
                    if let Err(error) = running.waiting().await {
                        tracing::error!(%error, "MCP session task failed");
                    }
                    break;
                }
                // EOF before a session started.
                Err(ServerInitializeError::ConnectionClosed(_)) => break,
                Err(error) => {
                    if output_closed.is_cancelled() {
                        break;
                    }
                    // A notification or response before `initialize`, or a
                    // failed `initialize` (already answered): rmcp gave up on
                    // this session, not on the client. Start over.
                    tracing::debug!(%error, "MCP session set-up failed; waiting for the next message");
                }
            }
        }

        server.shutdown();
        // stdin may stay open after stdout closed; stop reading it.
        reader_task.abort();
        drop(transport);
        if tokio::time::timeout(FINAL_FLUSH, writer_task)
            .await
            .is_err()
        {
            tracing::warn!("the client did not read ward's last replies; giving up on them");
        }
        Ok(())
    }
}

/// The transport rmcp sees: a queue of already-validated messages in, a
/// queue of lines out. Cloneable so a session can be restarted on the same
/// streams after rmcp abandons one.
#[derive(Clone)]
struct LineTransport {
    inbound: Arc<Mutex<mpsc::Receiver<ClientJsonRpcMessage>>>,
    outbound: mpsc::Sender<Vec<u8>>,
    output_closed: CancellationToken,
    in_flight: Arc<InFlight>,
}

/// Requests handed to rmcp and not yet answered.
///
/// rmcp stops routing a handler's notifications once its input ends, so a
/// request that logs or reports progress after EOF would stall until rmcp's
/// drain timeout and lose its answer. The transport therefore reports EOF
/// to rmcp only once every request it delivered has been answered (or
/// cancelled by the client), or [`EOF_GRACE`] has passed.
#[derive(Default)]
struct InFlight {
    ids: std::sync::Mutex<std::collections::HashSet<RequestId>>,
    changed: tokio::sync::Notify,
}

impl InFlight {
    fn ids(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<RequestId>> {
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a message on its way to rmcp.
    fn delivered(&self, message: &ClientJsonRpcMessage) {
        match message {
            // A listen stream is answered only when the session ends.
            ClientJsonRpcMessage::Request(request)
                if !matches!(
                    request.request,
                    ClientRequest::SubscriptionsListenRequest(_)
                ) =>
            {
                self.ids().insert(request.id.clone());
            }
            ClientJsonRpcMessage::Notification(notification) => {
                if let rmcp::model::ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                {
                    if let Some(id) = &cancelled.params.request_id {
                        self.answered(id);
                    }
                }
            }
            _ => {}
        }
    }

    fn answered(&self, id: &RequestId) {
        if self.ids().remove(id) {
            self.changed.notify_waiters();
        }
    }

    /// Waits until no delivered request is unanswered.
    async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            if self.ids().is_empty() {
                return;
            }
            changed.await;
        }
    }
}

impl Transport<RoleServer> for LineTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: rmcp::model::ServerJsonRpcMessage,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbound = self.outbound.clone();
        let line = encode_line(&item);
        match &item {
            rmcp::model::ServerJsonRpcMessage::Response(response) => {
                self.in_flight.answered(&response.id)
            }
            rmcp::model::ServerJsonRpcMessage::Error(error) => {
                if let Some(id) = &error.id {
                    self.in_flight.answered(id);
                }
            }
            _ => {}
        }
        async move {
            outbound
                .send(line?)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the output is closed"))
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        let mut inbound = self.inbound.lock().await;
        let message = tokio::select! {
            message = inbound.recv() => message,
            _ = self.output_closed.cancelled() => return None,
        };
        match message {
            Some(message) => {
                self.in_flight.delivered(&message);
                Some(message)
            }
            None => {
                // EOF: let running requests finish first (see `InFlight`).
                // Cancel-safe: a dropped wait is simply started again.
                let drained = self.in_flight.drained();
                tokio::select! {
                    _ = tokio::time::timeout(EOF_GRACE, drained) => {}
                    _ = self.output_closed.cancelled() => {}
                }
                None
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // The streams outlive one rmcp session (see `serve`); they close
        // when `serve` ends.
        Ok(())
    }
}

/// Writes queued lines, flushing once per burst rather than per line.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut lines: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
) {
    let result: io::Result<()> = async {
        while let Some(line) = lines.recv().await {
            writer.write_all(&line).await?;
            while let Ok(line) = lines.try_recv() {
                writer.write_all(&line).await?;
            }
            writer.flush().await?;
        }
        writer.shutdown().await
    }
    .await;
    if let Err(error) = result {
        tracing::info!(%error, "the client closed ward's output");
    }
    closed.cancel();
}

/// What the line reader found.
enum Line {
    /// A complete line (without its newline) is in the buffer.
    Complete,
    /// The line was longer than the cap; it has been skipped.
    TooLong,
    Eof,
}

/// Reads one line into `buf` without ever holding more than `max` bytes of it.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // A last line without a newline is still a message.
            return Ok(if too_long {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete
            });
        }
        let newline = memchr::memchr(b'\n', available);
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
                buf.shrink_to(64 << 10);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let consumed = newline.map_or(available.len(), |at| at + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// Reads lines until EOF: well-formed messages go to rmcp, bad ones are
/// answered here.
async fn read_lines<R: AsyncRead + Unpin>(
    reader: R,
    max_line: usize,
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    outbound: mpsc::Sender<Vec<u8>>,
) {
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let mut buf = Vec::new();
    loop {
        let inbound_item = match read_line(&mut reader, &mut buf, max_line).await {
            Ok(Line::Eof) => return,
            Err(error) => {
                tracing::info!(%error, "reading the client's input failed");
                return;
            }
            Ok(Line::TooLong) => Inbound::Reply(error_line(
                None,
                ErrorData::invalid_request(
                    format!("message too long: a line may hold at most {max_line} bytes"),
                    None,
                ),
            )),
            Ok(Line::Complete) => Inbound::from_line(&buf),
        };
        match inbound_item {
            Inbound::Message(message) => {
                if inbound.send(*message).await.is_err() {
                    return;
                }
            }
            Inbound::Reply(line) => {
                if outbound.send(line).await.is_err() {
                    return;
                }
            }
            Inbound::Ignore => {}
        }
        // Don't keep a multi-megabyte buffer alive for the next tiny line.
        if buf.capacity() > 1 << 20 {
            buf = Vec::new();
        }
    }
}

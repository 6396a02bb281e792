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
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{encode_line, error_line, Inbound};
use super::server::{ServerOptions, WardServer};
use crate::backend::Backend;

/// How long to let queued replies drain to a slow reader once the session is over.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
/// Answers handed to the writer and not yet written, in lines and bytes,
/// past which ward stops reading requests (see [`Unwritten`]).
const MAX_UNWRITTEN_LINES: usize = 1024;
const MAX_UNWRITTEN_BYTES: usize = 32 << 20;
/// How long ward waits, with that many answers unwritten, for the client to
/// read one before it ends the session: a client that neither reads nor
/// closes its end cannot keep ward alive.
const STALLED: Duration = Duration::from_secs(60);
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
pub async fn serve_stdio_with<B: Backend>(
    backend: Arc<B>,
    options: ServerOptions,
) -> anyhow::Result<()> {
    let (reader, writer) = rmcp::transport::stdio_pipes();
    WardServer::with_options(backend, options)
        .serve_io(reader, writer)
        .await
}

impl<B: Backend> WardServer<B> {
    /// Serves this handler's connection on `reader`/`writer` with ward's
    /// hardened line transport, until `reader` reaches EOF or `writer` fails:
    /// stdio for `ward serve`, in-memory pipes in tests. (Named apart from rmcp's
    /// `ServiceExt::serve`, which still works for rmcp's own transports.)
    pub async fn serve_io<R, W>(self, reader: R, writer: W) -> anyhow::Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let max_line = self.options().max_line_bytes;
        let server = Arc::new(self);
        let output = Arc::new(LineWriter::new(Box::new(writer)));
        let transport = LineTransport {
            input: Arc::new(Mutex::new(LineReader::new(
                Box::new(reader),
                max_line,
                output.clone(),
            ))),
            output: output.clone(),
            in_flight: Arc::default(),
            unwritten: Arc::default(),
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
                    if output.closed.is_cancelled() {
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
        drop(transport);
        // Replies still being written finish first (the writer's lock is
        // fair), then the output is closed.
        if tokio::time::timeout(FINAL_FLUSH, output.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("the client did not read ward's last replies; giving up on them");
        }
        Ok(())
    }
}

/// The transport rmcp sees. `receive` reads and classifies lines itself and
/// `send` writes its line itself, as rmcp's own `AsyncRwTransport` does:
/// a reader or writer task of our own would add a cross-task hand-off in
/// each direction of every round trip (measured in BENCHMARKS.md, issue 16).
/// Cloneable so a session can be restarted on the same streams after rmcp
/// abandons one.
#[derive(Clone)]
struct LineTransport {
    input: Arc<Mutex<LineReader>>,
    output: Arc<LineWriter>,
    in_flight: Arc<InFlight>,
    unwritten: Arc<Unwritten>,
}

/// Answers handed to the writer and not yet written.
///
/// rmcp spawns a task per answer, so a client that keeps sending requests
/// but never reads its answers would make ward hold every one of them
/// (measured: 300,000 `tools/list` without reading took ward from 24 MiB
/// to 1.7 GiB). Past [`MAX_UNWRITTEN_LINES`] or [`MAX_UNWRITTEN_BYTES`],
/// `receive` reads nothing more until the client reads: its own writes then
/// block on the full pipe, and nothing is lost.
struct Unwritten {
    /// Lines and bytes, and when a line was last written (or given up).
    count: std::sync::Mutex<(usize, usize, std::time::Instant)>,
    written: tokio::sync::Notify,
}

impl Default for Unwritten {
    fn default() -> Self {
        Self {
            count: std::sync::Mutex::new((0, 0, std::time::Instant::now())),
            written: Default::default(),
        }
    }
}

/// One answer's place in [`Unwritten`], given back when it is written (or
/// its write fails or is dropped).
struct Pending {
    unwritten: Arc<Unwritten>,
    bytes: usize,
}

impl Unwritten {
    fn count(&self) -> std::sync::MutexGuard<'_, (usize, usize, std::time::Instant)> {
        self.count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(self: &Arc<Self>, bytes: usize) -> Pending {
        let mut count = self.count();
        count.0 += 1;
        count.1 += bytes;
        Pending {
            unwritten: self.clone(),
            bytes,
        }
    }

    /// Waits until the writer has room: `false` if no line was written for
    /// [`STALLED`] while it had none. Cancel-safe.
    async fn room(&self) -> bool {
        loop {
            let written = self.written.notified();
            let (lines, bytes, last) = *self.count();
            if lines < MAX_UNWRITTEN_LINES && bytes < MAX_UNWRITTEN_BYTES {
                return true;
            }
            if tokio::time::timeout_at((last + STALLED).into(), written)
                .await
                .is_err()
            {
                return false;
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut count = self.unwritten.count();
        count.0 -= 1;
        count.1 -= self.bytes;
        count.2 = std::time::Instant::now();
        drop(count);
        self.unwritten.written.notify_waiters();
    }
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
        let output = self.output.clone();
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
        let pending = self
            .unwritten
            .add(line.as_ref().map_or(0, |line| line.len()));
        async move {
            let _pending = pending;
            output.write(&line?).await
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        tokio::select! {
            room = self.unwritten.room() => if !room {
                tracing::warn!(
                    "the client has read none of ward's last {MAX_UNWRITTEN_LINES} answers for {} s; ending the session",
                    STALLED.as_secs()
                );
                self.output.closed.cancel();
                return None;
            },
            _ = self.output.closed.cancelled() => return None,
        }
        let mut input = self.input.lock().await;
        let message = tokio::select! {
            message = input.next_message() => message,
            _ = self.output.closed.cancelled() => return None,
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
                    _ = self.output.closed.cancelled() => {}
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

/// The output stream, written one whole line at a time by whoever holds it.
struct LineWriter {
    /// `None` once shut down. The lock is fair, so lines go out in the order
    /// their writers asked. A client that stops reading stalls the writers,
    /// each holding its own line, up to [`Unwritten`]'s bound.
    stream: Mutex<Option<Box<dyn AsyncWrite + Send + Unpin>>>,
    /// Cancelled when the output is gone: then nobody can hear us.
    closed: CancellationToken,
}

impl LineWriter {
    fn new(stream: Box<dyn AsyncWrite + Send + Unpin>) -> Self {
        Self {
            stream: Mutex::new(Some(stream)),
            closed: CancellationToken::new(),
        }
    }

    async fn write(&self, line: &[u8]) -> io::Result<()> {
        let mut stream = self.stream.lock().await;
        let stream = match stream.as_mut() {
            Some(stream) if !self.closed.is_cancelled() => stream,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the output is closed",
                ))
            }
        };
        let result = async {
            stream.write_all(line).await?;
            stream.flush().await
        }
        .await;
        if let Err(error) = &result {
            if !self.closed.is_cancelled() {
                tracing::info!(%error, "the client closed ward's output");
                self.closed.cancel();
            }
        }
        result
    }

    /// Waits for the lines being written, then closes the stream.
    async fn shutdown(&self) {
        let mut stream = self.stream.lock().await;
        if let Some(mut open) = stream.take() {
            if !self.closed.is_cancelled() {
                let _ = open.shutdown().await;
            }
        }
        self.closed.cancel();
    }
}

/// What the line reader found.
enum Line {
    /// A complete line (without its newline) is in the buffer.
    Complete,
    /// The line was longer than the cap; it has been skipped.
    TooLong,
    Eof,
}

/// The input stream, read and classified one line at a time inside
/// `receive`. rmcp polls `receive` in a `select!` and drops it whenever
/// another branch is ready, so every bit of progress lives here, not in the
/// future: the partial line, whether it overflowed, and a reply to a bad line
/// still being written.
struct LineReader {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    /// The line being read; cleared when the next one starts.
    buf: Vec<u8>,
    too_long: bool,
    /// `buf` holds a line already handed out.
    taken: bool,
    max_line: usize,
    output: Arc<LineWriter>,
    /// Our answer to a malformed line, finished before reading on: a client
    /// that floods bad lines without reading stalls here, as it should.
    reply: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl LineReader {
    fn new(
        reader: Box<dyn AsyncRead + Send + Unpin>,
        max_line: usize,
        output: Arc<LineWriter>,
    ) -> Self {
        Self {
            reader: BufReader::with_capacity(64 << 10, reader),
            buf: Vec::new(),
            too_long: false,
            taken: false,
            max_line,
            output,
            reply: None,
        }
    }

    /// The next well-formed message; bad lines are answered on the way.
    /// `None` at EOF or when the input fails. Cancel-safe.
    async fn next_message(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            if let Some(reply) = self.reply.as_mut() {
                reply.await;
                self.reply = None;
            }
            let inbound = match self.next_line().await {
                Ok(Line::Eof) => return None,
                Err(error) => {
                    tracing::info!(%error, "reading the client's input failed");
                    return None;
                }
                Ok(Line::TooLong) => Inbound::Reply(error_line(
                    None,
                    ErrorData::invalid_request(
                        format!(
                            "message too long: a line may hold at most {} bytes",
                            self.max_line
                        ),
                        None,
                    ),
                )),
                Ok(Line::Complete) => Inbound::from_line(&self.buf),
            };
            match inbound {
                Inbound::Message(message) => return Some(*message),
                Inbound::Reply(line) => {
                    let output = self.output.clone();
                    self.reply = Some(Box::pin(async move {
                        let _ = output.write(&line).await;
                    }));
                }
                Inbound::Ignore => {}
            }
        }
    }

    /// Reads one line into `buf` without ever holding more than `max_line`
    /// bytes of it. Cancel-safe: bytes are consumed from the reader only
    /// once they are in `buf`.
    async fn next_line(&mut self) -> io::Result<Line> {
        if self.taken {
            self.taken = false;
            self.too_long = false;
            self.buf.clear();
            // Don't keep a multi-megabyte buffer alive for the next tiny line.
            if self.buf.capacity() > 1 << 20 {
                self.buf = Vec::new();
            }
        }
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // A last line without a newline is still a message.
                self.taken = true;
                return Ok(if self.too_long {
                    Line::TooLong
                } else if self.buf.is_empty() {
                    Line::Eof
                } else {
                    Line::Complete
                });
            }
            let newline = memchr::memchr(b'\n', available);
            let chunk = &available[..newline.unwrap_or(available.len())];
            if !self.too_long {
                if self.buf.len() + chunk.len() > self.max_line {
                    self.too_long = true;
                    self.buf.clear();
                    self.buf.shrink_to(64 << 10);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let consumed = newline.map_or(available.len(), |at| at + 1);
            self.reader.consume(consumed);
            if newline.is_some() {
                self.taken = true;
                return Ok(if self.too_long {
                    Line::TooLong
                } else {
                    Line::Complete
                });
            }
        }
    }
}

//! A minimal MCP client over a child's stdin/stdout: newline-delimited
//! JSON-RPC, blocking std I/O, no async runtime, so that the client adds as
//! little as possible to what is measured (it shares the machine's cores with
//! the server).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// A running MCP server.
pub struct Server {
    pub child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
}

impl Server {
    /// Starts `cmd` with piped stdin/stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let stdin = BufWriter::new(child.stdin.take().unwrap());
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().unwrap());
        Ok(Self {
            child,
            stdin,
            stdout,
            next_id: 1,
            line: String::new(),
        })
    }

    /// The id the next request will carry.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `initialize` + `notifications/initialized`.
    pub fn handshake(&mut self) -> Result<()> {
        self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "ward-bench", "version": "0"}}),
        )?;
        self.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        Ok(())
    }

    pub fn send_raw(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Sends a request and waits for its response (skipping notifications);
    /// returns `result`, or fails on a JSON-RPC error.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&msg.to_string())?;
        self.read_response(id)
    }

    /// Reads lines until the response with `id`.
    pub fn read_response(&mut self, id: u64) -> Result<Value> {
        loop {
            self.line.clear();
            if self.stdout.read_line(&mut self.line)? == 0 {
                bail!("server closed its stdout");
            }
            let mut v: Value = serde_json::from_str(&self.line)
                .with_context(|| format!("unparsable line: {}", self.line))?;
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // a notification, or a server-to-client request
            }
            if let Some(e) = v.get("error") {
                bail!("{method} error: {e}", method = "request");
            }
            return Ok(v["result"].take());
        }
    }

    /// One timed tools/call: sends the pre-built request line (with `{ID}`
    /// replaced), waits for its line, and returns the round trip and the
    /// raw response line (parsed by the caller, outside the timed window).
    pub fn timed_call(&mut self, template: &str) -> Result<(Duration, Value)> {
        let id = self.next_id;
        self.next_id += 1;
        let line = template.replace("{ID}", &id.to_string());
        let start = Instant::now();
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()?;
        loop {
            self.line.clear();
            if self.stdout.read_line(&mut self.line)? == 0 {
                bail!("server closed its stdout");
            }
            // Responses carry `"id":N`; skip anything else cheaply.
            if self.line.contains("\"id\":") {
                break;
            }
        }
        let elapsed = start.elapsed();
        let v: Value = serde_json::from_str(&self.line)?;
        if v.get("id").and_then(Value::as_u64) != Some(id) {
            bail!("unexpected response: {}", self.line);
        }
        if let Some(e) = v.get("error") {
            bail!("tools/call error: {e}");
        }
        Ok((elapsed, v))
    }

    /// `calls` pipelined tools/call requests with at most `in_flight` awaiting
    /// their answers, over this one connection. Returns the elapsed time and
    /// the number of error answers.
    pub fn pipelined(
        &mut self,
        template: &str,
        calls: u64,
        in_flight: usize,
    ) -> Result<(Duration, u64)> {
        let first_id = self.next_id;
        self.next_id += calls;
        // Window: the writer takes a token per request, the reader returns
        // one per response.
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            token_tx.send(())?;
        }
        let (prefix, suffix) = template
            .split_once("{ID}")
            .context("template without {ID}")?;
        let (prefix, suffix) = (prefix.as_bytes().to_vec(), suffix.as_bytes().to_vec());
        let stdin = &mut self.stdin;
        let stdout = &mut self.stdout;
        let line = &mut self.line;
        let start = Instant::now();
        let errors = std::thread::scope(|s| -> Result<u64> {
            let writer = s.spawn(move || -> Result<()> {
                let mut id_buf = String::new();
                for i in 0..calls {
                    if token_rx.try_recv().is_err() {
                        stdin.flush()?; // send what we have, then wait for room
                        token_rx.recv()?;
                    }
                    id_buf.clear();
                    use std::fmt::Write as _;
                    write!(id_buf, "{}", first_id + i)?;
                    stdin.write_all(&prefix)?;
                    stdin.write_all(id_buf.as_bytes())?;
                    stdin.write_all(&suffix)?;
                }
                stdin.flush()?;
                Ok(())
            });
            let mut seen = 0u64;
            let mut errors = 0u64;
            while seen < calls {
                line.clear();
                if stdout.read_line(line)? == 0 {
                    bail!("server closed its stdout after {seen} answers");
                }
                if !line.contains("\"id\":") {
                    continue;
                }
                if line.contains("\"error\":") || line.contains("\"isError\":true") {
                    errors += 1;
                    if errors == 1 {
                        eprintln!("  first error answer: {}", line.trim_end());
                    }
                }
                seen += 1;
                let _ = token_tx.try_send(());
            }
            writer.join().expect("writer thread panicked")?;
            Ok(errors)
        })?;
        Ok((start.elapsed(), errors))
    }

    /// Like [`Self::pipelined`], but each request is built by `write(id,
    /// buf)` (appending one newline-terminated line to `buf`), and each
    /// response line (a line with an `id` and a `result` or an `error`;
    /// notifications and server requests are skipped) is handed to
    /// `answer`. At most `in_flight` requests await their answers. If no
    /// answer arrives for `silence` while some are due, the server is killed
    /// (its answers are lost) and the number of answers read is returned
    /// with the elapsed time instead of waiting forever.
    pub fn pipelined_each<W, A>(
        &mut self,
        calls: u64,
        in_flight: usize,
        silence: Duration,
        mut write: W,
        mut answer: A,
    ) -> Result<(Duration, u64)>
    where
        W: FnMut(u64, &mut Vec<u8>) + Send,
        A: FnMut(&str) -> Result<()>,
    {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let first_id = self.next_id;
        self.next_id += calls;
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            token_tx.send(())?;
        }
        let stdin = &mut self.stdin;
        let stdout = &mut self.stdout;
        let line = &mut self.line;
        let pid = self.child.id();
        let progress = AtomicU64::new(0);
        let written = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let killed = AtomicBool::new(false);
        let start = Instant::now();
        let seen = std::thread::scope(|s| -> Result<u64> {
            let (progress, written, done, killed) = (&progress, &written, &done, &killed);
            let writer = s.spawn(move || -> Result<()> {
                let mut buf = Vec::with_capacity(256);
                for i in 0..calls {
                    if token_rx.try_recv().is_err() {
                        stdin.flush()?;
                        if token_rx.recv().is_err() {
                            return Ok(()); // the reader gave up
                        }
                    }
                    buf.clear();
                    write(first_id + i, &mut buf);
                    stdin.write_all(&buf)?;
                    written.store(i + 1, Ordering::Relaxed);
                }
                stdin.flush()?;
                Ok(())
            });
            // Watchdog: kills the server if answers stop coming.
            s.spawn(move || {
                let mut last = (0, Instant::now());
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let now = progress.load(Ordering::Relaxed);
                    if now != last.0 {
                        last = (now, Instant::now());
                    } else if written.load(Ordering::Relaxed) > now && last.1.elapsed() > silence {
                        eprintln!(
                            "   no answer for {:.0} s with {} due; killing the server",
                            silence.as_secs_f64(),
                            written.load(Ordering::Relaxed) - now
                        );
                        killed.store(true, Ordering::Relaxed);
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                        return;
                    }
                }
            });
            let mut seen = 0u64;
            let result = (|| -> Result<()> {
                while seen < calls {
                    line.clear();
                    if stdout.read_line(line)? == 0 {
                        if killed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        bail!("server closed its stdout after {seen} answers");
                    }
                    if !line.contains("\"id\":")
                        || !(line.contains("\"result\":") || line.contains("\"error\":"))
                    {
                        continue;
                    }
                    answer(line)?;
                    seen += 1;
                    progress.store(seen, Ordering::Relaxed);
                    let _ = token_tx.try_send(());
                }
                Ok(())
            })();
            done.store(true, Ordering::Relaxed);
            drop(token_tx);
            let wrote = writer.join().expect("writer thread panicked");
            result?;
            if !killed.load(Ordering::Relaxed) {
                wrote?;
            }
            Ok(seen)
        })?;
        Ok((start.elapsed(), seen))
    }

    /// Closes stdin and waits for the server to exit (kills it after 10 s).
    pub fn shutdown(mut self) -> Result<()> {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The `tools/call` request line for `tool` with `arguments`, `{ID}` in
/// place of the id, newline-terminated.
pub fn call_template(tool: &str, arguments: &Value) -> String {
    let msg = json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call",
                     "params": {"name": tool, "arguments": arguments}});
    let s = msg.to_string();
    let s = s.replacen("\"id\":0", "\"id\":{ID}", 1);
    format!("{s}\n")
}

/// VmRSS and VmHWM of `pid`, in bytes.
pub fn rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

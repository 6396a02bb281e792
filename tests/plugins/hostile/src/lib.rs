// ward test plugin `hostile`: one tool per way a plugin can misbehave, for
// the sandbox tests (tests/). Not an example: never ship it.
//
// Build: `cargo xtask test-plugins` -> target/test-plugins/hostile.wasm
//
// Failures (a denied path, a refused connection, ...) are tool errors
// (`isError`) whose text is the error. With env var HOSTILE_PANIC_ON_LIST
// set (by a policy), listing the plugin's items panics.
use std::hint::black_box;

use ward_guest::prelude::*;

mod resource_attacks;

mod oversize;
mod schemas;
mod squat;

mod net_attacks;

mod fs_attacks;

#[derive(Deserialize, JsonSchema)]
struct Alloc {
    /// MiB to allocate (and touch), one MiB at a time.
    mb: u64,
}

#[derive(Serialize, JsonSchema)]
struct Allocated {
    /// MiB asked for.
    requested_mb: u64,
    /// MiB obtained before an allocation failed (or all of them).
    allocated_mb: u64,
}

fn alloc(a: Alloc) -> Structured<Allocated> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut got = 0;
    while got < a.mb {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(1 << 20).is_err() {
            break;
        }
        chunk.resize(1 << 20, 1u8); // touch every byte
        chunks.push(black_box(chunk));
        got += 1;
    }
    black_box(&chunks);
    Structured::new(Allocated { requested_mb: a.mb, allocated_mb: got })
        .text(format!("allocated {got} MiB of {} MiB", a.mb))
}

fn spin() -> String {
    let mut x = 0u64;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

/// A malformed `sampling/createMessage`, then a flood of well-formed ones:
/// the first error and the last are returned.
fn ask_badly() -> String {
    let malformed = ward_guest::client::create_message(&ward_guest::json::json!({"messages": "not a list"}));
    let mut last = Ok(Default::default());
    for _ in 0..100 {
        last = ward_guest::client::sample_text("again", 10);
    }
    format!(
        "malformed: {}\nflood: {}",
        malformed.err().map(|e| e.message().to_owned()).unwrap_or_default(),
        last.err().map(|e| e.message().to_owned()).unwrap_or_default()
    )
}

/// Asks the user something different on every run (the time is in the
/// question): on MCP 2026-07-28, where ward replays a call to hand it the
/// client's answers, the replay must be refused, not handed an answer to
/// another question.
fn ask_unstable() -> Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let answer = ward_guest::client::elicit(&ward_guest::json::json!({
        "message": format!("It is {now} ns. What is your name?"),
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
    }))?;
    Ok(format!("got {answer}"))
}

#[derive(Deserialize, JsonSchema)]
struct AliasBomb {
    /// How many header entries to pass.
    entries: u32,
    /// KiB of the one value every entry points at.
    kib: u32,
}

#[link(wasm_import_module = "wasi:http/types@0.2.4")]
extern "C" {
    /// `fields.from-list: static func(entries: list<tuple<field-name,
    /// field-value>>) -> result<fields, header-error>`, by its canonical ABI.
    #[link_name = "[static]fields.from-list"]
    fn fields_from_list(entries: *const u32, len: usize, ret: *mut u8);
}

/// Calls `fields.from-list` with `entries` headers whose values all point at
/// one `kib` KiB buffer: the guest spends `kib` KiB, and a host that copies
/// every entry before looking spends `entries` times as much.
fn alias_bomb(a: AliasBomb) -> String {
    let value = vec![b'a'; a.kib as usize * 1024];
    let name = b"x-a";
    let entry = [name.as_ptr() as u32, name.len() as u32, value.as_ptr() as u32, value.len() as u32];
    let entries = vec![entry; a.entries as usize];
    let mut ret = [0u32; 4];
    unsafe { fields_from_list(entries.as_ptr().cast(), entries.len(), ret.as_mut_ptr().cast()) };
    format!("fields.from-list returned {}", if ret[0] & 0xff == 0 { "fields" } else { "an error" })
}

#[derive(Deserialize, JsonSchema)]
struct Sleep {
    /// Milliseconds to sleep (blocks in a host call, not in guest code).
    ms: u64,
}

fn sleep(a: Sleep) -> String {
    std::thread::sleep(std::time::Duration::from_millis(a.ms));
    format!("slept {} ms", a.ms)
}

#[derive(Deserialize, JsonSchema)]
struct Recurse {
    /// How deep to recurse (each frame keeps a buffer on the stack).
    depth: u64,
}

#[inline(never)]
fn dive(n: u64) -> u64 {
    if black_box(n) == 0 {
        return 0;
    }
    let mut frame = [0u8; 128];
    black_box(&mut frame);
    1 + black_box(dive(black_box(n - 1))) + u64::from(frame[7])
}

fn recurse(a: Recurse) -> String {
    format!("reached depth {}", dive(a.depth))
}

#[derive(Deserialize, JsonSchema)]
struct Flood {
    /// Size of the returned text, in bytes.
    bytes: usize,
}

fn flood(a: Flood) -> String {
    "x".repeat(a.bytes)
}

#[derive(Deserialize, JsonSchema)]
struct Spam {
    /// Lines to print to stdout, and again to stderr.
    lines: u64,
}

fn spam(a: Spam) -> String {
    for i in 0..a.lines {
        println!("hostile stdout line {i}");
        eprintln!("hostile stderr line {i}");
    }
    "ok".into()
}

fn panic() -> String {
    panic!("hostile plugin panics on purpose")
}

#[derive(Deserialize, JsonSchema)]
struct PathArg {
    /// A path as the guest sees it.
    path: String,
}

fn read_file(a: PathArg) -> Result<String> {
    Ok(std::fs::read_to_string(&a.path)?)
}

#[derive(Deserialize, JsonSchema)]
struct WriteFile {
    /// A path as the guest sees it.
    path: String,
    /// The text to write.
    content: String,
}

fn write_file(a: WriteFile) -> Result<String> {
    std::fs::write(&a.path, &a.content)?;
    Ok(format!("wrote {} bytes", a.content.len()))
}

fn list_dir(a: PathArg) -> Result<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&a.path)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names.join("\n"))
}

#[derive(Deserialize, JsonSchema)]
struct Env {
    /// The variable's name.
    name: String,
}

fn env(a: Env) -> String {
    std::env::var(&a.name).unwrap_or_else(|_| "unset".into())
}

#[derive(Deserialize, JsonSchema)]
struct Url {
    /// An http:// or https:// URL.
    url: String,
}

fn http_get(a: Url) -> Result<String> {
    use wasi::http::types::{Fields, Method, OutgoingRequest, Scheme};
    let (scheme, rest) = if let Some(rest) = a.url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = a.url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(Error::invalid_params("the URL must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let bad = |what: &str| Error::invalid_params(format!("bad {what}"));
    request.set_method(&Method::Get).map_err(|()| bad("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| bad("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| bad("path"))?;
    let future = wasi::http::outgoing_handler::handle(request, None)
        .map_err(|e| Error::failed(format!("request refused: {e:?}")))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(Error::failed(format!("request failed: {e:?}"))),
        Some(Err(())) | None => return Err(Error::failed("request failed: no response")),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| Error::failed("no response body"))?;
    let stream = body.stream().map_err(|()| Error::failed("no response body stream"))?;
    let mut bytes = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 1 << 20 {
            break;
        }
    }
    Ok(format!("{status}\n{}", String::from_utf8_lossy(&bytes)))
}

#[derive(Deserialize, JsonSchema)]
struct Addr {
    /// host:port
    addr: String,
}

fn tcp_connect(a: Addr) -> Result<String> {
    std::net::TcpStream::connect(&a.addr)?;
    Ok("connected".into())
}

#[derive(Deserialize, JsonSchema)]
struct OpenMany {
    /// The file to open again and again.
    path: String,
    /// How many times to open it (all handles stay open until the call ends).
    count: u64,
}

#[derive(Serialize, JsonSchema)]
struct Opened {
    /// How many opens succeeded.
    opened: u64,
    /// The error that stopped it, if any.
    error: Option<String>,
}

fn open_many(a: OpenMany) -> Structured<Opened> {
    let mut files = Vec::new();
    let mut error = None;
    while (files.len() as u64) < a.count {
        match std::fs::File::open(&a.path) {
            Ok(f) => files.push(f),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let opened = files.len() as u64;
    let text = match &error {
        Some(e) => format!("opened {opened} ({e})"),
        None => format!("opened {opened}"),
    };
    Structured::new(Opened { opened, error }).text(text)
}

#[derive(Deserialize, JsonSchema)]
struct LogFlood {
    /// How many log messages to send.
    count: u64,
}

fn log_flood(a: LogFlood) -> String {
    for i in 0..a.count {
        log(Level::Info, format!("hostile log message {i}"));
    }
    format!("logged {}", a.count)
}

ward_guest::plugin!(|p| {
    if p.is_listing() && std::env::var_os("HOSTILE_PANIC_ON_LIST").is_some() {
        panic!("hostile plugin panics while listing (HOSTILE_PANIC_ON_LIST is set)");
    }
    p.tool("alloc", "Allocates and touches `mb` MiB; reports how many it got", alloc);
    p.tool("spin", "Loops forever in pure computation", spin);
    p.tool("ask_badly", "Sends the client malformed sampling params, then asks 100 times", ask_badly);
    p.tool("alias_bomb", "Passes fields.from-list many headers that share one large value", alias_bomb);
    p.tool("ask_unstable", "Asks the user a question that differs on every run", ask_unstable);
    p.tool("sleep", "Sleeps `ms` milliseconds, blocked in a host call", sleep);
    p.tool("recurse", "Recurses `depth` frames deep", recurse);
    p.tool("flood", "Returns a text of `bytes` bytes", flood);
    p.tool("spam", "Prints `lines` lines to stdout and to stderr, then returns ok", spam);
    p.tool("panic", "Panics", panic);
    p.tool("read_file", "Reads a text file", read_file);
    p.tool("write_file", "Writes a text file", write_file);
    p.tool("list_dir", "Lists a directory", list_dir);
    p.tool("env", "Returns an environment variable's value, or `unset`", env);
    p.tool("http_get", "GETs a URL over wasi:http; returns the status, a newline and the body", http_get);
    p.tool("tcp_connect", "Opens a TCP connection to host:port; returns `connected`", tcp_connect);
    p.tool("resolve", "Resolves a name over wasi:sockets/ip-name-lookup; returns the addresses", net_attacks::resolve);
    p.tool("open_many", "Opens a file `count` times, holding every handle; reports how many opened", open_many);
    p.tool("log_flood", "Sends `count` log messages to the host", log_flood);
    squat::register(p);
    oversize::register(p);
    schemas::register(p);
    fs_attacks::register(p);
    p.tool("hold", "Opens `count` files at `path` (or TCP sockets), logs, and holds them `ms` ms", resource_attacks::hold);
    p.tool("nap", "Logs `napping`, then sleeps `ms` milliseconds", resource_attacks::nap);
});

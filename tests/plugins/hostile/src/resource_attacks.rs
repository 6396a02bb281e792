// Attacks on host resources that every plugin shares: file descriptors and
// the instance pool. Each tool logs once it holds what it took, so a test
// can wait for that signal instead of sleeping.
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
pub struct Hold {
    /// Files (with `path`) or unconnected TCP sockets (without) to open.
    count: u64,
    /// A file to open again and again; without it, TCP sockets are created.
    path: Option<String>,
    /// How long to hold them, in milliseconds.
    ms: u64,
}

/// Opens up to `count` handles, logs how many it holds, then keeps them for
/// `ms` milliseconds.
pub fn hold(a: Hold) -> String {
    use wasi::sockets::network::IpAddressFamily;
    use wasi::sockets::tcp_create_socket::create_tcp_socket;
    let mut files = Vec::new();
    let mut sockets = Vec::new();
    let mut error = None;
    while ((files.len() + sockets.len()) as u64) < a.count {
        let opened = match &a.path {
            Some(path) => std::fs::File::open(path).map(|f| files.push(f)).map_err(|e| e.to_string()),
            None => create_tcp_socket(IpAddressFamily::Ipv4)
                .map(|s| sockets.push(s))
                .map_err(|e| format!("{e:?}")),
        };
        if let Err(e) = opened {
            error = Some(e);
            break;
        }
    }
    let held = files.len() + sockets.len();
    let text = match &error {
        Some(e) => format!("holding {held} handles ({e})"),
        None => format!("holding {held} handles"),
    };
    log(Level::Info, text.clone());
    std::thread::sleep(std::time::Duration::from_millis(a.ms));
    text
}

#[derive(Deserialize, JsonSchema)]
pub struct Nap {
    /// Milliseconds to sleep after logging `napping`.
    ms: u64,
}

/// Logs `napping` (the instance is live), then sleeps in a host call.
pub fn nap(a: Nap) -> String {
    log(Level::Info, "napping".to_string());
    std::thread::sleep(std::time::Duration::from_millis(a.ms));
    format!("napped {} ms", a.ms)
}

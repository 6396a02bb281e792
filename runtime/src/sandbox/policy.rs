//! A plugin's policy: what it is granted beyond nothing, read from
//! `DIR/NAME.toml` beside `DIR/NAME.wasm`.
//!
//! Design decisions:
//! - **Deny by default.** Without a policy file a plugin gets
//!   [`Policy::defaults`]: no files, no environment, no network, and the
//!   `DEFAULT_*` limits below. A test pins those defaults so they cannot
//!   drift.
//! - **Strict.** An unknown key (a typo such as `[limit]` or `mem`) is an
//!   error, not silently ignored: a misspelt limit would otherwise leave the
//!   default in force without anyone noticing.
//! - **All problems at once.** Parsing goes on after a bad value, and the
//!   error lists every problem, one per line, each naming the file, the key
//!   (`limits.memory`, `fs[1].mode`, `network.allow[0]`), what was found and
//!   what was expected.
//! - **Validated once per load.** A [`Policy`] is checked when the plugin is
//!   loaded (host directories canonicalised, allow list parsed); the per-call
//!   code in the other `sandbox` modules only applies it.
//!
//! ```toml
//! [names]
//! prefix = "weather"       # exposed names are PREFIX_NAME; "" = unprefixed
//! [limits]
//! memory = "64MiB"
//! fuel = 5_000_000_000
//! timeout = "30s"
//! max-output = "1MiB"
//! [[fs]]
//! host = "./data"          # relative to this file's directory
//! guest = "/data"
//! mode = "ro"              # or "rw"
//! [env]
//! GREETING = "hello"
//! [network]
//! allow = ["api.example.com:443", "*.example.org"]
//! [source]                 # written by `ward add` (see `adopt`)
//! ref = "127.0.0.1:5000/team/weather:1.2"
//! sha256 = "9f2c…"         # any other bytes in NAME.wasm are refused
//! ```

use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::fs::{DirId, FsGrants, Opener, Protected};
use super::net::{AllowEntry, NetPolicy};
use crate::service::access::{self, Access};
use crate::service::rate::{self, Rates};
use crate::service::results::{self, CachePolicy};

/// Memory for all linear memories and tables of one instance together,
/// without a policy: 64 MiB. Guards against a guest exhausting the host's
/// memory (and, with many concurrent calls, each other's). Enough for a
/// typical Rust or JavaScript component; an 18 MB componentize-py component
/// may need a larger `limits.memory`.
pub const DEFAULT_MEMORY: u64 = 64 << 20;

/// Fuel per call, without a policy: 10 billion units. Guards against a guest
/// spinning the CPU (an infinite loop, runaway recursion) with a budget that
/// is deterministic, unlike the wall clock. wasmtime charges about one unit
/// per wasm instruction, and an optimised guest runs on the order of one to
/// a few billion instructions per second, so this is several seconds of pure
/// computation: far beyond a typical tool call (a Rust `greet` needs
/// thousands of units, an interpreted Python or JavaScript call millions),
/// yet it ends a spinning guest well before [`DEFAULT_TIMEOUT`], so the
/// error says "fuel" rather than a vaguer timeout. The runtime team may tune
/// it after measuring real plugins.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;

/// Wall-clock time per call, without a policy: 30 s. Guards against a guest
/// that burns no fuel while it waits (a sleep, a slow or stalled network
/// peer, a blocking read), which fuel cannot catch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of one result, without a policy: 1 MiB. Guards against a guest
/// flooding host memory and the client's context window with its output;
/// host-side buffers are not counted by the memory limit.
pub const DEFAULT_MAX_OUTPUT: u64 = 1 << 20;

/// Accepted `limits.memory`: at least one 64 KiB wasm page, at most 4 GiB
/// (a typo such as `"64GiB"` for `"64MiB"` should not pass silently). 4 GiB
/// is also what the instance pool reserves per memory (`plugin/engine.rs`)
/// and the most one 32-bit memory can hold, so the limiter is the only
/// memory limit a guest ever meets.
pub const MEMORY_BOUNDS: RangeInclusive<u64> = (64 << 10)..=(4 << 30);

/// Accepted `limits.timeout`: 1 ms to 1 h. A call is a request an AI client
/// is waiting on; longer work belongs outside a tool call.
pub const TIMEOUT_BOUNDS: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3600);

/// Default calls of one plugin in flight at once. Each call holds an
/// instance (memory up to `limits.memory`), so this bounds what one busy
/// plugin can take from the host; further calls queue.
pub const DEFAULT_CONCURRENCY: u32 = 64;

/// Accepted `limits.concurrency`.
pub const CONCURRENCY_BOUNDS: RangeInclusive<u32> = 1..=1024;

/// Accepted `limits.max-output`: 1 byte to 256 MiB (a result is held in
/// memory and sent as one JSON line).
pub const MAX_OUTPUT_BOUNDS: RangeInclusive<u64> = 1..=(256 << 20);

/// The longest exposed-name prefix; with `_` and a name of at least one
/// character it fills the protocol's 64-character limit.
pub const MAX_PREFIX_LEN: usize = 63;

/// A plugin's validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Exposed names are `PREFIX_NAME`, or just `NAME` when empty. Defaults
    /// to the plugin's name, so two plugins cannot shadow each other.
    pub prefix: String,
    /// Per-instance and per-call resource limits.
    pub limits: Limits,
    /// Host directories the guest may see, in the order listed, each opened
    /// once when the policy was loaded.
    pub fs: FsGrants,
    /// Environment variables, sorted by name; nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// Where the guest may connect.
    pub network: NetPolicy,
    /// Where the plugin came from and the bytes it must be (`[source]`).
    pub source: Source,
    /// The names of the `[env]` variables whose values come from a
    /// reference (`from-env`, `from-file`): secrets, never shown.
    pub secrets: Vec<String>,
    /// Who may use which item (`[access]`).
    pub access: Access,
    /// How often a caller may call (`limits.rate` and friends).
    pub rates: Rates,
    /// Which results are kept (`[cache]`).
    pub cache: CachePolicy,
}

/// Resource limits; see the `DEFAULT_*` constants for what each guards
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of all linear memories and tables of one instance together.
    pub memory: u64,
    /// Fuel per call.
    pub fuel: u64,
    /// Wall-clock time per call.
    pub timeout: Duration,
    /// Bytes of one result.
    pub max_output: u64,
    /// Calls of this plugin that may run at once; more wait their turn.
    pub concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: DEFAULT_MEMORY,
            fuel: DEFAULT_FUEL,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// One `[[fs]]` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGrant {
    /// The host directory, canonical (absolute, no symlinks), known to exist
    /// when the policy was loaded.
    pub host: PathBuf,
    /// Where the guest sees it: absolute, normalised (no `.`, `..`, `//` or
    /// trailing `/`), unique among the grants.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: FsMode,
    /// The directory opened for it when the policy was loaded.
    pub(crate) dir: DirId,
}

/// Access to a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsMode {
    /// Read-only (the default).
    #[default]
    Ro,
    /// Read and write.
    Rw,
}

/// A policy that cannot be used: every problem found in it.
#[derive(Debug)]
pub struct PolicyError {
    /// The policy file.
    pub path: PathBuf,
    /// What is wrong, in the order found; never empty.
    pub problems: Vec<Problem>,
}

/// One problem in a policy file.
#[derive(Debug)]
pub enum Problem {
    /// The file exists but could not be read.
    Read(io::Error),
    /// Not valid TOML (1-based line and column).
    Syntax {
        /// Line of the error.
        line: usize,
        /// Column of the error, in characters.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key ward does not know.
    UnknownKey {
        /// The full dotted key, such as `limits.cpu`.
        key: String,
        /// The keys allowed at that level.
        expected: &'static [&'static str],
    },
    /// A value that is missing, of the wrong type or out of range.
    Invalid {
        /// The full dotted key, such as `fs[1].mode`.
        key: String,
        /// What was found and what was expected.
        message: String,
    },
}

impl Problem {
    /// The dotted key the problem is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Problem::UnknownKey { key, .. } | Problem::Invalid { key, .. } => Some(key),
            Problem::Read(_) | Problem::Syntax { .. } => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Read(e) => write!(f, "cannot read: {e}"),
            Problem::Syntax {
                line,
                column,
                message,
            } => write!(f, "line {line}, column {column}: invalid TOML: {message}"),
            Problem::UnknownKey { key, expected } => write!(
                f,
                "unknown key {key:?} (expected one of {})",
                expected.join(", ")
            ),
            Problem::Invalid { key, message } => write!(f, "{key}: {message}"),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {problem}", self.path.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// The policy of a plugin without a policy file: exposed names prefixed
    /// with its name, default limits, no files, no environment, no network.
    pub fn defaults(plugin_name: &str) -> Policy {
        Policy {
            prefix: plugin_name.to_string(),
            limits: Limits::default(),
            fs: FsGrants::default(),
            env: Vec::new(),
            network: NetPolicy::default(),
            source: Source::default(),
            secrets: Vec::new(),
            access: Access::default(),
            rates: Rates::default(),
            cache: CachePolicy::default(),
        }
    }

    /// The policy of plugin `name` in `dir`: `DIR/NAME.toml` if it exists,
    /// else the defaults. A file that exists but cannot be read is an error,
    /// never the defaults; so is a plugin name that cannot serve as the
    /// default prefix. No grant may reach `protected` or `dir` itself.
    pub fn for_plugin(
        dir: &Path,
        name: &str,
        protected: &Protected,
    ) -> Result<Policy, PolicyError> {
        let path = dir.join(format!("{name}.toml"));
        match path.symlink_metadata() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut errors = Problems::default();
                errors.check_prefix("names.prefix", name, true);
                errors.finish(&path)?;
                Ok(Policy::defaults(name))
            }
            _ => Policy::load(&path, name, protected),
        }
    }

    /// Reads and validates the policy file at `path` of plugin
    /// `plugin_name`; no grant may reach `protected` or the file's directory.
    pub fn load(
        path: &Path,
        plugin_name: &str,
        protected: &Protected,
    ) -> Result<Policy, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Policy::parse_with(&text, path, plugin_name, protected),
            Err(e) => Err(PolicyError {
                path: path.to_path_buf(),
                problems: vec![Problem::Read(e)],
            }),
        }
    }

    /// Validates the policy `text`, read from `path` (which names the file
    /// in errors and anchors relative host paths) for plugin `plugin_name`.
    pub fn parse(text: &str, path: &Path, plugin_name: &str) -> Result<Policy, PolicyError> {
        Policy::parse_with(text, path, plugin_name, &Protected::default())
    }

    /// [`Policy::parse`], refusing grants that reach `protected` (or the
    /// policy file's directory, always protected).
    pub fn parse_with(
        text: &str,
        path: &Path,
        plugin_name: &str,
        protected: &Protected,
    ) -> Result<Policy, PolicyError> {
        let table: Table = match toml::from_str(text) {
            Ok(table) => table,
            Err(e) => {
                let (line, column) = e
                    .span()
                    .map_or((1, 1), |span| line_column(text, span.start));
                let problem = Problem::Syntax {
                    line,
                    column,
                    message: e.message().trim().to_string(),
                };
                return Err(PolicyError {
                    path: path.to_path_buf(),
                    problems: vec![problem],
                });
            }
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut p = Problems::default();
        let mut policy = Policy::defaults(plugin_name);
        p.check_keys(
            "",
            &table,
            &[
                "names", "limits", "fs", "env", "network", "source", "access", "cache",
            ],
        );

        let mut prefix_given = false;
        if let Some(names) = table.get("names").and_then(|v| p.table("names", v)) {
            p.check_keys("names", names, &["prefix"]);
            if let Some(v) = names.get("prefix") {
                prefix_given = true;
                match v.as_str() {
                    Some(s) => policy.prefix = s.to_string(),
                    None => p.invalid(
                        "names.prefix",
                        format!("expected a string such as \"weather\", found {}", found(v)),
                    ),
                }
            }
        }
        p.check_prefix("names.prefix", &policy.prefix, !prefix_given);

        if let Some(limits) = table.get("limits").and_then(|v| p.table("limits", v)) {
            p.check_keys(
                "limits",
                limits,
                &[
                    "memory",
                    "fuel",
                    "timeout",
                    "max-output",
                    "concurrency",
                    "rate",
                    "burst",
                    "plugin-rate",
                    "plugin-burst",
                ],
            );
            policy.rates = rate::parse(&mut p, limits);
            if let Some(v) = limits.get("memory") {
                policy.limits.memory = p.size("limits.memory", v, MEMORY_BOUNDS, DEFAULT_MEMORY);
            }
            if let Some(v) = limits.get("fuel") {
                policy.limits.fuel = match v.as_integer() {
                    Some(n) if n > 0 => n as u64,
                    _ => {
                        p.invalid(
                            "limits.fuel",
                            format!(
                                "expected a positive integer such as 5_000_000_000, found {}",
                                found(v)
                            ),
                        );
                        DEFAULT_FUEL
                    }
                };
            }
            if let Some(v) = limits.get("timeout") {
                policy.limits.timeout = p.duration("limits.timeout", v);
            }
            if let Some(v) = limits.get("concurrency") {
                policy.limits.concurrency = match v.as_integer() {
                    Some(n) if n >= 1 && n <= i64::from(*CONCURRENCY_BOUNDS.end()) => n as u32,
                    _ => {
                        p.invalid(
                            "limits.concurrency",
                            format!(
                                "expected an integer from 1 to {}, found {}",
                                CONCURRENCY_BOUNDS.end(),
                                found(v)
                            ),
                        );
                        DEFAULT_CONCURRENCY
                    }
                };
            }
            if let Some(v) = limits.get("max-output") {
                policy.limits.max_output = p.size(
                    "limits.max-output",
                    v,
                    MAX_OUTPUT_BOUNDS,
                    DEFAULT_MAX_OUTPUT,
                );
            }
        }

        if let Some(v) = table.get("fs") {
            match v.as_array() {
                Some(grants) => {
                    let protected = protected.with_plugin_dir(base);
                    let mut opener = Opener::new();
                    let mut guests: Vec<(usize, String)> = Vec::new();
                    for (i, grant) in grants.iter().enumerate() {
                        let key = format!("fs[{i}]");
                        if let Some(grant) = p.table(&key, grant) {
                            if let Some((host, guest, mode)) =
                                p.fs_grant(&key, grant, base, &protected)
                            {
                                match guests.iter().find(|(_, g)| *g == guest) {
                                    Some((first, _)) => p.invalid(
                                        &format!("{key}.guest"),
                                        format!(
                                            "expected a guest path not granted already, found {guest:?} (fs[{first}] grants it too)"
                                        ),
                                    ),
                                    None => {
                                        guests.push((i, guest.clone()));
                                        let shown = host.display().to_string();
                                        if let Err(e) = opener.open(host, guest, mode) {
                                            p.invalid(
                                                &format!("{key}.host"),
                                                format!("cannot open {shown}: {e}"),
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                    policy.fs = opener.finish();
                }
                None => p.invalid(
                    "fs",
                    format!(
                        "expected an array of tables (write [[fs]], not [fs]), found {}",
                        found(v)
                    ),
                ),
            }
        }

        if let Some(env) = table.get("env").and_then(|v| p.table("env", v)) {
            for (name, value) in env {
                let key = join_key("env", name);
                if !is_env_name(name) {
                    p.invalid(&key, format!("expected a variable name of letters, digits and \"_\", not starting with a digit, found {name:?}"));
                    continue;
                }
                let value = match value {
                    Value::Table(reference) => match p.secret(&key, reference, base) {
                        Some(secret) => {
                            policy.secrets.push(name.clone());
                            secret
                        }
                        None => continue,
                    },
                    Value::String(s) => s.clone(),
                    _ => {
                        p.invalid(
                            &key,
                            format!(
                                "expected a literal string (such as \"{}\") or a reference ({{ from-env = \"VAR\" }} or {{ from-file = \"/run/secrets/NAME\" }}), found {}",
                                example_string(value),
                                found(value)
                            ),
                        );
                        continue;
                    }
                };
                if value.contains('\0') {
                    p.invalid(&key, "expected a value without NUL characters".to_string());
                    continue;
                }
                policy.env.push((name.clone(), value));
            }
            policy.env.sort();
            policy.secrets.sort();
        }

        if let Some(network) = table.get("network").and_then(|v| p.table("network", v)) {
            p.check_keys("network", network, &["allow"]);
            if let Some(v) = network.get("allow") {
                match v.as_array() {
                    Some(items) => {
                        let mut entries = Vec::new();
                        for (i, item) in items.iter().enumerate() {
                            let key = format!("network.allow[{i}]");
                            match item.as_str().map(str::parse::<AllowEntry>) {
                                Some(Ok(entry)) => entries.push(entry),
                                Some(Err(e)) => p.invalid(&key, e.to_string()),
                                None => p.invalid(&key, format!("expected a string such as \"api.example.com:443\", found {}", found(item))),
                            }
                        }
                        policy.network = NetPolicy::new(entries);
                    }
                    None => p.invalid(
                        "network.allow",
                        format!("expected an array of strings such as [\"api.example.com:443\"], found {}", found(v)),
                    ),
                }
            }
        }

        if let Some(source) = table.get("source").and_then(|v| p.table("source", v)) {
            policy.source = p.source(source);
        }
        if let Some(t) = table.get("access").and_then(|v| p.table("access", v)) {
            policy.access = access::parse(&mut p, t);
        }
        if let Some(t) = table.get("cache").and_then(|v| p.table("cache", v)) {
            policy.cache = results::parse(&mut p, t);
        }

        p.finish(path)?;
        Ok(policy)
    }
}

/// Collects problems as parsing goes on; the parsers of other modules'
/// sections (`service::*`) report through it too.
#[derive(Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn invalid(&mut self, key: &str, message: String) {
        self.0.push(Problem::Invalid {
            key: key.to_string(),
            message,
        });
    }

    fn finish(self, path: &Path) -> Result<(), PolicyError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(PolicyError {
                path: path.to_path_buf(),
                problems: self.0,
            })
        }
    }

    /// The problems so far, as `Display` shows them (for tests).
    #[cfg(test)]
    pub(crate) fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    pub(crate) fn table<'a>(&mut self, key: &str, v: &'a Value) -> Option<&'a Table> {
        let table = v.as_table();
        if table.is_none() {
            self.invalid(key, format!("expected a table, found {}", found(v)));
        }
        table
    }

    pub(crate) fn check_keys(
        &mut self,
        parent: &str,
        table: &Table,
        expected: &'static [&'static str],
    ) {
        for key in table.keys().filter(|k| !expected.contains(&k.as_str())) {
            self.0.push(Problem::UnknownKey {
                key: join_key(parent, key),
                expected,
            });
        }
    }

    fn check_prefix(&mut self, key: &str, prefix: &str, from_name: bool) {
        let valid = prefix.len() <= MAX_PREFIX_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid {
            return;
        }
        // No `_`: it separates prefix and item in exposed names, so a prefix
        // holding one would make `git` + `hub_x` and `git_hub` + `x` the same.
        let expected = format!(
            "at most {MAX_PREFIX_LEN} letters, digits and \"-\" (\"_\" separates prefix and name)"
        );
        if from_name {
            self.invalid(
                key,
                format!("the plugin name {prefix:?} cannot prefix tool names (expected {expected}); rename the plugin or set names.prefix"),
            );
        } else {
            self.invalid(
                key,
                format!("expected {expected} (\"\" for none), found {prefix:?}"),
            );
        }
    }

    fn size(&mut self, key: &str, v: &Value, bounds: RangeInclusive<u64>, default: u64) -> u64 {
        let range = format!(
            "from {} to {}",
            format_size(*bounds.start()),
            format_size(*bounds.end())
        );
        match parse_size(v) {
            Some(n) if bounds.contains(&n) => n,
            Some(_) => {
                self.invalid(key, format!("expected a size {range}, found {}", found(v)));
                default
            }
            None => {
                self.invalid(
                    key,
                    format!(
                        "expected a size such as \"{}\" ({range}), found {}",
                        format_size(default).replace(' ', ""),
                        found(v)
                    ),
                );
                default
            }
        }
    }

    fn duration(&mut self, key: &str, v: &Value) -> Duration {
        let range = format!(
            "from {} to {}",
            format_duration(*TIMEOUT_BOUNDS.start()),
            format_duration(*TIMEOUT_BOUNDS.end())
        );
        match v.as_str().and_then(parse_duration) {
            Some(d) if TIMEOUT_BOUNDS.contains(&d) => d,
            Some(_) => {
                self.invalid(
                    key,
                    format!("expected a duration {range}, found {}", found(v)),
                );
                DEFAULT_TIMEOUT
            }
            None => {
                self.invalid(
                    key,
                    format!("expected a duration such as \"30s\", \"500ms\", \"2m\" or \"1h\" ({range}), found {}", found(v)),
                );
                DEFAULT_TIMEOUT
            }
        }
    }

    /// The host directory (canonical, not reaching `protected`), guest path
    /// and mode of a grant.
    fn fs_grant(
        &mut self,
        key: &str,
        grant: &Table,
        base: &Path,
        protected: &Protected,
    ) -> Option<(PathBuf, String, FsMode)> {
        self.check_keys(key, grant, &["host", "guest", "mode"]);
        let host = match grant.get("host") {
            None => {
                self.invalid(
                    &format!("{key}.host"),
                    "missing (expected the host directory to grant, such as \"./data\")".into(),
                );
                None
            }
            Some(v) => self.host_dir(&format!("{key}.host"), v, base, protected),
        };
        let guest = match grant.get("guest") {
            None => {
                self.invalid(
                    &format!("{key}.guest"),
                    "missing (expected where the guest sees it, such as \"/data\")".into(),
                );
                None
            }
            Some(v) => {
                match v.as_str().map(normalise_guest) {
                    Some(Ok(guest)) => Some(guest),
                    Some(Err(why)) => {
                        self.invalid(&format!("{key}.guest"), format!("expected an absolute guest path such as \"/data\", found {} ({why})", found(v)));
                        None
                    }
                    None => {
                        self.invalid(
                            &format!("{key}.guest"),
                            format!(
                                "expected an absolute guest path such as \"/data\", found {}",
                                found(v)
                            ),
                        );
                        None
                    }
                }
            }
        };
        let mode = match grant.get("mode") {
            None => Some(FsMode::Ro),
            Some(v) => match v.as_str() {
                Some("ro") => Some(FsMode::Ro),
                Some("rw") => Some(FsMode::Rw),
                _ => {
                    self.invalid(
                        &format!("{key}.mode"),
                        format!("expected \"ro\" or \"rw\", found {}", found(v)),
                    );
                    None
                }
            },
        };
        Some((host?, guest?, mode?))
    }

    /// Resolves and checks a host directory, following the operator's
    /// symlinks once. This only inspects the path; `fs.rs` opens it.
    fn host_dir(
        &mut self,
        key: &str,
        v: &Value,
        base: &Path,
        protected: &Protected,
    ) -> Option<PathBuf> {
        let Some(text) = v.as_str() else {
            self.invalid(
                key,
                format!(
                    "expected a host directory path such as \"./data\", found {}",
                    found(v)
                ),
            );
            return None;
        };
        if text.is_empty() || text.contains('\0') {
            self.invalid(
                key,
                format!(
                    "expected a host directory path such as \"./data\", found {}",
                    found(v)
                ),
            );
            return None;
        }
        let joined = base.join(text);
        let hint = if text.starts_with('~') {
            " (\"~\" is not expanded; write the full path)"
        } else {
            ""
        };
        match joined.canonicalize() {
            Ok(dir) if dir.is_dir() => match protected.check(&dir, &found(v)) {
                Some(why) => {
                    self.invalid(key, why);
                    None
                }
                None => Some(dir),
            },
            Ok(dir) => {
                self.invalid(
                    key,
                    format!(
                        "expected a directory, found {} ({} is not a directory)",
                        found(v),
                        dir.display()
                    ),
                );
                None
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.invalid(
                    key,
                    format!(
                        "expected an existing directory, found {} ({} does not exist){hint}",
                        found(v),
                        joined.display()
                    ),
                );
                None
            }
            Err(e) => {
                self.invalid(
                    key,
                    format!(
                        "expected an accessible directory, found {} ({}: {e})",
                        found(v),
                        joined.display()
                    ),
                );
                None
            }
        }
    }
}

/// `parent.key`, quoting the key when it is not a bare TOML key.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Describes a found value for an error message.
pub(crate) fn found(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 60 => {
            format!("{:?}...", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => format!("the date-time {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// The value as it would be written as a string, for "write it as a
/// string" hints.
fn example_string(v: &Value) -> String {
    match v {
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        _ => "value".to_string(),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Normalises an absolute guest path, refusing `..` (the guest would read
/// it as a path above its grant).
fn normalise_guest(path: &str) -> Result<String, &'static str> {
    if !path.starts_with('/') {
        return Err("it must start with \"/\"");
    }
    if path.contains('\0') {
        return Err("it contains a NUL character");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("\"..\" is not allowed"),
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
];

/// A size: an integer number of bytes, or a string of digits with an
/// optional unit (B, KB, KiB, MB, MiB, GB, GiB; any case; `_` and one space
/// allowed), such as `"64MiB"` or `"64 MiB"`.
fn parse_size(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::String(s) => {
            let (number, unit) = split_number(s)?;
            let unit = unit.to_ascii_lowercase();
            let multiplier = match unit.as_str() {
                "" => 1,
                unit => SIZE_UNITS.iter().find(|(name, _)| *name == unit)?.1,
            };
            number.checked_mul(multiplier)
        }
        _ => None,
    }
}

/// A duration such as `"500ms"`, `"30s"`, `"2m"` or `"1h"`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let (number, unit) = split_number(s)?;
    let ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(ms)?))
}

/// Splits `"64 MiB"` into 64 and `"MiB"`: digits (with `_` separators),
/// an optional space, then the rest.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    if !digits.starts_with(|c: char| c.is_ascii_digit()) || digits.ends_with('_') {
        return None;
    }
    let number = digits.replace('_', "").parse().ok()?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    Some((number, rest))
}

/// A size for people: the largest binary unit that fits, exact when it
/// divides evenly (`format_size(64 << 20) == "64 MiB"`), else one decimal
/// (`"1.5 KiB"`); plain bytes below 1 KiB (`"512 B"`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// A duration for people, in the policy's own notation where it is exact:
/// `"30s"`, `"500ms"`, `"2m"`, `"1h"`; otherwise compound or decimal, such as
/// `"1m30s"`, `"1.25s"`, `"2.5ms"` or `"40µs"`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000 * MS;
    const M: u128 = 60 * S;
    const H: u128 = 60 * M;
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < MS {
        return if nanos.is_multiple_of(1_000) {
            format!("{}µs", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    if nanos < S {
        return if nanos.is_multiple_of(MS) {
            format!("{}ms", nanos / MS)
        } else {
            trim_decimal(nanos as f64 / MS as f64, "ms")
        };
    }
    if nanos < M {
        return if nanos.is_multiple_of(S) {
            format!("{}s", nanos / S)
        } else {
            trim_decimal(nanos as f64 / S as f64, "s")
        };
    }
    let (big, unit, rest) = if nanos >= H {
        (nanos / H, "h", nanos % H)
    } else {
        (nanos / M, "m", nanos % M)
    };
    if rest == 0 {
        format!("{big}{unit}")
    } else if unit == "h" && rest.is_multiple_of(M) {
        format!("{big}h{}m", rest / M)
    } else if unit == "h" {
        format!(
            "{big}h{}",
            format_duration(Duration::from_nanos(rest as u64))
        )
    } else {
        // Under a minute left: whole seconds, or seconds to two decimals.
        format!(
            "{big}m{}",
            format_duration(Duration::from_millis((rest / MS) as u64))
        )
    }
}

/// `x` with at most two decimals, trailing zeros dropped.
fn trim_decimal(x: f64, unit: &str) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

// ---- [source]: provenance and pin, written by `ward add` / `ward upgrade` ----

/// `[source]`: where the plugin came from and which bytes it must be.
/// `ward add` and `ward upgrade` write it; the loader refuses a `NAME.wasm`
/// whose sha256 differs from `sha256`, so bytes swapped behind the
/// operator's back never load (the previous version keeps serving).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// The OCI reference (or file) it was added from; `ward upgrade` follows it.
    pub reference: Option<String>,
    /// The pinned sha256 of `NAME.wasm`, 64 lowercase hex digits.
    pub sha256: Option<String>,
    /// The OCI manifest digest it was fetched at (`sha256:…`).
    pub digest: Option<String>,
    /// The fingerprint (`sha256:…` of the public key's DER) of the trusted key
    /// whose signature was verified when it was added.
    pub signed_by: Option<String>,
}

impl Problems {
    fn source(&mut self, table: &Table) -> Source {
        self.check_keys("source", table, &["ref", "sha256", "digest", "signed-by"]);
        let mut source = Source::default();
        if let Some(v) = table.get("ref") {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() && !s.contains('\0') => {
                    source.reference = Some(s.to_string())
                }
                _ => self.invalid(
                    "source.ref",
                    format!(
                        "expected a reference such as \"127.0.0.1:5000/team/weather:1.2\", found {}",
                        found(v)
                    ),
                ),
            }
        }
        if let Some(v) = table.get("sha256") {
            match v.as_str().filter(|s| is_hex64(s)) {
                Some(s) => source.sha256 = Some(s.to_ascii_lowercase()),
                None => self.invalid(
                    "source.sha256",
                    format!(
                        "expected 64 hexadecimal digits (the sha256 of the .wasm, as `sha256sum` prints it), found {}",
                        found(v)
                    ),
                ),
            }
        }
        for (key, field) in [
            ("digest", &mut source.digest),
            ("signed-by", &mut source.signed_by),
        ] {
            if let Some(v) = table.get(key) {
                match v
                    .as_str()
                    .and_then(|s| s.strip_prefix("sha256:"))
                    .filter(|h| is_hex64(h))
                {
                    Some(hex) => *field = Some(format!("sha256:{}", hex.to_ascii_lowercase())),
                    None => self.invalid(
                        &format!("source.{key}"),
                        format!(
                            "expected \"sha256:\" and 64 hexadecimal digits, found {}",
                            found(v)
                        ),
                    ),
                }
            }
        }
        source
    }
}

/// The most bytes a `from-file` secret may have.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

impl Problems {
    /// Resolves an `[env]` reference, `{ from-env = "VAR" }` (ward's own
    /// environment) or `{ from-file = "PATH" }` (relative to the policy
    /// file; one trailing newline dropped), when the plugin is loaded. A
    /// reference that does not resolve refuses the plugin; no message ever
    /// holds the value.
    fn secret(&mut self, key: &str, reference: &Table, base: &Path) -> Option<String> {
        self.check_keys(key, reference, &["from-env", "from-file"]);
        let expected =
            "expected one of { from-env = \"VAR\" } or { from-file = \"/run/secrets/NAME\" }";
        match (reference.get("from-env"), reference.get("from-file")) {
            (Some(v), None) => {
                let Some(var) = v.as_str().filter(|s| is_env_name(s)) else {
                    self.invalid(
                        &format!("{key}.from-env"),
                        format!(
                            "expected the name of a variable of ward's environment, found {}",
                            found(v)
                        ),
                    );
                    return None;
                };
                match std::env::var(var) {
                    Ok(value) => Some(value),
                    Err(std::env::VarError::NotPresent) => {
                        self.invalid(
                            key,
                            format!("the variable {var} (from-env) is not set in ward's environment; set it where ward starts, or remove the key"),
                        );
                        None
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        self.invalid(
                            key,
                            format!("the variable {var} (from-env) is not valid UTF-8"),
                        );
                        None
                    }
                }
            }
            (None, Some(v)) => {
                let Some(path) = v.as_str().filter(|s| !s.is_empty() && !s.contains('\0')) else {
                    self.invalid(
                        &format!("{key}.from-file"),
                        format!(
                            "expected a file path such as \"/run/secrets/weather\", found {}",
                            found(v)
                        ),
                    );
                    return None;
                };
                let path = base.join(path);
                match crate::files::read_regular(&path, MAX_SECRET_BYTES, "secret") {
                    Ok(Some(bytes)) => match String::from_utf8(bytes) {
                        Ok(mut text) => {
                            if text.ends_with('\n') {
                                text.pop();
                                if text.ends_with('\r') {
                                    text.pop();
                                }
                            }
                            Some(text)
                        }
                        Err(_) => {
                            self.invalid(
                                key,
                                format!("{} (from-file) is not UTF-8 text", path.display()),
                            );
                            None
                        }
                    },
                    Ok(None) => {
                        self.invalid(
                            key,
                            format!(
                                "{} (from-file) does not exist; create it or correct the path",
                                path.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.invalid(key, format!("{e:#} (from-file)"));
                        None
                    }
                }
            }
            _ => {
                self.invalid(
                    key,
                    format!(
                        "{expected}, found {}",
                        found(&Value::Table(reference.clone()))
                    ),
                );
                None
            }
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::net::HostPattern;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("weather.toml"), "weather")
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(p) => panic!("expected errors, parsed {p:?}"),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    fn one_error(text: &str) -> String {
        let errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn defaults_deny_everything() {
        // Deny by default must not drift: change these only on purpose.
        let p = Policy::defaults("weather");
        assert_eq!(p.prefix, "weather");
        assert_eq!(p.limits.memory, 64 * 1024 * 1024);
        assert_eq!(p.limits.fuel, 10_000_000_000);
        assert_eq!(p.limits.timeout, Duration::from_secs(30));
        assert_eq!(p.limits.max_output, 1024 * 1024);
        assert!(p.fs.is_empty());
        assert!(p.env.is_empty());
        assert!(p.network.is_empty());
        assert_eq!(p.limits, Limits::default());
        assert_eq!(parse("").unwrap(), p);
        assert_eq!(parse("[limits]\n[network]\n[env]\n[names]\n").unwrap(), p);
    }

    #[test]
    fn full_policy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let path = dir.path().join("weather.toml");
        std::fs::write(
            &path,
            r#"
            [names]
            prefix = "wx"
            [limits]
            memory = "128MiB"
            fuel = 5_000_000_000
            timeout = "500ms"
            max-output = 65536
            [[fs]]
            host = "./data"
            guest = "/data/"
            [[fs]]
            host = "out"
            guest = "//out/./x"
            mode = "rw"
            [env]
            ZED = "z"
            GREETING = "hello"
            [network]
            allow = ["api.example.com:443", "*.example.org", "10.0.0.5:8080", "[::1]:9000"]
            "#,
        )
        .unwrap();
        let p = Policy::for_plugin(dir.path(), "weather", &Protected::default()).unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(p.prefix, "wx");
        assert_eq!(
            p.limits,
            Limits {
                memory: 128 << 20,
                fuel: 5_000_000_000,
                timeout: Duration::from_millis(500),
                max_output: 65536,
                concurrency: DEFAULT_CONCURRENCY,
            }
        );
        assert_eq!(
            p.fs.iter()
                .map(|g| (g.host.clone(), g.guest.as_str(), g.mode))
                .collect::<Vec<_>>(),
            [
                (root.join("data"), "/data", FsMode::Ro),
                (root.join("out"), "/out/x", FsMode::Rw),
            ]
        );
        assert_eq!(
            p.env,
            [
                ("GREETING".to_string(), "hello".to_string()),
                ("ZED".to_string(), "z".to_string())
            ]
        );
        assert_eq!(p.network.entries().len(), 4);
        assert_eq!(
            p.network.entries()[1].host,
            HostPattern::Subdomains("example.org".into())
        );
        assert!(p.network.allows_host("api.example.com", 443));
        assert!(p.network.allows_addr(None, "[::1]:9000".parse().unwrap()));
    }

    #[test]
    fn empty_prefix_exposes_names_unprefixed() {
        assert_eq!(parse("[names]\nprefix = \"\"").unwrap().prefix, "");
    }

    #[test]
    fn sizes_and_durations() {
        for (text, bytes) in [
            ("65536", 65536),
            ("\"64MiB\"", 64 << 20),
            ("\"64 MiB\"", 64 << 20),
            ("\"64mib\"", 64 << 20),
            ("\"100MB\"", 100_000_000),
            ("\"1GiB\"", 1 << 30),
            ("\"2GB\"", 2_000_000_000),
            ("\"1_024KiB\"", 1 << 20),
            ("\"512KB\"", 512_000),
            ("\"1048576B\"", 1 << 20),
            ("\"1048576\"", 1 << 20),
        ] {
            let p = parse(&format!("[limits]\nmemory = {text}"))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.limits.memory, bytes, "{text}");
        }
        for (text, d) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1 s", Duration::from_secs(1)),
        ] {
            let p = parse(&format!("[limits]\ntimeout = {text:?}"))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.limits.timeout, d, "{text}");
        }
    }

    #[test]
    fn bad_limits() {
        assert_eq!(
            one_error("[limits]\nmemory = \"lots\""),
            r#"weather.toml: limits.memory: expected a size such as "64MiB" (from 64 KiB to 4 GiB), found "lots""#
        );
        assert!(one_error("[limits]\nmemory = 0").contains("from 64 KiB to 4 GiB, found 0"));
        assert!(
            one_error("[limits]\nmemory = \"64TiB\"").contains("limits.memory: expected a size")
        );
        assert!(
            one_error("[limits]\nmemory = \"99999999999999999999GiB\"").contains("limits.memory")
        );
        assert!(one_error("[limits]\nmemory = -1").contains("found -1"));
        assert!(one_error("[limits]\nmemory = 1.5").contains("found 1.5"));
        assert!(
            one_error("[limits]\nfuel = 0").contains("limits.fuel: expected a positive integer")
        );
        assert!(one_error("[limits]\nfuel = \"5G\"").contains(
            r#"limits.fuel: expected a positive integer such as 5_000_000_000, found "5G""#
        ));
        assert!(one_error("[limits]\ntimeout = 30")
            .contains(r#"limits.timeout: expected a duration such as "30s""#));
        assert!(one_error("[limits]\ntimeout = \"0s\"")
            .contains("expected a duration from 1ms to 1h, found \"0s\""));
        assert!(one_error("[limits]\ntimeout = \"2h\"").contains("from 1ms to 1h"));
        assert!(one_error("[limits]\ntimeout = \"30 seconds\"").contains("limits.timeout"));
        assert!(one_error("[limits]\nmax-output = \"0B\"")
            .contains("limits.max-output: expected a size from 1 B to 256 MiB"));
        assert!(one_error("[limits]\nmax-output = true").contains("found true"));
    }

    #[test]
    fn unknown_keys_at_every_level() {
        assert_eq!(
            one_error("[limits]\ncpu = 1"),
            r#"weather.toml: unknown key "limits.cpu" (expected one of memory, fuel, timeout, max-output, concurrency, rate, burst, plugin-rate, plugin-burst)"#
        );
        assert!(one_error("[limit]\nmemory = 1").contains(
            r#"unknown key "limit" (expected one of names, limits, fs, env, network, source, access, cache)"#
        ));
        assert!(one_error("[names]\nname = \"x\"").contains(r#"unknown key "names.name""#));
        assert!(one_error("[network]\nallowed = []")
            .contains(r#"unknown key "network.allowed" (expected one of allow)"#));
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[[fs]]\nhost = {:?}\nguest = \"/d\"\nmod = \"rw\"",
            dir.path()
        );
        assert!(one_error(&text)
            .contains(r#"unknown key "fs[0].mod" (expected one of host, guest, mode)"#));
    }

    #[test]
    fn wrong_types() {
        assert!(one_error("limits = 1").contains("limits: expected a table, found 1"));
        assert!(one_error("[fs]\nhost = \"x\"")
            .contains("fs: expected an array of tables (write [[fs]], not [fs]), found a table"));
        assert!(one_error("fs = [1]").contains("fs[0]: expected a table, found 1"));
        assert!(one_error("[names]\nprefix = 1").contains("names.prefix: expected a string"));
        assert!(one_error("[network]\nallow = \"x.com\"")
            .contains("network.allow: expected an array of strings"));
        assert!(
            one_error("[network]\nallow = [443]").contains("network.allow[0]: expected a string")
        );
    }

    #[test]
    fn prefix_must_make_valid_names() {
        assert!(one_error("[names]\nprefix = \"my.plugin\"").contains(r#"names.prefix: expected at most 63 letters, digits and "-" ("_" separates prefix and name) ("" for none), found "my.plugin""#));
        assert!(
            one_error(&format!("[names]\nprefix = \"{}\"", "a".repeat(64)))
                .contains("names.prefix")
        );
        assert!(parse(&format!("[names]\nprefix = \"{}\"", "a".repeat(63))).is_ok());
        assert!(one_error("[names]\nprefix = \"git_hub\"").contains("names.prefix"));
        // A plugin name that cannot be a prefix needs an explicit one.
        let e = Policy::parse("", Path::new("my.plugin.toml"), "my.plugin")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the plugin name \"my.plugin\" cannot prefix tool names"),
            "{e}"
        );
        assert!(Policy::parse(
            "[names]\nprefix = \"mine\"",
            Path::new("my.plugin.toml"),
            "my.plugin"
        )
        .is_ok());
        let dir = tempfile::tempdir().unwrap();
        assert!(Policy::for_plugin(dir.path(), "my plugin", &Protected::default()).is_err());
    }

    #[test]
    fn env() {
        assert!(one_error("[env]\nPORT = 8080")
            .contains(r#"env.PORT: expected a literal string (such as "8080") or a reference"#));
        assert!(
            one_error("[env]\n\"1ABC\" = \"x\"").contains(r#"env.1ABC: expected a variable name"#)
        );
        assert!(one_error("[env]\n\"A=B\" = \"x\"").contains("env.\"A=B\""));
        assert!(one_error("[env]\nA = \"x\\u0000y\"").contains("NUL"));
        let errors = errors("[env]\nA = { b = 1 }");
        assert!(errors[0].contains("unknown key \"env.A.b\""), "{errors:?}");
        assert!(
            errors[1].contains("env.A: expected one of { from-env"),
            "{errors:?}"
        );
        assert_eq!(
            parse("[env]\n_x1 = \"\"").unwrap().env,
            [("_x1".to_string(), String::new())]
        );
    }

    #[test]
    fn env_references_resolve_at_load_and_are_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        // A variable every test process has (setting one would need unsafe).
        let path = std::env::var("PATH").unwrap();
        let text =
            "[env]\nA = { from-env = \"PATH\" }\nB = { from-file = \"token\" }\nC = \"plain\"";
        let policy = Policy::parse(text, &dir.path().join("weather.toml"), "weather").unwrap();
        assert_eq!(
            policy.env,
            [
                ("A".to_string(), path),
                ("B".to_string(), "s3cret".to_string()),
                ("C".to_string(), "plain".to_string()),
            ]
        );
        assert_eq!(policy.secrets, ["A", "B"]);

        let error = Policy::parse(
            "[env]\nA = { from-env = \"WARD_POLICY_TEST_UNSET\" }\nB = { from-file = \"missing\" }",
            &dir.path().join("weather.toml"),
            "weather",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("env.A: the variable WARD_POLICY_TEST_UNSET (from-env) is not set"),
            "{error}"
        );
        assert!(
            error.contains("env.B: ") && error.contains("missing (from-file) does not exist"),
            "{error}"
        );
        assert!(
            one_error("[env]\nA = { from-env = \"X\", from-file = \"y\" }")
                .contains("expected one of")
        );
        assert!(one_error("[env]\nA = { from-env = \"1X\" }").contains("env.A.from-env"));
        // Not a regular file: refused without opening it (a FIFO would block).
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for (file, why) in [
            ("fifo", "not a regular file (a FIFO)"),
            (".", "not a regular file (a directory)"),
        ] {
            let error = Policy::parse(
                &format!("[env]\nA = {{ from-file = \"{file}\" }}"),
                &dir.path().join("weather.toml"),
                "weather",
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn access_rates_and_cache_sections() {
        let policy = parse(
            "[limits]\nrate = \"100/min\"\nburst = 20\n[access]\nscopes = [\"weather:read\"]\n[access.tools]\nforecast = [\"weather:forecast\"]\n[cache]\nttl = \"60s\"\ntools = [\"forecast\"]",
        )
        .unwrap();
        assert_eq!(policy.access.scopes, ["weather:read"]);
        assert_eq!(
            policy
                .access
                .required(crate::service::access::ItemKind::Tool, "forecast"),
            ["weather:read", "weather:forecast"]
        );
        assert_eq!(policy.rates.per_caller.unwrap().burst.get(), 20);
        assert_eq!(policy.cache.ttl, Some(Duration::from_secs(60)));
        assert_eq!(policy.cache.tools, ["forecast"]);
        assert!(one_error("[access]\nscopes = \"weather:read\"")
            .contains("access.scopes: expected an array"));
        assert!(one_error("[access]\nscopes = [\"a b\"]").contains("access.scopes[0]"));
        assert!(one_error("[access.tools]\nx = [1]").contains("access.tools.x[0]"));
        assert!(one_error("[access]\nscope = []").contains("unknown key \"access.scope\""));
        assert!(one_error("[cache]\ntools = [\"x\"]").contains("cache.ttl: missing"));
        assert!(one_error("[cache]\nttl = \"2d\"").contains("cache.ttl"));
        assert!(one_error("[limits]\nrate = \"fast\"").contains("limits.rate"));
    }

    #[test]
    fn network_entries_are_checked() {
        let errors = errors("[network]\nallow = [\"ok.example\", \"*\", \"https://x.example\", \"a.example:99999\", \"\", \"*.\", \"a b\"]");
        let keys: Vec<&str> = errors
            .iter()
            .map(|e| e.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "network.allow[1]",
                "network.allow[2]",
                "network.allow[3]",
                "network.allow[4]",
                "network.allow[5]",
                "network.allow[6]"
            ]
        );
        assert!(errors[0].contains("every host"), "{}", errors[0]);
    }

    #[test]
    fn fs_grants() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let path = dir.path().join("weather.toml");
        let check = |text: &str| Policy::parse(text, &path, "weather");

        // Relative to the policy file's directory, not the working directory.
        let p = check("[[fs]]\nhost = \"data\"\nguest = \"/data\"").unwrap();
        assert_eq!(
            p.fs[0].host,
            dir.path().canonicalize().unwrap().join("data")
        );
        assert_eq!(p.fs[0].mode, FsMode::Ro);
        // Absolute paths and `..` on the host side are the operator's choice.
        let p = check(&format!(
            "[[fs]]\nhost = {:?}\nguest = \"/\"",
            dir.path().join("data/../data")
        ))
        .unwrap();
        assert_eq!(
            p.fs[0].host,
            dir.path().canonicalize().unwrap().join("data")
        );
        assert_eq!(p.fs[0].guest, "/");

        let e = check("[[fs]]\nhost = \"missing\"\nguest = \"/m\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fs[0].host: expected an existing directory, found \"missing\"")
                && e.contains("does not exist"),
            "{e}"
        );
        let e = check("[[fs]]\nhost = \"file\"\nguest = \"/m\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fs[0].host: expected a directory, found \"file\""),
            "{e}"
        );
        let e = check("[[fs]]\nhost = \"~/data\"\nguest = \"/m\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not expanded"), "{e}");

        for (guest, says) in [
            ("data", "start with"),
            ("/a/../b", "\"..\""),
            ("", "start with"),
        ] {
            let e = check(&format!("[[fs]]\nhost = \"data\"\nguest = {guest:?}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("fs[0].guest: expected an absolute guest path") && e.contains(says),
                "{e}"
            );
        }
        let e = check("[[fs]]\nhost = \"data\"\nguest = \"/d\"\nmode = \"readonly\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"fs[0].mode: expected "ro" or "rw", found "readonly""#),
            "{e}"
        );
        let e = check("[[fs]]\nmode = \"ro\"").unwrap_err().to_string();
        assert!(
            e.contains("fs[0].host: missing") && e.contains("fs[0].guest: missing"),
            "{e}"
        );
        let e = check(
            "[[fs]]\nhost = \"data\"\nguest = \"/d\"\n[[fs]]\nhost = \"data\"\nguest = \"/d/\"",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(r#"fs[1].guest: expected a guest path not granted already, found "/d" (fs[0] grants it too)"#), "{e}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let e = parse(
            "[limits]\nmemory = \"lots\"\nfuel = -5\ncpu = 2\n[[fs]]\nhost = \"/definitely/not/here\"\nguest = \"rel\"\nmode = \"x\"\n[network]\nallow = [\"*\"]\n[extra]\n",
        )
        .unwrap_err();
        let keys: Vec<Option<&str>> = e.problems.iter().map(Problem::key).collect();
        for key in [
            "extra",
            "limits.cpu",
            "limits.memory",
            "limits.fuel",
            "fs[0].host",
            "fs[0].guest",
            "fs[0].mode",
            "network.allow[0]",
        ] {
            assert!(keys.contains(&Some(key)), "{key} missing from {keys:?}");
        }
        let text = e.to_string();
        assert_eq!(text.lines().count(), 8, "{text}");
        assert!(
            text.lines().all(|l| l.starts_with("weather.toml: ")),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_have_a_line_and_column() {
        let e = one_error("[limits]\nmemory = \"64MiB\"\nfuel = = 3\n");
        assert!(
            e.starts_with("weather.toml: line 3, column 8: invalid TOML: "),
            "{e}"
        );
        let e = one_error("[limits]\nmemory = 1\nmemory = 2\n");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn for_plugin_reads_the_file_or_uses_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Policy::for_plugin(dir.path(), "hello", &Protected::default()).unwrap(),
            Policy::defaults("hello")
        );
        std::fs::write(dir.path().join("hello.toml"), "[limits]\nfuel = 7").unwrap();
        assert_eq!(
            Policy::for_plugin(dir.path(), "hello", &Protected::default())
                .unwrap()
                .limits
                .fuel,
            7
        );
        // A policy that exists but cannot be read is an error, never defaults.
        std::fs::create_dir(dir.path().join("odd.toml")).unwrap();
        let e = Policy::for_plugin(dir.path(), "odd", &Protected::default()).unwrap_err();
        assert!(matches!(e.problems[..], [Problem::Read(_)]), "{e}");
        assert!(e.to_string().contains("odd.toml: cannot read: "), "{e}");
        // A dangling symlink is a policy that cannot be read, too.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                dir.path().join("nowhere"),
                dir.path().join("dangling.toml"),
            )
            .unwrap();
            assert!(Policy::for_plugin(dir.path(), "dangling", &Protected::default()).is_err());
        }
        assert!(Policy::load(
            &dir.path().join("absent.toml"),
            "absent",
            &Protected::default()
        )
        .is_err());
    }

    #[test]
    fn human_formats() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1 << 20), "1 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(16 << 30), "16 GiB");
        assert_eq!(format_size(1 << 40), "1 TiB");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1.25s");
        assert_eq!(format_duration(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(format_duration(Duration::from_micros(40)), "40µs");
        assert_eq!(format_duration(Duration::from_secs(3900)), "1h5m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        // What format_* print, the policy parser reads back.
        assert_eq!(
            parse_size(&Value::String(format_size(DEFAULT_MEMORY))),
            Some(DEFAULT_MEMORY)
        );
        assert_eq!(
            parse_duration(&format_duration(DEFAULT_TIMEOUT)),
            Some(DEFAULT_TIMEOUT)
        );
    }
}

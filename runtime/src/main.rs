//! The `ward` command line: parse, run, map errors to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ward::server::{self, Config};

/// Serve WebAssembly component plugins as MCP tools, resources and prompts,
/// each in its own sandbox.
#[derive(Parser)]
#[command(name = "ward", version = ward::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins of a directory over MCP: on stdin/stdout, or over
    /// Streamable HTTP with `--http ADDR` (add `--stdio` for both).
    Serve(ServeArgs),
    /// Load every plugin and policy of a directory, report problems, and exit
    /// (non-zero if any plugin failed to load).
    Check {
        /// The plugin directory.
        dir: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Push a component (with its manifest) to an OCI registry, optionally
    /// signing it (cosign-compatible).
    Publish(PublishArgs),
    /// Add a plugin from a file or an OCI registry: shows what it is and
    /// requests, writes NAME.wasm and NAME.toml pinned to its sha256.
    Add(AddArgs),
    /// Upgrade a plugin added with `ward add` to the newest version of its
    /// source, showing what changes first. Grants stay as they are.
    Upgrade(UpgradeArgs),
    /// Show what a plugin is, offers and requests, beside what its policy
    /// grants (loads it with nothing granted).
    Inspect(cli::InspectArgs),
    /// Call one tool as `serve` would (same loading, policies, sandbox):
    /// exit 0 on success, 1 on an isError result, 2 on an error.
    Call(cli::CallArgs),
    /// Create a plugin project that builds with one command (`./build.sh`).
    New {
        /// The plugin's name (its file stem, the prefix of its tools).
        name: String,
        /// rust, python, js or c.
        #[arg(long, default_value = "rust")]
        lang: ward::scaffold::Lang,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The ward repository, whose sdk-guest/ a Rust project depends on
        /// [default: the ward repository at or above --dir, if any; else a
        /// placeholder path to edit in the project's Cargo.toml].
        #[arg(long, env = "WARD_REPO", value_name = "PATH")]
        ward_repo: Option<PathBuf>,
    },
    /// Print a completion script for a shell: `ward completions bash >
    /// ~/.local/share/bash-completion/completions/ward`, `ward completions
    /// zsh > "${fpath[1]}/_ward"`, `ward completions fish >
    /// ~/.config/fish/completions/ward.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The plugin directory [default: $XDG_DATA_HOME/ward/plugins, created if missing].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    #[command(flatten)]
    load: LoadArgs,
    /// How long to wait for the plugin directory before answering clients,
    /// in seconds; plugins still loading then appear as they finish.
    #[arg(long, env = "WARD_STARTUP_WAIT", value_name = "SECS",
          default_value_t = server::DEFAULT_STARTUP_WAIT.as_secs())]
    startup_wait: u64,
    /// Serve the directory as it is at start-up; do not watch it for changes.
    #[arg(long)]
    no_watch: bool,
    /// Items per page of list results.
    #[arg(long, default_value_t = 100, hide = true)]
    page_size: usize,
    /// Seal the `requestState` of input-required results (MCP 2026-07-28)
    /// with the key in this file (at least 32 bytes; replicas behind one
    /// load balancer share it). Default: a random key per process, so a
    /// retry must reach the process that asked, before it restarts.
    #[arg(long, value_name = "PATH", env = "WARD_STATE_KEY_FILE")]
    state_key_file: Option<PathBuf>,
    /// Share rate-limit buckets and cached results (`[cache]`) with the
    /// other replicas using this Redis (redis://HOST:PORT[/DB]); checked at
    /// start-up. Without it each process keeps its own.
    #[arg(long, value_name = "URL", env = "WARD_REDIS")]
    redis: Option<String>,
    /// The most memory the in-process result cache may hold (bytes, or
    /// with KiB, MiB, GiB); least recently used results go first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size,
          default_value_t = ward::service::results::DEFAULT_CACHE_BYTES)]
    result_cache_size: u64,
    /// Restrict the local user over stdio to these OAuth scopes
    /// (comma-separated; plugins' `[access]` then applies as to an HTTP
    /// caller). Without it the local user may use every item.
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    stdio_scopes: Option<Vec<String>>,
    /// Serve MCP over Streamable HTTP at http://ADDR/mcp (e.g. 127.0.0.1:8080)
    /// instead of stdin/stdout. Both protocol eras: legacy sessions
    /// (Mcp-Session-Id) and stateless 2026-07-28 requests.
    #[arg(long, value_name = "ADDR", help_heading = "HTTP")]
    http: Option<std::net::SocketAddr>,
    /// With --http: serve stdin/stdout too (ward then exits when stdin closes).
    #[arg(long, requires = "http", help_heading = "HTTP")]
    stdio: bool,
    /// Allow --http on a non-loopback address (0.0.0.0, a LAN address).
    /// Refused without it. Use with --auth-token-file.
    #[arg(long, requires = "http", help_heading = "HTTP")]
    http_public: bool,
    /// Also accept this Host header (`name` or `name:port`; repeatable).
    /// localhost, 127.0.0.1, ::1 and the bound address are always accepted;
    /// `*` accepts any Host (only behind a proxy that checks it).
    #[arg(long, value_name = "HOST", requires = "http", help_heading = "HTTP")]
    allowed_host: Vec<String>,
    /// Also accept browser requests from this Origin (`https://app.example:443`,
    /// `http://localhost:*`; repeatable). By default only the server's own
    /// origin; requests without an Origin header always pass. `*` accepts any.
    #[arg(long, value_name = "ORIGIN", requires = "http", help_heading = "HTTP")]
    allowed_origin: Vec<String>,
    /// Require `Authorization: Bearer TOKEN` on every HTTP request, TOKEN read
    /// from this file. The token may also come from $WARD_AUTH_TOKEN; it is
    /// never taken on the command line.
    #[arg(long, value_name = "PATH", requires = "http", help_heading = "HTTP")]
    auth_token_file: Option<PathBuf>,
    /// Require an OAuth 2.1 access token (a JWT) on every HTTP request,
    /// issued by this authorization server (`iss` must equal URL exactly).
    /// Needs --jwt-jwks; instead of --auth-token-file.
    #[arg(long, value_name = "URL", requires_all = ["http", "jwt_jwks"],
          conflicts_with = "auth_token_file", help_heading = "HTTP")]
    jwt_issuer: Option<String>,
    /// The audience a token's `aud` must contain: ward's canonical URL
    /// [default: http://ADDR/mcp, ADDR as bound].
    #[arg(long, value_name = "URI", requires_all = ["http", "jwt_issuer"], help_heading = "HTTP")]
    jwt_audience: Option<String>,
    /// The issuer's signing keys (a JWKS): a file, read at start, or an
    /// https URL, fetched at start and again (at most every 30 s) when a
    /// token names an unknown key id.
    #[arg(long, value_name = "PATH_OR_URL", requires_all = ["http", "jwt_issuer"],
          help_heading = "HTTP")]
    jwt_jwks: Option<String>,
    /// How old keys fetched from a --jwt-jwks URL may get, in seconds, before
    /// the next token is checked against the issuer's current set: a key the
    /// issuer removes stops verifying within this time. 0: every token.
    #[arg(
        long,
        default_value_t = 600,
        value_name = "SECS",
        requires = "jwt_jwks",
        help_heading = "HTTP"
    )]
    jwt_jwks_max_age: u64,
    /// Largest accepted HTTP request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES", help_heading = "HTTP")]
    max_body_bytes: usize,
    /// Deadline of one HTTP request, body upload and answer included, in
    /// seconds. Session event streams and subscriptions/listen are exempt
    /// once answered (never while their body is still arriving).
    #[arg(
        long,
        default_value_t = 300,
        value_name = "SECS",
        help_heading = "HTTP"
    )]
    request_timeout: u64,
    /// A request body must arrive within this many seconds (and within
    /// --request-timeout), whatever its headers: else 408.
    #[arg(long, default_value_t = 30, value_name = "SECS", help_heading = "HTTP")]
    body_timeout: u64,
    /// Request headers must arrive within this many seconds, and an idle
    /// connection is closed after it.
    #[arg(long, default_value_t = 10, value_name = "SECS", help_heading = "HTTP")]
    header_timeout: u64,
    /// Open HTTP connections at most; more are answered 503 and closed.
    #[arg(long, default_value_t = 512, value_name = "N", help_heading = "HTTP")]
    max_connections: usize,
    /// Legacy (Mcp-Session-Id) sessions at most; more initializes get 503.
    #[arg(long, default_value_t = 256, value_name = "N", help_heading = "HTTP")]
    max_sessions: usize,
    /// Open event streams (session GET streams and subscriptions/listen) at
    /// most; more get 503.
    #[arg(long, default_value_t = 256, value_name = "N", help_heading = "HTTP")]
    max_streams: usize,
    /// On SIGTERM/SIGINT, how long HTTP requests in flight may still run, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS", help_heading = "HTTP")]
    shutdown_grace: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464;
    /// port 0 picks one, logged), on a listener of their own, beside stdio or
    /// --http. See docs/metrics.md.
    #[arg(
        long,
        value_name = "ADDR",
        env = "WARD_METRICS",
        help_heading = "Metrics"
    )]
    metrics: Option<std::net::SocketAddr>,
    /// Allow --metrics on a non-loopback address (0.0.0.0, a LAN address).
    /// Refused without it.
    #[arg(long, requires = "metrics", help_heading = "Metrics")]
    metrics_public: bool,
    #[command(flatten)]
    audit: cli::AuditArgs,
}

/// How plugins are loaded (`serve` and `check`).
#[derive(clap::Args)]
struct LoadArgs {
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/ward].
    #[arg(long, env = "WARD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin at start-up instead of using the cache.
    #[arg(long)]
    no_cache: bool,
    /// The cache's size cap (bytes, or with KiB, MiB, GiB); the least
    /// recently used entries are removed to stay under it.
    #[arg(long, env = "WARD_CACHE_MAX_SIZE", value_name = "SIZE",
          default_value = "2GiB", value_parser = parse_size)]
    cache_max_size: u64,
    /// How long reading and compiling one plugin may take, in seconds; past
    /// it the plugin is refused.
    #[arg(long, env = "WARD_COMPILE_TIMEOUT", value_name = "SECS",
          default_value_t = ward::loader::DEFAULT_COMPILE_TIMEOUT.as_secs())]
    compile_timeout: u64,
}

impl LoadArgs {
    fn config(self, plugins: PathBuf, pooling: bool, startup_wait: Option<Duration>) -> Config {
        Config {
            plugins,
            cache_dir: match self.no_cache {
                true => None,
                false => self.cache_dir.or_else(ward::cache::default_dir),
            },
            cache_max_size: self.cache_max_size,
            pooling,
            compile_timeout: Duration::from_secs(self.compile_timeout.max(1)),
            startup_wait,
            protected: Default::default(),
            redis: None,
            result_cache_bytes: ward::service::results::DEFAULT_CACHE_BYTES,
        }
    }
}

/// A size for the command line: bytes, or a number with KiB, MiB, GiB or TiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let expected = || format!("expected bytes or a size such as 512MiB or 2GiB, found {text:?}");
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(expected()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(expected)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The runtime before the log: an OpenTelemetry exporter runs on it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG").unwrap_or_else(|_| {
        match cli.command {
            // One-shot commands print their own result; only problems go to stderr.
            Command::Inspect(_) | Command::Call(_) => "warn".into(),
            _ => "ward=info,warn".into(),
        }
    });
    // The log on stderr, and traces when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let telemetry = {
        let _runtime = runtime.enter();
        ward::telemetry::init(log_filter)
    };
    // Plugins' handles are budgeted out of this limit (sandbox::budget).
    ward::sandbox::budget::raise_fd_limit();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Check { dir, load } => check(load.config(dir, false, None)).await,
            Command::Publish(args) => publish(args).await,
            Command::Add(args) => add(args).await,
            Command::Upgrade(args) => upgrade(args).await,
            Command::Inspect(args) => cli::inspect(args).await,
            Command::Call(args) => cli::call(args).await,
            Command::New {
                name,
                lang,
                dir,
                ward_repo,
            } => {
                // Never the directory ward was built in: an installed ward
                // must not point projects at a build machine's checkout.
                let path = ward::scaffold::scaffold(&name, lang, &dir, ward_repo.as_deref())?;
                println!(
                    "created {} ({lang}); build it with `./build.sh` there",
                    path.display()
                );
                let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap_or_default();
                if manifest.contains(ward::scaffold::PLACEHOLDER_SDK) {
                    eprintln!(
                        "note: no ward repository found above {}: Cargo.toml depends on ward-guest at \
                         {}; pass --ward-repo PATH (or set WARD_REPO) to your ward checkout, or edit it",
                        dir.display(),
                        ward::scaffold::PLACEHOLDER_SDK
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Completions { shell } => {
                use clap::CommandFactory as _;
                use std::io::Write as _;
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "ward", &mut script);
                // A closed pipe (`| head`) is not an error worth a message.
                match std::io::stdout().write_all(&script) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        Err(e).context("writing the completion script")
                    }
                    _ => Ok(ExitCode::SUCCESS),
                }
            }
        }
    });
    // The spans of the last requests go out before exit (a few seconds at most).
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    // Guest calls still running on blocking threads must not hold up exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `ward serve`: the flags as a [`server::Serve`].
async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let plugins = server::plugin_dir(args.plugins)?;
    let config = Config {
        redis: args.redis,
        result_cache_bytes: args.result_cache_size,
        ..args
            .load
            .config(plugins, true, Some(Duration::from_secs(args.startup_wait)))
    };
    let http = args.http.map(|addr| server::Http {
        options: ward::protocol::HttpOptions {
            public: args.http_public,
            allowed_hosts: args.allowed_host,
            allowed_origins: args.allowed_origin,
            jwt: match (args.jwt_issuer, args.jwt_jwks) {
                (Some(issuer), Some(jwks)) => Some(ward::protocol::http::JwtOptions {
                    issuer,
                    audience: args.jwt_audience,
                    jwks: ward::protocol::http::JwksSource::parse(&jwks),
                    scopes_supported: Vec::new(),
                    max_age: Duration::from_secs(args.jwt_jwks_max_age),
                }),
                _ => None,
            },
            max_body_bytes: args.max_body_bytes,
            request_timeout: Duration::from_secs(args.request_timeout.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            max_connections: args.max_connections,
            max_sessions: args.max_sessions,
            max_streams: args.max_streams,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            ..ward::protocol::HttpOptions::new(addr)
        },
        auth_token_file: args.auth_token_file,
        stdio: args.stdio,
    });
    server::serve(server::Serve {
        config,
        watch: !args.no_watch,
        page_size: args.page_size,
        state_key_file: args.state_key_file,
        stdio_scopes: args.stdio_scopes,
        audit: args.audit.options(),
        http,
        metrics: args.metrics.map(|addr| server::Metrics {
            addr,
            public: args.metrics_public,
        }),
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `ward check`: the report on stdout, failure if anything did not load.
async fn check(config: Config) -> Result<ExitCode> {
    let report = server::check(&config).await?;
    print!("{report}");
    Ok(match report.passed() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

// ---- ward publish / add / upgrade (runtime/src/adopt) ----

#[derive(clap::Args)]
struct PublishArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// Where to push it, e.g. 127.0.0.1:5000/team/hello:1.0.
    reference: String,
    /// Sign it with this private key: PKCS#8 EC P-256 PEM, as
    /// `openssl pkcs8 -topk8 -nocrypt` writes it.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    plain_http: bool,
}

#[derive(clap::Args)]
struct AddArgs {
    /// A .wasm file or an OCI reference (host:port/repo:tag or …@sha256:…).
    source: String,
    /// The plugin directory [default: $XDG_DATA_HOME/ward/plugins].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Grant what the plugin's manifest requests (network hosts, limits);
    /// directories and environment variables are written commented out, to fill in.
    #[arg(long)]
    grant_requested: bool,
    /// Require a valid signature by this public key (SubjectPublicKeyInfo PEM;
    /// repeatable: any one of them).
    #[arg(long = "key", value_name = "PUBKEY")]
    keys: Vec<PathBuf>,
    /// The plugin's name (its file stem) [default: the manifest's name, else
    /// the repository's or file's].
    #[arg(long)]
    name: Option<String>,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short)]
    yes: bool,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    plain_http: bool,
}

#[derive(clap::Args)]
struct UpgradeArgs {
    /// The plugin.
    name: String,
    /// The plugin directory [default: $XDG_DATA_HOME/ward/plugins].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Upgrade to this reference (or file) instead of the newest version of the recorded one.
    #[arg(long, value_name = "REF")]
    to: Option<String>,
    /// Require a valid signature by this public key (repeatable).
    #[arg(long = "key", value_name = "PUBKEY")]
    keys: Vec<PathBuf>,
    /// Switch without asking; required when stdin is not a terminal.
    #[arg(long, short)]
    yes: bool,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    plain_http: bool,
}

fn adopt_plugin_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(dir) => Ok(dir),
        None => server::default_plugin_dir()
            .context("no plugin directory given and $HOME is not set; pass --plugins DIR"),
    }
}

async fn publish(args: PublishArgs) -> Result<ExitCode> {
    ward::adopt::publish(&ward::adopt::PublishOptions {
        file: args.file,
        reference: args.reference,
        sign: args.sign,
        plain_http: args.plain_http,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn add(args: AddArgs) -> Result<ExitCode> {
    ward::adopt::add(&ward::adopt::AddOptions {
        source: args.source,
        plugins: adopt_plugin_dir(args.plugins)?,
        name: args.name,
        grant_requested: args.grant_requested,
        yes: args.yes,
        fetch: ward::adopt::FetchOptions {
            keys: args.keys,
            plain_http: args.plain_http,
        },
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn upgrade(args: UpgradeArgs) -> Result<ExitCode> {
    ward::adopt::upgrade(&ward::adopt::UpgradeOptions {
        name: args.name,
        plugins: adopt_plugin_dir(args.plugins)?,
        to: args.to,
        yes: args.yes,
        fetch: ward::adopt::FetchOptions {
            keys: args.keys,
            plain_http: args.plain_http,
        },
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

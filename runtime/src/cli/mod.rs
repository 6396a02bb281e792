//! The operator commands that look at and try plugins: `ward inspect` and
//! `ward call`, and the `--audit-log` options shared by `serve` and `call`.
//! Their logic lives in the library (`ward::inspect`, `ward::audit`, the
//! protocol layer); this is only argument handling and printing.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ContentBlock, Implementation,
};
use rmcp::ServiceExt as _;
use ward::audit::AuditOptions;
use ward::server;

use crate::LoadArgs;

/// Exit status of `ward call` when the tool answered with `isError`.
const EXIT_IS_ERROR: u8 = 1;
/// Exit status of `ward call` when the call failed (unknown tool, bad
/// arguments, a protocol error, no plugins).
const EXIT_ERROR: u8 = 2;

/// `--audit-log` and its options.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Append one JSON line per request that reaches a plugin (and per
    /// request a plugin sends to the client) to this file, secrets redacted;
    /// reopened on SIGHUP. Format: docs/audit-log.md.
    #[arg(
        long,
        env = "WARD_AUDIT_LOG",
        value_name = "PATH",
        help_heading = "Audit"
    )]
    audit_log: Option<PathBuf>,
    /// Argument keys whose values the audit log redacts: a regular
    /// expression, matched case-insensitively anywhere in the key.
    #[arg(long, value_name = "REGEX", default_value = ward::audit::DEFAULT_REDACT_KEYS,
          help_heading = "Audit")]
    audit_redact: String,
}

impl AuditArgs {
    /// The log's options, if one was asked for.
    pub fn options(&self) -> Option<AuditOptions> {
        let path = self.audit_log.as_ref()?;
        Some(AuditOptions {
            redact_keys: self.audit_redact.clone(),
            ..AuditOptions::new(path)
        })
    }

    /// Opens the log if one was asked for.
    pub fn open(&self) -> Result<server::Audit> {
        server::Audit::open(self.options().as_ref())
    }
}

/// `ward inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A `.wasm` file, or the name of a plugin in the plugin directory.
    target: String,
    /// The plugin directory, for a name [default: $XDG_DATA_HOME/ward/plugins].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Print one JSON object (documented in docs/manifest.md) instead of text.
    #[arg(long)]
    json: bool,
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/ward].
    #[arg(long, env = "WARD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

/// Prints what a plugin is, offers and requests beside what it is granted.
pub async fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let path = ward::inspect::resolve(&args.target, args.plugins.as_deref())?;
    let options = ward::inspect::Options {
        cache_dir: args.cache_dir.or_else(ward::cache::default_dir),
    };
    let inspection = ward::inspect::inspect(&path, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print!("{}", ward::inspect::render(&inspection));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ward call`.
#[derive(clap::Args)]
pub struct CallArgs {
    /// The exposed tool name (as `tools/list` shows it, e.g. `hello_greet`).
    #[arg(required_unless_present = "list")]
    tool: Option<String>,
    /// The arguments: a JSON object, or `-` to read it from stdin [default: {}].
    args: Option<String>,
    /// List the exposed tools instead of calling one.
    #[arg(long, conflicts_with = "tool")]
    list: bool,
    /// The plugin directory [default: $XDG_DATA_HOME/ward/plugins].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Print the whole MCP result (content, structuredContent, isError,
    /// _meta with the call's cost) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    audit: AuditArgs,
}

/// Runs one tool call through the same loading, policies, sandbox and
/// protocol handler as `ward serve`, as an MCP client would: exit 0 on
/// success, 1 on an `isError` result, 2 on an error.
pub async fn call(args: CallArgs) -> Result<ExitCode> {
    let arguments = match (&args.tool, args.args.as_deref()) {
        (None, _) => serde_json::Map::new(),
        (Some(_), None) => serde_json::Map::new(),
        (Some(_), Some(text)) => {
            let text = if text == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the arguments from stdin")?;
                s
            } else {
                text.to_string()
            };
            match serde_json::from_str(&text) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(other) => bail!("the arguments must be a JSON object, found {other}"),
                Err(e) => bail!("the arguments are not JSON ({e}): {text}"),
            }
        }
    };
    let plugins = match args.plugins {
        Some(dir) => dir,
        None => server::default_plugin_dir()
            .context("no plugin directory given and $HOME is not set; pass --plugins DIR")?,
    };
    anyhow::ensure!(
        plugins.is_dir(),
        "plugin directory {} does not exist; pass --plugins DIR",
        plugins.display()
    );
    let audit = args.audit.open()?;
    let started = server::start(&args.load.config(plugins, false, None)).await?;
    let options = ward::ServerOptions {
        audit: audit.log(),
        ..Default::default()
    };
    // The same handler `serve` runs, over an in-memory pipe.
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_io);
    let server = ward::WardServer::with_options(started.registry.clone(), options);
    let serving = tokio::spawn(server.serve_io(read, write));
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("ward-call", env!("CARGO_PKG_VERSION")),
    );
    let client = info
        .serve(client_io)
        .await
        .context("starting the in-process MCP session")?;

    let code = if args.list {
        let tools = client.list_all_tools().await.context("listing tools")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&tools)?);
        } else {
            for tool in &tools {
                let description = tool.description.as_deref().unwrap_or("");
                println!("{}\t{}", tool.name, ward::inspect::clean(description));
            }
        }
        ExitCode::SUCCESS
    } else {
        let name = args.tool.unwrap_or_default();
        let request = CallToolRequestParams::new(name.clone()).with_arguments(arguments);
        match client.call_tool(request).await {
            Ok(result) => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&result)?);
                } else {
                    for block in &result.content {
                        println!("{}", render_block(block));
                    }
                    if let Some(structured) = &result.structured_content {
                        println!("{}", serde_json::to_string_pretty(structured)?);
                    }
                }
                if result.is_error == Some(true) {
                    ExitCode::from(EXIT_IS_ERROR)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(rmcp::ServiceError::McpError(error)) => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&error)?);
                }
                eprintln!(
                    "ward: {name}: {} (JSON-RPC {})",
                    error.message, error.code.0
                );
                if error.code == rmcp::model::ErrorCode::INVALID_PARAMS
                    && error.message.contains("not found")
                {
                    eprintln!("ward: `ward call --list --plugins DIR` lists the exposed tools");
                }
                ExitCode::from(EXIT_ERROR)
            }
            Err(other) => {
                eprintln!("ward: {name}: {other}");
                ExitCode::from(EXIT_ERROR)
            }
        }
    };
    let _ = client.cancel().await;
    serving.abort();
    drop(audit);
    Ok(code)
}

/// One content block as text for a terminal; what came from the plugin
/// passes through `inspect::clean`.
fn render_block(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => ward::inspect::clean_text(&t.text),
        ContentBlock::Image(i) => format!(
            "[image {}, {} base64 bytes]",
            ward::inspect::clean(&i.mime_type),
            i.data.len()
        ),
        ContentBlock::Audio(a) => format!(
            "[audio {}, {} base64 bytes]",
            ward::inspect::clean(&a.mime_type),
            a.data.len()
        ),
        ContentBlock::ResourceLink(l) => format!("[link {}]", ward::inspect::clean(&l.uri)),
        other => ward::inspect::clean(&serde_json::to_string(other).unwrap_or_default()),
    }
}

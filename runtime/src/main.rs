//! The `ward` command line: parse, run, map errors to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ward::server::{self, Config};

/// Serve WebAssembly component plugins as MCP tools, resources and prompts,
/// each in its own sandbox.
#[derive(Parser)]
#[command(name = "ward", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins of a directory over MCP on stdin/stdout.
    Serve(ServeArgs),
    /// Load every plugin and policy of a directory, report problems, and exit.
    Check {
        /// The plugin directory.
        dir: PathBuf,
    },
    /// Create a plugin project that builds with one command (`./build.sh`).
    New {
        /// The plugin's name (its file stem, the prefix of its tools).
        name: String,
        /// rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: ward::scaffold::Lang,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The ward repository, for the Rust SDK's path (found automatically when ward runs from it).
        #[arg(long)]
        ward_repo: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The plugin directory [default: $XDG_DATA_HOME/ward/plugins, created if missing].
    #[arg(long, env = "WARD_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/ward].
    #[arg(long, env = "WARD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin at start-up instead of using the cache.
    #[arg(long)]
    no_cache: bool,
    /// Serve the directory as it is at start-up; do not watch it for changes.
    #[arg(long)]
    no_watch: bool,
    /// Items per page of list results.
    #[arg(long, default_value_t = 100, hide = true)]
    page_size: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| "ward=info,warn".into()),
        )
        .with_ansi(false)
        .init();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Check { dir } => check(dir).await,
            Command::New {
                name,
                lang,
                dir,
                ward_repo,
            } => {
                let repo = ward_repo.or_else(|| {
                    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
                    built_from
                        .join("sdk-guest")
                        .is_dir()
                        .then(|| built_from.to_path_buf())
                });
                let path = ward::scaffold::scaffold(&name, lang, &dir, repo.as_deref())?;
                println!(
                    "created {} ({lang}); build it with `./build.sh` there",
                    path.display()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    });
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

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let plugins = match args.plugins {
        Some(dir) => dir,
        None => {
            let dir = server::default_plugin_dir()
                .context("no plugin directory given and $HOME is not set; pass --plugins DIR")?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
    };
    anyhow::ensure!(
        plugins.is_dir(),
        "plugin directory {} does not exist; create it or pass another --plugins DIR",
        plugins.display()
    );
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir.or_else(ward::cache::default_dir)
    };
    let config = Config {
        plugins,
        cache_dir,
        pooling: true,
    };
    let started = server::start(&config).await?;
    let _watch = match args.no_watch {
        true => None,
        false => Some(ward::watch::spawn(
            config.plugins.clone(),
            started.registry.clone(),
            started.loader.clone(),
        )?),
    };
    tracing::info!(plugins = started.registry.plugin_names().len(), dir = %config.plugins.display(), "serving over stdio");
    let options = ward::ServerOptions {
        page_size: args.page_size,
        ..Default::default()
    };
    ward::serve_stdio_with(started.registry.clone(), options).await?;
    Ok(ExitCode::SUCCESS)
}

async fn check(dir: PathBuf) -> Result<ExitCode> {
    let config = Config {
        plugins: dir,
        cache_dir: ward::cache::default_dir(),
        pooling: false,
    };
    let started = server::start(&config).await?;
    let catalog = ward::Backend::catalog(&*started.registry);
    for name in started.registry.plugin_names() {
        println!("ok      {name}");
    }
    for failure in &started.failures {
        println!("FAILED  {failure}");
    }
    println!(
        "{} tools, {} resources, {} resource templates, {} prompts",
        catalog.tools.len(),
        catalog.resources.len(),
        catalog.resource_templates.len(),
        catalog.prompts.len()
    );
    Ok(if started.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

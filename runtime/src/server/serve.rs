//! `ward serve` as a function: everything between parsed arguments and
//! served clients. The plugin directory is loaded ([`start`](super::start)),
//! watched, and served over stdio, Streamable HTTP, or both, with metrics
//! and an audit log beside them; SIGTERM/SIGINT end an HTTP server
//! gracefully.
//!
//! The command line (`main.rs`) only maps its flags to a [`Serve`]; what
//! ward protects, reads and starts, and in which order, is decided here.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use super::{Audit, Config};
use crate::audit::AuditOptions;
use crate::protocol::http::{self, JwksSource};
use crate::protocol::{HttpOptions, ServerOptions, StateKey};

/// What `ward serve` serves and how.
pub struct Serve {
    /// How the plugins are loaded. ward's own files named below (the token
    /// file, a JWKS file, the audit log) are added to `config.protected`.
    pub config: Config,
    /// Watch the plugin directory for changes (`--no-watch`: no).
    pub watch: bool,
    /// Items per page of list results.
    pub page_size: usize,
    /// The key that seals `requestState`, read from this file; `None`: a
    /// random key of this process.
    pub state_key_file: Option<PathBuf>,
    /// The scopes of the local user over stdio (`--stdio-scopes`).
    pub stdio_scopes: Option<Vec<String>>,
    /// The audit log, if one is kept.
    pub audit: Option<AuditOptions>,
    /// Serve Streamable HTTP instead of (or, with `stdio`, beside) stdio.
    pub http: Option<Http>,
    /// Serve Prometheus metrics on a listener of their own.
    pub metrics: Option<Metrics>,
}

/// `ward serve --http`.
pub struct Http {
    /// The HTTP server's options. `auth_token` is read here from
    /// `auth_token_file` (or `$WARD_AUTH_TOKEN`), and `server` is the stdio
    /// handler's options, so both transports serve alike.
    pub options: HttpOptions,
    /// The file holding the bearer token, never the token itself.
    pub auth_token_file: Option<PathBuf>,
    /// Serve stdin/stdout too; ward then exits when stdin closes.
    pub stdio: bool,
}

/// `ward serve --metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    /// Where `/metrics` is served (port 0 picks one, logged).
    pub addr: SocketAddr,
    /// Allow a non-loopback address.
    pub public: bool,
}

/// Serves until stdin closes (stdio) or a signal ends the HTTP server.
pub async fn serve(serve: Serve) -> Result<()> {
    let Serve {
        mut config,
        watch,
        page_size,
        state_key_file,
        stdio_scopes,
        audit,
        http,
        metrics,
    } = serve;
    // ward's own secrets and records are out of every plugin's grants.
    if let Some(path) = http.as_ref().and_then(|h| h.auth_token_file.as_ref()) {
        config.protected.add(path, "the HTTP token file");
    }
    if let Some(JwksSource::File(path)) = http
        .as_ref()
        .and_then(|h| h.options.jwt.as_ref())
        .map(|jwt| &jwt.jwks)
    {
        config.protected.add(path, "the JWT key set (--jwt-jwks)");
    }
    if let Some(audit) = &audit {
        config.protected.add(&audit.path, "the audit log");
    }
    // Metrics before the plugins load, so that loading is counted; their
    // listener runs beside stdio or HTTP and ends when `serve` returns.
    let metrics_shutdown = CancellationToken::new();
    let _metrics_shutdown = metrics_shutdown.clone().drop_guard();
    if let Some(Metrics { addr, public }) = metrics {
        let listener = crate::metrics::bind(addr, public).await?;
        let metrics = crate::metrics::install(crate::metrics::Metrics::new())?;
        tracing::info!(
            "serving metrics at http://{}{}",
            listener.local_addr(),
            crate::metrics::METRICS_PATH
        );
        tokio::spawn(listener.serve(metrics, metrics_shutdown));
    }
    let mut started = super::start(&config).await?;
    let _watch = match watch {
        false => None,
        true => Some(crate::watch::spawn(
            config.plugins.clone(),
            started.registry.clone(),
            started.loader.clone(),
            started.loading.take(),
        )?),
    };
    let audit = Audit::open(audit.as_ref())?;
    let state_key = match &state_key_file {
        Some(path) => StateKey::read_file(path)?,
        None => StateKey::random(),
    };
    let options = ServerOptions {
        page_size,
        audit: audit.log(),
        state_key,
        stdio_scopes,
        ..Default::default()
    };
    let Some(Http {
        options: http,
        auth_token_file,
        stdio,
    }) = http
    else {
        tracing::info!(plugins = started.registry.plugin_names().len(), dir = %config.plugins.display(), "serving over stdio");
        crate::protocol::serve_stdio_with(started.registry.clone(), options).await?;
        return Ok(());
    };
    let auth_token = match &auth_token_file {
        Some(path) => Some(http::read_token_file(path)?),
        None => std::env::var(http::AUTH_TOKEN_ENV)
            .ok()
            .filter(|token| !token.trim().is_empty())
            .map(|token| token.trim().to_owned()),
    };
    let http = HttpOptions {
        auth_token,
        server: options.clone(),
        ..http
    };
    let listener = http.bind().await?;
    tracing::info!(
        plugins = started.registry.plugin_names().len(),
        dir = %config.plugins.display(),
        "listening on http://{}/mcp",
        listener.local_addr()
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    let http = tokio::spawn(listener.serve(started.registry.clone(), shutdown.clone()));
    if stdio {
        let stdio = crate::protocol::serve_stdio_with(started.registry.clone(), options);
        tokio::select! {
            result = stdio => {
                result?;
                shutdown.cancel();
            }
            _ = shutdown.cancelled() => {}
        }
    }
    http.await.context("the HTTP server task panicked")??;
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

//! `caja serve`: open the database, bring its schema up to date, make sure an admin key
//! exists, and serve until SIGINT or SIGTERM; then drain within a bound and exit 0.

use std::process::ExitCode;

use anyhow::Context;
use caja_core::auth::ApiKeySecret;
use caja_server::AppState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{open_store, prepare_schema};
use crate::settings::{DbArgs, LogFormat, ServeFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub flags: ServeFlags,
    /// Do not apply pending migrations; refuse to start while any is pending.
    #[arg(long, env = "CAJA_NO_MIGRATE")]
    pub no_migrate: bool,
}

pub async fn run(args: Args, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = args.flags.resolve(&args.db, log)?;
    crate::telemetry::init(settings.log_format);
    let store = open_store(&settings.db).await?;
    prepare_schema(&store, &settings.db, args.no_migrate).await?;
    bootstrap_admin_key(&store, settings.admin_key.as_ref()).await?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %store.database(), "caja is serving");

    let state = AppState::new(store.clone(), settings.server.clone());
    let shutdown = CancellationToken::new();
    let mut server = tokio::spawn(caja_server::serve(
        listener,
        state.clone(),
        shutdown.clone(),
    ));

    tokio::select! {
        result = &mut server => {
            // The server stopped without being asked: report it.
            result.context("the server task failed")?.context("the server failed")?;
        }
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down: no new connections, finishing in-flight requests");
            shutdown.cancel();
            match tokio::time::timeout(settings.shutdown_timeout, &mut server).await {
                Ok(result) => result.context("the server task failed")?.context("the server failed")?,
                Err(_) => {
                    tracing::warn!(bound_secs = settings.shutdown_timeout.as_secs(), "in-flight requests did not finish in time; stopping anyway");
                    server.abort();
                }
            }
        }
    }
    if !state
        .finish_background_tasks(settings.shutdown_timeout)
        .await
    {
        tracing::warn!("background tasks did not finish in time");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Makes sure the database has an admin key. The first process to find it empty creates
/// one (the provided key, or a generated one printed once to stderr).
async fn bootstrap_admin_key(
    store: &caja_store::Store,
    provided: Option<&ApiKeySecret>,
) -> anyhow::Result<()> {
    let secret = provided.cloned().unwrap_or_else(ApiKeySecret::generate);
    match store.bootstrap_admin_key(&secret).await? {
        Some(record) if provided.is_none() => {
            eprintln!(
                "\ncaja: this database had no API key, so an admin key was created ({}).\n\
                 It is shown only this once; store it somewhere safe:\n\n    {}\n\n\
                 Send it with every request as `Authorization: Bearer <key>`, and create \
                 keys for each till with `caja keys create --role clerk`.\n",
                record.id,
                secret.reveal()
            );
        }
        Some(record) => {
            tracing::info!(key_id = %record.id, "created the admin key from CAJA_ADMIN_KEY");
        }
        None if provided.is_some() => {
            tracing::info!("CAJA_ADMIN_KEY ignored: this database already has its first admin key");
        }
        None => {}
    }
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return "SIGINT";
                }
            };
        tokio::select! {
            _ = interrupt => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        "SIGINT"
    }
}

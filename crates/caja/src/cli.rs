//! The command line: one clap `Command` enum, each subcommand its own module with a `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    audit, backup, bench, canary, check, dev_provider, health, keys, maintenance, migrate, serve,
};
use crate::settings::{DbArgs, LogFormat};

/// caja: a self-hosted sales server that never loses a sale or sells the same thing twice.
///
/// It starts with zero setup on an embedded SQLite file (`caja serve`), and the same binary
/// runs as many replicas on PostgreSQL (`--database-url postgres://...`).
#[derive(Debug, Parser)]
#[command(name = "caja", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr: `human` or `json`.
    #[arg(long, global = true, env = "CAJA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first unless --no-migrate).
    Serve(Box<serve::Args>),
    /// Inspect and change the database schema.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        action: migrate::Action,
    },
    /// Verify every invariant of the books (stock, ledger, orders, payments); exit 1 on any violation.
    Check {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a consistent, checksummed archive of every table while the server keeps
    /// serving (or check one with --verify).
    Backup(Box<backup::BackupArgs>),
    /// Restore an archive into an empty database of either engine, then check the books.
    Restore(Box<backup::RestoreArgs>),
    /// Turn maintenance mode on or off for every replica: writes answer 503 while it is on.
    Maintenance {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        action: maintenance::Action,
    },
    /// Probe a running server's /health and /ready; print every check; exit 0 or 1.
    Health(health::Args),
    /// Watch a deployed instance's /metrics for a while: exit 0 pass, 1 fail (roll back),
    /// 2 inconclusive (too little traffic).
    Canary(canary::Args),
    /// Print the audit log of admin actions (who, what, when, before and after).
    Audit(Box<audit::Args>),
    /// Measure a running caja with a bounded load (checkout, read) and check the promises.
    Bench {
        #[command(subcommand)]
        action: bench::Action,
    },
    /// Run a local payment provider that speaks MercadoPago's HTTP (checkouts, payments,
    /// refunds, signed webhooks, failures on demand) for tests and demos.
    DevProvider(dev_provider::Args),
    /// Create, list and revoke API keys.
    Keys {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        action: keys::Action,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("caja: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let result = match cli.command {
            Command::Serve(args) => serve::run(*args, cli.log_format).await,
            Command::Migrate { db, action } => migrate::run(db, action, cli.log_format).await,
            Command::Keys { db, action } => keys::run(db, action, cli.log_format).await,
            Command::Check { db } => check::run(db, cli.log_format).await,
            Command::Bench { action } => bench::run(action).await,
            Command::Maintenance { db, action } => {
                maintenance::run(db, action, cli.log_format).await
            }
            Command::Health(args) => health::run(args).await,
            Command::Audit(args) => audit::run(*args, cli.log_format).await,
            Command::Canary(args) => canary::run(args).await,
            Command::DevProvider(args) => dev_provider::run(args).await,
            Command::Backup(args) => backup::backup(*args, cli.log_format).await,
            Command::Restore(args) => backup::restore(*args, cli.log_format).await,
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("caja: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

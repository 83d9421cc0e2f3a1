//! `caja migrate status|up|down|verify`.

use std::process::ExitCode;

use caja_store::migrate::{Migrator, Report, Status};

use super::open_store;
use crate::settings::{log_format, DbArgs, DbSettings, LogFormat};

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List every migration: applied or pending, when, how long, by whom, checksum state.
    Status,
    /// Apply every pending migration, each in its own transaction; stop at the first failure.
    /// A database that holds data is backed up first (DATA_DIR/backups).
    Up {
        /// Skip the backup taken before migrating.
        #[arg(long)]
        no_backup: bool,
    },
    /// Revert the newest applied migrations with their down scripts. Shows what would be
    /// dropped and changes nothing unless --yes; backs up first.
    Down {
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1)]
        steps: usize,
        /// Really drop what the plan shows.
        #[arg(long)]
        yes: bool,
        /// Skip the backup taken before reverting.
        #[arg(long)]
        no_backup: bool,
    },
    /// Check every applied migration's checksum and run its verify script; exit 1 on drift.
    Verify,
}

/// Whether the database holds anything a migration could lose.
async fn holds_data(store: &caja_store::Store) -> bool {
    let Ok(version) = super::backup::applied_version(store).await else {
        return false;
    };
    store
        .table_rows(version)
        .await
        .map(|rows| rows.iter().any(|(t, n)| *t != "counters" && *n > 0))
        .unwrap_or(false)
}

/// Rows in `table`, for the plan of a revert ("?" if it cannot be counted).
async fn sqlx_count(store: &caja_store::Store, table: &str) -> String {
    store
        .count_rows(table)
        .await
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Takes a backup to the default place before the schema changes; returns where.
async fn backup_first(
    db: &DbSettings,
    store: &caja_store::Store,
) -> anyhow::Result<std::path::PathBuf> {
    let out = super::backup::default_path(db, store);
    let (summary, bytes) = super::backup::take(store, &out).await?;
    println!(
        "backed up {} rows ({bytes} bytes) to {} first",
        summary.rows(),
        out.display()
    );
    tracing::info!(archive = %out.display(), "backed up before changing the schema");
    Ok(out)
}

pub async fn run(db: DbArgs, action: Action, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    let migrator = Migrator::new(&store, db.lock_wait, db.store.busy_timeout);
    let code = match action {
        Action::Status => {
            println!("database: {}", store.database());
            for row in migrator.status().await? {
                let state = match row.status {
                    Status::Applied => "applied",
                    Status::Pending => "pending",
                    Status::ChecksumChanged => "CHECKSUM CHANGED",
                    Status::Unknown => "UNKNOWN TO THIS CAJA",
                };
                match &row.applied {
                    Some(a) => println!(
                        "{:<28} {:<20} {} in {} ms by {} (caja {})",
                        row.label(),
                        state,
                        a.applied_at,
                        a.duration_ms,
                        a.applied_by,
                        a.caja_version
                    ),
                    None => println!("{:<28} {state}", row.label()),
                }
            }
            ExitCode::SUCCESS
        }
        Action::Up { no_backup } => {
            let pending = migrator.pending().await?;
            let note = if pending.is_empty() {
                String::new()
            } else if no_backup {
                tracing::warn!(pending = ?pending, "migrating without a backup (--no-backup)");
                println!("no backup taken (--no-backup)");
                "skipped (--no-backup)".to_owned()
            } else if holds_data(&store).await {
                backup_first(&db, &store).await?.display().to_string()
            } else {
                "none (the database held no data)".to_owned()
            };
            let migrator = migrator.with_backup_note(note);
            let mut print = |r: &Report| println!("applied  {} in {:?}", r.label, r.duration);
            let done = migrator.up(&mut print).await?;
            if done.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            ExitCode::SUCCESS
        }
        Action::Down {
            steps,
            yes,
            no_backup,
        } => {
            let plan = migrator.down_plan(steps).await?;
            if plan.is_empty() {
                println!("nothing to revert");
                store.close().await;
                return Ok(ExitCode::SUCCESS);
            }
            for (label, tables) in &plan {
                println!("revert   {label}");
                for t in tables {
                    let rows = sqlx_count(&store, t).await;
                    println!("  drops table {t} ({rows} rows)");
                }
            }
            if !yes {
                println!(
                    "nothing changed: run again with --yes to revert (a backup is taken first)"
                );
                store.close().await;
                return Ok(ExitCode::FAILURE);
            }
            if !no_backup {
                backup_first(&db, &store).await?;
            }
            let mut print = |r: &Report| println!("reverted {} in {:?}", r.label, r.duration);
            let done = migrator.down(steps, &mut print).await?;
            if done.is_empty() {
                println!("nothing to revert");
            }
            ExitCode::SUCCESS
        }
        Action::Verify => {
            let failures = migrator.verify().await?;
            for f in &failures {
                println!("FAIL {}: {}", f.label, f.reason);
            }
            if failures.is_empty() {
                println!("every applied migration verifies");
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

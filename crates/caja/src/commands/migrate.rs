//! `caja migrate status|up|down|verify`.

use std::process::ExitCode;

use caja_store::migrate::{Migrator, Report, Status};

use super::open_store;
use crate::settings::{log_format, DbArgs, LogFormat};

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List every migration: applied or pending, when, how long, by whom, checksum state.
    Status,
    /// Apply every pending migration, each in its own transaction; stop at the first failure.
    Up,
    /// Revert the newest applied migrations with their down scripts.
    Down {
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1)]
        steps: usize,
    },
    /// Check every applied migration's checksum and run its verify script; exit 1 on drift.
    Verify,
}

pub async fn run(db: DbArgs, action: Action, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    let migrator = Migrator::new(&store, db.lock_wait, db.store.busy_timeout);
    let code = match action {
        Action::Status => {
            println!("database: {}", store.location());
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
        Action::Up => {
            let mut print = |r: &Report| println!("applied  {} in {:?}", r.label, r.duration);
            let done = migrator.up(&mut print).await?;
            if done.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            ExitCode::SUCCESS
        }
        Action::Down { steps } => {
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

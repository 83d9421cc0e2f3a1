//! `caja check`: reads the database and verifies every invariant; prints each violation and
//! exits 1, or prints a one-line summary and exits 0.

use std::process::ExitCode;

use super::open_store;
use crate::settings::{log_format, DbArgs, LogFormat};

pub async fn run(db: DbArgs, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    super::prepare_schema(&store, &db, true).await?;
    let (checked, violations) = store.check().await?;
    store.close().await;
    for v in &violations {
        println!("VIOLATION {}: {}", v.invariant, v.detail);
    }
    if violations.is_empty() {
        println!("ok: {checked} invariants hold on {}", db.location);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} violation(s) of {checked} invariants", violations.len());
        Ok(ExitCode::FAILURE)
    }
}

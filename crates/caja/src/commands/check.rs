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
    // Not a violation, but money owed back: said on every check until it is settled.
    let owed = store
        .list_orders(
            Some(caja_core::order::OrderStatus::NeedsRefund),
            None,
            caja_core::page::PageLimit::parse(Some(200))?,
        )
        .await?;
    store.close().await;
    if !owed.items.is_empty() {
        let ids: Vec<&str> = owed.items.iter().map(|o| o.id.as_str()).collect();
        let more = if owed.next_cursor.is_some() {
            " and more"
        } else {
            ""
        };
        println!(
            "NOTICE orders paid at the provider after their stock was gone, to refund: {}{more}",
            ids.join(", ")
        );
    }
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

//! `caja audit`: the audit log of admin actions, oldest first, one line each.

use std::process::ExitCode;

use caja_core::ids::AuditId;
use caja_core::page::PageLimit;
use caja_store::audit::AuditFilter;

use super::{open_store, prepare_schema};
use crate::settings::{log_format, DbArgs, LogFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this action (e.g. product.updated, key.revoked, maintenance.on).
    #[arg(long)]
    pub action: Option<String>,
    /// Only actions on this resource id.
    #[arg(long)]
    pub target: Option<String>,
    /// Only this actor (a key id, or cli:user@host).
    #[arg(long)]
    pub actor: Option<String>,
    /// Print the resource before and after each action too.
    #[arg(long)]
    pub full: bool,
}

pub async fn run(args: Args, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = args.db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    prepare_schema(&store, &db, true).await?;
    let filter = AuditFilter {
        action: args.action,
        target: args.target,
        actor: args.actor,
    };
    let mut after: Option<AuditId> = None;
    let limit = PageLimit::parse(Some(200))?;
    loop {
        let page = store.list_audit(&filter, after.as_ref(), limit).await?;
        for e in &page.items {
            println!(
                "{}  {:<18} {:<34} {:<30} {}",
                caja_core::time::format(&e.at),
                e.action,
                e.target.as_deref().unwrap_or("-"),
                e.actor,
                e.request_id.as_deref().unwrap_or("-")
            );
            if args.full {
                println!("    before: {}", e.before.as_deref().unwrap_or("-"));
                println!("    after:  {}", e.after.as_deref().unwrap_or("-"));
            }
        }
        match page.next_cursor {
            Some(c) => after = Some(AuditId::parse("after", &c)?),
            None => break,
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

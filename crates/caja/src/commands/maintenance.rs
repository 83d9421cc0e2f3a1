//! `caja maintenance on|off|status`: maintenance mode for every replica. Writes answer 503
//! `maintenance` while it is on; reads, `/health` and the change feed keep working.

use std::process::ExitCode;

use caja_store::audit::Actor;

use super::{open_store, prepare_schema};
use crate::settings::{log_format, DbArgs, LogFormat};

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Refuse every write (503 `maintenance`) on every replica, within a second.
    On {
        /// What refused writes are told.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Take writes again.
    Off,
    /// Say whether maintenance mode is on.
    Status,
}

pub async fn run(db: DbArgs, action: Action, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    prepare_schema(&store, &db, true).await?;
    let now = match action {
        Action::On { message } => store.set_maintenance(Some(&message), &Actor::cli()).await?,
        Action::Off => store.set_maintenance(None, &Actor::cli()).await?,
        Action::Status => store.maintenance().await?,
    };
    store.close().await;
    match now {
        Some(m) => println!(
            "maintenance mode is on since {}: writes are refused{}",
            caja_core::time::format(&m.since),
            if m.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.message)
            }
        ),
        None => println!("maintenance mode is off: writes are taken"),
    }
    Ok(ExitCode::SUCCESS)
}

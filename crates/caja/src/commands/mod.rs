//! One module per subcommand, each with a `run`.

pub mod audit;
pub mod backup;
pub mod bench;
pub mod canary;
pub mod check;
pub mod dev_provider;
pub mod health;
pub mod keys;
pub mod maintenance;
pub mod migrate;
pub mod serve;

use anyhow::Context;
use caja_store::migrate::{MigrateError, Migrator, Report};
use caja_store::Store;

use crate::settings::DbSettings;

/// Opens the database the settings name, with a message that says which one on failure.
pub async fn open_store(db: &DbSettings) -> anyhow::Result<Store> {
    Store::connect(&db.location, &db.store, caja_server::presenter())
        .await
        .with_context(|| format!("cannot open the database at {}", db.location))
}

/// Brings the schema up to date under the migration lock, as `caja migrate up` would, or,
/// with `no_migrate`, refuses to go on while any migration is pending.
pub async fn prepare_schema(
    store: &Store,
    db: &DbSettings,
    no_migrate: bool,
) -> anyhow::Result<()> {
    let migrator = Migrator::new(store, db.lock_wait, db.store.busy_timeout);
    if no_migrate {
        let pending = migrator.pending_checked().await?;
        if !pending.is_empty() {
            return Err(MigrateError::Pending(pending).into());
        }
        return Ok(());
    }
    let mut log = |r: &Report| tracing::info!(migration = %r.label, duration_ms = r.duration.as_millis() as u64, "applied migration");
    migrator.up(&mut log).await?;
    Ok(())
}

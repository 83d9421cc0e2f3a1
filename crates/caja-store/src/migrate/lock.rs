//! The migration lock, so that two migrators apply each migration exactly once. How it is
//! taken differs per engine and lives in the dialect; this maps its outcome to
//! [`MigrateError`].

use std::time::Duration;

use sqlx::AnyConnection;

use super::MigrateError;
use crate::dialect::Dialect;

pub(crate) async fn acquire(
    conn: &mut AnyConnection,
    dialect: Dialect,
    wait: Duration,
) -> Result<(), MigrateError> {
    if dialect.lock_migrations(conn, wait).await? {
        Ok(())
    } else {
        Err(MigrateError::LockTimeout(wait))
    }
}

pub(crate) async fn release(
    conn: &mut AnyConnection,
    dialect: Dialect,
    busy_timeout: Duration,
) -> Result<(), MigrateError> {
    Ok(dialect.unlock_migrations(conn, busy_timeout).await?)
}
/// Maps SQLite's "database is locked" after the busy timeout to the lock error.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.message().contains("database is locked") || db.code().as_deref() == Some("5")
        }
        _ => false,
    }
}

//! The migration lock, so that two migrators apply each migration exactly once.
//!
//! PostgreSQL: a session advisory lock, tried in a loop until a bounded wait runs out (a
//! plain `pg_advisory_lock` would wait forever behind a stuck migrator). SQLite: each
//! migration's transaction begins with `BEGIN IMMEDIATE`, which takes the database's write
//! lock, under a `busy_timeout` equal to the same bounded wait.

use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Row};

use super::MigrateError;
use crate::Engine;

/// "caja" in ASCII: the advisory lock key reserved for migrations.
const ADVISORY_KEY: i64 = 0x6361_6a61;

pub(crate) async fn acquire(
    conn: &mut AnyConnection,
    engine: Engine,
    wait: Duration,
) -> Result<(), MigrateError> {
    match engine {
        Engine::Sqlite => {
            let ms = wait.as_millis().max(1);
            sqlx::query(&format!("PRAGMA busy_timeout = {ms}"))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        Engine::Postgres => {
            let started = Instant::now();
            loop {
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
                    .bind(ADVISORY_KEY)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("got")?;
                if got {
                    return Ok(());
                }
                if started.elapsed() >= wait {
                    return Err(MigrateError::LockTimeout(wait));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub(crate) async fn release(
    conn: &mut AnyConnection,
    engine: Engine,
    busy_timeout: Duration,
) -> Result<(), MigrateError> {
    match engine {
        Engine::Sqlite => {
            let ms = busy_timeout.as_millis();
            sqlx::query(&format!("PRAGMA busy_timeout = {ms}"))
                .execute(&mut *conn)
                .await?;
        }
        Engine::Postgres => {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(ADVISORY_KEY)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
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

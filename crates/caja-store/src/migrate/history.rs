//! The history table: one row per applied migration, written in the migration's own
//! transaction so the two can never disagree.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

use crate::dialect::Dialect;

pub(crate) const TABLE: &str = "caja_schema_history";

/// What the history says about one applied migration.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub applied_at: String,
    pub duration_ms: i64,
    pub applied_by: String,
    pub caja_version: String,
}

pub(crate) async fn create_table<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            version      BIGINT PRIMARY KEY,
            name         TEXT NOT NULL,
            checksum     TEXT NOT NULL,
            applied_at   TEXT NOT NULL,
            duration_ms  BIGINT NOT NULL,
            applied_by   TEXT NOT NULL,
            caja_version TEXT NOT NULL
        )"
    ))
    .execute(executor)
    .await?;
    Ok(())
}

pub(crate) async fn table_exists(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<bool, sqlx::Error> {
    dialect.table_exists(conn, TABLE).await
}

pub(crate) async fn read<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<Applied>, sqlx::Error> {
    let rows: Vec<AnyRow> = sqlx::query(&format!(
        "SELECT version, name, checksum, applied_at, duration_ms, applied_by, caja_version \
         FROM {TABLE} ORDER BY version"
    ))
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Applied {
                version: r.try_get("version")?,
                name: r.try_get("name")?,
                checksum: r.try_get("checksum")?,
                applied_at: r.try_get("applied_at")?,
                duration_ms: r.try_get("duration_ms")?,
                applied_by: r.try_get("applied_by")?,
                caja_version: r.try_get("caja_version")?,
            })
        })
        .collect()
}

pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    a: &Applied,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {TABLE} (version, name, checksum, applied_at, duration_ms, applied_by, caja_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(a.version)
    .bind(&a.name)
    .bind(&a.checksum)
    .bind(&a.applied_at)
    .bind(a.duration_ms)
    .bind(&a.applied_by)
    .bind(&a.caja_version)
    .execute(executor)
    .await?;
    Ok(())
}

pub(crate) async fn delete<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DELETE FROM {TABLE} WHERE version = $1"))
        .bind(version)
        .execute(executor)
        .await?;
    Ok(())
}

/// `user@host` of whoever runs the migration, for the history.
pub(crate) fn applied_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

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
    /// `expand` or `contract` (rows written before kinds were recorded read `contract`).
    pub kind: String,
    /// The archive taken before the migration, or why none was.
    pub backup: Option<String>,
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

/// Adds the columns later versions record (kind, backup) to a history table made before
/// them, inside the caller's transaction (which holds the migration lock). Expand-only:
/// older binaries name their columns and never see these.
pub(crate) async fn upgrade_table(
    tx: &mut sqlx::Transaction<'_, Any>,
    dialect: Dialect,
) -> Result<(), sqlx::Error> {
    for (column, ddl) in [
        ("kind", "kind TEXT NOT NULL DEFAULT 'contract'"),
        ("backup", "backup TEXT"),
    ] {
        if !dialect.column_exists(&mut **tx, TABLE, column).await? {
            sqlx::query(&format!("ALTER TABLE {TABLE} ADD COLUMN {ddl}"))
                .execute(&mut **tx)
                .await?;
        }
    }
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
    let rows: Vec<AnyRow> = sqlx::query(&format!("SELECT * FROM {TABLE} ORDER BY version"))
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
                // Tables from before kinds were recorded lack the columns.
                kind: r
                    .try_get::<String, _>("kind")
                    .unwrap_or_else(|_| "contract".to_owned()),
                backup: r.try_get::<Option<String>, _>("backup").unwrap_or(None),
            })
        })
        .collect()
}

pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    a: &Applied,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {TABLE} (version, name, checksum, applied_at, duration_ms, applied_by, caja_version, kind, backup) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(a.version)
    .bind(&a.name)
    .bind(&a.checksum)
    .bind(&a.applied_at)
    .bind(a.duration_ms)
    .bind(&a.applied_by)
    .bind(&a.caja_version)
    .bind(&a.kind)
    .bind(a.backup.as_deref())
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

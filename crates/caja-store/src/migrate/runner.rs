//! Status, up, down and verify.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caja_core::time;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};

use super::history::{self, Applied};
use super::{embedded, lock, MigrateError, Migration};
use crate::dialect::Dialect;
use crate::Store;

/// Runs migrations against one store.
pub struct Migrator<'a> {
    store: &'a Store,
    migrations: &'a [Migration],
    lock_wait: Duration,
    busy_timeout: Duration,
    /// Recorded with each migration applied: the archive taken first, or why none was.
    backup: Option<String>,
}

/// Where one migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Applied,
    Pending,
    /// Applied, but the binary's `up` script differs from what was applied.
    ChecksumChanged,
    /// Applied by a caja that knows a migration this one does not.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct StatusRow {
    pub version: i64,
    pub name: String,
    pub status: Status,
    pub applied: Option<Applied>,
}

impl StatusRow {
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

/// One migration run by `up` or `down`, and how long it took.
#[derive(Debug, Clone)]
pub struct Report {
    pub label: String,
    pub duration: Duration,
}

/// A migration that `verify` found wrong.
#[derive(Debug, Clone)]
pub struct VerifyFailure {
    pub label: String,
    pub reason: String,
}

impl<'a> Migrator<'a> {
    pub fn new(store: &'a Store, lock_wait: Duration, busy_timeout: Duration) -> Self {
        Self::with_migrations(store, embedded(store.engine()), lock_wait, busy_timeout)
    }

    /// A migrator over another list than the shipped one, to rehearse a failing
    /// migration in tests.
    pub fn with_migrations(
        store: &'a Store,
        migrations: &'a [Migration],
        lock_wait: Duration,
        busy_timeout: Duration,
    ) -> Self {
        Self {
            store,
            migrations,
            lock_wait,
            busy_timeout,
            backup: None,
        }
    }

    /// Records `note` (the archive taken before migrating, or why none was) in the history
    /// row of every migration this migrator applies.
    pub fn with_backup_note(mut self, note: impl Into<String>) -> Self {
        self.backup = Some(note.into());
        self
    }

    /// Newer migrations the database has and this binary does not know, if all of them are
    /// expand (a rolling upgrade in progress); an error if any is a contract.
    pub async fn newer_expand(&self) -> Result<Vec<String>, MigrateError> {
        refuse_changed_or_newer_contract(&self.status().await?)
    }

    fn dialect(&self) -> Dialect {
        self.store.dialect()
    }

    async fn connection(&self) -> Result<PoolConnection<Any>, MigrateError> {
        Ok(self.store.writer().acquire().await?)
    }

    /// Every migration the binary or the database knows, in version order. Reads only.
    pub async fn status(&self) -> Result<Vec<StatusRow>, MigrateError> {
        let mut conn = self.connection().await?;
        let applied = if history::table_exists(&mut conn, self.dialect()).await? {
            history::read(&mut *conn).await?
        } else {
            Vec::new()
        };
        Ok(compare(self.migrations, applied))
    }

    /// Labels of the migrations not yet applied.
    pub async fn pending(&self) -> Result<Vec<String>, MigrateError> {
        Ok(self
            .status()
            .await?
            .into_iter()
            .filter(|r| r.status == Status::Pending)
            .map(|r| r.label())
            .collect())
    }

    /// Labels of the migrations not yet applied, after refusing a database that a newer
    /// caja migrated or whose applied scripts changed: what a server must check before it
    /// trusts a schema it did not migrate itself.
    pub async fn pending_checked(&self) -> Result<Vec<String>, MigrateError> {
        let rows = self.status().await?;
        refuse_changed_or_newer_contract(&rows)?;
        Ok(rows
            .into_iter()
            .filter(|r| r.status == Status::Pending)
            .map(|r| r.label())
            .collect())
    }

    /// Applies every pending migration in order, each in its own transaction with its
    /// history row, and stops at the first failure. `on_applied` hears of each as it lands.
    pub async fn up(
        &self,
        on_applied: &mut (dyn FnMut(&Report) + Send),
    ) -> Result<Vec<Report>, MigrateError> {
        let mut conn = self.connection().await?;
        lock::acquire(&mut conn, self.dialect(), self.lock_wait).await?;
        let result = self.up_locked(&mut conn, on_applied).await;
        let released = lock::release(&mut conn, self.dialect(), self.busy_timeout).await;
        let reports = result?;
        released?;
        Ok(reports)
    }

    async fn up_locked(
        &self,
        conn: &mut AnyConnection,
        on_applied: &mut (dyn FnMut(&Report) + Send),
    ) -> Result<Vec<Report>, MigrateError> {
        {
            let mut tx = self.begin(conn).await?;
            history::create_table(&mut *tx).await?;
            history::upgrade_table(&mut tx, self.dialect()).await?;
            tx.commit().await?;
        }
        let rows = compare(self.migrations, history::read(&mut *conn).await?);
        // Newer expand migrations (a rolling upgrade in progress) leave nothing to do here.
        refuse_changed_or_newer_contract(&rows)?;
        let by = history::applied_by();
        let mut reports = Vec::new();
        for m in self.migrations {
            // SQLite rebuilds a table to change its constraints, which it allows only with
            // foreign keys off; the script's result is checked against them before commit.
            self.dialect().foreign_keys(conn, false).await?;
            let applied = self.up_one(conn, m, &by).await;
            let restored = self.dialect().foreign_keys(conn, true).await;
            let Some(report) = applied? else {
                continue;
            };
            restored?;
            on_applied(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// Applies one migration with its history row; `None` when another migrator got there
    /// first.
    async fn up_one(
        &self,
        conn: &mut AnyConnection,
        m: &Migration,
        by: &str,
    ) -> Result<Option<Report>, MigrateError> {
        let started = Instant::now();
        let mut tx = self.begin(conn).await?;
        // Re-read inside the transaction: another migrator may have got here first.
        if history::read(&mut *tx)
            .await?
            .iter()
            .any(|a| a.version == m.version)
        {
            return Ok(None);
        }
        sqlx::raw_sql(m.up)
            .execute(&mut *tx)
            .await
            .map_err(|source| MigrateError::Failed {
                label: m.label(),
                source,
            })?;
        self.dialect()
            .foreign_key_check(&mut tx)
            .await
            .map_err(|source| MigrateError::Failed {
                label: m.label(),
                source,
            })?;
        let duration = started.elapsed();
        let applied = Applied {
            version: m.version,
            name: m.name.to_owned(),
            checksum: m.checksum(),
            applied_at: time::format(&time::now()),
            duration_ms: duration.as_millis() as i64,
            applied_by: by.to_owned(),
            caja_version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: m.kind().as_str().to_owned(),
            backup: self.backup.clone(),
        };
        history::insert(&mut *tx, &applied).await?;
        audit_migration(
            &mut tx,
            self.dialect(),
            "migration.applied",
            m,
            &applied.backup,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Report {
            label: m.label(),
            duration,
        }))
    }

    /// Runs the `down` scripts of the last `steps` applied migrations, newest first.
    /// The migrations `down(steps)` would revert, newest first, and the tables each drops.
    pub async fn down_plan(
        &self,
        steps: usize,
    ) -> Result<Vec<(String, Vec<&'static str>)>, MigrateError> {
        let rows = self.status().await?;
        let known: BTreeMap<i64, &Migration> =
            self.migrations.iter().map(|m| (m.version, m)).collect();
        Ok(rows
            .iter()
            .rev()
            .filter(|r| r.status == Status::Applied)
            .take(steps)
            .filter_map(|r| known.get(&r.version))
            .map(|m| (m.label(), m.drops()))
            .collect())
    }

    pub async fn down(
        &self,
        steps: usize,
        on_reverted: &mut (dyn FnMut(&Report) + Send),
    ) -> Result<Vec<Report>, MigrateError> {
        let mut conn = self.connection().await?;
        lock::acquire(&mut conn, self.dialect(), self.lock_wait).await?;
        let result = self.down_locked(&mut conn, steps, on_reverted).await;
        let released = lock::release(&mut conn, self.dialect(), self.busy_timeout).await;
        let reports = result?;
        released?;
        Ok(reports)
    }

    async fn down_locked(
        &self,
        conn: &mut AnyConnection,
        steps: usize,
        on_reverted: &mut (dyn FnMut(&Report) + Send),
    ) -> Result<Vec<Report>, MigrateError> {
        if !history::table_exists(conn, self.dialect()).await? {
            return Ok(Vec::new());
        }
        let rows = compare(self.migrations, history::read(&mut *conn).await?);
        refuse_unknown_or_changed(&rows)?;
        let known: BTreeMap<i64, &Migration> =
            self.migrations.iter().map(|m| (m.version, m)).collect();
        let targets: Vec<&Migration> = rows
            .iter()
            .rev()
            .filter(|r| r.status == Status::Applied)
            .take(steps)
            .filter_map(|r| known.get(&r.version).copied())
            .collect();
        let mut reports = Vec::new();
        for m in targets {
            self.dialect().foreign_keys(conn, false).await?;
            let reverted = self.down_one(conn, m).await;
            let restored = self.dialect().foreign_keys(conn, true).await;
            let report = reverted?;
            restored?;
            on_reverted(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// Reverts one migration and deletes its history row.
    async fn down_one(
        &self,
        conn: &mut AnyConnection,
        m: &Migration,
    ) -> Result<Report, MigrateError> {
        let started = Instant::now();
        let mut tx = self.begin(conn).await?;
        let failed = |source| MigrateError::Failed {
            label: m.label(),
            source,
        };
        sqlx::raw_sql(m.down)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        self.dialect()
            .foreign_key_check(&mut tx)
            .await
            .map_err(failed)?;
        history::delete(&mut *tx, m.version).await?;
        audit_migration(&mut tx, self.dialect(), "migration.reverted", m, &None).await?;
        tx.commit().await?;
        Ok(Report {
            label: m.label(),
            duration: started.elapsed(),
        })
    }

    /// Checks every applied migration: its checksum, and its `verify` script run inside a
    /// transaction that is rolled back. Returns what is wrong (empty when all is well).
    pub async fn verify(&self) -> Result<Vec<VerifyFailure>, MigrateError> {
        let rows = self.status().await?;
        let known: BTreeMap<i64, &Migration> =
            self.migrations.iter().map(|m| (m.version, m)).collect();
        let mut conn = self.connection().await?;
        let mut failures = Vec::new();
        for row in rows {
            let reason = match row.status {
                Status::Pending => continue,
                Status::Unknown => Some("applied, but unknown to this caja".to_owned()),
                Status::ChecksumChanged => {
                    Some("checksum differs from the migration this caja ships".to_owned())
                }
                Status::Applied => None,
            };
            if let Some(reason) = reason {
                failures.push(VerifyFailure {
                    label: row.label(),
                    reason,
                });
                continue;
            }
            let Some(m) = known.get(&row.version) else {
                continue;
            };
            let mut tx = conn.begin().await?;
            let outcome = sqlx::raw_sql(m.verify).execute(&mut *tx).await;
            tx.rollback().await?;
            if let Err(e) = outcome {
                failures.push(VerifyFailure {
                    label: row.label(),
                    reason: format!("verify failed: {e}"),
                });
            }
        }
        Ok(failures)
    }

    async fn begin<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<sqlx::Transaction<'c, Any>, MigrateError> {
        let begun = self.dialect().begin_on(conn).await;
        begun.map_err(|e| {
            if lock::is_busy(&e) {
                MigrateError::LockTimeout(self.lock_wait)
            } else {
                e.into()
            }
        })
    }
}

/// The audit row of a migration applied or reverted, once the audit log exists (it is
/// itself created by a migration, and reverting that one takes the log with it).
async fn audit_migration(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    action: &str,
    m: &Migration,
    backup: &Option<String>,
) -> Result<(), MigrateError> {
    if !dialect.table_exists(tx, "audit").await? {
        return Ok(());
    }
    let after = format!(
        "{{\"migration\":{},\"kind\":\"{}\",\"backup\":{}}}",
        crate::dialect::quoted(&m.label()),
        m.kind().as_str(),
        backup
            .as_deref()
            .map(crate::dialect::quoted)
            .unwrap_or_else(|| "null".to_owned())
    );
    sqlx::query(
        "INSERT INTO audit (id, at, actor, request_id, action, target, before, after) \
         VALUES ($1, $2, $3, NULL, $4, $5, NULL, $6)",
    )
    .bind(caja_core::ids::AuditId::generate().to_string())
    .bind(time::format(&time::now()))
    .bind(format!("cli:{}", history::applied_by()))
    .bind(action)
    .bind(m.label())
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Newer migrations this binary does not know are fine if every one of them is an expand
/// (a replica that predates them keeps working); a changed checksum or a newer contract is
/// not. Returns the newer expand migrations.
pub(crate) fn refuse_changed_or_newer_contract(
    rows: &[StatusRow],
) -> Result<Vec<String>, MigrateError> {
    let changed: Vec<String> = rows
        .iter()
        .filter(|r| r.status == Status::ChecksumChanged)
        .map(StatusRow::label)
        .collect();
    if !changed.is_empty() {
        return Err(MigrateError::ChecksumChanged(changed));
    }
    let newer: Vec<&StatusRow> = rows
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .collect();
    let contracts: Vec<String> = newer
        .iter()
        .filter(|r| r.applied.as_ref().is_none_or(|a| a.kind != "expand"))
        .map(|r| r.label())
        .collect();
    if !contracts.is_empty() {
        return Err(MigrateError::UnknownMigrations(contracts));
    }
    Ok(newer.iter().map(|r| r.label()).collect())
}

fn refuse_unknown_or_changed(rows: &[StatusRow]) -> Result<(), MigrateError> {
    let of = |s: Status| -> Vec<String> {
        rows.iter()
            .filter(|r| r.status == s)
            .map(StatusRow::label)
            .collect()
    };
    let unknown = of(Status::Unknown);
    if !unknown.is_empty() {
        return Err(MigrateError::UnknownMigrations(unknown));
    }
    let changed = of(Status::ChecksumChanged);
    if !changed.is_empty() {
        return Err(MigrateError::ChecksumChanged(changed));
    }
    Ok(())
}

/// Lines up what the binary ships with what the database records.
fn compare(shipped: &[Migration], applied: Vec<Applied>) -> Vec<StatusRow> {
    let mut applied: BTreeMap<i64, Applied> = applied.into_iter().map(|a| (a.version, a)).collect();
    let mut rows: Vec<StatusRow> = shipped
        .iter()
        .map(|m| {
            let a = applied.remove(&m.version);
            let status = match &a {
                None => Status::Pending,
                Some(a) if a.checksum != m.checksum() => Status::ChecksumChanged,
                Some(_) => Status::Applied,
            };
            StatusRow {
                version: m.version,
                name: m.name.to_owned(),
                status,
                applied: a,
            }
        })
        .collect();
    rows.extend(applied.into_values().map(|a| StatusRow {
        version: a.version,
        name: a.name.clone(),
        status: Status::Unknown,
        applied: Some(a),
    }));
    rows.sort_by_key(|r| r.version);
    rows
}

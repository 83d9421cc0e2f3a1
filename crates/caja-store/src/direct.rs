//! The SQLite writer's own connection, driven directly on the writer's thread.
//!
//! Through sqlx, every statement of a batch went from the async runtime to the
//! connection's worker thread and back (a wake-up each way), and every value was converted
//! twice on its way. SQLite does its work in the caller's thread, so the writer, which
//! runs on a thread of its own ([`crate::writer`]), drives its connection itself: each
//! statement prepared once and kept, each value bound straight from the batch's rows, no
//! hand-over until the batch is answered. Everything else on SQLite (reads, the rare
//! writes outside the writer) still goes through sqlx's pools. In this process the writer's
//! turn ([`crate::Store::write_turn`]) orders the two writing connections; SQLite's write
//! lock (`BEGIN IMMEDIATE`, bounded by `busy_timeout`) orders them against other processes.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod sqlite;

use self::sqlite::{Connection, Failure, Stored};
use crate::sql::{Columns, Query, Sql, WriteTx};
use crate::StoreError;

/// The writer's connection: opened on first use, and opened again after one whose
/// transaction could not be ended (a `COMMIT` or `ROLLBACK` that failed on a full disk).
pub(crate) struct Direct {
    path: PathBuf,
    busy_timeout: Duration,
    conn: Option<Connection>,
    /// Set by [`Direct::close`]: no transaction begins after it.
    closed: bool,
}

impl Direct {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Self {
            path,
            busy_timeout,
            conn: None,
            closed: false,
        }
    }

    /// Opens a write transaction, taking SQLite's write lock at once (as every writer
    /// does: see [`crate::dialect::Dialect::begin_write`]).
    pub(crate) fn begin(&mut self) -> Result<DirectTx<'_>, StoreError> {
        if self.closed {
            return Err(StoreError::ShuttingDown);
        }
        if self.conn.is_none() {
            self.conn = Some(open(&self.path, self.busy_timeout)?);
        }
        let conn = self.conn.as_mut().ok_or(StoreError::ShuttingDown)?;
        if let Err(e) = conn.exec("BEGIN IMMEDIATE") {
            if !conn.is_autocommit() {
                self.conn = None;
            }
            return Err(error(e));
        }
        Ok(DirectTx {
            conn: &mut self.conn,
            open: true,
        })
    }

    /// Closes the connection (the last one to close checkpoints the WAL into the file);
    /// later batches are refused as the server shutting down.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.conn = None;
    }
}

/// Opens the file with the same settings as every sqlx connection (`store::sqlite_pool`):
/// busy_timeout first, since switching to WAL may itself wait on another process.
///
/// One more, the writer's own: temporary files in memory. Every multi-row statement inside
/// a batch's transaction keeps a statement journal (the pages it changes, so that a failing
/// statement can be undone alone), and SQLite spills one larger than 64 KiB to a temporary
/// file: a `pwrite` per page, a few hundred per batch, for a journal that is thrown away at
/// the statement's end and never needs to survive a crash (the WAL does that).
fn open(path: &std::path::Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path, busy_timeout).map_err(error)?;
    conn.exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(error)?;
    Ok(conn)
}

/// A write transaction on the writer's connection. Dropped unfinished, it rolls back; a
/// connection whose transaction could not be ended is closed, never used again.
pub(crate) struct DirectTx<'c> {
    conn: &'c mut Option<Connection>,
    open: bool,
}

impl DirectTx<'_> {
    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.conn.as_mut().ok_or(StoreError::ShuttingDown)
    }

    /// Runs `sql` to end the transaction; if it fails and the transaction is still open,
    /// the connection is closed so the next batch starts on a fresh one.
    fn finish(&mut self, sql: &str) -> Result<(), StoreError> {
        self.open = false;
        let Some(conn) = self.conn.as_ref() else {
            return Err(StoreError::ShuttingDown);
        };
        let ended = conn.exec(sql);
        if ended.is_err() && !conn.is_autocommit() {
            let _ = conn.exec("ROLLBACK");
            if !conn.is_autocommit() {
                *self.conn = None;
            }
        }
        ended.map_err(error)
    }
}

impl Drop for DirectTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.finish("ROLLBACK");
        }
    }
}

impl Sql for DirectTx<'_> {
    type Row = DirectRow;

    async fn fetch_all(&mut self, query: Query<'_>) -> Result<Vec<DirectRow>, StoreError> {
        let mut rows = Vec::new();
        self.conn()?
            .run(query.sql, &query.args, |names, values| {
                rows.push(DirectRow {
                    names: names.clone(),
                    values,
                })
            })
            .map_err(error)?;
        Ok(rows)
    }

    fn round_trips(&self) -> bool {
        false
    }

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        self.conn()?
            .run(query.sql, &query.args, |_, _| {})
            .map_err(error)
    }
}

impl WriteTx for DirectTx<'_> {
    async fn commit(mut self) -> Result<(), StoreError> {
        self.finish("COMMIT")
    }

    async fn rollback(mut self) -> Result<(), StoreError> {
        self.finish("ROLLBACK")
    }
}

/// A row as read: its values, and its statement's column names (shared by its rows).
#[derive(Debug)]
pub(crate) struct DirectRow {
    names: Arc<[Box<str>]>,
    values: Vec<Stored>,
}

impl DirectRow {
    fn get(&self, col: &str) -> Result<&Stored, StoreError> {
        self.names
            .iter()
            .position(|n| &**n == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {col} in the row")))
    }
}

fn mistyped(col: &str, value: &Stored) -> StoreError {
    StoreError::Corrupt(format!("column {col} holds {}", value.type_name()))
}

impl Columns for DirectRow {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        match self.get(col)? {
            Stored::Text(s) => Ok(s.clone()),
            other => Err(mistyped(col, other)),
        }
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        match self.get(col)? {
            Stored::Null => Ok(None),
            Stored::Text(s) => Ok(Some(s.clone())),
            other => Err(mistyped(col, other)),
        }
    }

    fn int(&self, col: &str) -> Result<i64, StoreError> {
        match self.get(col)? {
            Stored::Integer(v) => Ok(*v),
            other => Err(mistyped(col, other)),
        }
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        match self.get(col)? {
            Stored::Null => Ok(None),
            Stored::Integer(v) => Ok(Some(*v)),
            other => Err(mistyped(col, other)),
        }
    }
}

/// SQLite's error as the rest of the store knows errors: a database error with SQLite's
/// extended result code, classified by [`StoreError`]'s one mapping (a full disk, a lock
/// held past `busy_timeout`, a unique violation).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DirectError {
    /// SQLite's extended result code.
    pub(crate) code: i32,
    message: String,
}

fn error(failure: Failure) -> StoreError {
    let direct = DirectError {
        code: failure.code,
        message: failure.message,
    };
    StoreError::from(sqlx::Error::Database(Box::new(direct)))
}

impl sqlx::error::DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use libsqlite3_sys as ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                sqlx::error::ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => sqlx::error::ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => sqlx::error::ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::query;

    fn scratch() -> (tempfile::TempDir, Direct) {
        let dir = tempfile::tempdir().unwrap();
        let direct = Direct::new(dir.path().join("t.db"), Duration::from_millis(50));
        (dir, direct)
    }

    async fn table(direct: &mut Direct) {
        let mut tx = direct.begin().unwrap();
        query("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT)")
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn values_go_in_and_come_back_by_column_with_their_nulls() {
        let (_dir, mut direct) = scratch();
        table(&mut direct).await;
        let mut tx = direct.begin().unwrap();
        let n = query("INSERT INTO t (id, n, note) VALUES (?, ?, ?), (?, ?, ?)")
            .bind("a")
            .bind(1_i64)
            .bind(Some("first".to_owned()))
            .bind("b".to_owned())
            .bind(None::<i64>)
            .bind(None::<&str>)
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(n, 2);
        let rows = query("SELECT note, id, n FROM t ORDER BY id")
            .fetch_all(&mut tx)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text("id").unwrap(), "a");
        assert_eq!(rows[0].int("n").unwrap(), 1);
        assert_eq!(rows[0].opt_text("note").unwrap().as_deref(), Some("first"));
        assert_eq!(rows[1].opt_int("n").unwrap(), None);
        assert_eq!(rows[1].opt_text("note").unwrap(), None);
        // Another type than asked, or a column the row lacks, is a row that does not parse.
        assert!(matches!(rows[0].int("id"), Err(StoreError::Corrupt(_))));
        assert!(matches!(rows[1].text("n"), Err(StoreError::Corrupt(_))));
        assert!(matches!(rows[0].text("nope"), Err(StoreError::Corrupt(_))));
        let none = query("SELECT id FROM t WHERE id = ?")
            .bind("z")
            .fetch_one(&mut tx)
            .await;
        assert!(matches!(none, Err(StoreError::NotFound)));
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn empty_texts_long_texts_and_a_wrong_count_of_values() {
        let (_dir, mut direct) = scratch();
        table(&mut direct).await;
        let mut tx = direct.begin().unwrap();
        let long = "é".repeat(100_000);
        // The same statement twice: a kept statement binds afresh every time.
        for (id, note) in [("", ""), ("long", long.as_str())] {
            query("INSERT INTO t (id, note) VALUES (?, ?)")
                .bind(id)
                .bind(note.to_owned())
                .execute(&mut tx)
                .await
                .unwrap();
        }
        let rows = query("SELECT id, note FROM t ORDER BY id")
            .fetch_all(&mut tx)
            .await
            .unwrap();
        assert_eq!(rows[0].text("id").unwrap(), "");
        assert_eq!(rows[0].opt_text("note").unwrap().as_deref(), Some(""));
        assert_eq!(rows[1].text("note").unwrap(), long);
        let short = query("INSERT INTO t (id, note) VALUES (?, ?)")
            .bind("x")
            .execute(&mut tx)
            .await;
        assert!(matches!(short, Err(StoreError::Database(_))), "{short:?}");
        let bad = query("SELEC nothing").execute(&mut tx).await;
        assert!(matches!(bad, Err(StoreError::Database(_))), "{bad:?}");
        // The transaction is still whole after the refusals.
        let n = query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(&mut tx)
            .await
            .unwrap();
        assert_eq!(n.int("n").unwrap(), 2);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_or_rolled_back_leaves_nothing() {
        let (_dir, mut direct) = scratch();
        table(&mut direct).await;
        {
            let mut tx = direct.begin().unwrap();
            query("INSERT INTO t (id) VALUES ('dropped')")
                .execute(&mut tx)
                .await
                .unwrap();
        }
        let mut tx = direct.begin().unwrap();
        query("INSERT INTO t (id) VALUES ('rolled back')")
            .execute(&mut tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let mut tx = direct.begin().unwrap();
        let rows = query("SELECT id FROM t").fetch_all(&mut tx).await.unwrap();
        assert!(rows.is_empty());
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_errors_are_told_apart_as_the_sqlx_ones_are() {
        let (dir, mut direct) = scratch();
        let mut tx = direct.begin().unwrap();
        query("CREATE TABLE products (id TEXT PRIMARY KEY, sku TEXT UNIQUE)")
            .execute(&mut tx)
            .await
            .unwrap();
        query("INSERT INTO products VALUES ('p1', 'TEA')")
            .execute(&mut tx)
            .await
            .unwrap();
        let twice = query("INSERT INTO products VALUES ('p2', 'TEA')")
            .execute(&mut tx)
            .await;
        assert!(matches!(twice, Err(StoreError::DuplicateSku)), "{twice:?}");
        let again = query("INSERT INTO products VALUES ('p1', 'COFFEE')")
            .execute(&mut tx)
            .await;
        match again {
            Err(StoreError::Database(sqlx::Error::Database(db))) => {
                assert!(db.is_unique_violation())
            }
            other => panic!("{other:?}"),
        }
        tx.commit().await.unwrap();
        // Another connection holds the write lock past busy_timeout: unavailable, for now.
        let other = Connection::open(&dir.path().join("t.db"), Duration::ZERO).unwrap();
        other.exec("BEGIN IMMEDIATE").unwrap();
        let locked = direct.begin().map(|_| ());
        assert!(
            matches!(locked, Err(ref e @ StoreError::Unavailable(_)) if e.is_outage()),
            "{locked:?}"
        );
        other.exec("ROLLBACK").unwrap();
        direct.begin().unwrap().rollback().await.unwrap();
        direct.close();
        assert!(matches!(
            direct.begin().map(|_| ()),
            Err(StoreError::ShuttingDown)
        ));
    }
}

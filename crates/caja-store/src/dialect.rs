//! Every difference between SQLite and PostgreSQL that caja's SQL runs into, in one place.
//!
//! The rest of the store writes portable SQL (`RETURNING`, `ON CONFLICT`, partial indexes,
//! `UPDATE … FROM (VALUES …)`) once and asks the [`Dialect`] for what differs:
//! placeholders, row locks, lock timeouts, how a write transaction begins, how ids are
//! reserved, how commits are announced, and the migration lock. Nothing outside this file
//! (and the per-engine migration folders) asks which engine it is on.

use std::time::{Duration, Instant};

use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row, Transaction};

use crate::database_url::Engine;
use crate::sql::Columns;
use crate::StoreError;

/// "caja" in ASCII: the advisory lock key reserved for migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6361_6a61;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dialect(Engine);

impl Dialect {
    pub(crate) fn of(engine: Engine) -> Self {
        Self(engine)
    }

    /// Placeholders for a statement built at run time.
    pub(crate) fn params(self) -> Params {
        Params {
            numbered: self.0 == Engine::Postgres,
            next: 0,
        }
    }

    /// Appended to a `SELECT` that reads rows a write transaction will change: ` FOR UPDATE`
    /// on PostgreSQL; nothing on SQLite, whose write transaction already excludes every
    /// other writer.
    pub(crate) fn lock_rows(self) -> &'static str {
        match self.0 {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        }
    }

    /// A seated section's seats, in order, as one JSON array of `[label, hold_id]` in one
    /// row (`$1` the section's product). One row rather than one per seat: on SQLite every
    /// row crosses from the connection's thread to the runtime's as a message of its own,
    /// and a 500-seat hall read for every batch of holds was mostly thread wake-ups.
    pub(crate) fn seats_as_json(self) -> &'static str {
        match self.0 {
            Engine::Postgres => {
                "SELECT json_agg(json_build_array(label, hold_id) ORDER BY position)::text \
                 AS seats FROM seats WHERE product_id = $1"
            }
            Engine::Sqlite => {
                "SELECT json_group_array(json_array(label, hold_id) ORDER BY position) \
                 AS seats FROM seats WHERE product_id = $1"
            }
        }
    }

    /// A read of the rows of `table` (aliased `k`) that the rows of a `VALUES` list (`v`,
    /// columns `column1`, …) name by a unique key, `on` comparing the two: one index probe
    /// per row of the list, whatever the table's size. PostgreSQL is made to probe with a
    /// `LATERAL` subquery it cannot flatten (`LIMIT 1`): as a plain join, its cached
    /// generic plan often hashed the list and scanned the whole table (`idempotency_keys`
    /// in half the batches of a checkout run: 1.85 ms a statement). SQLite drives a join
    /// from the `VALUES` list through the unique index already.
    pub(crate) fn lookup(self, columns: &str, values: &str, table: &str, on: &str) -> String {
        match self.0 {
            Engine::Postgres => format!(
                "SELECT {columns} FROM (VALUES {values}) AS v CROSS JOIN LATERAL \
                 (SELECT * FROM {table} k WHERE {on} LIMIT 1) AS k"
            ),
            Engine::Sqlite => {
                format!("SELECT {columns} FROM (VALUES {values}) AS v JOIN {table} k ON {on}")
            }
        }
    }

    /// Whether one write transaction excludes every other writer for its whole life
    /// (SQLite's single write lock).
    pub(crate) fn writers_are_serialized(self) -> bool {
        self.0 == Engine::Sqlite
    }

    /// Opens a write transaction on `pool`. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes can never fail
    /// half-way because another process wrote in between.
    ///
    /// `lock_wait` bounds every wait on a row lock in the transaction (PostgreSQL's
    /// `lock_timeout`, set in the same round trip as `BEGIN`); `None` waits as long as it
    /// takes. SQLite has no row locks to wait on: its write lock is bounded by
    /// `busy_timeout`.
    pub(crate) async fn begin_write(
        self,
        pool: &AnyPool,
        lock_wait: Option<Duration>,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match (self.0, lock_wait) {
            (Engine::Sqlite, _) => pool.begin_with("BEGIN IMMEDIATE").await?,
            (Engine::Postgres, None) => pool.begin().await?,
            (Engine::Postgres, Some(wait)) => {
                let ms = wait.as_millis().max(1);
                pool.begin_with(format!("BEGIN; SET LOCAL lock_timeout = {ms}"))
                    .await?
            }
        })
    }

    /// Opens a read-only transaction that sees one moment of the database throughout, for
    /// a backup: `REPEATABLE READ` on PostgreSQL; on SQLite a read transaction, whose first
    /// read fixes its snapshot of the WAL. Writers are not blocked either way.
    pub(crate) async fn begin_snapshot(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.0 {
            Engine::Postgres => {
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
            Engine::Sqlite => pool.begin().await?,
        })
    }

    /// After rows were restored with their ids: PostgreSQL's sequence for ledger ids moves
    /// past them (SQLite's `AUTOINCREMENT` counter followed the explicit ids already).
    pub(crate) async fn after_restore(
        self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<(), StoreError> {
        if self.0 == Engine::Postgres {
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('stock_movements', 'id'), \
                 COALESCE((SELECT MAX(id) FROM stock_movements), 0) + 1, false)",
            )
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Turns SQLite's foreign key enforcement off or on for `conn`, outside any
    /// transaction (inside one SQLite ignores it). A migration that rebuilds a table other
    /// tables refer to needs it off, as SQLite's own procedure for schema changes says;
    /// [`Dialect::foreign_key_check`] then proves the result before commit. PostgreSQL
    /// changes constraints in place and needs neither.
    pub(crate) async fn foreign_keys(
        self,
        conn: &mut AnyConnection,
        on: bool,
    ) -> Result<(), sqlx::Error> {
        if self.0 == Engine::Sqlite {
            let pragma = if on { "ON" } else { "OFF" };
            conn.execute(format!("PRAGMA foreign_keys = {pragma}").as_str())
                .await?;
        }
        Ok(())
    }

    /// Fails when any row refers to a row that does not exist (SQLite; PostgreSQL never
    /// stops enforcing).
    pub(crate) async fn foreign_key_check(
        self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<(), sqlx::Error> {
        if self.0 == Engine::Sqlite {
            let broken = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut **tx)
                .await?;
            if !broken.is_empty() {
                return Err(sqlx::Error::Protocol(format!(
                    "{} rows refer to rows that do not exist",
                    broken.len()
                )));
            }
        }
        Ok(())
    }

    /// The same on one connection (the migrator's).
    pub(crate) async fn begin_on(
        self,
        conn: &mut AnyConnection,
    ) -> Result<Transaction<'_, Any>, sqlx::Error> {
        match self.0 {
            Engine::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => conn.begin().await,
        }
    }

    /// Takes `orders` order numbers (when above 0: the counter moves on by that many and
    /// its row stays locked until commit, so numbers stay gapless) and `movements` fresh
    /// ids for ledger rows, in one round trip where the engine allows. Returns the last
    /// order number before the batch's, and the ids.
    ///
    /// Ledger ids: PostgreSQL takes them from the table's sequence (no lock; gaps allowed,
    /// as with any sequence). SQLite continues its `AUTOINCREMENT` counter, which no one
    /// else can move while this transaction holds the write lock; rows inserted with
    /// explicit ids move it on.
    pub(crate) async fn reserve(
        self,
        tx: &mut (impl crate::sql::Sql + ?Sized),
        orders: usize,
        movements: usize,
    ) -> Result<(Option<i64>, Vec<i64>), StoreError> {
        let (orders, movements) = (orders as i64, movements as i64);
        let numbers = "UPDATE counters SET value = value + $1 WHERE name = 'order_number' \
                       RETURNING value";
        match self.0 {
            Engine::Postgres => {
                // The sequence is looked up once per statement: as the argument of
                // `nextval` it was looked up again for every id (a catalog search each,
                // half the statement's time for a batch of 128).
                const IDS: &str = "(WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(\
                    'stock_movements', 'id')::regclass AS seq) \
                    SELECT COALESCE(string_agg(nextval(s.seq)::text, ','), '') \
                    FROM s, generate_series(1, $2))";
                let (value, ids): (Option<i64>, String) = if orders > 0 {
                    let row = crate::sql::query(&format!("{numbers}, {IDS} AS ids"))
                        .bind(orders)
                        .bind(movements)
                        .fetch_one(&mut *tx)
                        .await?;
                    (Some(row.int("value")?), row.text("ids")?)
                } else if movements > 0 {
                    let row = crate::sql::query(&format!("SELECT $1 AS unused, {IDS} AS ids"))
                        .bind(0_i64)
                        .bind(movements)
                        .fetch_one(&mut *tx)
                        .await?;
                    (None, row.text("ids")?)
                } else {
                    (None, String::new())
                };
                let ids = ids
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<i64>()
                            .map_err(|_| StoreError::Corrupt("a reserved ledger id".into()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((value.map(|v| v - orders), ids))
            }
            Engine::Sqlite => {
                let value = if orders > 0 {
                    let after: i64 = crate::sql::query(numbers)
                        .bind(orders)
                        .fetch_one(&mut *tx)
                        .await?
                        .int("value")?;
                    Some(after - orders)
                } else {
                    None
                };
                if movements == 0 {
                    return Ok((value, Vec::new()));
                }
                let last: i64 = crate::sql::query(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'stock_movements'), \
                     (SELECT MAX(id) FROM stock_movements), 0) AS last",
                )
                .fetch_one(&mut *tx)
                .await?
                .int("last")?;
                Ok((value, (last + 1..=last + movements).collect()))
            }
        }
    }

    /// Tells other replicas that something committed (`payload` says who and up to which
    /// seq), if the engine can: PostgreSQL delivers the notification at commit, and only if
    /// the transaction commits. SQLite has one writing process, which wakes its own
    /// subscribers.
    pub(crate) async fn announce(
        self,
        tx: &mut (impl crate::sql::Sql + ?Sized),
        channel: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        if self.0 == Engine::Postgres {
            crate::sql::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Whether commits by other processes can be listened for (`LISTEN`).
    pub(crate) fn can_listen(self) -> bool {
        self.0 == Engine::Postgres
    }

    /// Does the table exist in the current schema?
    pub(crate) async fn table_exists(
        self,
        conn: &mut AnyConnection,
        table: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = match self.0 {
            Engine::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1"
            }
            Engine::Postgres => {
                "SELECT COUNT(*) AS n FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = $1"
            }
        };
        let n: i64 = sqlx::query(sql)
            .bind(table)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// Does `table` have `column`? Asked without an error, so it is safe inside a
    /// PostgreSQL transaction.
    pub(crate) async fn column_exists<'c, E>(
        self,
        executor: E,
        table: &str,
        column: &str,
    ) -> Result<bool, sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        let sql = match self.0 {
            Engine::Sqlite => "SELECT COUNT(*) AS n FROM pragma_table_info($1) WHERE name = $2",
            Engine::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
            }
        };
        let n: i64 = sqlx::query(sql)
            .bind(table)
            .bind(column)
            .fetch_one(executor)
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// Takes the migration lock within `wait`; `false` if it ran out. PostgreSQL: a session
    /// advisory lock, tried in a loop (a plain `pg_advisory_lock` would wait forever behind
    /// a stuck migrator). SQLite: each migration's `BEGIN IMMEDIATE` takes the write lock,
    /// under a `busy_timeout` of the same bound.
    pub(crate) async fn lock_migrations(
        self,
        conn: &mut AnyConnection,
        wait: Duration,
    ) -> Result<bool, sqlx::Error> {
        match self.0 {
            Engine::Sqlite => {
                let ms = wait.as_millis().max(1);
                sqlx::query(&format!("PRAGMA busy_timeout = {ms}"))
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            }
            Engine::Postgres => {
                let started = Instant::now();
                loop {
                    let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
                        .bind(MIGRATION_LOCK_KEY)
                        .fetch_one(&mut *conn)
                        .await?
                        .try_get("got")?;
                    if got {
                        return Ok(true);
                    }
                    if started.elapsed() >= wait {
                        return Ok(false);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Gives the migration lock back (on SQLite: restores the usual `busy_timeout`).
    pub(crate) async fn unlock_migrations(
        self,
        conn: &mut AnyConnection,
        busy_timeout: Duration,
    ) -> Result<(), sqlx::Error> {
        match self.0 {
            Engine::Sqlite => {
                let ms = busy_timeout.as_millis();
                sqlx::query(&format!("PRAGMA busy_timeout = {ms}"))
                    .execute(&mut *conn)
                    .await?;
            }
            Engine::Postgres => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// `s` as a JSON string literal.
pub(crate) fn quoted(s: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Hands out bind placeholders in bind order.
///
/// PostgreSQL numbers its parameters (`$1`); SQLite takes them anonymous (`?`). SQLite
/// understands `$1` too, but resolves every named parameter by a linear search while
/// preparing and again while binding, so a 1,800-parameter batch insert spends most of its
/// time comparing parameter names. Anonymous `?` placeholders bind by position for free.
pub(crate) struct Params {
    numbered: bool,
    next: usize,
}

impl Params {
    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.next += 1;
        if self.numbered {
            format!("${}", self.next)
        } else {
            "?".to_owned()
        }
    }

    /// `(p, p, …)` with `cols` placeholders.
    pub(crate) fn row(&mut self, cols: usize) -> String {
        let params: Vec<String> = (0..cols).map(|_| self.next()).collect();
        format!("({})", params.join(", "))
    }

    /// `(p, …), (p, …)`: `rows` rows of `cols` placeholders.
    pub(crate) fn rows(&mut self, rows: usize, cols: usize) -> String {
        let rows: Vec<String> = (0..rows).map(|_| self.row(cols)).collect();
        rows.join(", ")
    }

    /// `p, p, …`: a list of `n` for `IN (…)`.
    pub(crate) fn list(&mut self, n: usize) -> String {
        let params: Vec<String> = (0..n).map(|_| self.next()).collect();
        params.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_its_parameters_and_sqlite_does_not() {
        let pg = Dialect::of(Engine::Postgres);
        let lite = Dialect::of(Engine::Sqlite);
        assert_eq!(pg.params().rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(lite.params().rows(2, 2), "(?, ?), (?, ?)");
        let mut p = pg.params();
        assert_eq!(p.row(1), "($1)");
        assert_eq!(p.next(), "$2");
        assert_eq!(p.list(2), "$3, $4");
    }

    #[test]
    fn strings_are_quoted_as_json() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("x\ny\u{1}"), r#""x\ny\u0001""#);
        assert_eq!(quoted("café"), "\"café\"");
    }

    #[test]
    fn only_postgres_locks_rows_and_listens() {
        assert_eq!(Dialect::of(Engine::Postgres).lock_rows(), " FOR UPDATE");
        assert_eq!(Dialect::of(Engine::Sqlite).lock_rows(), "");
        assert!(Dialect::of(Engine::Postgres).can_listen());
        assert!(Dialect::of(Engine::Sqlite).writers_are_serialized());
    }
}

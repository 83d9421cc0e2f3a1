//! Backups: a consistent, checksummed, engine-neutral archive of every table, written while
//! the server keeps serving, and restored into an empty database of either engine.
//!
//! The archive is text, one JSON value per line, so it can be read (and diffed, and
//! grepped) without caja:
//!
//! ```text
//! {"caja_backup":1,"schema_version":4,"source":"sqlite","created_at":"…","tables":["api_keys",…]}
//! {"table":"api_keys","columns":["id","name",…]}
//! ["key_01J…","till",…]                         one line per row
//! {"table_end":"api_keys","rows":3,"sha256":"…"}  the hash of that table's row lines
//! …
//! {"archive_end":true,"rows":1234,"sha256":"…"}   the hash of every line above
//! ```
//!
//! Every table is read inside one read-only snapshot (PostgreSQL `REPEATABLE READ`, SQLite
//! a read transaction on its WAL), so the archive is one moment of the books: an order and
//! its ledger rows and its change-feed event are all there or all absent. Writers are not
//! blocked. A restore migrates the empty target to the archive's schema version (with the
//! target engine's own scripts), loads every row in one transaction, and moves the ledger's
//! id sequence past the restored ids; the change feed carries on from where it was.

use std::io::{BufRead, Write};

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Store, StoreError};

/// The archive format's version.
pub const FORMAT: i64 = 1;

/// One table of the archive: its columns, which of them are integers, and the key it is
/// read in order of. Listed parents first, the order rows are restored in.
struct Table {
    name: &'static str,
    /// The migration that creates it: an archive of an older schema has no such table.
    since: i64,
    columns: &'static [&'static str],
    /// Columns later migrations added, with the version that added each: an archive of
    /// an older schema has the table without them.
    added: &'static [(i64, &'static str)],
    integers: &'static [&'static str],
    key: &'static [&'static str],
}

impl Table {
    /// The table's columns at schema version `version`, in archive order.
    fn columns_at(&self, version: i64) -> Vec<&'static str> {
        let added = self
            .added
            .iter()
            .filter(|(since, _)| *since <= version)
            .map(|(_, c)| *c);
        self.columns.iter().copied().chain(added).collect()
    }
}

const TABLES: &[Table] = &[
    Table {
        name: "api_keys",
        since: 1,
        columns: &[
            "id",
            "name",
            "role",
            "key_hash",
            "rate_limit",
            "created_at",
            "last_used_at",
            "revoked_at",
        ],
        added: &[(15, "location_id")],
        integers: &[],
        key: &["id"],
    },
    Table {
        name: "bootstrap",
        since: 1,
        columns: &["id", "done_at"],
        added: &[],
        integers: &["id"],
        key: &["id"],
    },
    Table {
        name: "counters",
        since: 3,
        columns: &["name", "value"],
        added: &[],
        integers: &["value"],
        key: &["name"],
    },
    Table {
        name: "locations",
        since: 15,
        columns: &["id", "code", "name", "version", "created_at", "updated_at"],
        added: &[],
        integers: &["version"],
        key: &["id"],
    },
    Table {
        name: "products",
        since: 2,
        columns: &[
            "id",
            "sku",
            "name",
            "price_amount",
            "currency",
            "stock",
            "version",
            "archived_at",
            "created_at",
            "updated_at",
        ],
        added: &[(10, "event_id"), (15, "stock_elsewhere")],
        integers: &["price_amount", "stock", "version"],
        key: &["id"],
    },
    Table {
        name: "transfers",
        since: 15,
        columns: &[
            "id",
            "product_id",
            "from_location",
            "to_location",
            "quantity",
            "note",
            "status",
            "created_at",
            "received_at",
        ],
        added: &[],
        integers: &["quantity"],
        key: &["id"],
    },
    Table {
        name: "orders",
        since: 3,
        columns: &[
            "id",
            "number",
            "status",
            "subtotal",
            "tip",
            "total",
            "currency",
            "note",
            "customer_name",
            "customer_email",
            "created_at",
            "updated_at",
            "expires_at",
        ],
        added: &[
            (7, "tab_id"),
            (7, "time_minutes"),
            (7, "time_rate"),
            (7, "time_amount"),
            (10, "hold_id"),
            (15, "location_id"),
            (15, "handovers"),
        ],
        integers: &[
            "number",
            "subtotal",
            "tip",
            "total",
            "time_minutes",
            "time_rate",
            "time_amount",
        ],
        key: &["id"],
    },
    Table {
        name: "order_lines",
        since: 3,
        columns: &[
            "order_id",
            "line_no",
            "product_id",
            "sku",
            "name",
            "quantity",
            "unit_price",
            "line_total",
        ],
        added: &[],
        integers: &["line_no", "quantity", "unit_price", "line_total"],
        key: &["order_id", "line_no"],
    },
    Table {
        name: "payments",
        since: 3,
        columns: &[
            "id",
            "order_id",
            "method",
            "amount",
            "reference",
            "created_at",
        ],
        added: &[],
        integers: &["amount"],
        key: &["id"],
    },
    Table {
        name: "stock_movements",
        since: 3,
        columns: &[
            "id",
            "product_id",
            "delta",
            "reason",
            "note",
            "order_id",
            "stock_after",
            "created_at",
        ],
        added: &[
            (7, "tab_id"),
            (10, "hold_id"),
            (15, "location_id"),
            (15, "transfer_id"),
        ],
        integers: &["id", "delta", "stock_after"],
        key: &["id"],
    },
    Table {
        name: "tabs",
        since: 7,
        columns: &[
            "id",
            "label",
            "resource",
            "status",
            "rate",
            "currency",
            "unit_minutes",
            "minimum_minutes",
            "grace_minutes",
            "customer_name",
            "customer_email",
            "note",
            "periods",
            "order_id",
            "void_reason",
            "version",
            "opened_at",
            "closed_at",
            "updated_at",
        ],
        added: &[(15, "location_id")],
        integers: &[
            "rate",
            "unit_minutes",
            "minimum_minutes",
            "grace_minutes",
            "version",
        ],
        key: &["id"],
    },
    Table {
        name: "tab_items",
        since: 7,
        columns: &[
            "id",
            "tab_id",
            "product_id",
            "sku",
            "name",
            "quantity",
            "unit_price",
            "note",
            "added_at",
            "removed_at",
        ],
        added: &[],
        integers: &["quantity", "unit_price"],
        key: &["id"],
    },
    Table {
        name: "ticket_events",
        since: 10,
        columns: &[
            "id",
            "name",
            "starts_at",
            "sale_starts_at",
            "sale_ends_at",
            "max_per_order",
            "currency",
            "status",
            "version",
            "created_at",
            "updated_at",
        ],
        added: &[],
        integers: &["max_per_order", "version"],
        key: &["id"],
    },
    Table {
        name: "event_sections",
        since: 10,
        columns: &[
            "event_id",
            "position",
            "name",
            "product_id",
            "price",
            "capacity",
            "seated",
        ],
        added: &[],
        integers: &["position", "price", "capacity", "seated"],
        key: &["event_id", "position"],
    },
    Table {
        name: "seats",
        since: 10,
        columns: &["product_id", "position", "label", "hold_id"],
        added: &[],
        integers: &["position"],
        key: &["product_id", "label"],
    },
    Table {
        name: "holds",
        since: 10,
        columns: &[
            "id",
            "event_id",
            "section",
            "product_id",
            "quantity",
            "seats",
            "unit_price",
            "currency",
            "status",
            "expires_at",
            "order_id",
            "version",
            "created_at",
            "updated_at",
        ],
        added: &[(12, "client_ref")],
        integers: &["quantity", "unit_price", "version"],
        key: &["id"],
    },
    Table {
        name: "waiting_rooms",
        since: 11,
        columns: &[
            "event_id",
            "admit_per_minute",
            "max_queue",
            "admission_ttl_secs",
            "opens_at",
            "pre_open",
            "last_admit_at",
            "version",
        ],
        added: &[(13, "drawn"), (14, "announced")],
        integers: &[
            "admit_per_minute",
            "max_queue",
            "admission_ttl_secs",
            "pre_open",
            "version",
            "drawn",
            "announced",
        ],
        key: &["event_id"],
    },
    Table {
        name: "queue_tickets",
        since: 11,
        columns: &[
            "id",
            "event_id",
            "client_ref",
            "rank",
            "admit_at",
            "hold_id",
            "joined_at",
        ],
        added: &[(13, "place")],
        integers: &["rank", "place"],
        key: &["id"],
    },
    Table {
        name: "idempotency_keys",
        since: 3,
        columns: &[
            "key_id",
            "key",
            "fingerprint",
            "status",
            "headers",
            "body",
            "created_at",
        ],
        added: &[],
        integers: &["status"],
        key: &["key_id", "key"],
    },
    Table {
        name: "flags",
        since: 5,
        columns: &["name", "value", "updated_at"],
        added: &[],
        integers: &[],
        key: &["name"],
    },
    Table {
        name: "audit",
        since: 6,
        columns: &[
            "id",
            "at",
            "actor",
            "request_id",
            "action",
            "target",
            "before",
            "after",
        ],
        added: &[],
        integers: &[],
        key: &["id"],
    },
    Table {
        name: "provider_events",
        since: 8,
        columns: &[
            "provider",
            "event_id",
            "topic",
            "action",
            "resource_id",
            "body",
            "received_at",
            "deliveries",
            "status",
            "outcome",
            "order_id",
            "processed_at",
        ],
        added: &[],
        integers: &["deliveries"],
        key: &["provider", "event_id"],
    },
    Table {
        name: "webhook_subscriptions",
        since: 9,
        columns: &[
            "id",
            "url",
            "event_types",
            "secret",
            "description",
            "status",
            "disabled_reason",
            "after_seq",
            "failing_since",
            "attempts",
            "gone",
            "next_attempt_at",
            "lease_owner",
            "lease_until",
            "created_at",
            "updated_at",
        ],
        added: &[],
        integers: &["after_seq", "attempts", "gone"],
        key: &["id"],
    },
    Table {
        name: "webhook_deliveries",
        since: 9,
        columns: &[
            "id",
            "subscription_id",
            "seq",
            "event_type",
            "attempts",
            "status",
            "response_status",
            "error",
            "first_attempt_at",
            "last_attempt_at",
        ],
        added: &[],
        integers: &["seq", "attempts", "response_status"],
        key: &["id"],
    },
    Table {
        name: "changes",
        since: 4,
        columns: &["seq", "type", "resource_id", "data", "at"],
        added: &[],
        integers: &["seq"],
        key: &["seq"],
    },
];

/// The tables of schema version `version`, in restore order.
fn tables_at(version: i64) -> Vec<&'static Table> {
    TABLES.iter().filter(|t| t.since <= version).collect()
}

/// Rows read or written per statement.
const PAGE: usize = 2000;

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub schema_version: i64,
    pub source: String,
    pub created_at: String,
    /// Rows per table, in archive order.
    pub tables: Vec<(String, u64)>,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Why an archive cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read or write the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid caja archive: {0}")]
    Invalid(String),
    #[error(
        "the archive is from schema version {archive}; the target database is at version {here}"
    )]
    SchemaVersion { archive: i64, here: i64 },
    #[error("the target database is not empty ({0}); restore only into an empty database")]
    NotEmpty(String),
}

fn invalid(why: impl Into<String>) -> BackupError {
    BackupError::Invalid(why.into())
}

/// Writes lines and hashes them: per table and for the whole archive.
struct Hashing<W: Write> {
    out: W,
    all: Sha256,
    table: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn line(&mut self, line: &str, in_table: bool) -> std::io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.all.update(line.as_bytes());
        self.all.update(b"\n");
        if in_table {
            self.table.update(line.as_bytes());
            self.table.update(b"\n");
        }
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }
}

fn json_row(row: &AnyRow, table: &Table, columns: &[&str]) -> Result<String, StoreError> {
    let mut values = Vec::with_capacity(columns.len());
    for col in columns {
        let value = if table.integers.contains(col) {
            match row.try_get::<Option<i64>, _>(*col)? {
                Some(n) => serde_json::Value::from(n),
                None => serde_json::Value::Null,
            }
        } else {
            match row.try_get::<Option<String>, _>(*col)? {
                Some(s) => serde_json::Value::from(s),
                None => serde_json::Value::Null,
            }
        };
        values.push(value);
    }
    Ok(serde_json::Value::Array(values).to_string())
}

impl Store {
    /// Rows in one of the archive's tables (only those names are accepted).
    pub async fn count_rows(&self, table: &str) -> Result<u64, StoreError> {
        let t = TABLES
            .iter()
            .find(|t| t.name == table)
            .ok_or(StoreError::NotFound)?;
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {}", t.name))
            .fetch_one(self.reader())
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }

    /// Rows per table of schema version `schema_version` right now.
    pub async fn table_rows(
        &self,
        schema_version: i64,
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let mut counts = Vec::new();
        for t in tables_at(schema_version) {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {}", t.name))
                .fetch_one(self.reader())
                .await?
                .try_get("n")?;
            counts.push((t.name, n as u64));
        }
        Ok(counts)
    }

    /// Writes an archive of every table, read in one snapshot, to `out`. `progress` is told
    /// each table's name and how many of its rows were written so far.
    pub async fn backup<W: Write>(
        &self,
        out: W,
        schema_version: i64,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<(Summary, u64), BackupError> {
        let mut tx = self.dialect().begin_snapshot(self.reader()).await?;
        let created_at = caja_core::time::format(&self.now());
        let source = self.engine().to_string();
        let mut w = Hashing {
            out,
            all: Sha256::new(),
            table: Sha256::new(),
            bytes: 0,
        };
        let tables = tables_at(schema_version);
        let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
        let header = serde_json::json!({
            "caja_backup": FORMAT, "schema_version": schema_version, "source": source,
            "created_at": created_at, "tables": names,
        });
        w.line(&header.to_string(), false)?;
        let mut summary = Summary {
            schema_version,
            source,
            created_at,
            tables: Vec::new(),
        };
        for t in tables {
            w.table = Sha256::new();
            let columns = t.columns_at(schema_version);
            w.line(
                &serde_json::json!({"table": t.name, "columns": columns}).to_string(),
                false,
            )?;
            let mut rows = 0u64;
            let mut after: Option<AnyRow> = None;
            loop {
                let page = read_page(&mut tx, self, t, &columns, after.as_ref()).await?;
                let last = page.len() < PAGE;
                for row in &page {
                    w.line(&json_row(row, t, &columns)?, true)?;
                    rows += 1;
                }
                progress(t.name, rows);
                if last {
                    break;
                }
                after = page.into_iter().last();
            }
            let hash = hex::encode(std::mem::replace(&mut w.table, Sha256::new()).finalize());
            w.line(
                &serde_json::json!({"table_end": t.name, "rows": rows, "sha256": hash}).to_string(),
                false,
            )?;
            summary.tables.push((t.name.to_owned(), rows));
        }
        tx.rollback().await.map_err(StoreError::from)?;
        let hash = hex::encode(w.all.clone().finalize());
        let end = serde_json::json!({"archive_end": true, "rows": summary.rows(), "sha256": hash});
        w.out.write_all(end.to_string().as_bytes())?;
        w.out.write_all(b"\n")?;
        w.out.flush()?;
        Ok((summary, w.bytes))
    }

    /// Loads an archive into this database, which must be empty and at `schema_version`
    /// (the archive's: migrate it that far first). One transaction: all rows or none.
    pub async fn restore<R: BufRead>(
        &self,
        archive: R,
        schema_version: i64,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<Summary, BackupError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let tables = tables_at(schema_version);
        for t in tables
            .iter()
            .map(|t| t.name)
            // Seed rows of the migrations, and the target's own audit of them.
            .filter(|t| !matches!(*t, "counters" | "bootstrap" | "audit" | "locations"))
        {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .try_get("n")
                .map_err(StoreError::from)?;
            if n > 0 {
                return Err(BackupError::NotEmpty(format!("{t} has {n} rows")));
            }
        }
        // The migrations' seed rows give way to the archive's; the target's audit of its
        // own migrations stays, beside the archive's log.
        for t in tables.iter().rev().filter(|t| t.name != "audit") {
            sqlx::query(&format!("DELETE FROM {}", t.name))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        let dialect = self.dialect();
        let here = schema_version;
        let summary = read_archive(archive, progress, &mut tx, dialect, here).await?;
        if tables.iter().any(|t| t.name == "stock_movements") {
            dialect.after_restore(&mut tx).await?;
        }
        if tables.iter().any(|t| t.name == "audit") {
            let note = crate::audit::NewAudit {
                actor: crate::audit::Actor::cli(),
                action: "backup.restored".into(),
                target: None,
                before: None,
                after: Some(format!(
                    "{{\"rows\":{},\"source\":\"{}\",\"taken_at\":\"{}\"}}",
                    summary.rows(),
                    summary.source,
                    summary.created_at
                )),
            };
            crate::audit::insert(&mut tx, dialect, &[note], self.now()).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(summary)
    }
}

/// The next page of `t` after `after` (by its key), in key order.
async fn read_page(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    t: &Table,
    columns: &[&str],
    after: Option<&AnyRow>,
) -> Result<Vec<AnyRow>, StoreError> {
    let mut params = store.dialect().params();
    let key = t.key.join(", ");
    let filter = match after {
        None => String::new(),
        Some(_) => format!("WHERE ({key}) > ({})", params.list(t.key.len())),
    };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {key} LIMIT {PAGE}",
        columns.join(", "),
        t.name
    );
    let mut q = sqlx::query(&sql);
    if let Some(row) = after {
        for k in t.key {
            q = if t.integers.contains(k) {
                q.bind(row.try_get::<i64, _>(*k)?)
            } else {
                q.bind(row.try_get::<String, _>(*k)?)
            };
        }
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

/// Checks an archive without restoring it: its lines, row counts and checksums.
pub fn verify<R: BufRead>(archive: R) -> Result<Summary, BackupError> {
    let mut summary = None;
    let mut tables = Vec::new();
    parse(archive, &mut |event| {
        match event {
            Parsed::Header(s) => summary = Some(s),
            Parsed::Table(name, rows) => tables.push((name.to_owned(), rows.len() as u64)),
        }
        Ok(())
    })?;
    let mut summary = summary.ok_or_else(|| invalid("no header"))?;
    summary.tables = tables;
    Ok(summary)
}

enum Parsed<'a> {
    Header(Summary),
    /// A whole table, checked: its name and its rows.
    Table(&'a str, Vec<Vec<serde_json::Value>>),
}

/// Reads and checks an archive line by line, handing each table to `on` once its
/// checksum has been verified. Tables are held one at a time.
fn parse<R: BufRead>(
    archive: R,
    on: &mut dyn FnMut(Parsed<'_>) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut all = Sha256::new();
    let mut lines = archive.lines();
    let mut next = || -> Result<Option<String>, BackupError> { Ok(lines.next().transpose()?) };
    let header_line = next()?.ok_or_else(|| invalid("empty"))?;
    let header: serde_json::Value =
        serde_json::from_str(&header_line).map_err(|_| invalid("the first line is not JSON"))?;
    if header["caja_backup"].as_i64() != Some(FORMAT) {
        return Err(invalid("not a caja backup of a format this caja reads"));
    }
    all.update(header_line.as_bytes());
    all.update(b"\n");
    on(Parsed::Header(Summary {
        schema_version: header["schema_version"]
            .as_i64()
            .ok_or_else(|| invalid("no schema_version"))?,
        source: header["source"].as_str().unwrap_or_default().to_owned(),
        created_at: header["created_at"].as_str().unwrap_or_default().to_owned(),
        tables: Vec::new(),
    }))?;
    let mut total = 0u64;
    loop {
        let line = next()?.ok_or_else(|| invalid("truncated: no end line"))?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|_| invalid("a line is not JSON"))?;
        if value["archive_end"] == serde_json::Value::Bool(true) {
            let hash = hex::encode(all.finalize());
            if value["sha256"].as_str() != Some(hash.as_str()) {
                return Err(invalid(
                    "the archive's checksum does not match its contents",
                ));
            }
            if value["rows"].as_u64() != Some(total) {
                return Err(invalid("the archive's row count does not match"));
            }
            if next()?.is_some() {
                return Err(invalid("lines after the end"));
            }
            return Ok(());
        }
        let name = value["table"]
            .as_str()
            .ok_or_else(|| invalid("expected a table"))?
            .to_owned();
        let columns = value["columns"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| invalid("a table without columns"))?;
        all.update(line.as_bytes());
        all.update(b"\n");
        let mut hash = Sha256::new();
        let mut rows = Vec::new();
        loop {
            let line = next()?.ok_or_else(|| invalid(format!("table {name} is truncated")))?;
            all.update(line.as_bytes());
            all.update(b"\n");
            if line.starts_with('[') {
                hash.update(line.as_bytes());
                hash.update(b"\n");
                let row: Vec<serde_json::Value> = serde_json::from_str(&line)
                    .map_err(|_| invalid(format!("a row of {name} is not JSON")))?;
                if row.len() != columns {
                    return Err(invalid(format!("a row of {name} has the wrong width")));
                }
                rows.push(row);
                continue;
            }
            let end: serde_json::Value = serde_json::from_str(&line)
                .map_err(|_| invalid(format!("the end of {name} is not JSON")))?;
            if end["table_end"].as_str() != Some(name.as_str()) {
                return Err(invalid(format!("table {name} does not end")));
            }
            if end["rows"].as_u64() != Some(rows.len() as u64) {
                return Err(invalid(format!("table {name} has a wrong row count")));
            }
            if end["sha256"].as_str() != Some(hex::encode(hash.finalize()).as_str()) {
                return Err(invalid(format!("table {name}'s checksum does not match")));
            }
            break;
        }
        total += rows.len() as u64;
        on(Parsed::Table(&name, rows))?;
    }
}

/// Reads, checks and inserts an archive's tables into `tx`.
async fn read_archive<R: BufRead>(
    archive: R,
    progress: &mut dyn FnMut(&str, u64),
    tx: &mut Transaction<'static, Any>,
    dialect: crate::dialect::Dialect,
    here: i64,
) -> Result<Summary, BackupError> {
    // Parsing is synchronous; the inserts are not. Collect the checked tables first (one
    // archive is one shop's books: they fit in memory), then insert them in order.
    let mut header = None;
    let mut tables: Vec<(&'static Table, Vec<Vec<serde_json::Value>>)> = Vec::new();
    parse(archive, &mut |event| {
        match event {
            Parsed::Header(s) => header = Some(s),
            Parsed::Table(name, rows) => {
                let t = TABLES
                    .iter()
                    .find(|t| t.name == name)
                    .ok_or_else(|| invalid(format!("unknown table {name}")))?;
                progress(name, rows.len() as u64);
                tables.push((t, rows));
            }
        }
        Ok(())
    })?;
    let mut summary = header.ok_or_else(|| invalid("no header"))?;
    if summary.schema_version != here {
        return Err(BackupError::SchemaVersion {
            archive: summary.schema_version,
            here,
        });
    }
    for (t, rows) in tables {
        let columns = t.columns_at(here);
        if rows.first().is_some_and(|r| r.len() != columns.len()) {
            return Err(invalid(format!(
                "table {} has {} columns at schema version {here}, not {}",
                t.name,
                columns.len(),
                rows.first().map_or(0, Vec::len)
            )));
        }
        for chunk in rows.chunks(PAGE / 8) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                t.name,
                columns.join(", "),
                dialect.params().rows(chunk.len(), columns.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for row in chunk {
                for (col, value) in columns.iter().zip(row) {
                    q = if t.integers.contains(col) {
                        q.bind(value.as_i64())
                    } else {
                        q.bind(value.as_str().map(str::to_owned))
                    };
                }
            }
            q.execute(&mut **tx).await.map_err(StoreError::from)?;
        }
        summary.tables.push((t.name.to_owned(), rows.len() as u64));
    }
    Ok(summary)
}

//! Many rows inserted with one statement, the way each engine takes them best.
//!
//! PostgreSQL receives the whole row set as one JSON value (`json_array_elements`): one
//! statement text, prepared once per connection, and one bound parameter however many rows,
//! where a `VALUES` list would bind every value through the driver and change its text with
//! every batch size. SQLite binds anonymous parameters by position, which costs it nothing,
//! in a `VALUES` list per chunk.

use std::borrow::Cow;
use std::fmt::Write as _;

use sqlx::{Any, Transaction};

use crate::dialect::{quoted, Dialect};
use crate::StoreError;

/// One value of a row.
#[derive(Debug, Clone)]
pub(crate) enum Cell<'a> {
    Int(i64),
    Text(Cow<'a, str>),
    Null,
}

impl<'a> From<i64> for Cell<'a> {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Self {
        Cell::Text(Cow::Borrowed(s))
    }
}

impl<'a> From<String> for Cell<'a> {
    fn from(s: String) -> Self {
        Cell::Text(Cow::Owned(s))
    }
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Cell::Null, Cell::from)
    }
}

impl<'a> From<Option<String>> for Cell<'a> {
    fn from(s: Option<String>) -> Self {
        s.map_or(Cell::Null, Cell::from)
    }
}

/// Rows for one table: its columns (`true` for an integer column) and an optional
/// `ON CONFLICT …` clause.
pub(crate) struct RowSet<'a> {
    pub table: &'static str,
    pub columns: &'static [(&'static str, bool)],
    pub on_conflict: &'static str,
    pub rows: Vec<Vec<Cell<'a>>>,
}

/// Rows per `VALUES` statement on SQLite.
const CHUNK: usize = 256;

impl Dialect {
    pub(crate) async fn insert_rows(
        self,
        tx: &mut Transaction<'static, Any>,
        set: &RowSet<'_>,
    ) -> Result<(), StoreError> {
        if set.rows.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = set.columns.iter().map(|(n, _)| *n).collect();
        if self.takes_json_rows() {
            let mut json = String::with_capacity(set.rows.len() * 128);
            json.push('[');
            for (i, row) in set.rows.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                json.push('[');
                for (j, cell) in row.iter().enumerate() {
                    if j > 0 {
                        json.push(',');
                    }
                    match cell {
                        Cell::Int(n) => {
                            let _ = write!(json, "{n}");
                        }
                        Cell::Text(s) => json.push_str(&quoted(s)),
                        Cell::Null => json.push_str("null"),
                    }
                }
                json.push(']');
            }
            json.push(']');
            let picks: Vec<String> = set
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, int))| {
                    if *int {
                        format!("(r->>{i})::bigint")
                    } else {
                        format!("r->>{i}")
                    }
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) SELECT {} FROM json_array_elements($1::json) AS r {}",
                set.table,
                names.join(", "),
                picks.join(", "),
                set.on_conflict
            );
            sqlx::query(&sql).bind(json).execute(&mut **tx).await?;
            return Ok(());
        }
        for chunk in set.rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} {}",
                set.table,
                names.join(", "),
                self.params().rows(chunk.len(), names.len()),
                set.on_conflict
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == 1);
            for row in chunk {
                for cell in row {
                    q = match cell {
                        Cell::Int(n) => q.bind(*n),
                        Cell::Text(s) => q.bind(s.as_ref()),
                        Cell::Null => q.bind(None::<String>),
                    };
                }
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

//! Claiming idempotency keys: which writes are new, and the stored answers of the rest.
//!
//! A batch reads the stored rows of its keys first: an answered key replays (or is a
//! mismatch), every other key is new. The claim itself is the answer's insert, the batch's
//! last write before the feed (`write::answers`): one row per key, written once. On SQLite
//! the batch holds the one write lock, so no one can answer a key in between. On
//! PostgreSQL another replica can: its uncommitted row makes the insert wait for its
//! commit (bounded by the batch's lock wait), and a key it answered meanwhile fails the
//! batch, whose writes then run again and find that answer. Inserting the answers in key
//! order, after every row lock, keeps two batches from waiting on each other in a cycle.

use std::collections::HashMap;

use crate::sql::{Columns, Sql};
use caja_core::time::{self, Timestamp};

use super::{IdempotencyScope, Settled, Submission};
use crate::dialect::Dialect;
use crate::presenter::StoredResponse;
use crate::StoreError;

/// For each submission: `None` if it is new, else how it settles (a replay of the stored
/// answer or a mismatch).
pub(super) async fn claim(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    submissions: &[&Submission],
) -> Result<Vec<Option<Settled>>, StoreError> {
    let scoped: Vec<(usize, &IdempotencyScope)> = submissions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.scope.as_ref()?)))
        .collect();
    let mut settled: Vec<Option<Settled>> = vec![None; submissions.len()];
    for (i, row) in stored(tx, dialect, &scoped).await? {
        settled[i] = Some(replay_or_mismatch(&row, submissions[i])?);
    }
    Ok(settled)
}

/// The stored rows of these keys, with the index of the submission each answers.
async fn stored<S: Sql + ?Sized>(
    tx: &mut S,
    dialect: Dialect,
    keys: &[(usize, &IdempotencyScope)],
) -> Result<Vec<(usize, S::Row)>, StoreError> {
    let index: HashMap<(&str, &str), usize> = keys.iter().map(|(i, s)| (s.pair(), *i)).collect();
    let mut found = Vec::new();
    // One probe of the primary key per pair (`Dialect::lookup`). `(key_id, key) IN (64
    // pairs)` took PostgreSQL's generic plan 4 ms a statement (64 bitmap index scans OR-ed).
    let statement = |dialect: Dialect, values: &str| {
        dialect.lookup(
            "k.key_id, k.key, k.fingerprint, k.status, k.headers, k.body",
            values,
            "idempotency_keys",
            "k.key_id = v.column1 AND k.key = v.column2",
        )
    };
    for chunk in crate::chunks::padded(keys) {
        let sql = crate::chunks::statement_on(dialect, chunk.len(), 2, &statement);
        let mut q = crate::sql::query(&sql);
        for (_, s) in chunk.iter() {
            q = q.bind(s.key_id.as_str()).bind(s.key.as_str());
        }
        for row in q.fetch_all(&mut *tx).await? {
            let key_id = row.text("key_id")?;
            let key = row.text("key")?;
            if let Some(&i) = index.get(&(key_id.as_str(), key.as_str())) {
                found.push((i, row));
            }
        }
    }
    Ok(found)
}

/// A stored answer for `submission`'s key: replayed if the request is the same.
fn replay_or_mismatch(row: &impl Columns, submission: &Submission) -> Result<Settled, StoreError> {
    let fingerprint = row.text("fingerprint")?;
    let same = submission
        .scope
        .as_ref()
        .is_some_and(|s| s.fingerprint.as_str() == fingerprint);
    if !same {
        return Ok(Settled::Mismatch);
    }
    let status = row.int("status")?;
    let headers = row.text("headers")?;
    Ok(Settled::Replay {
        response: StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt("stored status".into()))?,
            headers: decode_headers(&headers),
            body: row.text("body")?,
        },
        // Copies inside one batch, which did wait for the first, are told so by the writer.
        waited: false,
    })
}

pub(super) fn encode_headers(headers: &[(String, String)]) -> String {
    headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

fn decode_headers(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl crate::Store {
    /// Forgets keys stored before `before`; returns how many.
    pub async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let n = crate::sql::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(time::format(&before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

//! Claiming idempotency keys: which writes are new, and the stored answers of the rest.
//!
//! On PostgreSQL a batch inserts a placeholder row for every key (in key order) before it
//! touches anything else; a key another transaction is writing makes the insert wait for
//! it (bounded by the wait setting), and a key answered before is simply not claimed. On
//! SQLite the batch holds the one write lock, so reading which keys exist is enough:
//! nobody else can add one before it commits.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use caja_core::time::{self, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{IdempotencyScope, Settled, Submission};
use crate::dialect::Dialect;
use crate::presenter::StoredResponse;
use crate::StoreError;

/// For each submission: `None` if it is new and claimed, else how it settles (a replay of
/// the stored answer or a mismatch).
pub(super) async fn claim(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    submissions: &[&Submission],
    wait: Duration,
    now: Timestamp,
) -> Result<Vec<Option<Settled>>, StoreError> {
    let scoped: Vec<(usize, &IdempotencyScope)> = submissions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.scope.as_ref()?)))
        .collect();
    let mut settled: Vec<Option<Settled>> = vec![None; submissions.len()];
    if scoped.is_empty() {
        return Ok(settled);
    }
    let known: Vec<(usize, &IdempotencyScope)> = if dialect.writers_are_serialized() {
        scoped
    } else {
        dialect.lock_timeout(tx, Some(wait)).await?;
        let claimed = insert_placeholders(tx, dialect, &scoped, now)
            .await
            .map_err(|e| match e {
                StoreError::Database(ref db) | StoreError::Unavailable(ref db)
                    if dialect.is_lock_timeout(db) =>
                {
                    metrics::counter!("caja_idempotency_wait_timeouts_total").increment(1);
                    StoreError::KeyInFlight
                }
                e => e,
            })?;
        dialect.lock_timeout(tx, None).await?;
        scoped
            .into_iter()
            .filter(|(_, s)| !claimed.contains(&s.pair()))
            .collect()
    };
    for (i, row) in stored(tx, dialect, &known).await? {
        settled[i] = Some(replay_or_mismatch(&row, submissions[i])?);
    }
    Ok(settled)
}

/// Inserts an unanswered row for every key, in key order; returns the keys it claimed.
async fn insert_placeholders<'a>(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    scoped: &[(usize, &'a IdempotencyScope)],
    now: Timestamp,
) -> Result<HashSet<(&'a str, &'a str)>, StoreError> {
    let mut sorted: Vec<&IdempotencyScope> = scoped.iter().map(|(_, s)| *s).collect();
    sorted.sort_by(|a, b| a.pair().cmp(&b.pair()));
    let at = time::format(&now);
    let mut claimed = HashSet::with_capacity(sorted.len());
    let statement = |dialect: Dialect, n: usize| {
        let mut params = dialect.params();
        let rows: Vec<String> = (0..n)
            .map(|_| {
                let (a, b, c, d) = (params.next(), params.next(), params.next(), params.next());
                format!("({a}, {b}, {c}, 0, '', '', {d})")
            })
            .collect();
        format!(
            "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, \
             created_at) VALUES {} ON CONFLICT (key_id, key) DO NOTHING RETURNING key_id, key",
            rows.join(", ")
        )
    };
    for chunk in crate::chunks::fixed(&sorted) {
        let sql = crate::chunks::custom(dialect, chunk.len(), &statement);
        let mut q = sqlx::query(&sql);
        for s in chunk {
            q = q
                .bind(s.key_id.as_str())
                .bind(s.key.as_str())
                .bind(s.fingerprint.as_str())
                .bind(at.as_str());
        }
        let returned: HashSet<(String, String)> = q
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("key_id")?, row.try_get("key")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        claimed.extend(
            chunk
                .iter()
                .map(|s| s.pair())
                .filter(|(id, key)| returned.contains(&((*id).to_owned(), (*key).to_owned()))),
        );
    }
    Ok(claimed)
}

/// The stored rows of these keys, with the index of the submission each answers.
async fn stored(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    keys: &[(usize, &IdempotencyScope)],
) -> Result<Vec<(usize, AnyRow)>, StoreError> {
    let index: HashMap<(&str, &str), usize> = keys.iter().map(|(i, s)| (s.pair(), *i)).collect();
    let mut found = Vec::new();
    let statement = |pairs: &str| {
        format!(
            "SELECT key_id, key, fingerprint, status, headers, body FROM idempotency_keys \
             WHERE (key_id, key) IN ({pairs})"
        )
    };
    for chunk in crate::chunks::padded(keys) {
        let sql = crate::chunks::statement(dialect, chunk.len(), 2, &statement);
        let mut q = sqlx::query(&sql);
        for (_, s) in chunk.iter() {
            q = q.bind(s.key_id.as_str()).bind(s.key.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let key_id: String = row.try_get("key_id")?;
            let key: String = row.try_get("key")?;
            if let Some(&i) = index.get(&(key_id.as_str(), key.as_str())) {
                found.push((i, row));
            }
        }
    }
    Ok(found)
}

/// A stored answer for `submission`'s key: replayed if the request is the same.
fn replay_or_mismatch(row: &AnyRow, submission: &Submission) -> Result<Settled, StoreError> {
    let fingerprint: String = row.try_get("fingerprint")?;
    let same = submission
        .scope
        .as_ref()
        .is_some_and(|s| s.fingerprint.as_str() == fingerprint);
    if !same {
        return Ok(Settled::Mismatch);
    }
    let status: i64 = row.try_get("status")?;
    let headers: String = row.try_get("headers")?;
    Ok(Settled::Replay {
        response: StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt("stored status".into()))?,
            headers: decode_headers(&headers),
            body: row.try_get("body")?,
        },
        // Whether the claim above had to wait for another transaction is not known here;
        // copies inside one batch, which did wait, are told so by the writer.
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
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(time::format(&before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

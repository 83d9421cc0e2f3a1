//! The idempotent unit of work: every write that changes money or stock runs in one
//! transaction that first claims its `(API key, Idempotency-Key)` row and last stores the
//! response it produced. Effect and response commit together or not at all, so no crash can
//! leave one without the other.
//!
//! A duplicate that arrives while the first is running waits on that row: on PostgreSQL
//! the unique index makes its insert wait for the first transaction (bounded by
//! `lock_timeout`), on SQLite the single write lock does. Either way it then finds the
//! stored response and replays it; it never writes a second time.

use std::time::Duration;

use caja_core::idempotency::{Fingerprint, IdempotencyKey};
use caja_core::ids::KeyId;
use caja_core::time;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::changes::NewChange;
use crate::location::Engine;
use crate::{Store, StoreError};

/// Whose key it is and what request it stands for.
#[derive(Debug, Clone)]
pub struct IdempotencyScope {
    pub key_id: KeyId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
}

/// A response as stored for replay: status, the headers that matter, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The outcome of claiming a key.
pub enum Claim {
    /// First time: do the work in this transaction, then [`Work::commit`] the response.
    Fresh(Work),
    /// Done before with the same request: here is what was answered. `waited` is true
    /// when this duplicate arrived while the first was still running and waited for it.
    Replay {
        response: StoredResponse,
        waited: bool,
    },
    /// The key was used for a different request.
    Mismatch,
}

/// An open write transaction that owns an idempotency claim. Dropping it rolls back
/// everything, the claim included, so a failed request can be retried.
pub struct Work {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) engine: Engine,
    scope: IdempotencyScope,
    /// Events for the change feed, appended just before commit.
    pub(crate) changes: Vec<NewChange>,
    /// The store that opened it: how resources render, and how commits are announced.
    pub(crate) store: Store,
}

const SELECT: &str =
    "SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE key_id = $1 AND key = $2";

pub(crate) fn decide(
    row: &AnyRow,
    scope: &IdempotencyScope,
    waited: bool,
) -> Result<Claim, StoreError> {
    let fingerprint: String = row.try_get("fingerprint")?;
    if fingerprint != scope.fingerprint.as_str() {
        return Ok(Claim::Mismatch);
    }
    let status: i64 = row.try_get("status")?;
    let headers: String = row.try_get("headers")?;
    let headers = headers
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Claim::Replay {
        response: StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt("stored status".into()))?,
            headers,
            body: row.try_get("body")?,
        },
        waited,
    })
}

/// The stored rows of any of these scopes, with the index of the scope each answers.
pub(crate) async fn select_existing(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    scopes: &[&IdempotencyScope],
) -> Result<Vec<(usize, AnyRow)>, StoreError> {
    let mut index: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for (i, s) in scopes.iter().enumerate() {
        index.insert((s.key_id.as_str(), s.key.as_str()), i);
    }
    let mut found = Vec::new();
    for chunk in scopes.chunks(256) {
        let mut params = crate::params::Params::new(engine);
        let pairs: Vec<String> = (0..chunk.len()).map(|_| params.row(2)).collect();
        let sql = format!(
            "SELECT key_id, key, fingerprint, status, headers, body FROM idempotency_keys \
             WHERE (key_id, key) IN ({})",
            pairs.join(", ")
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for s in chunk {
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

pub(crate) fn encode_headers(headers: &[(String, String)]) -> String {
    headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

impl Store {
    /// The stored answer for a scope, if it was answered before: the read-only fast path
    /// for retries, which needs no write transaction.
    pub async fn replayed(&self, scope: &IdempotencyScope) -> Result<Option<Claim>, StoreError> {
        let row = sqlx::query(SELECT)
            .bind(scope.key_id.as_str())
            .bind(scope.key.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| decide(&r, scope, false)).transpose()
    }

    /// Claims a key for a new piece of work, or finds what it already answered.
    /// `wait` bounds how long a duplicate waits for an in-flight first request.
    pub async fn claim(
        &self,
        scope: IdempotencyScope,
        wait: Duration,
    ) -> Result<Claim, StoreError> {
        if let Some(done) = self.replayed(&scope).await? {
            return Ok(done);
        }
        let mut tx = self.begin_write().await?;
        if self.engine() == Engine::Postgres {
            sqlx::query(&format!(
                "SET LOCAL lock_timeout = {}",
                wait.as_millis().max(1)
            ))
            .execute(&mut *tx)
            .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, created_at) \
             VALUES ($1, $2, $3, 0, '', '', $4) ON CONFLICT (key_id, key) DO NOTHING",
        )
        .bind(scope.key_id.as_str())
        .bind(scope.key.as_str())
        .bind(scope.fingerprint.as_str())
        .bind(time::format(&time::now()))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_lock_timeout(&e) {
                metrics::counter!("caja_idempotency_wait_timeouts_total").increment(1);
                StoreError::KeyInFlight
            } else {
                e.into()
            }
        })?
        .rows_affected();
        if self.engine() == Engine::Postgres {
            sqlx::query("SET LOCAL lock_timeout = 0")
                .execute(&mut *tx)
                .await?;
        }
        if inserted == 0 {
            let row = sqlx::query(SELECT)
                .bind(scope.key_id.as_str())
                .bind(scope.key.as_str())
                .fetch_one(&mut *tx)
                .await?;
            return decide(&row, &scope, true);
        }
        Ok(Claim::Fresh(Work {
            tx,
            engine: self.engine(),
            scope,
            changes: Vec::new(),
            store: self.clone(),
        }))
    }

    /// Forgets keys stored before `before`; returns how many.
    pub async fn purge_idempotency_keys(&self, before: time::Timestamp) -> Result<u64, StoreError> {
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

impl Work {
    /// Stores the response and commits it together with the work's effects.
    pub async fn commit(mut self, response: &StoredResponse) -> Result<(), StoreError> {
        let headers = encode_headers(&response.headers);
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, headers = $2, body = $3 WHERE key_id = $4 AND key = $5",
        )
        .bind(i64::from(response.status))
        .bind(headers)
        .bind(&response.body)
        .bind(self.scope.key_id.as_str())
        .bind(self.scope.key.as_str())
        .execute(&mut *self.tx)
        .await?;
        self.store.commit_with(self.tx, &self.changes).await
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write lock already excludes
    /// every other writer.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        }
    }
}

fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}

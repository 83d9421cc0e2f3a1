//! The change feed: every committed change of a public resource, as one row appended in the
//! same transaction as the change, so a change and its event commit together or not at all.
//!
//! Why not an auto-increment: transactions commit out of id order, so a reader resuming
//! after 41 could read 43 before 42 commits and never see 42. Instead a transaction takes
//! its numbers from the `change_seq` counter as its very last statement before commit. That
//! `UPDATE` locks the counter row until the transaction ends, so the next writer on any
//! replica waits there until this one has committed (and is visible) before it can take
//! the next numbers: events become visible strictly in `seq` order. On SQLite the single
//! write lock already serializes writers; the same statement keeps one code path. The lock
//! is held only for the insert and the commit, and the counter is the last lock any writer
//! takes, so it cannot be part of a deadlock.
//!
//! The resource's public JSON is rendered by the store's [`Presenter`], so the feed carries
//! exactly what `GET` would return after the change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use caja_core::command::Event;
use caja_core::ids::KeyId;
use caja_core::time::{self, Timestamp};
use sqlx::postgres::PgListener;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use crate::dialect::Dialect;
use crate::presenter::Presenter;
use crate::rows::timestamp;
use crate::sql::{Columns, Sql};
use crate::{Store, StoreError};

/// The PostgreSQL channel a commit with changes notifies, so other replicas wake up.
pub const CHANNEL: &str = "caja_changes";

/// The event a key revocation appends: for caches, never for subscribers.
pub const KEY_REVOKED: &str = "key.revoked";

/// Whether an event says a deployment flag changed (internal, like key events).
pub fn is_flag_event(kind: &str) -> bool {
    kind.starts_with("flag.")
}

/// Whether an event is about API keys (internal: no topic carries these).
pub fn is_key_event(kind: &str) -> bool {
    kind.starts_with("key.")
}

/// One committed event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    /// e.g. `product.updated`, `order.paid`.
    pub kind: String,
    pub resource_id: String,
    /// The resource's public JSON after the change.
    pub data: String,
    pub at: Timestamp,
}

/// An event waiting for its transaction to commit.
#[derive(Debug, Clone)]
pub(crate) struct NewChange {
    kind: String,
    resource_id: String,
    data: String,
}

impl NewChange {
    /// A decided command's event, rendered by the store's presenter.
    pub(crate) fn event(presenter: &dyn Presenter, event: &Event) -> Self {
        Self {
            kind: event.kind().to_owned(),
            resource_id: event.resource_id().to_owned(),
            data: presenter.event(event),
        }
    }

    /// An event whose data was rendered already (a new order's answer body).
    pub(crate) fn rendered(event: &Event, data: String) -> Self {
        Self {
            kind: event.kind().to_owned(),
            resource_id: event.resource_id().to_owned(),
            data,
        }
    }

    /// Internal: no topic carries it; replicas drop cached keys when they read it.
    pub(crate) fn key_revoked(id: &KeyId) -> Self {
        Self::key(KEY_REVOKED, id)
    }

    /// Internal: replicas re-read the flag.
    /// A waiting room's line moved: how many are admitted so far and how many wait.
    pub(crate) fn queue_advanced(event: &str, admitted: i64, waiting: i64, at: &str) -> Self {
        Self {
            kind: "queue.advanced".to_owned(),
            resource_id: event.to_owned(),
            data: format!(
                "{{\"event_id\":\"{event}\",\"admitted\":{admitted},\"waiting\":{waiting},\"at\":\"{at}\"}}"
            ),
        }
    }

    pub(crate) fn flag_changed(name: &str) -> Self {
        Self {
            kind: "flag.changed".to_owned(),
            resource_id: name.to_owned(),
            data: format!("{{\"name\":\"{name}\"}}"),
        }
    }

    fn key(kind: &str, id: &KeyId) -> Self {
        Self {
            kind: kind.to_owned(),
            resource_id: id.to_string(),
            data: format!("{{\"id\":\"{id}\"}}"),
        }
    }
}

/// Numbers and writes `changes`; call it as the transaction's last statement before commit.
/// Returns the first seq it took (`None` when there was nothing to append).
pub(crate) async fn append(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    instance: &str,
    changes: &[NewChange],
    at: Timestamp,
) -> Result<Option<i64>, StoreError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let n = changes.len() as i64;
    let last: i64 = crate::sql::query(
        "UPDATE counters SET value = value + $1 WHERE name = 'change_seq' RETURNING value",
    )
    .bind(n)
    .fetch_one(&mut *tx)
    .await?
    .int("value")?;
    let at = time::format(&at);
    let rows: Vec<(i64, &str, &str, &str)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                last - n + 1 + i as i64,
                c.kind.as_str(),
                c.resource_id.as_str(),
                c.data.as_str(),
            )
        })
        .collect();
    // Plain binds in statements prepared once (`chunks`). A single JSON value holding the
    // whole set, which PostgreSQL once took instead, cost more: escaping every event's
    // JSON again into it was 6% of a checkout's instructions.
    let statement =
        |rows: &str| format!("INSERT INTO changes (seq, type, resource_id, data, at) {rows}");
    crate::chunks::write(
        tx,
        dialect,
        &rows,
        5,
        crate::chunks::Kind::Insert,
        statement,
        |q, (seq, kind, id, data)| q.bind(*seq).bind(*kind).bind(*id).bind(*data).bind(&at),
    )
    .await?;
    dialect
        .announce(tx, CHANNEL, &format!("{instance} {last}"))
        .await?;
    Ok(Some(last - n + 1))
}

/// Events this process committed, kept for its own tailer so that it need not read them
/// back from the table: a shortcut, never the truth. The tailer takes them only when they
/// continue exactly where it is; any gap (another process's commit in between) sends it to
/// the table, which holds everything.
#[derive(Default)]
pub(crate) struct Recent(Mutex<BTreeMap<i64, Change>>);

/// Most events kept for the tailer; past it the oldest go (the table still has them).
const RECENT_MAX: usize = 8192;

impl Recent {
    pub(crate) fn push(&self, first: i64, changes: Vec<NewChange>, at: Timestamp) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (i, c) in changes.into_iter().enumerate() {
            let seq = first + i as i64;
            recent.insert(
                seq,
                Change {
                    seq,
                    kind: c.kind,
                    resource_id: c.resource_id,
                    data: c.data,
                    at,
                },
            );
        }
        while recent.len() > RECENT_MAX {
            recent.pop_first();
        }
    }

    /// The kept events right after `after`, in seq order, as long as they are contiguous;
    /// forgets everything at or before `after`.
    fn take_after(&self, after: i64) -> Vec<Change> {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = Vec::new();
        let mut next = after + 1;
        while let Some(entry) = recent.first_entry() {
            let seq = *entry.key();
            if seq < next {
                entry.remove();
            } else if seq == next {
                taken.push(entry.remove());
                next += 1;
            } else {
                break;
            }
        }
        taken
    }
}

/// What the feed holds: everything after `pruned_through` up to `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// The newest seq removed by retention; a reader behind it has missed events.
    pub pruned_through: i64,
    /// The newest seq committed.
    pub last: i64,
}

impl Store {
    /// Committed events after `after`, oldest first, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        read_changes(self.reader(), after, limit).await
    }

    /// [`Store::changes_after`] on the tailer's own connection: for the one task per
    /// process that follows the feed live.
    pub async fn tail_changes(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        read_changes(self.feed(), after, limit).await
    }

    pub async fn change_horizon(&self) -> Result<Horizon, StoreError> {
        let rows = sqlx::query(
            "SELECT name, value FROM counters WHERE name IN ('change_seq', 'changes_pruned_through')",
        )
        .fetch_all(self.reader())
        .await?;
        let mut h = Horizon {
            pruned_through: 0,
            last: 0,
        };
        for r in rows {
            let value = r.int("value")?;
            match r.text("name")?.as_str() {
                "change_seq" => h.last = value,
                _ => h.pruned_through = value,
            }
        }
        Ok(h)
    }

    /// Removes the events stamped before `before`, oldest first; returns how many. The feed
    /// is walked in seq order, a page per transaction, and pruning stops at the first event
    /// that is not old yet: events are stamped in commit order, so the old ones are its
    /// oldest seqs (reading them by seq needs no index on `at`, which every event written
    /// would pay for), and a page at a time never holds the write lock for long.
    pub async fn prune_changes(&self, before: Timestamp) -> Result<u64, StoreError> {
        const PAGE: i64 = 5_000;
        let before = time::format(&before);
        let mut pruned = 0;
        loop {
            let (mut tx, _turn) = self.begin_write().await?;
            let through: i64 =
                sqlx::query("SELECT value FROM counters WHERE name = 'changes_pruned_through'")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("value")?;
            let page =
                sqlx::query("SELECT seq, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(through)
                    .bind(PAGE)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut newest = None;
            let mut old = 0;
            for row in &page {
                let at: String = row.try_get("at")?;
                if at >= before {
                    break;
                }
                newest = Some(row.try_get::<i64, _>("seq")?);
                old += 1;
            }
            let Some(newest) = newest else {
                return Ok(pruned);
            };
            pruned += sqlx::query("DELETE FROM changes WHERE seq > $1 AND seq <= $2")
                .bind(through)
                .bind(newest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE counters SET value = $1 \
                 WHERE name = 'changes_pruned_through' AND value < $1",
            )
            .bind(newest)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if old < page.len() || (page.len() as i64) < PAGE {
                return Ok(pruned);
            }
        }
    }

    /// Events this process committed right after `after`, without reading the table: empty
    /// when there are none, or when another process's commit comes first (then read the
    /// table with [`Store::tail_changes`]).
    pub fn take_recent(&self, after: i64) -> Vec<Change> {
        self.recent.take_after(after)
    }

    /// Woken after every local commit that appended changes.
    pub fn change_signal(&self) -> Arc<Notify> {
        self.signal.clone()
    }

    /// On PostgreSQL, a listener woken by every replica's commits; `None` on SQLite, where
    /// this process is the only writer.
    pub async fn listen_for_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        if !self.dialect().can_listen() {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.location.connect_url()).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener {
            listener,
            own: format!("{} ", self.instance),
        }))
    }
}

async fn read_changes(pool: &AnyPool, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, type, resource_id, data, at FROM changes WHERE seq > $1 \
         ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Change {
                seq: r.int("seq")?,
                kind: r.text("type")?,
                resource_id: r.text("resource_id")?,
                data: r.text("data")?,
                at: timestamp(r, "at")?,
            })
        })
        .collect()
}

/// Wakes when another replica (or this one) commits changes.
pub struct ChangeListener {
    listener: PgListener,
    /// How this store's own notifications begin (`"{instance} "`).
    own: String,
}

impl ChangeListener {
    /// Returns at the next notification of another process's commit, or after the
    /// connection was lost and re-made (when notifications may have been missed, so the
    /// caller reads the table either way). This store's own commits are skipped: its tailer
    /// is woken for them locally, with their events in memory, and reading them back from
    /// the table as well was a read of every batch's events on every commit.
    pub async fn woken(&mut self) -> Result<(), StoreError> {
        loop {
            match self.listener.try_recv().await? {
                Some(n) if n.payload().starts_with(&self.own) => continue,
                _ => return Ok(()),
            }
        }
    }
}

//! Webhook subscriptions of merchants and their delivery log.
//!
//! Each subscription has its own position in the change feed (`after_seq`): the dispatcher
//! of whichever replica holds the subscription's lease reads the events after it, delivers
//! those the subscription asks for in seq order, and moves the position only once a
//! delivery succeeded, in the same transaction as the log row and only while it still
//! holds the lease. A crash between the delivery and that commit delivers the event again:
//! at least once, with the same delivery id for the receiver to dedupe on.

use caja_core::ids::SubscriptionId;
use caja_core::page::{Page, PageLimit};
use caja_core::time::{self, Timestamp};
use caja_core::webhooks::AfterFailure;
use sqlx::any::AnyRow;

use crate::changes::Change;
use crate::rows::{opt_timestamp, timestamp};
use crate::sql::Columns;
use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub description: Option<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    /// The last seq delivered (or passed over as not asked for).
    pub after_seq: i64,
    pub failing_since: Option<Timestamp>,
    /// Failed attempts in the current streak.
    pub attempts: i64,
    /// 410 answers in a row.
    pub gone: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One event's deliveries to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The id the receiver dedupes on: the same for every attempt.
    pub id: String,
    pub seq: i64,
    pub event_type: String,
    pub attempts: i64,
    /// failing, delivered or abandoned.
    pub status: String,
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub first_attempt_at: Timestamp,
    pub last_attempt_at: Timestamp,
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    Failed {
        status: Option<u16>,
        error: String,
        /// The streak, this attempt included.
        attempts: i64,
        gone: i64,
        failing_since: Timestamp,
        then: AfterFailure,
    },
}

/// The delivery id of event `seq` for subscription `id`.
pub fn delivery_id(id: &SubscriptionId, seq: i64) -> String {
    format!("{id}-{seq}")
}

const COLUMNS: &str = "id, url, event_types, secret, description, status, disabled_reason, \
    after_seq, failing_since, attempts, gone, next_attempt_at, created_at, updated_at";

fn subscription(row: &AnyRow) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: SubscriptionId::parse("id", &row.text("id")?)?,
        url: row.text("url")?,
        event_types: serde_json::from_str(&row.text("event_types")?)
            .map_err(|e| StoreError::Corrupt(format!("event_types: {e}")))?,
        secret: row.text("secret")?,
        description: row.opt_text("description")?,
        active: row.text("status")? == "active",
        disabled_reason: row.opt_text("disabled_reason")?,
        after_seq: row.int("after_seq")?,
        failing_since: opt_timestamp(row, "failing_since")?,
        attempts: row.int("attempts")?,
        gone: row.int("gone")?,
        next_attempt_at: opt_timestamp(row, "next_attempt_at")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

impl Store {
    /// A new subscription, starting after the newest event: it hears what happens from now.
    pub async fn create_subscription(
        &self,
        new: &NewSubscription,
    ) -> Result<Subscription, StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        let id = SubscriptionId::generate();
        let now = time::format(&self.now());
        let head = self.change_horizon().await?.last;
        let types = serde_json::to_string(&new.event_types)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, url, event_types, secret, description, status, \
             after_seq, attempts, gone, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, 0, 0, $7, $7)",
        )
        .bind(id.as_str())
        .bind(new.url.as_str())
        .bind(types)
        .bind(new.secret.as_str())
        .bind(new.description.as_deref())
        .bind(head)
        .bind(now)
        .execute(self.writer())
        .await?;
        self.subscription(&id).await
    }

    pub async fn subscription(&self, id: &SubscriptionId) -> Result<Subscription, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        subscription(&row)
    }

    /// Subscriptions in creation order, after the cursor.
    pub async fn list_subscriptions(
        &self,
        after: Option<&SubscriptionId>,
        limit: PageLimit,
    ) -> Result<Page<Subscription>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_subscriptions WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(SubscriptionId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(subscription)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |s| s.id.to_string()))
    }

    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<(), StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Turns a subscription on (a fresh start: its failure streak forgotten) or off, and
    /// with `after_seq`, moves its position (a replay from there).
    pub async fn set_subscription(
        &self,
        id: &SubscriptionId,
        active: bool,
        after_seq: Option<i64>,
        reason: Option<&str>,
    ) -> Result<Subscription, StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        let changed = sqlx::query(
            "UPDATE webhook_subscriptions SET status = $1, disabled_reason = $2, \
             after_seq = COALESCE($3, after_seq), failing_since = NULL, attempts = 0, gone = 0, \
             next_attempt_at = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(if active { "active" } else { "disabled" })
        .bind(reason)
        .bind(after_seq)
        .bind(time::format(&self.now()))
        .bind(id.as_str())
        .execute(self.writer())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.subscription(id).await
    }

    /// Active subscriptions whose next attempt is due at `now`.
    pub async fn due_subscriptions(&self, now: Timestamp) -> Result<Vec<Subscription>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_subscriptions WHERE status = 'active' \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $1) ORDER BY id"
        ))
        .bind(time::format(&now))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(subscription).collect()
    }

    /// Takes (or keeps) the lease on a subscription until `until`; false when another
    /// replica holds it.
    pub async fn lease_subscription(
        &self,
        id: &SubscriptionId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        let taken = sqlx::query(
            "UPDATE webhook_subscriptions SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND status = 'active' \
               AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
        )
        .bind(owner)
        .bind(time::format(&until))
        .bind(id.as_str())
        .bind(time::format(&now))
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Moves past events the subscription does not ask for, under the lease.
    pub async fn pass_over(
        &self,
        id: &SubscriptionId,
        owner: &str,
        seq: i64,
    ) -> Result<bool, StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        let moved = sqlx::query(
            "UPDATE webhook_subscriptions SET after_seq = $1 \
             WHERE id = $2 AND lease_owner = $3 AND after_seq < $1",
        )
        .bind(seq)
        .bind(id.as_str())
        .bind(owner)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// Records an attempt to deliver `change` and what follows from it, under the lease.
    /// Returns false (and records nothing) when the lease was lost meanwhile.
    pub async fn record_attempt(
        &self,
        sub: &Subscription,
        owner: &str,
        change: &Change,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let now = time::format(&self.now());
        let (mut tx, _turn) = self.begin_write().await?;
        let updated = match attempt {
            Attempt::Delivered { .. } => sqlx::query(
                "UPDATE webhook_subscriptions SET after_seq = $1, failing_since = NULL, attempts = 0, \
                 gone = 0, next_attempt_at = NULL, updated_at = $2 \
                 WHERE id = $3 AND lease_owner = $4 AND after_seq < $1",
            )
            .bind(change.seq)
            .bind(now.as_str())
            .bind(sub.id.as_str())
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Attempt::Failed {
                attempts,
                gone,
                failing_since,
                then,
                ..
            } => {
                let (status, reason, next) = match then {
                    AfterFailure::Retry { at } => ("active", None, Some(time::format(at))),
                    AfterFailure::Disable { reason } => ("disabled", Some(reason.as_str()), None),
                };
                sqlx::query(
                    "UPDATE webhook_subscriptions SET status = $1, disabled_reason = $2, \
                     next_attempt_at = $3, failing_since = $4, attempts = $5, gone = $6, updated_at = $7 \
                     WHERE id = $8 AND lease_owner = $9",
                )
                .bind(status)
                .bind(reason)
                .bind(next)
                .bind(time::format(failing_since))
                .bind(attempts)
                .bind(gone)
                .bind(now.as_str())
                .bind(sub.id.as_str())
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            }
        };
        if updated != 1 {
            return Ok(false);
        }
        let (status, response, error) = match attempt {
            Attempt::Delivered { status } => ("delivered", Some(i64::from(*status)), None),
            Attempt::Failed {
                status,
                error,
                then,
                ..
            } => (
                if matches!(then, AfterFailure::Disable { .. }) {
                    "abandoned"
                } else {
                    "failing"
                },
                status.map(i64::from),
                Some(error.as_str()),
            ),
        };
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, subscription_id, seq, event_type, attempts, status, \
             response_status, error, first_attempt_at, last_attempt_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $8) \
             ON CONFLICT (subscription_id, seq) DO UPDATE SET \
             attempts = webhook_deliveries.attempts + 1, status = $5, response_status = $6, \
             error = $7, last_attempt_at = $8",
        )
        .bind(delivery_id(&sub.id, change.seq))
        .bind(sub.id.as_str())
        .bind(change.seq)
        .bind(change.kind.as_str())
        .bind(status)
        .bind(response)
        .bind(error)
        .bind(now.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A subscription's delivery log, newest event first, before the cursor (a seq).
    pub async fn deliveries(
        &self,
        id: &SubscriptionId,
        before: Option<i64>,
        limit: PageLimit,
    ) -> Result<Page<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, seq, event_type, attempts, status, response_status, error, \
             first_attempt_at, last_attempt_at FROM webhook_deliveries \
             WHERE subscription_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(id.as_str())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.text("id")?,
                    seq: row.int("seq")?,
                    event_type: row.text("event_type")?,
                    attempts: row.int("attempts")?,
                    status: row.text("status")?,
                    response_status: row_opt_int(row, "response_status")?,
                    error: row.opt_text("error")?,
                    first_attempt_at: timestamp(row, "first_attempt_at")?,
                    last_attempt_at: timestamp(row, "last_attempt_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, limit, |d| d.seq.to_string()))
    }
}

fn row_opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>, StoreError> {
    use sqlx::Row;
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

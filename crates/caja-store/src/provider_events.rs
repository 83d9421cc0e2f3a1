//! The inbox of payment-provider notifications: each one stored as received (after its
//! signature was verified), once per provider event id however often it is delivered,
//! with what became of it. The payment itself is applied by a command on the one writer;
//! this table is the record that a notification came and how it was handled.

use caja_core::page::{Page, PageLimit};
use caja_core::time::{self, Timestamp};
use sqlx::Row;

use crate::rows::{opt_timestamp, timestamp};
use crate::sql::Columns;
use crate::{Store, StoreError};

/// A notification to record.
#[derive(Debug, Clone)]
pub struct NewProviderEvent<'a> {
    pub provider: &'a str,
    pub event_id: &'a str,
    pub topic: &'a str,
    pub action: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub body: &'a str,
}

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Stored, not yet applied (or its application failed and a redelivery will retry).
    Received,
    /// Applied through a payment command.
    Applied,
    /// Nothing to apply (another topic, an unknown order, a payment still pending).
    Ignored,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Received => "received",
            EventStatus::Applied => "applied",
            EventStatus::Ignored => "ignored",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "received" => EventStatus::Received,
            "applied" => EventStatus::Applied,
            "ignored" => EventStatus::Ignored,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "provider event status {other}"
                )))
            }
        })
    }
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: String,
    pub event_id: String,
    pub topic: String,
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub body: String,
    pub received_at: Timestamp,
    pub deliveries: i64,
    pub status: EventStatus,
    pub outcome: Option<String>,
    pub order_id: Option<String>,
    pub processed_at: Option<Timestamp>,
}

const COLUMNS: &str = "provider, event_id, topic, action, resource_id, body, received_at, \
    deliveries, status, outcome, order_id, processed_at";

impl Store {
    /// Records a delivery of a notification. Returns its status before this delivery:
    /// `None` the first time.
    pub async fn receive_provider_event(
        &self,
        event: &NewProviderEvent<'_>,
    ) -> Result<Option<EventStatus>, StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        let row = sqlx::query(
            "INSERT INTO provider_events (provider, event_id, topic, action, resource_id, body, \
             received_at, deliveries, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 'received') \
             ON CONFLICT (provider, event_id) \
             DO UPDATE SET deliveries = provider_events.deliveries + 1 \
             RETURNING deliveries, status",
        )
        .bind(event.provider)
        .bind(event.event_id)
        .bind(event.topic)
        .bind(event.action)
        .bind(event.resource_id)
        .bind(event.body)
        .bind(time::format(&self.now()))
        .fetch_one(self.writer())
        .await?;
        if row.int("deliveries")? == 1 {
            return Ok(None);
        }
        Ok(Some(EventStatus::parse(&row.text("status")?)?))
    }

    /// Records what became of a notification.
    pub async fn settle_provider_event(
        &self,
        provider: &str,
        event_id: &str,
        status: EventStatus,
        outcome: &str,
        order_id: Option<&str>,
    ) -> Result<(), StoreError> {
        // sqlx's writer connection: in this process, after the writer's turn.
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE provider_events SET status = $1, outcome = $2, order_id = $3, processed_at = $4 \
             WHERE provider = $5 AND event_id = $6",
        )
        .bind(status.as_str())
        .bind(outcome)
        .bind(order_id)
        .bind(time::format(&self.now()))
        .bind(provider)
        .bind(event_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Notifications newest first, optionally of one status, before the cursor (the
    /// `received_at|provider|event_id` of the last one seen).
    pub async fn provider_events(
        &self,
        status: Option<EventStatus>,
        before: Option<&str>,
        limit: PageLimit,
    ) -> Result<Page<ProviderEvent>, StoreError> {
        let (at, key) = match before.and_then(|c| c.split_once('|')) {
            Some((at, key)) => (at.to_owned(), key.to_owned()),
            None => ("9999".to_owned(), String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM provider_events \
             WHERE ($1 = '' OR status = $1) \
               AND (received_at < $2 OR (received_at = $2 AND provider || '|' || event_id < $3)) \
             ORDER BY received_at DESC, provider DESC, event_id DESC LIMIT $4"
        ))
        .bind(status.map(EventStatus::as_str).unwrap_or(""))
        .bind(at)
        .bind(key)
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let events = rows
            .iter()
            .map(|row| {
                Ok(ProviderEvent {
                    provider: row.text("provider")?,
                    event_id: row.text("event_id")?,
                    topic: row.text("topic")?,
                    action: row.opt_text("action")?,
                    resource_id: row.opt_text("resource_id")?,
                    body: row.text("body")?,
                    received_at: timestamp(row, "received_at")?,
                    deliveries: row.int("deliveries")?,
                    status: EventStatus::parse(&row.text("status")?)?,
                    outcome: row.opt_text("outcome")?,
                    order_id: row.opt_text("order_id")?,
                    processed_at: opt_timestamp(row, "processed_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(events, limit, |e| {
            format!(
                "{}|{}|{}",
                time::format(&e.received_at),
                e.provider,
                e.event_id
            )
        }))
    }

    /// How many orders are owed a refund.
    pub async fn orders_needing_refund(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE status = 'needs_refund'")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

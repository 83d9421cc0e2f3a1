//! Webhooks to merchants: the dispatcher. Every replica runs one; each subscription is
//! worked by whichever replica holds its lease. It reads the change feed after the
//! subscription's position, delivers the events asked for one at a time in seq order
//! (signed: see `caja_core::webhooks`), and records each attempt with the position in one
//! transaction. A failed attempt stops the subscription until its next attempt is due
//! (full-jitter back-off, for up to three days), so order is never broken; repeated 410s
//! or a streak past the limit disable it. Time comes from the store's clock.

use std::time::Duration;

use caja_core::ids::SubscriptionId;
use caja_core::time::Timestamp;
use caja_core::webhooks::{
    self, AfterFailure, DeliveryPolicy, EventTypes, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use caja_store::changes::{is_flag_event, is_key_event, Change};
use caja_store::webhooks::{delivery_id, Attempt, Subscription};
use caja_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How the dispatcher runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchConfig {
    /// How often it looks for due subscriptions.
    pub poll: Duration,
    /// How long a replica holds a subscription without renewing; after a crash, another
    /// replica takes over once it runs out.
    pub lease: Duration,
    /// How long one delivery may take.
    pub timeout: Duration,
    pub policy: DeliveryPolicy,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            policy: DeliveryPolicy::default(),
        }
    }
}

/// Events read per subscription per round.
const READ: i64 = 100;

pub fn spawn(state: &AppState, shutdown: CancellationToken) {
    let state = state.clone();
    let config = state.config().webhooks;
    let owner = format!("replica-{}", ulid::Ulid::new());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .build()
        .unwrap_or_default();
    let task = state.clone();
    state.spawn_task(async move {
        let mut tick = tokio::time::interval(config.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Stopping mid-delivery is safe: an unrecorded delivery is sent again.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                result = round(task.store(), &owner, &http, &config) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "webhook dispatch failed; retrying next tick");
                    }
                }
            }
        }
    });
}

async fn round(
    store: &Store,
    owner: &str,
    http: &reqwest::Client,
    config: &DispatchConfig,
) -> Result<(), StoreError> {
    for sub in store.due_subscriptions(store.now()).await? {
        if lease(store, &sub.id, owner, config).await? {
            work(store, &sub, owner, http, config).await?;
        }
    }
    Ok(())
}

async fn lease(
    store: &Store,
    id: &SubscriptionId,
    owner: &str,
    config: &DispatchConfig,
) -> Result<bool, StoreError> {
    let now = store.now();
    let until =
        now + chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::minutes(1));
    store.lease_subscription(id, owner, now, until).await
}

/// Delivers what is due to one subscription, until the feed is exhausted, an attempt
/// fails, or the lease is lost.
async fn work(
    store: &Store,
    sub: &Subscription,
    owner: &str,
    http: &reqwest::Client,
    config: &DispatchConfig,
) -> Result<(), StoreError> {
    let Ok(types) = EventTypes::parse(&sub.event_types) else {
        return Ok(());
    };
    let mut sub = sub.clone();
    loop {
        let changes = store.changes_after(sub.after_seq, READ).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(());
        };
        let mut passed: Option<i64> = None;
        for change in &changes {
            let wanted = !is_key_event(&change.kind)
                && !is_flag_event(&change.kind)
                && types.matches(&change.kind);
            if !wanted {
                passed = Some(change.seq);
                continue;
            }
            if let Some(seq) = passed.take() {
                if !store.pass_over(&sub.id, owner, seq).await? {
                    return Ok(());
                }
            }
            let attempt = attempt(http, &sub, change, store.now(), config).await;
            let delivered = matches!(attempt, Attempt::Delivered { .. });
            metrics::counter!("caja_webhook_deliveries_total",
                "outcome" => if delivered { "delivered" } else { "failed" })
            .increment(1);
            if !store.record_attempt(&sub, owner, change, &attempt).await? || !delivered {
                return Ok(());
            }
            sub.after_seq = change.seq;
            sub.attempts = 0;
            sub.gone = 0;
            sub.failing_since = None;
            if !lease(store, &sub.id, owner, config).await? {
                return Ok(());
            }
        }
        if let Some(seq) = passed {
            if !store.pass_over(&sub.id, owner, seq).await? {
                return Ok(());
            }
        }
        sub.after_seq = last;
        if (changes.len() as i64) < READ {
            return Ok(());
        }
    }
}

/// One signed POST of `change` to the subscription's URL, and what it means.
async fn attempt(
    http: &reqwest::Client,
    sub: &Subscription,
    change: &Change,
    now: Timestamp,
    config: &DispatchConfig,
) -> Attempt {
    let id = delivery_id(&sub.id, change.seq);
    let body = body(&id, change);
    let ts = now.timestamp();
    let signature = webhooks::sign(sub.secret.as_bytes(), &id, ts, body.as_bytes());
    let sent = http
        .post(&sub.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("caja-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(ID_HEADER, &id)
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(r) if r.status().is_success() => {
            return Attempt::Delivered {
                status: r.status().as_u16(),
            }
        }
        Ok(r) => (
            Some(r.status().as_u16()),
            format!("the endpoint answered {}", r.status()),
        ),
        Err(e) if e.is_timeout() => (None, format!("no answer within {:?}", config.timeout)),
        Err(e) => (None, format!("could not deliver: {}", e.without_url())),
    };
    let attempts = sub.attempts + 1;
    let gone = if status == Some(410) { sub.gone + 1 } else { 0 };
    let failing_since = sub.failing_since.unwrap_or(now);
    let then = config.policy.after_failure(
        u32::try_from(attempts).unwrap_or(u32::MAX),
        failing_since,
        u32::try_from(gone).unwrap_or(u32::MAX),
        now,
        rand::random(),
    );
    if let AfterFailure::Disable { reason } = &then {
        tracing::warn!(subscription = %sub.id, %reason, "webhook subscription disabled");
    }
    Attempt::Failed {
        status,
        error,
        attempts,
        gone,
        failing_since,
        then,
    }
}

/// The delivery's body: the event as the change feed holds it, with the delivery id.
pub fn body(id: &str, change: &Change) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "{{\"id\":{},\"seq\":{},\"type\":{},\"resource_id\":{},\"at\":{},\"data\":{}}}",
        quoted(id),
        change.seq,
        quoted(&change.kind),
        quoted(&change.resource_id),
        quoted(&caja_core::time::format(&change.at)),
        change.data
    )
}

//! Webhooks to merchants: which change-feed events a subscription wants, how a delivery
//! is signed, and what to do after a failed attempt. Pure: time and randomness come in.
//!
//! A delivery carries three headers: `caja-webhook-id` (the same on every retry of one
//! event to one subscription, for the receiver to dedupe on), `caja-webhook-timestamp`
//! (Unix seconds) and `caja-webhook-signature: v1=<hex>`, the HMAC-SHA256 under the
//! subscription's secret of `<id>.<timestamp>.<body>`. Signing the timestamp lets a
//! receiver refuse a captured delivery replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::payments::backoff::RetryPolicy;
use crate::time::Timestamp;
use crate::DomainError;

type HmacSha256 = Hmac<Sha256>;

pub const ID_HEADER: &str = "caja-webhook-id";
pub const TIMESTAMP_HEADER: &str = "caja-webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "caja-webhook-signature";

/// Most event-type patterns in one subscription.
pub const MAX_PATTERNS: usize = 50;

/// The event types a subscription asks for: exact (`order.paid`), a family
/// (`order.*`), or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<String>);

impl EventTypes {
    pub fn parse(patterns: &[String]) -> Result<Self, DomainError> {
        if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
            return Err(DomainError::invalid(
                "event_types",
                format!("must list 1 to {MAX_PATTERNS} event types, e.g. [\"order.*\"]"),
            ));
        }
        for p in patterns {
            let name = p.strip_suffix(".*").unwrap_or(p);
            let ok = p == "*"
                || (!name.is_empty()
                    && name.len() <= 64
                    && name.split('.').all(|part| {
                        !part.is_empty()
                            && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    }));
            if !ok {
                return Err(DomainError::invalid(
                    "event_types",
                    format!("`{p}` is not an event type (order.paid), a family (order.*) or *"),
                ));
            }
        }
        Ok(Self(patterns.to_vec()))
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|p| {
            p == "*"
                || p == kind
                || p.strip_suffix(".*").is_some_and(|family| {
                    kind.strip_prefix(family)
                        .is_some_and(|r| r.starts_with('.'))
                })
        })
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

fn mac(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `caja-webhook-signature` header for a delivery.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, id, timestamp, body).finalize().into_bytes())
    )
}

/// What a receiver does: the signature matches (in constant time) and the timestamp is
/// within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: Timestamp,
    tolerance: chrono::Duration,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let Some(tag) = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .find_map(|hex_tag| hex::decode(hex_tag).ok())
    else {
        return false;
    };
    mac(secret, id, ts, body).verify_slice(&tag).is_ok()
        && (now.timestamp() - ts).abs() <= tolerance.num_seconds()
}

/// How long deliveries are retried, and when a subscription gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Waits between attempts: full jitter, doubling from `base` up to `cap`.
    pub backoff: RetryPolicy,
    /// A failure streak longer than this disables the subscription.
    pub give_up_after: chrono::Duration,
    /// This many `410 Gone` answers in a row disable it at once.
    pub gone_limit: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            backoff: RetryPolicy {
                max_attempts: u32::MAX,
                base: Duration::from_secs(5),
                cap: Duration::from_secs(60 * 60),
                budget: Duration::MAX,
            },
            give_up_after: chrono::Duration::days(3),
            gone_limit: 3,
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the same event again at this time.
    Retry { at: Timestamp },
    /// Stop delivering to this subscription; the reason is for the merchant.
    Disable { reason: String },
}

impl DeliveryPolicy {
    /// After failed attempt number `attempt` (1 is the first) of a streak that began at
    /// `failing_since`, with `gone` 410s in a row so far (this one included).
    pub fn after_failure(
        &self,
        attempt: u32,
        failing_since: Timestamp,
        gone: u32,
        now: Timestamp,
        random: f64,
    ) -> AfterFailure {
        if gone >= self.gone_limit {
            return AfterFailure::Disable {
                reason: format!("the endpoint answered 410 Gone {gone} times in a row"),
            };
        }
        if now - failing_since >= self.give_up_after {
            return AfterFailure::Disable {
                reason: format!(
                    "deliveries kept failing for {} hours",
                    self.give_up_after.num_hours()
                ),
            };
        }
        let wait = self.backoff.delay(attempt, random);
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        AfterFailure::Retry { at: now + wait }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> Timestamp {
        chrono::Utc.timestamp_opt(1_764_400_000, 0).unwrap()
    }

    fn types(p: &[&str]) -> EventTypes {
        EventTypes::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_match_exact_families_and_everything() {
        let t = types(&["order.*", "product.stock_changed"]);
        assert!(t.matches("order.paid") && t.matches("order.needs_refund"));
        assert!(t.matches("product.stock_changed"));
        assert!(!t.matches("product.created") && !t.matches("orders.paid") && !t.matches("order"));
        assert!(types(&["*"]).matches("tab.opened"));
        for bad in [
            &[][..],
            &["Order.paid"],
            &["order."],
            &["order.*.x"],
            &[".*"],
            &["a b"],
        ] {
            let bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(EventTypes::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signature_verifies_only_unchanged_and_fresh() {
        let body = br#"{"type":"order.paid"}"#;
        let ts = t0().timestamp();
        let sig = sign(b"secret", "whs_1-7", ts, body);
        let five = chrono::Duration::minutes(5);
        let check = |secret: &[u8], id: &str, body: &[u8], now| {
            verify(secret, id, &ts.to_string(), body, &sig, now, five)
        };
        assert!(check(b"secret", "whs_1-7", body, t0()));
        assert!(!check(b"other", "whs_1-7", body, t0()));
        assert!(!check(b"secret", "whs_1-8", body, t0()), "the id is signed");
        assert!(!check(b"secret", "whs_1-7", b"{}", t0()));
        assert!(!check(
            b"secret",
            "whs_1-7",
            body,
            t0() + chrono::Duration::minutes(6)
        ));
        assert!(!verify(b"secret", "whs_1-7", "x", body, &sig, t0(), five));
    }

    #[test]
    fn failures_back_off_then_disable() {
        let policy = DeliveryPolicy::default();
        match policy.after_failure(1, t0(), 0, t0(), 0.5) {
            AfterFailure::Retry { at } => {
                assert_eq!(at - t0(), chrono::Duration::milliseconds(2500))
            }
            other => panic!("{other:?}"),
        }
        // Far into a streak the wait is capped at an hour.
        match policy.after_failure(40, t0(), 0, t0() + chrono::Duration::hours(5), 0.999) {
            AfterFailure::Retry { at } => {
                assert!(at - (t0() + chrono::Duration::hours(5)) <= chrono::Duration::hours(1))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            policy.after_failure(3, t0(), 0, t0() + chrono::Duration::days(3), 0.5),
            AfterFailure::Disable { .. }
        ));
        assert!(matches!(
            policy.after_failure(3, t0(), 3, t0(), 0.5),
            AfterFailure::Disable { .. }
        ));
    }
}

//! MercadoPago's webhook signature: `x-signature: ts=…,v1=…`, where `v1` is the hex
//! HMAC-SHA256, under the webhook secret, of the manifest
//! `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`. A part whose value is absent is left
//! out of the manifest; an alphanumeric `data.id` is signed in lower case. `data.id` is the
//! one in the notification URL's query string, not the body's.
//!
//! A signature is also refused when its timestamp is too far from now, so a captured
//! notification cannot be replayed later.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no usable x-signature header: expected ts=…,v1=…")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature's timestamp is {seconds} s away from now")]
    Stale { seconds: i64 },
}

/// An `x-signature` header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// As sent: seconds or milliseconds since the epoch (both are seen in the wild).
    pub ts: String,
    pub v1: Vec<u8>,
}

impl Signature {
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let mut ts = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("ts", v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    ts = Some(v.to_owned())
                }
                Some(("v1", v)) => v1 = hex::decode(v).ok().filter(|d| d.len() == 32),
                _ => {}
            }
        }
        Ok(Self {
            ts: ts.ok_or(SignatureError::Malformed)?,
            v1: v1.ok_or(SignatureError::Malformed)?,
        })
    }

    /// When it was signed; `None` for a number no clock can hold.
    pub fn signed_at(&self) -> Option<Timestamp> {
        let n: i64 = self.ts.parse().ok()?;
        // Milliseconds once the number is past any date in seconds this century could be.
        if n > 100_000_000_000 {
            DateTime::<Utc>::from_timestamp_millis(n)
        } else {
            DateTime::<Utc>::from_timestamp(n, 0)
        }
    }
}

/// The signed manifest for a notification.
pub fn manifest(data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let mut m = String::new();
    if let Some(id) = data_id.filter(|s| !s.is_empty()) {
        let id = if id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            id.to_ascii_lowercase()
        } else {
            id.to_owned()
        };
        m.push_str(&format!("id:{id};"));
    }
    if let Some(r) = request_id.filter(|s| !s.is_empty()) {
        m.push_str(&format!("request-id:{r};"));
    }
    m.push_str(&format!("ts:{ts};"));
    m
}

fn mac(secret: &[u8], manifest: &str) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(manifest.as_bytes());
    mac
}

/// The `x-signature` header a sender would put on a notification (for the simulator and
/// tests).
pub fn sign(secret: &[u8], data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let tag = mac(secret, &manifest(data_id, request_id, ts))
        .finalize()
        .into_bytes();
    format!("ts={ts},v1={}", hex::encode(tag))
}

/// Checks a notification's signature: well formed, matching (compared in constant time),
/// and signed within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    header: &str,
    data_id: Option<&str>,
    request_id: Option<&str>,
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let sig = Signature::parse(header)?;
    mac(secret, &manifest(data_id, request_id, &sig.ts))
        .verify_slice(&sig.v1)
        .map_err(|_| SignatureError::Mismatch)?;
    let at = sig.signed_at().ok_or(SignatureError::Malformed)?;
    let away = (now - at).num_seconds();
    if away.abs() > tolerance.num_seconds() {
        return Err(SignatureError::Stale { seconds: away });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const SECRET: &[u8] = b"the webhook secret";

    fn now() -> Timestamp {
        Utc.timestamp_opt(1_764_400_000, 0).unwrap()
    }

    fn five_minutes() -> Duration {
        Duration::minutes(5)
    }

    #[test]
    fn the_manifest_leaves_out_what_is_absent_and_lowers_alphanumeric_ids() {
        assert_eq!(
            manifest(Some("ABC123"), Some("req-1"), "1700"),
            "id:abc123;request-id:req-1;ts:1700;"
        );
        assert_eq!(manifest(Some("a-B"), None, "1700"), "id:a-B;ts:1700;");
        assert_eq!(manifest(None, None, "1700"), "ts:1700;");
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let ts = now().timestamp().to_string();
        let header = sign(SECRET, Some("123"), Some("req-9"), &ts);
        assert_eq!(
            verify(
                SECRET,
                &header,
                Some("123"),
                Some("req-9"),
                now(),
                five_minutes()
            ),
            Ok(())
        );
        // Milliseconds work too.
        let ms = now().timestamp_millis().to_string();
        let header = sign(SECRET, Some("123"), None, &ms);
        assert_eq!(
            verify(SECRET, &header, Some("123"), None, now(), five_minutes()),
            Ok(())
        );
    }

    #[test]
    fn any_change_to_what_was_signed_is_a_mismatch() {
        let ts = now().timestamp().to_string();
        let header = sign(SECRET, Some("123"), Some("req-9"), &ts);
        let check =
            |secret: &[u8], id, req| verify(secret, &header, id, req, now(), five_minutes());
        assert_eq!(
            check(b"another secret", Some("123"), Some("req-9")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SECRET, Some("124"), Some("req-9")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SECRET, Some("123"), Some("req-8")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SECRET, Some("123"), None),
            Err(SignatureError::Mismatch)
        );
        // A later timestamp put on an old signature does not match either.
        let moved = header.replace(&ts, &(now().timestamp() + 1).to_string());
        assert_eq!(
            verify(
                SECRET,
                &moved,
                Some("123"),
                Some("req-9"),
                now(),
                five_minutes()
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_old_or_future_signature_is_stale() {
        let old = (now() - Duration::minutes(6)).timestamp().to_string();
        let header = sign(SECRET, Some("1"), None, &old);
        assert_eq!(
            verify(SECRET, &header, Some("1"), None, now(), five_minutes()),
            Err(SignatureError::Stale { seconds: 360 })
        );
        let future = (now() + Duration::minutes(6)).timestamp().to_string();
        let header = sign(SECRET, Some("1"), None, &future);
        assert!(matches!(
            verify(SECRET, &header, Some("1"), None, now(), five_minutes()),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "ts=1",
            "v1=00",
            "ts=abc,v1=00",
            "ts=1,v1=zz",
            "ts=1,v1=0011",
        ] {
            assert_eq!(
                Signature::parse(bad),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}

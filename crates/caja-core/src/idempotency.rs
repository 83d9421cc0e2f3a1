//! Idempotency keys and request fingerprints.
//!
//! A key is scoped to the API key that sent it; the fingerprint is the method, the path and
//! a hash of the canonical body (object keys sorted, whitespace gone), so a retry whose JSON
//! is merely re-ordered is still the same request, and anything else is a mismatch.

use sha2::{Digest, Sha256};

use crate::DomainError;

/// The client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two requests "the same request".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// `canonical_body` is the body as canonical JSON (or the raw bytes if it is not JSON).
    pub fn new(method: &str, path: &str, canonical_body: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update(b"\n");
        h.update(path.as_bytes());
        h.update(b"\n");
        h.update(canonical_body);
        Self(lower_hex(&h.finalize()))
    }

    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A digest in lower-case hex, written byte by byte: `hex::encode` collects an iterator of
/// chars, which cost as much as the SHA-256 it encodes on a checkout's path (a fingerprint
/// and a key hash per request).
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)]);
        text.push(DIGITS[usize::from(b & 0x0f)]);
    }
    String::from_utf8(text).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_hex_is_the_hex_crates_encoding() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-2026-11-24-0001").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", " ", "with space", "ñ", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_differ_by_method_path_and_body() {
        let a = Fingerprint::new("POST", "/v1/orders", b"{}");
        assert_eq!(a, Fingerprint::new("POST", "/v1/orders", b"{}"));
        assert_ne!(a, Fingerprint::new("POST", "/v1/orders", b"{\"a\":1}"));
        assert_ne!(a, Fingerprint::new("POST", "/v1/orders/x/cancel", b"{}"));
        assert_ne!(a, Fingerprint::new("PUT", "/v1/orders", b"{}"));
    }
}

//! The domain's refusals. Each names the field it is about so the HTTP edge can point the
//! client at exactly what to fix.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A value that does not parse into its domain type.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// Money in a currency other than the store's.
    #[error("currency {got} is not the store currency {expected}")]
    CurrencyMismatch { expected: String, got: String },
    /// Something the caller's role may not have.
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

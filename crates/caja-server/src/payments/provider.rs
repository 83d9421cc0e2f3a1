//! The provider interface: what caja asks of any payment provider, in caja's terms.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use caja_core::order::Order;
use caja_core::time::Timestamp;

pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

/// A checkout the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub id: String,
    pub url: String,
}

/// A payment's status as the provider reports it, in the terms caja acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The money is taken: the order is paid.
    Approved,
    /// The money went back (a refund or a chargeback).
    Refunded,
    /// Anything else (pending, in process, rejected, cancelled): nothing to do yet.
    Other(String),
}

/// A payment, as the provider's authoritative record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub id: String,
    pub status: PaymentStatus,
    /// The order id caja gave the checkout.
    pub order_ref: Option<String>,
    /// In the store currency's minor units; `None` when the provider's amount is not a
    /// whole number of them or is in another currency.
    pub amount: Option<i64>,
}

/// Why a call out failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the provider: {0}")]
    Transport(String),
    /// The provider answered with an error status.
    #[error("the provider answered {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("the provider has no such {0}")]
    NotFound(&'static str),
    #[error("the provider's answer made no sense: {0}")]
    Malformed(String),
    /// Refused without calling: the circuit breaker is open.
    #[error("the provider is failing; calls are paused for {retry_after:?}")]
    Unavailable { retry_after: Duration },
}

impl CallError {
    /// Whether trying again may help (and so whether the call counts against the
    /// provider's health): a timeout, a dropped connection, a 5xx or a 429.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::Transport(_) => true,
            CallError::Status { status, .. } => *status >= 500 || *status == 429,
            CallError::NotFound(_) | CallError::Malformed(_) | CallError::Unavailable { .. } => {
                false
            }
        }
    }
}

/// What caja needs from a payment provider. Each call is one attempt: timeouts, retries
/// and the breaker are [`super::Guarded`]'s.
pub trait Provider: Send + Sync + 'static {
    /// The name in metrics, logs and `/ready` (`mercadopago`).
    fn name(&self) -> &'static str;

    /// A checkout for the whole of `order`, which the provider will report on to
    /// `notify_url`. `key` makes a retried creation return the same checkout.
    fn create_checkout<'a>(
        &'a self,
        order: &'a Order,
        notify_url: Option<&'a str>,
        expires_at: Timestamp,
        key: &'a str,
    ) -> Call<'a, Checkout>;

    /// The payment's authoritative state.
    fn payment<'a>(&'a self, id: &'a str) -> Call<'a, ProviderPayment>;

    /// Gives the whole payment back. `key` makes a retried refund the same refund.
    fn refund<'a>(&'a self, id: &'a str, key: &'a str) -> Call<'a, ()>;
}

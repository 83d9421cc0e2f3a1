//! Payments through a provider. [`Provider`] is the interface every adapter implements
//! (create a checkout for an order, read a payment, refund it); [`MercadoPago`] is the one
//! real adapter, and caja's own `dev-provider` simulator speaks the same HTTP. Every call
//! out goes through [`Guarded`]: a timeout per attempt, retries with full jitter within a
//! budget, and the provider's circuit breaker. Incoming notifications are verified and
//! applied by `routes::webhooks`, through the same payment command as a clerk's.

mod guard;
mod mercadopago;
mod provider;
mod secret;

pub use guard::{CallPolicy, Guarded};
pub(crate) use mercadopago::id_text;
pub use mercadopago::MercadoPago;
pub use provider::{CallError, Checkout, PaymentStatus, Provider, ProviderPayment};
pub use secret::Secret;

/// MercadoPago's settings, already parsed.
#[derive(Debug, Clone)]
pub struct MercadoPagoConfig {
    /// Where its REST API is: MercadoPago's own, or a `caja dev-provider`.
    pub api_url: String,
    pub access_token: Secret,
    /// Signs its webhooks; without it every webhook is refused.
    pub webhook_secret: Secret,
    /// How far a webhook's signed timestamp may be from now.
    pub webhook_tolerance: std::time::Duration,
    /// caja's own address as the provider reaches it, for notification URLs.
    pub public_url: Option<String>,
    /// How long one attempt of a call out may take.
    pub timeout: std::time::Duration,
    pub calls: CallPolicy,
}

/// The configured provider, behind its guard.
pub struct Payments {
    pub config: MercadoPagoConfig,
    pub calls: Guarded,
}

impl Payments {
    pub fn mercadopago(
        config: MercadoPagoConfig,
        currency: caja_core::money::Currency,
        clock: caja_core::time::SharedClock,
    ) -> Self {
        let adapter = MercadoPago::new(
            &config.api_url,
            config.access_token.clone(),
            currency,
            config.timeout,
        );
        let calls = Guarded::new(std::sync::Arc::new(adapter), config.calls, clock);
        Self { config, calls }
    }
}

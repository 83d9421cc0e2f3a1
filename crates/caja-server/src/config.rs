//! What the HTTP layer needs to know from the settings, already parsed.

use std::time::Duration;

use axum::http::HeaderValue;
use caja_core::money::Currency;
use caja_core::order::OrderLimits;
use caja_core::rate::RateLimit;
use caja_core::tab::Rounding;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The store's one currency; prices in any other are refused.
    pub currency: Currency,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may run before it is answered 503.
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty means no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// Per client IP, for requests without a valid key.
    pub anonymous_rate_limit: RateLimit,
    /// For every key without a rate of its own; `None` leaves keys unlimited.
    pub key_rate_limit: Option<RateLimit>,
    /// How long an unpaid order holds its stock before it expires.
    pub order_ttl: Duration,
    /// How long a box-office hold keeps its places.
    pub hold_ttl: Duration,
    /// How often the sweeper looks for expired orders.
    pub sweep_interval: Duration,
    /// How long a duplicate request waits for the first one with its key to finish.
    pub idempotency_wait: Duration,
    /// How long idempotency keys (and their stored responses) are kept.
    pub idempotency_retention: Duration,
    /// Most units per product and most lines in one order.
    pub order_limits: OrderLimits,
    /// Commit concurrent checkouts together (group commit). Off: one transaction each, the
    /// baseline `caja bench` compares against.
    pub write_batching: bool,
    /// Most checkouts in one batch.
    pub max_batch: usize,
    /// How long change-feed events are kept.
    pub changes_retention: Duration,
    /// How far a live subscriber may fall behind (in events) before it is cut off: the
    /// bound on the memory one slow screen can hold.
    pub stream_buffer: usize,
    /// How often an idle live stream gets a heartbeat.
    pub stream_heartbeat: Duration,
    /// How many connections, and how long one may take to send a request head.
    pub connections: crate::ConnectionLimits,
    /// A new tab's hourly rate (minor units; 0: no time line) when it names none.
    pub tab_rate: i64,
    /// A new tab's rounding when it names none.
    pub tab_rounding: Rounding,
    /// MercadoPago, when configured.
    pub mercadopago: Option<crate::payments::MercadoPagoConfig>,
    /// Webhooks to merchants.
    pub webhooks: crate::dispatch::DispatchConfig,
    /// Keys that sign waiting-room admissions: the first signs, all verify (so a rotation
    /// does not void admissions in flight). Empty: a random key for this process only.
    pub admission_keys: Vec<crate::payments::Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            currency: Currency::parse("currency", "MXN").unwrap_or_else(|_| unreachable!()),
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            anonymous_rate_limit: RateLimit {
                per_second: 20,
                burst: 40,
            },
            key_rate_limit: None,
            order_ttl: Duration::from_secs(15 * 60),
            hold_ttl: Duration::from_secs(10 * 60),
            sweep_interval: Duration::from_secs(1),
            idempotency_wait: Duration::from_secs(10),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            order_limits: OrderLimits::default(),
            write_batching: true,
            max_batch: 256,
            changes_retention: Duration::from_secs(7 * 24 * 60 * 60),
            stream_buffer: 4096,
            stream_heartbeat: Duration::from_secs(15),
            connections: crate::ConnectionLimits::default(),
            tab_rate: 0,
            tab_rounding: Rounding::default(),
            mercadopago: None,
            webhooks: crate::dispatch::DispatchConfig::default(),
            admission_keys: Vec::new(),
        }
    }
}

//! MercadoPago's REST API, as far as caja uses it: Checkout Pro preferences, payments, and
//! refunds. Amounts travel as decimals in the major unit; caja converts with the store
//! currency's digits and refuses an amount that is not a whole number of minor units.
//! The access token goes in the `Authorization` header only and is never logged.

use std::time::Duration;

use caja_core::money::Currency;
use caja_core::order::Order;
use caja_core::time::{self, Timestamp};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::provider::{Call, CallError, Checkout, PaymentStatus, Provider, ProviderPayment};
use super::Secret;

pub struct MercadoPago {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
    currency: Currency,
    timeout: Duration,
}

impl MercadoPago {
    /// An adapter for `api_url` (no trailing slash needed), each attempt bounded by
    /// `timeout`.
    pub fn new(api_url: &str, token: Secret, currency: Currency, timeout: Duration) -> Self {
        Self {
            // Redirects are not followed: an API that redirects is misconfigured.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(timeout)
                .build()
                .unwrap_or_default(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            token,
            currency,
            timeout,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<Value, CallError> {
        let request = request
            .bearer_auth(self.token.expose())
            .timeout(self.timeout);
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        if status == StatusCode::NOT_FOUND {
            return Err(CallError::NotFound(what));
        }
        if !status.is_success() {
            let detail = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(CallError::Status {
                status: status.as_u16(),
                detail: detail.chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| CallError::Malformed(e.to_string()))
    }

    fn transport(&self, e: reqwest::Error) -> CallError {
        if e.is_timeout() {
            CallError::Timeout(self.timeout)
        } else {
            // Without the URL: it is ours, and the error says enough.
            CallError::Transport(e.without_url().to_string())
        }
    }
}

/// An id MercadoPago sends as a number or a string (at most 100 characters: one from a
/// notification body is not trusted to be short).
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= 100 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Preference {
    id: Value,
    init_point: String,
}

impl Provider for MercadoPago {
    fn name(&self) -> &'static str {
        "mercadopago"
    }

    fn create_checkout<'a>(
        &'a self,
        order: &'a Order,
        notify_url: Option<&'a str>,
        expires_at: Timestamp,
        key: &'a str,
    ) -> Call<'a, Checkout> {
        Box::pin(async move {
            // One item for the whole total: tips and a tab's time line are part of what is
            // owed, and the amount the provider confirms must equal the order's exactly.
            let mut body = json!({
                "items": [{
                    "id": order.id.as_str(),
                    "title": format!("Order #{}", order.number),
                    "quantity": 1,
                    "unit_price": self.currency.to_decimal(order.total),
                    "currency_id": self.currency.as_str(),
                }],
                "external_reference": order.id.as_str(),
                "expires": true,
                "expiration_date_to": time::format(&expires_at),
            });
            if let Some(url) = notify_url {
                body["notification_url"] = json!(url);
            }
            let request = self
                .http
                .post(format!("{}/checkout/preferences", self.api_url))
                .header("x-idempotency-key", key)
                .json(&body);
            let answer = self.send(request, "preference").await?;
            let p: Preference = serde_json::from_value(answer)
                .map_err(|e| CallError::Malformed(format!("preference: {e}")))?;
            Ok(Checkout {
                id: id_text(&p.id)
                    .ok_or_else(|| CallError::Malformed("preference without an id".into()))?,
                url: p.init_point,
            })
        })
    }

    fn payment<'a>(&'a self, id: &'a str) -> Call<'a, ProviderPayment> {
        Box::pin(async move {
            let request = self
                .http
                .get(format!("{}/v1/payments/{}", self.api_url, encode(id)));
            let p = self.send(request, "payment").await?;
            let status = match p.get("status").and_then(Value::as_str) {
                Some("approved") => PaymentStatus::Approved,
                Some("refunded" | "charged_back") => PaymentStatus::Refunded,
                Some(other) => PaymentStatus::Other(other.to_owned()),
                None => return Err(CallError::Malformed("payment without a status".into())),
            };
            let same_currency =
                p.get("currency_id").and_then(Value::as_str) == Some(self.currency.as_str());
            let amount = p
                .get("transaction_amount")
                .and_then(Value::as_f64)
                .filter(|_| same_currency)
                .and_then(|d| self.currency.from_decimal(d));
            Ok(ProviderPayment {
                id: p
                    .get("id")
                    .and_then(id_text)
                    .ok_or_else(|| CallError::Malformed("payment without an id".into()))?,
                status,
                order_ref: p
                    .get("external_reference")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                amount,
            })
        })
    }

    fn refund<'a>(&'a self, id: &'a str, key: &'a str) -> Call<'a, ()> {
        Box::pin(async move {
            let request = self
                .http
                .post(format!(
                    "{}/v1/payments/{}/refunds",
                    self.api_url,
                    encode(id)
                ))
                .header("x-idempotency-key", key)
                .json(&json!({}));
            self.send(request, "payment").await.map(|_| ())
        })
    }
}

/// A path segment: payment ids are digits, but one from a webhook is not trusted to be.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

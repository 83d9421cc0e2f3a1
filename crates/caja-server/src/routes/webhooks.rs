//! `POST /v1/webhooks/mercadopago`: MercadoPago's notifications. Only the signed parts
//! are trusted (`data.id` in the query, `x-request-id`, the timestamp): the body is
//! stored as received, but the payment's state is always fetched from the provider and
//! applied through the same command as `POST /v1/orders/{id}/payments`. A notification is
//! handled once per event id; a redelivery of one that was applied is answered at once.
//!
//! `GET /v1/payments/events` lists what came in and what became of each (admin).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::OrderId;
use caja_core::order::PaymentMethod;
use caja_core::payments::signature;
use caja_store::provider_events::{EventStatus, NewProviderEvent};
use caja_store::writer::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::payments::{CallError, PaymentStatus, Payments, ProviderPayment};
use crate::AppState;

pub const PROVIDER: &str = "mercadopago";

/// Signed by the provider; the caller is the signature, not a key.
pub fn public_router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/mercadopago", post(mercadopago))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/payments/events", get(list_events))
}

/// What a webhook's answer says happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// applied, ignored, or duplicate (already handled).
    pub status: String,
    pub outcome: Option<String>,
    pub order_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/webhooks/mercadopago", tag = "payments",
    params(("data.id" = Option<String>, Query, description = "The payment the notification is about (signed)"),
           ("type" = Option<String>, Query, description = "The notification's topic"),
           ("x-signature" = String, Header, description = "ts=…,v1=… (HMAC-SHA256 of the manifest)"),
           ("x-request-id" = Option<String>, Header, description = "Part of the signed manifest")),
    request_body(content = Object, description = "The notification as MercadoPago sends it"),
    responses((status = 200, description = "Handled (or already handled, or nothing to do)", body = WebhookAnswer),
              (status = 401, description = "Bad or stale signature: nothing stored", body = crate::openapi::Problem),
              (status = 404, description = "MercadoPago is not configured", body = crate::openapi::Problem),
              (status = 503, description = "The provider could not be asked: retry later", body = crate::openapi::Problem)))]
pub async fn mercadopago(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signed) = header("x-signature").filter(|s| !s.is_empty()) else {
        return Err(bad_signature("no x-signature header"));
    };
    let Some(payments) = state.payments() else {
        return Err(ApiError::not_found(
            "MercadoPago is not configured on this server",
        ));
    };
    let data_id = query
        .get("data.id")
        .or_else(|| query.get("id"))
        .map(String::as_str);
    let request_id = header("x-request-id");
    let tolerance = chrono::Duration::from_std(payments.config.webhook_tolerance)
        .unwrap_or(chrono::Duration::minutes(5));
    signature::verify(
        payments.config.webhook_secret.expose().as_bytes(),
        signed,
        data_id,
        request_id,
        state.store().now(),
        tolerance,
    )
    .map_err(|e| bad_signature(&e.to_string()))?;
    let notification: Notification = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed_json(format!("not a MercadoPago notification: {e}")))?;
    let topic = notification
        .kind
        .clone()
        .or_else(|| query.get("type").or_else(|| query.get("topic")).cloned())
        .unwrap_or_default();
    // The event id is unsigned; the worst a forged one can do is make us ask the provider
    // about the signed payment again.
    let event_id = notification
        .id
        .as_ref()
        .and_then(crate::payments::id_text)
        .or_else(|| request_id.map(str::to_owned))
        .ok_or_else(|| {
            ApiError::bad_request("malformed-notification", "the notification has no id")
        })?;
    let body_text = String::from_utf8_lossy(&body);
    let before = state
        .store()
        .receive_provider_event(&NewProviderEvent {
            provider: PROVIDER,
            event_id: &event_id,
            topic: &topic,
            action: notification.action.as_deref(),
            resource_id: data_id,
            body: &body_text,
        })
        .await?;
    if matches!(before, Some(EventStatus::Applied | EventStatus::Ignored)) {
        count("duplicate");
        return Ok(answer("duplicate", None, None));
    }
    let settle = |status: EventStatus, outcome: String, order: Option<String>| {
        let state = state.clone();
        let event_id = event_id.clone();
        async move {
            state
                .store()
                .settle_provider_event(PROVIDER, &event_id, status, &outcome, order.as_deref())
                .await?;
            count(status.as_str());
            Ok::<_, ApiError>(answer(status.as_str(), Some(outcome), order))
        }
    };
    let Some(payment_id) = data_id.filter(|_| topic == "payment") else {
        return settle(
            EventStatus::Ignored,
            format!("topic {topic:?} is not handled"),
            None,
        )
        .await;
    };
    let payment = match payments
        .calls
        .call("payment", |p| p.payment(payment_id))
        .await
    {
        Ok(p) => p,
        Err(CallError::NotFound(_)) => {
            return settle(EventStatus::Ignored, "unknown-payment".into(), None).await
        }
        // Left `received`: the provider redelivers, and we ask again then.
        Err(e) => return Err(ApiError::provider(&e)),
    };
    match command_for(&payment) {
        Err(why) => settle(EventStatus::Ignored, why, payment.order_ref.clone()).await,
        Ok((order, command)) => {
            let (status, outcome) = apply(&state, &order, command).await?;
            settle(status, outcome, Some(order.to_string())).await
        }
    }
}

/// The command a payment's authoritative state calls for, or why there is none.
pub(crate) fn command_for(payment: &ProviderPayment) -> Result<(OrderId, Command), String> {
    let order = payment
        .order_ref
        .as_deref()
        .and_then(|r| OrderId::parse("external_reference", r).ok())
        .ok_or_else(|| "unknown-order".to_owned())?;
    let command = match &payment.status {
        PaymentStatus::Approved => Command::Pay {
            order: order.clone(),
            method: PaymentMethod::Provider,
            amount: payment
                .amount
                .ok_or_else(|| "amount-not-in-store-currency".to_owned())?,
            reference: Some(payment.id.clone()),
        },
        PaymentStatus::Refunded => Command::RefundedAtProvider {
            order: order.clone(),
            reference: payment.id.clone(),
        },
        PaymentStatus::Other(status) => return Err(format!("payment is {status}")),
    };
    Ok((order, command))
}

/// Decides `command` on the writer as the provider, and says what became of the order.
async fn apply(
    state: &AppState,
    order: &OrderId,
    command: Command,
) -> ApiResult<(EventStatus, String)> {
    let written = crate::idempotent::as_system(state, PROVIDER, command).await?;
    Ok(match written.verdict {
        Some(Verdict::Refused("not-found")) => (EventStatus::Ignored, "unknown-order".into()),
        Some(Verdict::Refused(kind)) => (EventStatus::Applied, format!("refused: {kind}")),
        _ => {
            let now = state.store().order(order).await?;
            (EventStatus::Applied, format!("order {}", now.status))
        }
    })
}

fn bad_signature(detail: &str) -> ApiError {
    count("bad_signature");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
        "Invalid signature",
        detail,
    )
}

fn count(outcome: &'static str) {
    metrics::counter!("caja_provider_webhooks_total", "provider" => PROVIDER, "outcome" => outcome)
        .increment(1);
}

fn answer(status: &str, outcome: Option<String>, order_id: Option<String>) -> Response {
    (
        StatusCode::OK,
        Json(WebhookAnswer {
            status: status.to_owned(),
            outcome,
            order_id,
        }),
    )
        .into_response()
}

/// The parts of a notification caja reads; the rest is stored as sent.
#[derive(Debug, Deserialize)]
struct Notification {
    id: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    action: Option<String>,
}

/// Asks the provider about `payment_id` for the buyer's return to the shop: the payment
/// command for `order`, built from the provider's record, never from what the client says.
pub(crate) async fn confirmed_payment(
    payments: &Payments,
    order: &OrderId,
    payment_id: &str,
) -> ApiResult<Command> {
    let payment = payments
        .calls
        .call("payment", |p| p.payment(payment_id))
        .await
        .map_err(|e| match e {
            CallError::NotFound(_) => ApiError::new(
                StatusCode::CONFLICT,
                "payment-not-approved",
                "Payment not approved",
                format!("the provider has no payment {payment_id}"),
            ),
            e => ApiError::provider(&e),
        })?;
    let refused = |detail: String| {
        ApiError::new(
            StatusCode::CONFLICT,
            "payment-not-approved",
            "Payment not approved",
            detail,
        )
    };
    if payment.order_ref.as_deref() != Some(order.as_str()) {
        return Err(refused(format!(
            "payment {payment_id} is not for order {order}"
        )));
    }
    match command_for(&payment) {
        Ok((_, command @ Command::Pay { .. })) => Ok(command),
        Ok(_) => Err(refused(format!("payment {payment_id} was refunded"))),
        Err(why) => Err(refused(format!("payment {payment_id}: {why}"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// received, applied or ignored.
    pub status: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderEventBody {
    pub provider: String,
    pub event_id: String,
    pub topic: String,
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub received_at: String,
    pub deliveries: i64,
    pub status: String,
    pub outcome: Option<String>,
    pub order_id: Option<String>,
    pub processed_at: Option<String>,
    /// The notification as received.
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderEventPage {
    pub data: Vec<ProviderEventBody>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/payments/events", tag = "payments",
    params(EventsQuery),
    responses((status = 200, description = "Provider notifications, newest first", body = ProviderEventPage),
              (status = 422, description = "Bad filter", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<ProviderEventPage>> {
    caller.require(Action::Administer)?;
    let (limit, after) = crate::json::page(q.limit, q.after.as_deref(), |a| {
        (a.contains('|') && !a.chars().any(char::is_control))
            .then(|| a.to_owned())
            .ok_or(())
    })?;
    let status = match q.status.as_deref() {
        None => None,
        Some("received") => Some(EventStatus::Received),
        Some("applied") => Some(EventStatus::Applied),
        Some("ignored") => Some(EventStatus::Ignored),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "must be one of received, applied, ignored",
            ))
        }
    };
    let page = state
        .store()
        .provider_events(status, after.as_deref(), limit)
        .await?;
    let fmt = caja_core::time::format;
    Ok(Json(ProviderEventPage {
        data: page
            .items
            .into_iter()
            .map(|e| ProviderEventBody {
                body: serde_json::from_str(&e.body).unwrap_or(json!(null)),
                provider: e.provider,
                event_id: e.event_id,
                topic: e.topic,
                action: e.action,
                resource_id: e.resource_id,
                received_at: fmt(&e.received_at),
                deliveries: e.deliveries,
                status: e.status.as_str().to_owned(),
                outcome: e.outcome,
                order_id: e.order_id,
                processed_at: e.processed_at.as_ref().map(fmt),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

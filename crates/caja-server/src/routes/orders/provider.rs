//! Paying an order through the payment provider: `POST /v1/orders/{id}/checkout` creates
//! the provider's checkout for it and returns the URL to send the buyer to. The payment
//! then arrives by webhook, or by the buyer's return (`POST …/payments` with method
//! `provider`), and both are checked with the provider before they count.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use caja_core::auth::Action;
use caja_core::order::OrderStatus;
use serde::Serialize;
use utoipa::ToSchema;

use super::bodies::order_id;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::IDEMPOTENCY_KEY;
use crate::json::ApiQuery;
use crate::AppState;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckoutQuery {
    /// A buyer's public key: the client_ref its hold was placed with.
    pub client_ref: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutBody {
    pub provider: String,
    pub order_id: String,
    /// The provider's id for the checkout.
    pub checkout_id: String,
    /// Where to send the buyer.
    pub url: String,
    /// The checkout stops taking payments when the order's stock hold ends.
    pub expires_at: String,
}

#[utoipa::path(post, path = "/v1/orders/{id}/checkout", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries: the provider returns the same checkout"),
           CheckoutQuery),
    responses((status = 201, description = "The provider's checkout for the order", body = CheckoutBody),
              (status = 404, description = "No such order, or no provider configured", body = crate::openapi::Problem),
              (status = 409, description = "The order is not awaiting payment", body = crate::openapi::Problem),
              (status = 503, description = "The provider is unavailable: retry after Retry-After", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<CheckoutQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    // Staff pay any order; a buyer's public key pays only the order of its own hold.
    caller.require(Action::Buy)?;
    let buyer = !caller.role.may(Action::Sell);
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "idempotency-key-missing",
                "send an Idempotency-Key header: a retry with the same key gets the same checkout",
            )
        })?;
    let Some(payments) = state.payments() else {
        return Err(ApiError::not_found(
            "no payment provider is configured on this server",
        ));
    };
    let id = order_id(&id)?;
    let order = state.store().order(&id).await?;
    if buyer {
        let not_found = || ApiError::not_found(format!("no order {id}"));
        let hold = order.hold_id.as_ref().ok_or_else(not_found)?;
        let hold = state.store().hold(hold).await?;
        if query.client_ref.is_none() || hold.client_ref != query.client_ref {
            return Err(not_found());
        }
    }
    let now = state.store().now();
    if order.status != OrderStatus::PendingPayment || order.expires_at <= now {
        let status = if order.status == OrderStatus::PendingPayment {
            OrderStatus::Expired
        } else {
            order.status
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid-transition",
            "Invalid transition",
            format!("cannot pay an order that is {status}"),
        )
        .with("current_status", status.as_str()));
    }
    let notify = payments
        .config
        .public_url
        .as_deref()
        .map(|base| format!("{}/v1/webhooks/mercadopago", base.trim_end_matches('/')));
    // Scoped by caller, so two keys cannot collide at the provider.
    let provider_key = format!("{}:{key}", caller.key_id);
    let created = payments
        .calls
        .call("create_checkout", |p| {
            p.create_checkout(&order, notify.as_deref(), order.expires_at, &provider_key)
        })
        .await
        .map_err(|e| ApiError::provider(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(CheckoutBody {
            provider: payments.calls.name().to_owned(),
            order_id: order.id.to_string(),
            checkout_id: created.id,
            url: created.url,
            expires_at: caja_core::time::format(&order.expires_at),
        }),
    )
        .into_response())
}

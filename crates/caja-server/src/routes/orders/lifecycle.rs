//! Payment, cancel, fulfil, refund and hand-over: each one command on the order.

use axum::extract::{Path, State};
use axum::response::Response;
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::order::{OrderStatus, PaymentMethod};

use super::bodies::{order_id, EmptyBody, HandOverBody, PaymentBody, RefundBody};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command, command_from, command_on, Idempotent};
use crate::AppState;

#[utoipa::path(post, path = "/v1/orders/{id}/payments", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = PaymentBody,
    responses((status = 200, description = "Paid", body = super::OrderBody),
              (status = 409, description = "Not payable in its current status (e.g. expired)", body = crate::openapi::Problem),
              (status = 422, description = "Amount is not the total", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn pay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<PaymentBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    // With a provider configured, a provider payment counts only as the provider records
    // it: its amount and order come from the provider, never from the client.
    if let (Some(payments), Ok(body)) = (state.payments(), &req.body) {
        if body.method == "provider" {
            let order = order_id(&id)?;
            let Some(reference) = body.reference.as_deref().filter(|r| !r.is_empty()) else {
                return Err(ApiError::invalid_field(
                    "reference",
                    "the provider's payment id is required for method provider",
                ));
            };
            let pay =
                crate::routes::webhooks::confirmed_payment(payments, &order, reference).await?;
            let scope = req.scope(&caller);
            return Ok(command(&state, &caller, Some(scope), pay).await?.response);
        }
    }
    command_on(&state, &caller, order_id(&id), req, |id, body| {
        body.parse(&state, id)
    })
    .await
}

#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "Cancelled, stock released", body = super::OrderBody),
              (status = 409, description = "Not cancellable in its current status", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    command_on(&state, &caller, order_id(&id), req, |order, _| {
        Ok(Command::Cancel { order })
    })
    .await
}

#[utoipa::path(post, path = "/v1/orders/{id}/fulfill", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "Fulfilled", body = super::OrderBody),
              (status = 409, description = "Only a paid order can be fulfilled", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn fulfill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    command_on(&state, &caller, order_id(&id), req, |order, _| {
        Ok(Command::Fulfill { order })
    })
    .await
}

#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = RefundBody,
    responses((status = 200, description = "Refunded", body = super::OrderBody),
              (status = 409, description = "Only a paid or fulfilled order can be refunded", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<RefundBody>,
) -> ApiResult<Response> {
    caller.require(Action::Refund)?;
    // Money a provider took goes back through the provider first; the order is refunded
    // once the provider has agreed (its own notification of the refund is then a no-op).
    if let (Some(payments), Ok(order)) = (state.payments(), order_id(&id)) {
        if let Some(paid) = state.store().payment_of(&order).await? {
            if let (PaymentMethod::Provider, Some(reference)) = (paid.method, &paid.reference) {
                let status = state.store().order(&order).await?.status;
                if status.was_paid() && status != OrderStatus::Refunded {
                    // The request's key, scoped by caller: a retry is the same refund.
                    let key = format!("{}:{}", caller.key_id, req.key.as_str());
                    payments
                        .calls
                        .call("refund", |p| p.refund(reference, &key))
                        .await
                        .map_err(|e| ApiError::provider(&e))?;
                }
            }
        }
    }
    command_on(&state, &caller, order_id(&id), req, |order, body| {
        Ok(Command::Refund {
            order,
            restock: body.restock,
        })
    })
    .await
}

#[utoipa::path(post, path = "/v1/orders/{id}/transfer", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = HandOverBody,
    responses((status = 200, description = "Moved, its stock with it", body = super::OrderBody),
              (status = 409, description = "Short at the target (every short line named), already there, or not movable in its status", body = crate::openapi::Problem),
              (status = 422, description = "Unknown location", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn hand_over(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<HandOverBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let order = order_id(&id);
    let state = &state;
    let written = command_from(state, &caller, req, |body| async move {
        let order = order?;
        let to = crate::routes::locations::find(state, "to", &body.to).await?;
        Ok(Command::HandOver { order, to })
    })
    .await?;
    Ok(written.response)
}

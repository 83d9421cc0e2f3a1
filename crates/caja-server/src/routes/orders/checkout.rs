//! `POST /v1/orders`: a checkout, the hot path of a flash sale.

use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use caja_core::auth::Action;
use caja_store::writer::Verdict;

use super::bodies::CreateOrder;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::idempotent::{command_from, Idempotent, Written};
use crate::routes::locations::selling_at;
use crate::AppState;

#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "One fresh value per checkout, repeated on retries")),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "Created, stock reserved", body = super::OrderBody),
        (status = 404, description = "No such hold (an order of a hold)", body = crate::openapi::Problem),
        (status = 409, description = "Out of stock (every short line listed), or key in flight", body = crate::openapi::Problem),
        (status = 422, description = "Invalid, unknown product, amount too large or key reused", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    req: Idempotent<CreateOrder>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let result = checkout(&state, &caller, req).await;
    // Counted once per request that decided something now, from the decision itself:
    // never for a replay.
    match &result {
        Ok(Written {
            verdict: Some(Verdict::Done),
            ..
        }) => metrics::counter!("caja_orders_created_total").increment(1),
        Ok(Written {
            verdict: Some(Verdict::Refused(kind)),
            ..
        }) => metrics::counter!("caja_orders_refused_total", "reason" => *kind).increment(1),
        Ok(Written {
            verdict: None | Some(Verdict::Unchanged),
            ..
        }) => {}
        Err(e) => metrics::counter!("caja_orders_refused_total", "reason" => e.kind()).increment(1),
    }
    metrics::histogram!("caja_checkout_duration_seconds").record(started.elapsed().as_secs_f64());
    Ok(result?.response)
}

async fn checkout(
    state: &AppState,
    caller: &Caller,
    req: Idempotent<CreateOrder>,
) -> ApiResult<Written> {
    // Staff sell; a buyer's public key may only turn its own hold into an order.
    caller.require(Action::Buy)?;
    let buyer = !caller.role.may(Action::Sell);
    command_from(state, caller, req, |body| async move {
        // Naming no location costs no lookup: the hot path stays one write.
        let at = selling_at(state, caller, body.location.as_deref()).await?;
        Ok(body.command(state, buyer, at)?)
    })
    .await
}

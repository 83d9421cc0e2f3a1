//! `/v1/products/{id}/stock-movements`: the stock ledger. Stock changes only here (and
//! through orders), one row per movement.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::ids::ProductId;
use caja_core::ledger::{self, Reason};
use caja_core::page::PageLimit;
use caja_core::text;
use caja_store::{MoveRefusal, Movement};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{claim, finish, refuse, Claimed, Idempotent};
use crate::json::ApiQuery;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/products/{id}/stock-movements", get(list).post(create))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMovement {
    /// Units in (positive) or out (negative).
    pub delta: i64,
    /// restock, correction, damage or return.
    pub reason: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementBody {
    pub id: i64,
    pub product_id: String,
    pub delta: i64,
    pub reason: String,
    pub note: Option<String>,
    pub order_id: Option<String>,
    /// The product's stock right after this movement.
    pub stock_after: i64,
    pub created_at: String,
}

impl From<&Movement> for MovementBody {
    fn from(m: &Movement) -> Self {
        Self {
            id: m.id,
            product_id: m.product_id.to_string(),
            delta: m.delta,
            reason: m.reason.to_string(),
            note: m.note.clone(),
            order_id: m.order_id.clone(),
            stock_after: m.stock_after,
            created_at: caja_core::time::format(&m.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementPage {
    pub data: Vec<MovementBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub after: Option<String>,
    pub limit: Option<i64>,
}

fn product_id(raw: &str) -> ApiResult<ProductId> {
    ProductId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no product {raw}")))
}

#[utoipa::path(post, path = "/v1/products/{id}/stock-movements", tag = "stock",
    params(("id" = String, Path, description = "Product id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = CreateMovement,
    responses((status = 201, description = "Recorded", body = MovementBody),
              (status = 409, description = "Would take stock below zero, or the product is archived", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<CreateMovement>,
) -> ApiResult<Response> {
    caller.require(Action::ManageStock)?;
    let (id, delta, reason, note) = match movement(&id, &req.body) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(&state, &caller, &req, e).await,
    };
    let note = note.as_deref();
    let mut work = match claim(&state, &caller, &req).await? {
        Claimed::Replay(r) => return Ok(r),
        Claimed::Fresh(w) => w,
    };
    let response = match work.move_stock(&id, delta, reason, note).await? {
        Ok((movement, _product)) => {
            (StatusCode::CREATED, Json(MovementBody::from(&movement))).into_response()
        }
        Err(MoveRefusal::NotFound) => ApiError::not_found("no such product").into_response(),
        Err(MoveRefusal::Archived) => ApiError::new(
            StatusCode::CONFLICT,
            "archived",
            "Archived",
            "the product is archived and its stock cannot move",
        )
        .into_response(),
        Err(MoveRefusal::OutOfStock { available }) => ApiError::new(
            StatusCode::CONFLICT,
            "out-of-stock",
            "Out of stock",
            format!("only {available} in stock: stock never goes below zero"),
        )
        .with("available", available)
        .into_response(),
        Err(MoveRefusal::AboveLimit { current }) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "stock-limit",
            "Too much stock",
            format!(
                "stock is {current} and may not exceed {}",
                caja_core::product::Stock::MAX
            ),
        )
        .with("current", current)
        .into_response(),
    };
    finish(work, response).await
}

/// A movement request, parsed: product, delta, reason, note.
fn movement(
    id: &str,
    body: &CreateMovement,
) -> ApiResult<(ProductId, i64, Reason, Option<String>)> {
    Ok((
        product_id(id)?,
        ledger::parse_delta(body.delta)?,
        Reason::parse_manual(&body.reason)?,
        text::optional("note", body.note.as_deref(), 1000)?,
    ))
}

#[utoipa::path(get, path = "/v1/products/{id}/stock-movements", tag = "stock",
    params(("id" = String, Path, description = "Product id"), ListQuery),
    responses((status = 200, description = "The product's ledger, oldest first", body = MovementPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<MovementPage>> {
    caller.require(Action::ReadCatalog)?;
    let id = product_id(&id)?;
    state.store().product(&id).await?;
    let limit = PageLimit::parse(query.limit)
        .map_err(|e| ApiError::bad_request("invalid-query", e.to_string()))?;
    let after = query
        .after
        .as_deref()
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| {
            ApiError::bad_request("invalid-cursor", "after: not a cursor from this list")
        })?;
    let page = state.store().list_movements(&id, after, limit).await?;
    Ok(Json(MovementPage {
        data: page.items.iter().map(MovementBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

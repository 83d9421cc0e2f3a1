//! `/v1/products/{id}/stock-movements`: the stock ledger. Stock changes only here (and
//! through orders), one row per movement.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::ProductId;
use caja_core::ledger::Movement;
use caja_core::ledger::{self, Reason};
use caja_core::text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command, refuse, Idempotent};
use crate::json::{ApiQuery, PageQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/products/{id}/stock-movements", get(list).post(create))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMovement {
    /// Units in (positive) or out (negative); never 0.
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub delta: i64,
    /// restock, correction, damage or return.
    #[schema(pattern = "^(restock|correction|damage|return)$")]
    pub reason: String,
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
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
            order_id: m.order_id.as_ref().map(ToString::to_string),
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

fn product_id(raw: &str) -> ApiResult<ProductId> {
    ProductId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no product {raw}")))
}

#[utoipa::path(post, path = "/v1/products/{id}/stock-movements", tag = "stock",
    params(("id" = String, Path, description = "Product id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = CreateMovement,
    responses((status = 201, description = "Recorded", body = MovementBody),
              (status = 409, description = "Would take stock below zero, or the product is archived", body = crate::openapi::Problem),
              (status = 422, description = "Invalid movement, or stock would pass its limit", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<CreateMovement>,
) -> ApiResult<Response> {
    caller.require(Action::ManageStock)?;
    let scope = req.scope(&caller);
    let written = match req.body.and_then(|body| movement(&id, &body)) {
        Ok(cmd) => command(&state, &caller, Some(scope), cmd).await?,
        Err(refusal) => refuse(&state, scope, refusal).await?,
    };
    Ok(written.response)
}

/// A movement request, parsed into its command.
fn movement(id: &str, body: &CreateMovement) -> ApiResult<Command> {
    Ok(Command::MoveStock {
        product: product_id(id)?,
        delta: ledger::parse_delta(body.delta)?,
        reason: Reason::parse_manual(&body.reason)?,
        note: text::optional("note", body.note.as_deref(), 1000)?,
    })
}

#[utoipa::path(get, path = "/v1/products/{id}/stock-movements", tag = "stock",
    params(("id" = String, Path, description = "Product id"), PageQuery),
    responses((status = 200, description = "The product's ledger, oldest first", body = MovementPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<MovementPage>> {
    caller.require(Action::ReadCatalog)?;
    let id = product_id(&id)?;
    state.store().product(&id).await?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), str::parse::<i64>)?;
    let page = state.store().list_movements(&id, after, limit).await?;
    Ok(Json(MovementPage {
        data: page.items.iter().map(MovementBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

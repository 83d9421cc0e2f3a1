//! `/v1/products/{id}/stock-movements`: the stock ledger. Stock changes only here (and
//! through orders, tabs, holds and transfers), one row per movement. And
//! `/v1/products/{id}/stock`: what each location has.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::{LocationId, ProductId};
use caja_core::ledger::Movement;
use caja_core::ledger::{self, Reason};
use caja_core::text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command_from, Idempotent};
use crate::json::{ApiQuery, PageQuery};
use crate::routes::locations::{selling_at, LocationBody};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products/{id}/stock-movements", get(list).post(create))
        .route("/v1/products/{id}/stock", get(per_location))
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
    /// Where (a location's id or code): the key's location, or the default, when absent.
    #[schema(max_length = 64)]
    pub location: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementBody {
    pub id: i64,
    pub product_id: String,
    /// Where the units moved.
    pub location_id: String,
    pub delta: i64,
    pub reason: String,
    pub note: Option<String>,
    pub order_id: Option<String>,
    /// The transfer that sent or received them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// The product's stock right after this movement.
    pub stock_after: i64,
    pub created_at: String,
}

impl From<&Movement> for MovementBody {
    fn from(m: &Movement) -> Self {
        Self {
            id: m.id,
            product_id: m.product_id.to_string(),
            location_id: m.location_id.to_string(),
            delta: m.delta,
            reason: m.reason.to_string(),
            note: m.note.clone(),
            order_id: m.order_id.as_ref().map(ToString::to_string),
            transfer_id: m.transfer_id.as_ref().map(ToString::to_string),
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
    let (state, caller) = (&state, &caller);
    let written = command_from(state, caller, req, |body| async move {
        let at = selling_at(state, caller, body.location.as_deref()).await?;
        movement(&id, &body, at)
    })
    .await?;
    Ok(written.response)
}

/// A movement request at `at`, parsed into its command.
fn movement(id: &str, body: &CreateMovement, at: LocationId) -> ApiResult<Command> {
    Ok(Command::MoveStock {
        product: product_id(id)?,
        location: at,
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

/// One location's share of a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationStockBody {
    pub location: LocationBody,
    /// Sellable there now.
    pub stock: i64,
    /// On its way there (transfers in transit), not yet sellable.
    pub incoming: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockBody {
    pub product_id: String,
    /// What every location can sell, in total.
    pub stock: i64,
    /// Sent and not yet received: counted at no location.
    pub in_transit: i64,
    pub locations: Vec<LocationStockBody>,
}

#[utoipa::path(get, path = "/v1/products/{id}/stock", tag = "stock",
    params(("id" = String, Path, description = "Product id")),
    responses((status = 200, description = "The product's stock at every location (a key bound to a location sees its own)", body = StockBody),
              (status = 404, description = "No such product", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn per_location(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<StockBody>> {
    caller.require(Action::ReadCatalog)?;
    let view = state.store().stock_view(&product_id(&id)?).await?;
    let bound = crate::routes::locations::bound(&caller);
    let visible =
        |l: &caja_store::LocationStock| caja_core::location::may_sell_at(bound, &l.location.id);
    Ok(Json(StockBody {
        product_id: view.product_id.to_string(),
        stock: view.stock,
        in_transit: view.in_transit,
        locations: view
            .locations
            .iter()
            .filter(|l| visible(l))
            .map(|l| LocationStockBody {
                location: LocationBody::from(&l.location),
                stock: l.stock,
                incoming: l.incoming,
            })
            .collect(),
    }))
}

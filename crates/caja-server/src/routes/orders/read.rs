//! Reading orders: one by id, and the list by status.

use axum::extract::{Path, State};
use axum::Json;
use caja_core::auth::Action;
use caja_core::ids::OrderId;

use super::bodies::{order_id, ListQuery, OrderBody, OrderPage};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{invalid_query, ApiQuery};
use crate::AppState;

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = super::OrderBody),
              (status = 404, description = "No such order", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderBody>> {
    caller.require(Action::ReadOrders)?;
    let order = state.store().order(&order_id(&id)?).await?;
    Ok(Json(OrderBody::from(&order)))
}

#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    params(ListQuery),
    responses((status = 200, description = "Orders in creation order", body = super::OrderPage),
              (status = 400, description = "Bad status, cursor or limit", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    caller.require(Action::ReadOrders)?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), |a| {
        OrderId::parse("after", a)
    })?;
    let status = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(invalid_query)?;
    let page = state
        .store()
        .list_orders(status, after.as_ref(), limit)
        .await?;
    Ok(Json(OrderPage {
        data: page.items.iter().map(OrderBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

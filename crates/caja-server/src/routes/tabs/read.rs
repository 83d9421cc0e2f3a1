//! Reading tabs: one by id (with what it would bill if closed now), and the list.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use caja_core::auth::Action;
use caja_core::ids::TabId;

use super::bodies::{ListQuery, TabBody, TabPage};
use super::tab_id;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{invalid_query, ApiQuery};
use crate::versions::with_etag;
use crate::AppState;

#[utoipa::path(get, path = "/v1/tabs/{id}", tag = "tabs",
    params(("id" = String, Path, description = "Tab id")),
    responses((status = 200, description = "The tab, its items and periods, and what it would bill if closed now", body = TabBody, headers(("ETag" = String))),
              (status = 404, description = "No such tab", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ReadOrders)?;
    let tab = state.store().tab(&tab_id(&id)?).await?;
    Ok(with_etag(
        TabBody::at(&tab, state.store().now()),
        tab.version,
    ))
}

#[utoipa::path(get, path = "/v1/tabs", tag = "tabs",
    params(ListQuery),
    responses((status = 200, description = "Tabs in opening order", body = TabPage),
              (status = 400, description = "Bad status, resource, cursor or limit", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<TabPage>> {
    caller.require(Action::ReadOrders)?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), |a| {
        TabId::parse("after", a)
    })?;
    let status = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(invalid_query)?;
    let resource = query
        .resource
        .as_deref()
        .map(super::bodies::resource)
        .transpose()
        .map_err(invalid_query)?;
    let page = state
        .store()
        .list_tabs(status, resource.as_deref(), after.as_ref(), limit)
        .await?;
    let now = state.store().now();
    Ok(Json(TabPage {
        data: page.items.iter().map(|t| TabBody::at(t, now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

//! Opening, adding and removing items, pausing and resuming, closing and voiding: each one
//! command on the tab.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::{ProductId, TabItemId};
use caja_core::DomainError;

use super::bodies::{AddItem, CloseTab, OpenTab, VoidTab};
use super::tab_id;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command, command_from, command_on, Idempotent};
use crate::routes::locations::selling_at;
use crate::routes::orders::EmptyBody;
use crate::versions::if_match;
use crate::AppState;

#[utoipa::path(post, path = "/v1/tabs", tag = "tabs",
    params(("Idempotency-Key" = String, Header, description = "One fresh value per tab, repeated on retries")),
    request_body = OpenTab,
    responses((status = 201, description = "Opened; the clock runs", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "Another open tab holds the resource (named in `tab_id`)", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    req: Idempotent<OpenTab>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let (state, caller) = (&state, &caller);
    let written = command_from(state, caller, req, |body| async move {
        let at = selling_at(state, caller, body.location.as_deref()).await?;
        Ok(Command::OpenTab(body.parse(state.config(), at)?))
    })
    .await?;
    Ok(written.response)
}

#[utoipa::path(post, path = "/v1/tabs/{id}/items", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("Idempotency-Key" = String, Header, description = "One fresh value per item, repeated on retries")),
    request_body = AddItem,
    responses((status = 201, description = "Added, stock reserved; the tab as it is now", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "Out of stock, tab not open, or tab full", body = crate::openapi::Problem),
              (status = 422, description = "Unknown product or bad quantity", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<AddItem>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let max = state.config().order_limits.max_quantity;
    command_on(&state, &caller, tab_id(&id), req, |tab, body| {
        let product = ProductId::parse("product_id", &body.product_id)?;
        if !(1..=max).contains(&body.quantity) {
            return Err(
                DomainError::invalid("quantity", format!("must be between 1 and {max}")).into(),
            );
        }
        Ok(Command::AddTabItem {
            tab,
            product,
            quantity: body.quantity,
            note: caja_core::text::optional("note", body.note.as_deref(), 200)?,
            seller_bound: crate::routes::locations::bound(&caller).cloned(),
        })
    })
    .await
}

#[utoipa::path(delete, path = "/v1/tabs/{id}/items/{item_id}", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("item_id" = String, Path, description = "Item id"),
           ("If-Match" = String, Header, description = "The tab's ETag last read")),
    responses((status = 200, description = "Taken off, stock released; the tab as it is now", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "The tab is not open", body = crate::openapi::Problem),
              (status = 412, description = "Stale If-Match", body = crate::openapi::Problem),
              (status = 428, description = "If-Match missing", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn remove_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let tab = tab_id(&id)?;
    let item = TabItemId::parse("item_id", &item)
        .map_err(|_| ApiError::not_found(format!("no item {item} on the tab")))?;
    let expected = if_match(&headers)?;
    let cmd = Command::RemoveTabItem {
        tab,
        item,
        expected,
    };
    Ok(command(&state, &caller, None, cmd).await?.response)
}

#[utoipa::path(post, path = "/v1/tabs/{id}/pause", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "The clock stopped", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "Already paused, or not open", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    command_on(&state, &caller, tab_id(&id), req, |tab, _| {
        Ok(Command::PauseTab { tab })
    })
    .await
}

#[utoipa::path(post, path = "/v1/tabs/{id}/resume", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "The clock runs again", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "Not paused, or not open", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    command_on(&state, &caller, tab_id(&id), req, |tab, _| {
        Ok(Command::ResumeTab { tab })
    })
    .await
}

#[utoipa::path(post, path = "/v1/tabs/{id}/close", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = CloseTab,
    responses((status = 201, description = "Closed into one order awaiting payment: its items plus its time line", body = crate::routes::orders::OrderBody),
              (status = 409, description = "Not open (a closed tab's problem names its `order_id`), or nothing to charge", body = crate::openapi::Problem),
              (status = 422, description = "Bad tip, or amount too large", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<CloseTab>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let store = state.config().currency;
    command_on(&state, &caller, tab_id(&id), req, |tab, body| {
        Ok(Command::CloseTab {
            tab,
            tip: body.tip(store)?,
        })
    })
    .await
}

#[utoipa::path(post, path = "/v1/tabs/{id}/void", tag = "tabs",
    params(("id" = String, Path, description = "Tab id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = VoidTab,
    responses((status = 200, description = "Voided: every item's stock released, nothing charged", body = super::TabBody, headers(("ETag" = String))),
              (status = 409, description = "Not open", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn void(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<VoidTab>,
) -> ApiResult<Response> {
    caller.require(Action::VoidTab)?;
    command_on(&state, &caller, tab_id(&id), req, |tab, body| {
        Ok(Command::VoidTab {
            tab,
            reason: body.reason()?,
        })
    })
    .await
}

//! `/v1/transfers`: stock sent from one location to another, at once or in transit until
//! it is received.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::{ProductId, TransferId};
use caja_core::location::{NewTransfer, Transfer, TransferStatus};
use caja_core::text;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::locations::find;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command_from, command_on, Idempotent};
use crate::json::{invalid_query, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/transfers", get(list).post(create))
        .route("/v1/transfers/{id}", get(read))
        .route("/v1/transfers/{id}/receive", post(receive))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTransfer {
    #[schema(pattern = "^prod_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    pub product_id: String,
    /// The location it leaves (id or code).
    #[schema(max_length = 64)]
    pub from: String,
    /// The location it goes to (id or code).
    #[schema(max_length = 64)]
    pub to: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub note: Option<String>,
    /// `true`: the units travel (sellable at neither end) until `POST …/receive`. Default:
    /// they arrive at once.
    #[serde(default)]
    pub in_transit: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferBody {
    #[schema(example = "trf_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    pub product_id: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    pub note: Option<String>,
    /// in_transit or received.
    pub status: String,
    pub created_at: String,
    pub received_at: Option<String>,
}

impl From<&Transfer> for TransferBody {
    fn from(t: &Transfer) -> Self {
        Self {
            id: t.id.to_string(),
            product_id: t.product_id.to_string(),
            from: t.from.to_string(),
            to: t.to.to_string(),
            quantity: t.quantity,
            note: t.note.clone(),
            status: t.status.as_str().to_owned(),
            created_at: caja_core::time::format(&t.created_at),
            received_at: t.received_at.as_ref().map(caja_core::time::format),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferPage {
    pub data: Vec<TransferBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    /// Only transfers in this status: in_transit or received.
    pub status: Option<String>,
    /// Only transfers of this product.
    pub product_id: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

fn transfer_id(raw: &str) -> ApiResult<TransferId> {
    TransferId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no transfer {raw}")))
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers",
    params(("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = CreateTransfer,
    responses(
        (status = 201, description = "Sent (and received, unless in transit)", body = TransferBody),
        (status = 404, description = "No such product", body = crate::openapi::Problem),
        (status = 409, description = "Not that much at the source (named), or a ticket section", body = crate::openapi::Problem),
        (status = 422, description = "Invalid, or an unknown location", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    req: Idempotent<CreateTransfer>,
) -> ApiResult<Response> {
    caller.require(Action::ManageStock)?;
    let state = &state;
    let written = command_from(state, &caller, req, |body| async move {
        Ok(Command::Transfer(parse(state, &body).await?))
    })
    .await?;
    Ok(written.response)
}

async fn parse(state: &AppState, body: &CreateTransfer) -> ApiResult<NewTransfer> {
    let product_id = ProductId::parse("product_id", &body.product_id)?;
    let note = text::optional("note", body.note.as_deref(), 1000)?;
    let from = find(state, "from", &body.from).await?;
    let to = find(state, "to", &body.to).await?;
    Ok(NewTransfer {
        product_id,
        from,
        to,
        quantity: body.quantity,
        note,
        in_transit: body.in_transit,
    }
    .check()?)
}

#[utoipa::path(post, path = "/v1/transfers/{id}/receive", tag = "transfers",
    params(("id" = String, Path, description = "Transfer id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses(
        (status = 200, description = "Received: its units are sellable at the target", body = TransferBody),
        (status = 404, description = "No such transfer", body = crate::openapi::Problem),
        (status = 409, description = "Received already", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<crate::routes::orders::EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::ManageStock)?;
    command_on(&state, &caller, transfer_id(&id), req, |transfer, _| {
        Ok(Command::ReceiveTransfer { transfer })
    })
    .await
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers",
    params(("id" = String, Path, description = "Transfer id")),
    responses(
        (status = 200, description = "The transfer", body = TransferBody),
        (status = 404, description = "No such transfer", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TransferBody>> {
    caller.require(Action::ReadCatalog)?;
    let transfer = state.store().transfer(&transfer_id(&id)?).await?;
    Ok(Json(TransferBody::from(&transfer)))
}

#[utoipa::path(get, path = "/v1/transfers", tag = "transfers",
    params(TransferQuery),
    responses(
        (status = 200, description = "Transfers in creation order", body = TransferPage),
        (status = 400, description = "Bad status, product, cursor or limit", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TransferQuery>,
) -> ApiResult<Json<TransferPage>> {
    caller.require(Action::ReadCatalog)?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), |a| {
        TransferId::parse("after", a)
    })?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<TransferStatus>)
        .transpose()
        .map_err(invalid_query)?;
    let product = query
        .product_id
        .as_deref()
        .map(|p| ProductId::parse("product_id", p))
        .transpose()
        .map_err(invalid_query)?;
    let page = state
        .store()
        .list_transfers(status, product.as_ref(), after.as_ref(), limit)
        .await?;
    Ok(Json(TransferPage {
        data: page.items.iter().map(TransferBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

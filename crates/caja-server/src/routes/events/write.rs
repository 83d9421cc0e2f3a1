//! Creating events and holding places: each one command on the writer, idempotent.

use axum::extract::{Path, State};
use axum::response::Response;
use caja_core::auth::Action;
use caja_core::command::Command;

use super::bodies::{CreateEvent, PlaceHold};
use super::event_id;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::idempotent::{command, command_on, refuse, Idempotent};
use crate::AppState;

#[utoipa::path(post, path = "/v1/events", tag = "box office",
    params(("Idempotency-Key" = String, Header, description = "One fresh value per event, repeated on retries")),
    request_body = CreateEvent,
    responses((status = 201, description = "Created, on sale from sale_starts_at", body = super::EventBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    req: Idempotent<CreateEvent>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let scope = req.scope(&caller);
    let currency = state.config().currency;
    let written = match req.body.and_then(|b| Ok(b.parse(currency)?)) {
        Ok(new) => command(&state, &caller, Some(scope), Command::CreateEvent(new)).await?,
        Err(refusal) => refuse(&state, scope, refusal).await?,
    };
    Ok(written.response)
}

#[utoipa::path(post, path = "/v1/events/{id}/holds", tag = "box office",
    params(("id" = String, Path, description = "Event id"),
           ("Idempotency-Key" = String, Header, description = "One fresh value per hold, repeated on retries")),
    request_body = PlaceHold,
    responses((status = 201, description = "Held until expires_at", body = super::HoldBody),
              (status = 409, description = "Not available (what is short, and which seats are taken), or the sale is not open", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<PlaceHold>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    command_on(&state, &caller, event_id(&id), req, |event, body| {
        Ok(Command::PlaceHold {
            event,
            request: body.parse()?,
        })
    })
    .await
}

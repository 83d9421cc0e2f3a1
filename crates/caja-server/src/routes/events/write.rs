//! Creating events and holding places: each one command on the writer, idempotent.

use axum::extract::{Path, State};
use axum::response::Response;
use caja_core::auth::Action;
use caja_core::command::Command;

use axum::http::StatusCode;
use caja_core::box_office::Admission;

use super::bodies::{CreateEvent, JoinQueue, PatchEvent, PlaceHold};
use super::event_id;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{command, command_on, refuse, Idempotent};
use crate::json::ApiJson;
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

#[utoipa::path(patch, path = "/v1/events/{id}", tag = "box office",
    params(("id" = String, Path, description = "Event id"),
           ("If-Match" = String, Header, description = "The ETag last read")),
    request_body = PatchEvent,
    responses((status = 200, description = "Updated", body = super::EventBody, headers(("ETag" = String))),
              (status = 409, description = "The event is cancelled", body = crate::openapi::Problem),
              (status = 412, description = "Stale If-Match", body = crate::openapi::Problem),
              (status = 428, description = "If-Match missing", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<PatchEvent>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let event = event_id(&id)?;
    let expected = crate::versions::if_match(&headers)?;
    let update = Command::UpdateEvent {
        event,
        expected,
        patch: body.parse()?,
    };
    Ok(command(&state, &caller, None, update).await?.response)
}

#[utoipa::path(post, path = "/v1/events/{id}/cancel", tag = "box office",
    params(("id" = String, Path, description = "Event id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "Cancelled: no more holds, orders of holds or joins; active holds gave their places back", body = super::EventBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<crate::routes::orders::EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    command_on(&state, &caller, event_id(&id), req, |event, _| {
        Ok(Command::CancelEvent { event })
    })
    .await
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
    caller.require(Action::Buy)?;
    let buyer = caller.role == caja_core::auth::Role::Public;
    let now = state.store().now();
    let keys = state.admission_keys();
    command_on(&state, &caller, event_id(&id), req, |event, body| {
        let admission = match (&body.admission, &body.client_ref) {
            (None, _) => None,
            (Some(token), Some(client_ref)) => {
                let client_ref = caja_core::waiting_room::client_ref(client_ref)?;
                let ticket = caja_core::waiting_room::verify_admission(
                    keys,
                    &event,
                    &client_ref,
                    token,
                    now,
                )
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "admission-invalid",
                        "Admission not valid",
                        e.to_string(),
                    )
                })?;
                Some(Admission { ticket, client_ref })
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "admission",
                    "send the admission token with the client_ref it was issued for",
                ))
            }
        };
        let client_ref = body
            .client_ref
            .as_deref()
            .map(caja_core::waiting_room::client_ref)
            .transpose()?;
        if buyer && client_ref.is_none() {
            return Err(ApiError::invalid_field(
                "client_ref",
                "a buyer's hold names the buyer's own client_ref",
            ));
        }
        Ok(Command::PlaceHold {
            event,
            request: body.parse()?,
            admission,
            client_ref,
        })
    })
    .await
}

#[utoipa::path(post, path = "/v1/events/{id}/queue", tag = "box office",
    params(("id" = String, Path, description = "Event id")),
    request_body = JoinQueue,
    responses((status = 201, description = "In the line (a client_ref that already is gets its ticket, 200)", body = super::TicketBody),
              (status = 409, description = "The event has no waiting room, or its sale is over", body = crate::openapi::Problem),
              (status = 503, description = "The line is full: nothing was stored; see Retry-After", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn join_queue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<JoinQueue>,
) -> ApiResult<Response> {
    caller.require(Action::Buy)?;
    let event = event_id(&id)?;
    let client_ref = caja_core::waiting_room::client_ref(&body.client_ref)?;
    // Idempotent by client_ref, not by key: nothing is stored for a refused join.
    let written = command(
        &state,
        &caller,
        None,
        Command::JoinQueue { event, client_ref },
    )
    .await?;
    Ok(written.response)
}

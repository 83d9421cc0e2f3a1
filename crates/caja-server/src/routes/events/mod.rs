//! `/v1/events`: the box office. Events with sections (a floor with a capacity, or numbered
//! seats), their availability, and holds that keep places for a buyer until they become an
//! order (`POST /v1/orders {"hold_id"}`) or run out of time.

mod bodies;
mod write;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::ids::{EventId, HoldId};

pub use bodies::{
    AvailabilityBody, CreateEvent, EventBody, EventPage, HoldBody, JoinQueue, NewSectionBody,
    PatchEvent, PlaceHold, SectionAvailabilityBody, SectionBody, TicketBody, WaitingRoomBody,
};
pub use write::{
    __path_cancel, __path_create, __path_join_queue, __path_place_hold, __path_update, cancel,
    create, join_queue, place_hold, update,
};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list).post(create))
        .route("/v1/events/{id}", get(read).patch(update))
        .route("/v1/events/{id}/cancel", post(cancel))
        .route("/v1/events/{id}/availability", get(availability))
        .route("/v1/events/{id}/holds", post(place_hold))
        .route("/v1/events/{id}/queue", post(join_queue))
        .route("/v1/events/{id}/queue/{ticket}", get(read_ticket))
        .route("/v1/holds/{id}", get(read_hold))
}

fn event_id(raw: &str) -> ApiResult<EventId> {
    EventId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no event {raw}")))
}

#[utoipa::path(get, path = "/v1/events", tag = "box office",
    params(crate::json::PageQuery),
    responses((status = 200, description = "Events, oldest first", body = EventPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<crate::json::PageQuery>,
) -> ApiResult<Json<EventPage>> {
    caller.require(Action::ReadEvents)?;
    let (limit, after) =
        crate::json::page(q.limit, q.after.as_deref(), |a| EventId::parse("after", a))?;
    let page = state
        .store()
        .list_ticket_events(after.as_ref(), limit)
        .await?;
    Ok(Json(EventPage {
        data: page.items.iter().map(EventBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/events/{id}", tag = "box office",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "The event and its sections", body = EventBody, headers(("ETag" = String)))),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    caller.require(Action::ReadEvents)?;
    let event = state.store().ticket_event(&event_id(&id)?).await?;
    Ok(crate::versions::with_etag(
        EventBody::from(&event),
        event.version,
    ))
}

#[utoipa::path(get, path = "/v1/events/{id}/availability", tag = "box office",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Per section: capacity, held, sold, free, and the free seats", body = AvailabilityBody)),
    security(("bearer" = [])))]
pub async fn availability(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AvailabilityBody>> {
    caller.require(Action::ReadEvents)?;
    let event = state.store().ticket_event(&event_id(&id)?).await?;
    let sections = state.store().availability(&event).await?;
    Ok(Json(AvailabilityBody::of(&event, sections)))
}

#[utoipa::path(get, path = "/v1/holds/{id}", tag = "box office",
    params(("id" = String, Path, description = "Hold id")),
    responses((status = 200, description = "The hold", body = HoldBody)),
    security(("bearer" = [])))]
pub async fn read_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<HoldBody>> {
    caller.require(Action::ReadEvents)?;
    let id = HoldId::parse("id", &id).map_err(|_| ApiError::not_found(format!("no hold {id}")))?;
    let hold = state.store().hold(&id).await?;
    Ok(Json(HoldBody::of(&hold)))
}

#[utoipa::path(get, path = "/v1/events/{id}/queue/{ticket}", tag = "box office",
    params(("id" = String, Path, description = "Event id"), ("ticket" = String, Path, description = "Ticket id")),
    responses((status = 200, description = "Where the ticket stands; once admitted, its admission token", body = TicketBody)),
    security(("bearer" = [])))]
pub async fn read_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, ticket)): Path<(String, String)>,
) -> ApiResult<Json<TicketBody>> {
    use caja_core::waiting_room::{admission_token, standing, Standing};
    caller.require(Action::Buy)?;
    let event = event_id(&id)?;
    let not_found = || ApiError::not_found(format!("no ticket {ticket} in event {id}"));
    let ticket_id = caja_core::ids::TicketId::parse("ticket", &ticket).map_err(|_| not_found())?;
    let (room, t) = match state.store().queue_ticket(&ticket_id).await {
        Err(caja_store::StoreError::NotFound) => return Err(not_found()),
        other => other?,
    };
    if t.event_id != event {
        return Err(not_found());
    }
    let now = state.store().now();
    let mut body = TicketBody::joined(&t);
    match standing(&room.config, t.admit_at, now) {
        Standing::Drawing => body.admit_at = None,
        Standing::Waiting { position, admit_at } => {
            body.status = "waiting".into();
            body.position = Some(position);
            // Rounded up: a wait of 29.98 s is 30 s.
            let micros = (admit_at - now).num_microseconds().unwrap_or(i64::MAX);
            body.estimated_wait_seconds = Some(micros.saturating_add(999_999).max(0) / 1_000_000);
        }
        Standing::Admitted { until } => {
            body.status = "admitted".into();
            body.admission = Some(admission_token(
                &state.admission_keys()[0],
                &event,
                &t.id,
                &t.client_ref,
                until,
            ));
            body.admission_expires_at = Some(caja_core::time::format(&until));
        }
        Standing::Expired => body.status = "expired".into(),
    }
    Ok(Json(body))
}

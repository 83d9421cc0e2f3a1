//! `/v1/webhook-subscriptions` (admin): where caja sends change-feed events, signed, at
//! least once and in order, and the log of every delivery. The secret is shown once, when
//! the subscription is created.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::ids::SubscriptionId;
use caja_core::text;
use caja_core::webhooks::EventTypes;
use caja_store::webhooks::{Delivery, NewSubscription, Subscription};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery, PageQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhook-subscriptions", get(list).post(create))
        .route("/v1/webhook-subscriptions/{id}", get(read).delete(remove))
        .route("/v1/webhook-subscriptions/{id}/enable", post(enable))
        .route("/v1/webhook-subscriptions/{id}/disable", post(disable))
        .route("/v1/webhook-subscriptions/{id}/replay", post(replay))
        .route("/v1/webhook-subscriptions/{id}/deliveries", get(deliveries))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// Where deliveries are POSTed (http or https).
    #[schema(max_length = 2000)]
    pub url: String,
    /// Event types: exact (`order.paid`), a family (`order.*`), or `*`.
    pub event_types: Vec<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionBody {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// active or disabled.
    pub status: String,
    pub disabled_reason: Option<String>,
    /// The last change-feed seq delivered (or passed over).
    pub after_seq: i64,
    /// Failed attempts in the current streak, and when it began.
    pub failing_attempts: i64,
    pub failing_since: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    /// Only in the answer to the creation: sign-check deliveries with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SubscriptionBody {
    fn of(s: Subscription, with_secret: bool) -> Self {
        let fmt = caja_core::time::format;
        Self {
            id: s.id.to_string(),
            url: s.url,
            event_types: s.event_types,
            description: s.description,
            status: if s.active { "active" } else { "disabled" }.to_owned(),
            disabled_reason: s.disabled_reason,
            after_seq: s.after_seq,
            failing_attempts: s.attempts,
            failing_since: s.failing_since.as_ref().map(fmt),
            next_attempt_at: s.next_attempt_at.as_ref().map(fmt),
            created_at: fmt(&s.created_at),
            secret: with_secret.then_some(s.secret),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    pub data: Vec<SubscriptionBody>,
    pub next_cursor: Option<String>,
}

fn subscription_id(raw: &str) -> ApiResult<SubscriptionId> {
    SubscriptionId::parse("id", raw)
        .map_err(|_| ApiError::not_found(format!("no webhook subscription {raw}")))
}

#[utoipa::path(post, path = "/v1/webhook-subscriptions", tag = "webhooks",
    request_body = CreateSubscription,
    responses((status = 201, description = "Subscribed from the next event on; the secret is shown only here", body = SubscriptionBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSubscription>,
) -> ApiResult<Response> {
    caller.require(Action::Administer)?;
    let url = body.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.len() > 2000
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
        || reqwest::Url::parse(url).is_err()
    {
        return Err(ApiError::invalid_field(
            "url",
            "must be an http:// or https:// URL of at most 2000 characters",
        ));
    }
    let types = EventTypes::parse(&body.event_types)?;
    let description = text::optional("description", body.description.as_deref(), 200)?;
    let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
    let created = state
        .store()
        .create_subscription(&NewSubscription {
            url: url.to_owned(),
            event_types: types.as_slice().to_vec(),
            description,
            secret,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionBody::of(created, true)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/webhook-subscriptions", tag = "webhooks", params(PageQuery),
    responses((status = 200, description = "Subscriptions, oldest first", body = SubscriptionPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<SubscriptionPage>> {
    caller.require(Action::Administer)?;
    let (limit, after) = crate::json::page(q.limit, q.after.as_deref(), |a| {
        SubscriptionId::parse("after", a)
    })?;
    let page = state
        .store()
        .list_subscriptions(after.as_ref(), limit)
        .await?;
    Ok(Json(SubscriptionPage {
        data: page
            .items
            .into_iter()
            .map(|s| SubscriptionBody::of(s, false))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/webhook-subscriptions/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "The subscription", body = SubscriptionBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionBody>> {
    caller.require(Action::Administer)?;
    let sub = state.store().subscription(&subscription_id(&id)?).await?;
    Ok(Json(SubscriptionBody::of(sub, false)))
}

#[utoipa::path(delete, path = "/v1/webhook-subscriptions/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted, with its delivery log")),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Administer)?;
    state
        .store()
        .delete_subscription(&subscription_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/webhook-subscriptions/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "Active again, its failure streak forgotten; it resumes where it stopped", body = SubscriptionBody)),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionBody>> {
    caller.require(Action::Administer)?;
    let sub = state
        .store()
        .set_subscription(&subscription_id(&id)?, true, None, None)
        .await?;
    Ok(Json(SubscriptionBody::of(sub, false)))
}

#[utoipa::path(post, path = "/v1/webhook-subscriptions/{id}/disable", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "Disabled: nothing is delivered until it is enabled", body = SubscriptionBody)),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionBody>> {
    caller.require(Action::Administer)?;
    let sub = state
        .store()
        .set_subscription(
            &subscription_id(&id)?,
            false,
            None,
            Some("disabled by an admin"),
        )
        .await?;
    Ok(Json(SubscriptionBody::of(sub, false)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Deliver again every event after this seq (0: everything the feed still holds).
    #[schema(minimum = 0)]
    pub after: i64,
}

#[utoipa::path(post, path = "/v1/webhook-subscriptions/{id}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    request_body = Replay,
    responses((status = 200, description = "Moved back (and enabled): the events after `after` are delivered again, in order, with their original delivery ids", body = SubscriptionBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Replay>,
) -> ApiResult<Json<SubscriptionBody>> {
    caller.require(Action::Administer)?;
    let head = state.store().change_horizon().await?.last;
    if !(0..=head).contains(&body.after) {
        return Err(ApiError::invalid_field(
            "after",
            format!("must be between 0 and the newest seq, {head}"),
        ));
    }
    let sub = state
        .store()
        .set_subscription(&subscription_id(&id)?, true, Some(body.after), None)
        .await?;
    Ok(Json(SubscriptionBody::of(sub, false)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    /// What the receiver saw in `caja-webhook-id`.
    pub id: String,
    pub seq: i64,
    pub event_type: String,
    pub attempts: i64,
    /// delivered, failing (to be retried) or abandoned (the subscription gave up).
    pub status: String,
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub first_attempt_at: String,
    pub last_attempt_at: String,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        let fmt = caja_core::time::format;
        Self {
            id: d.id,
            seq: d.seq,
            event_type: d.event_type,
            attempts: d.attempts,
            status: d.status,
            response_status: d.response_status,
            error: d.error,
            first_attempt_at: fmt(&d.first_attempt_at),
            last_attempt_at: fmt(&d.last_attempt_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryBody>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/webhook-subscriptions/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), PageQuery),
    responses((status = 200, description = "The delivery log, newest event first", body = DeliveryPage)),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    caller.require(Action::Administer)?;
    let id = subscription_id(&id)?;
    let (limit, before) = crate::json::page(q.limit, q.after.as_deref(), |a| {
        a.parse::<i64>().map_err(|_| ())
    })?;
    // A subscription that does not exist is 404, not an empty log.
    state.store().subscription(&id).await?;
    let page = state.store().deliveries(&id, before, limit).await?;
    Ok(Json(DeliveryPage {
        data: page.items.into_iter().map(DeliveryBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

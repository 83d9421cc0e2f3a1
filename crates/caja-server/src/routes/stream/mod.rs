//! `GET /v1/stream`: the change feed live, over WebSocket or Server-Sent Events.
//!
//! A browser cannot set headers on a WebSocket, so the route sits outside the header-auth
//! middleware: a WebSocket client sends its key in its first message (or in the upgrade's
//! `Authorization` header), an SSE client in `Authorization`. Either way the key is checked
//! by the same function as every other route at subscribe time, checked again whenever
//! some key is revoked (a revoked key's streams end), and never logged.
//!
//! WebSocket protocol (JSON text frames):
//! - client, first: `{"type":"subscribe","key":"…","topics":["orders"],"after":0}`
//! - server: `{"type":"subscribed","topics":[…],"after":N}`, then each event
//!   (`{"seq","type":"order.paid","id","data","at"}`), `{"type":"heartbeat","seq":N}` when
//!   idle, `{"type":"reset","resume_from":N}` when `after` is older than retention, and
//!   on a refusal or a slow consumer `{"type":"error",…}` followed by a close frame.
//!
//! The WebSocket side lives in [`ws`], Server-Sent Events in [`sse`].

mod sse;
mod ws;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use caja_core::auth::{ApiKeySecret, KeyHash};
use caja_core::feed::Topic;
use serde::Deserialize;
use serde_json::json;

use crate::accept::ConnectionSlot;
use crate::auth::{bearer, caller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::live::Subscription;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/stream", get(stream))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// SSE: comma-separated topics (none: every topic the key may see).
    pub topics: Option<String>,
    /// SSE: events after this seq (`Last-Event-ID` wins when both are sent).
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/stream", tag = "live", params(StreamQuery),
    responses(
        (status = 101, description = "WebSocket: send `{\"type\":\"subscribe\",\"key\",\"topics\",\"after\"}` first"),
        (status = 200, description = "Server-Sent Events (`Accept: text/event-stream`): `id` is the seq"),
        (status = 401, description = "No valid key", body = crate::openapi::Problem),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
    slot: Option<Extension<ConnectionSlot>>,
    ws: Option<ws::Upgrade>,
) -> ApiResult<Response> {
    let token = bearer(&headers).map(str::to_owned);
    if let Some(ws) = ws {
        // A key in the upgrade's header is checked now; otherwise in the first message.
        let preauth = match token {
            Some(t) => Some((
                caller(&state, Some(&t), addr.ip()).await?,
                Grant::new(&state, &t),
            )),
            None => None,
        };
        // Shutdown waits for the stream to send its close frame.
        let running = state.task_token();
        return Ok(ws.accept(move |conn| async move {
            ws::websocket(state, conn, preauth, addr).await;
            // The socket counted against the connection limit until now.
            drop((running, slot));
        }));
    }
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_sse {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "stream-transport",
            "Choose a transport",
            "open /v1/stream as a WebSocket, or send Accept: text/event-stream",
        ));
    }
    let who = caller(&state, token.as_deref(), addr.ip()).await?;
    let grant = Grant::new(&state, token.as_deref().unwrap_or_default());
    let topics = Topic::parse_list(q.topics.as_deref().unwrap_or(""), who.role)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::invalid_field("Last-Event-ID", "must be a seq (0 or more)")
                })
        })
        .transpose()?;
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::invalid_field(
            "after",
            "must be a seq (0 or more)",
        ));
    }
    let after = last_event_id.or(q.after).unwrap_or(0);
    let sub =
        Subscription::start(state.store().clone(), state.hub().clone(), topics, after).await?;
    Ok(sse::sse(state.clone(), grant, sub).into_response())
}

/// The key a stream was opened with, so a revocation while it is open ends it.
pub(super) struct Grant {
    hash: KeyHash,
    generation: u64,
}

impl Grant {
    pub(super) fn new(state: &AppState, token: &str) -> Self {
        Self {
            hash: ApiKeySecret::presented(token).hash(),
            generation: state.store().keys_generation(),
        }
    }

    /// The key generation this grant was last checked at.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// True once the key has been revoked. Looks only when some key changed.
    pub(super) async fn revoked(&mut self, state: &AppState) -> bool {
        let now = state.store().keys_generation();
        if now == self.generation {
            return false;
        }
        self.generation = now;
        match state.keys().find(state.store(), &self.hash).await {
            Ok(found) => found.is_none_or(|k| k.revoked_at.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-check a stream's key; keeping it open");
                false
            }
        }
    }
}

pub(super) fn revoked_notice() -> serde_json::Value {
    json!({"type": "error", "status": 401, "error": "unauthorized", "detail": "this API key has been revoked"})
}

pub(super) fn reset_notice(resume_from: i64) -> serde_json::Value {
    json!({"type": "reset", "resume_from": resume_from})
}

//! `GET /v1/changes`: the change feed by polling, for clients that cannot hold a stream
//! open. `?wait=` turns it into a long poll that answers as soon as a wanted event commits.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use caja_core::feed::{wanted, Topic};
use serde::Deserialize;
use tokio::time::Instant;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::AppState;

/// Most seconds a long poll may wait.
pub const MAX_WAIT: u64 = 25;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/changes", get(poll))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Events after this seq (0: from the first; 410 once retention removed any).
    pub after: Option<i64>,
    /// At most this many events (1–1000, default 100).
    pub limit: Option<i64>,
    /// Comma-separated topics: products, orders, stock, tabs, product:ID, order:ID, tab:ID.
    /// None: every topic the key may see.
    pub topics: Option<String>,
    /// Seconds to wait for an event when there is none yet (0–25).
    pub wait: Option<i64>,
}

#[utoipa::path(get, path = "/v1/changes", tag = "live", params(ChangesQuery),
    responses(
        (status = 200, description = "`{\"data\": [events], \"next_cursor\": \"SEQ\"}`: resume with `after=next_cursor`"),
        (status = 410, description = "`after` is older than retention: reload state, then resume from `resume_from`", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn poll(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<Response> {
    let topics = Topic::parse_list(q.topics.as_deref().unwrap_or(""), caller.role)?;
    let mut after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid_field("after", "must be a seq, 0 or more"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let wait = q.wait.unwrap_or(0);
    let Some(wait) = u64::try_from(wait).ok().filter(|w| *w <= MAX_WAIT) else {
        return Err(ApiError::invalid_field(
            "wait",
            "must be between 0 and 25 seconds",
        ));
    };
    // Stay inside the request timeout, with a second to answer.
    let wait = Duration::from_secs(wait).min(
        state
            .config()
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    );
    let horizon = state.store().change_horizon().await?;
    if after < horizon.pruned_through || after > horizon.last {
        return Err(pruned(horizon.last));
    }
    let deadline = Instant::now() + wait;
    // Subscribe before reading, so an event committed in between still wakes us.
    let mut live = state.hub().subscribe();
    let _waiting = (!wait.is_zero()).then(LongPoll::begin);
    loop {
        let page = state.store().changes_after(after, limit).await?;
        // Seqs have no gaps: a page that skips some means retention removed them meanwhile.
        if page.first().is_some_and(|c| c.seq != after + 1) {
            return Err(pruned(state.store().change_horizon().await?.last));
        }
        let full = page.len() as i64 == limit;
        let mut events = Vec::new();
        for change in page {
            after = change.seq;
            if wanted(&topics, &change.kind, &change.resource_id) {
                events.push(crate::live::Event::from(change).json);
            }
        }
        if !events.is_empty() || Instant::now() >= deadline {
            return Ok(envelope(&events, after));
        }
        if full {
            // A page of events for other topics: read on rather than wait.
            continue;
        }
        // Nothing wanted yet: wait for the next commit anywhere (or the deadline). A server
        // that begins to stop answers now, with what there is.
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, live.recv()) => {}
            _ = state.hub().stopped() => return Ok(envelope(&events, after)),
        }
    }
}

/// Counts a long poll in `caja_long_polls_waiting` while it is open.
struct LongPoll;

impl LongPoll {
    fn begin() -> Self {
        metrics::gauge!("caja_long_polls_waiting").increment(1.0);
        Self
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        metrics::gauge!("caja_long_polls_waiting").decrement(1.0);
    }
}

/// `after` names events no longer kept (or never committed here, as after a restore).
fn pruned(resume_from: i64) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "changes-pruned",
        "Events no longer kept",
        "the events after this cursor are no longer kept: reload your state, then poll from resume_from",
    )
    .with("resume_from", resume_from)
}

/// The list envelope, written by hand: every event is already rendered JSON.
fn envelope(events: &[Utf8Bytes], cursor: i64) -> Response {
    let events: Vec<&str> = events.iter().map(Utf8Bytes::as_str).collect();
    let body = format!(
        "{{\"data\":[{}],\"next_cursor\":\"{cursor}\"}}",
        events.join(",")
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

//! Per-request plumbing: a request id (the client's if sane, else a fresh one), the
//! metrics and one log line in [`observe`], around everything; the bound on `/v1` requests
//! in [`timeout`].

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCause};
use crate::AppState;

pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled, for error bodies.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A client's id is echoed if it is 1–128 characters of `[A-Za-z0-9._:-]`; anything else
/// could smuggle text into logs, so it is replaced.
fn sane(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| s.to_owned())
}

/// Answers 503 `timeout` when the API request runs past the configured bound. Only `/v1`
/// routes are bounded: probes must answer even when the bound is set very low.
pub async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config().request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout().into_response(),
    }
}

/// Answers 413 at once when the declared `Content-Length` is over the body limit, instead
/// of waiting for a body that may never come (or reading one only to refuse it).
pub async fn declared_length(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config().body_limit;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(req).await
}

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(sane)
        .unwrap_or_else(|| format!("req_{}", ulid::Ulid::new()));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let mut response = CURRENT.scope(id.clone(), next.run(req)).await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    crate::metrics::record_request(method.as_str(), &route, status, elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let key_id = response
        .extensions()
        .get::<caja_core::ids::KeyId>()
        .map(|k| k.to_string())
        .unwrap_or_default();
    match response.extensions().get::<ErrorCause>() {
        Some(ErrorCause(cause)) => tracing::error!(
            request_id = %id, method = %method, route = %route, status, latency_ms, key_id, cause = %cause,
            "request failed"
        ),
        None => tracing::info!(
            request_id = %id, method = %method, route = %route, status, latency_ms, key_id,
            "request"
        ),
    }
    response
}

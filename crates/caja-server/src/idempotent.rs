//! The one idempotency mechanism of the API, used by every POST that creates or changes
//! money or stock.
//!
//! [`Idempotent`] reads the `Idempotency-Key` and the body and fingerprints the request;
//! [`claim`] either replays a stored answer or hands the handler a [`Work`] transaction;
//! [`finish`] stores the handler's response in that same transaction and commits. A 5xx is
//! never stored (the transaction is dropped), so the client can retry it.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use caja_core::idempotency::{Fingerprint, IdempotencyKey};
use caja_store::{Claim, IdempotencyScope, StoredResponse, Work};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// A write request: its key, its fingerprint and its parsed body.
pub struct Idempotent<T> {
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub body: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Idempotent<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = match req.headers().get(IDEMPOTENCY_KEY) {
            None => {
                return Err(ApiError::bad_request(
                    "idempotency-key-missing",
                    "this request changes money or stock: send an Idempotency-Key header (a fresh random value per operation, the same one on every retry)",
                ))
            }
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| IdempotencyKey::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "idempotency-key-invalid",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?,
        };
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let has_json_type = crate::json::is_json(req.headers().get(header::CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(state.config().body_limit)
            } else {
                ApiError::bad_request("unreadable-body", rejection.body_text())
            }
        })?;
        // An empty body stands for `{}` (cancel, fulfill); any other body must be JSON.
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else if has_json_type {
            bytes
        } else {
            return Err(ApiError::unsupported_media_type());
        };
        let canonical = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| serde_json::to_vec(&v).ok())
            .unwrap_or_else(|| bytes.to_vec());
        let fingerprint = Fingerprint::new(&method, &path, &canonical);
        let body = crate::json::parse(&bytes)?;
        Ok(Self {
            key,
            fingerprint,
            body,
        })
    }
}

/// What a claim gives the handler.
pub enum Claimed {
    Fresh(Work),
    Replay(Response),
}

pub async fn claim<T>(
    state: &AppState,
    caller: &Caller,
    req: &Idempotent<T>,
) -> ApiResult<Claimed> {
    match state
        .store()
        .claim(scope(caller, req), state.config().idempotency_wait)
        .await?
    {
        Claim::Fresh(work) => Ok(Claimed::Fresh(work)),
        Claim::Replay { response, waited } => Ok(Claimed::Replay(replayed(response, waited))),
        Claim::Mismatch => Err(mismatch()),
    }
}

/// Answers a request refused before any work (a body that does not validate, an id that
/// cannot exist), storing the refusal under its key like any other answer: a retry gets
/// the same refusal replayed, and the key cannot be reused for another request.
pub async fn refuse<T>(
    state: &AppState,
    caller: &Caller,
    req: &Idempotent<T>,
    refusal: ApiError,
) -> ApiResult<Response> {
    match claim(state, caller, req).await? {
        Claimed::Replay(r) => Ok(r),
        Claimed::Fresh(work) => finish(work, refusal.into_response()).await,
    }
}

pub fn mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-mismatch",
        "Idempotency key reused",
        "this Idempotency-Key was used for a different request; use a fresh key for a new operation",
    )
}

/// A stored answer sent again, counted.
pub fn replayed(stored: StoredResponse, waited: bool) -> Response {
    metrics::counter!("caja_idempotent_replays_total").increment(1);
    if waited {
        metrics::counter!("caja_idempotency_waits_total").increment(1);
    }
    respond(stored, true)
}

/// The scope of a request: whose key, which key, what request.
pub fn scope<T>(caller: &Caller, req: &Idempotent<T>) -> IdempotencyScope {
    IdempotencyScope {
        key_id: caller.key_id.clone(),
        key: req.key.clone(),
        fingerprint: req.fingerprint.clone(),
    }
}

/// Headers worth replaying.
const KEPT: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// Stores `response` with the work's effects and commits; returns the response to send.
pub async fn finish(work: Work, response: Response) -> ApiResult<Response> {
    let (parts, body) = response.into_parts();
    if parts.status.is_server_error() {
        // Dropping the work rolls everything back: nothing is stored, the client may retry.
        drop(work);
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: KEPT
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    work.commit(&stored).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The HTTP response for a stored answer; `replayed` adds `Idempotent-Replayed: true`.
pub fn respond(stored: StoredResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    }
    if replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

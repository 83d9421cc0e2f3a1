//! The one idempotency mechanism of the API, used by every POST that creates or changes
//! money or stock.
//!
//! [`Idempotent`] reads the `Idempotency-Key` and the body and fingerprints the request;
//! [`command`] hands the parsed command to the store's one writer, which claims the key,
//! decides, and stores the answer in the same transaction as the effect; [`refuse`] stores
//! a refusal of the body the same way. A 5xx is never stored, so the client can retry it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use caja_core::command::Command;
use caja_core::idempotency::{Fingerprint, IdempotencyKey};
use caja_store::audit::Actor;
use caja_store::writer::{IdempotencyScope, Settled, Submission, Verdict, Write};
use caja_store::{StoreError, StoredResponse};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::request::current_request_id;
use crate::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// A write request: its key, its fingerprint and its parsed body. A body that is JSON but
/// does not fit the request's shape (an unknown field, a float for an integer) is an
/// `Err` here, for the handler to store under the key with [`refuse`].
pub struct Idempotent<T> {
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub body: Result<T, ApiError>,
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
            .and_then(|mut v| {
                crate::json::integral(&mut v);
                serde_json::to_vec(&v).ok()
            })
            .unwrap_or_else(|| bytes.to_vec());
        let fingerprint = Fingerprint::new(&method, &path, &canonical);
        let body = match crate::json::parse(&bytes) {
            Err(e) if e.status() != StatusCode::UNPROCESSABLE_ENTITY => return Err(e),
            parsed => parsed,
        };
        Ok(Self {
            key,
            fingerprint,
            body,
        })
    }
}

impl<T> Idempotent<T> {
    /// The scope of this request for `caller`: whose key, which key, what request.
    pub fn scope(&self, caller: &Caller) -> IdempotencyScope {
        IdempotencyScope {
            key_id: caller.key_id.clone(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// A write's response, and how it was decided if it was decided now (`None` for a
/// replay), for the caller's metrics.
pub struct Written {
    pub response: Response,
    pub verdict: Option<Verdict>,
}

/// Decides `command` on the writer under the request's key and answers it.
pub async fn command(
    state: &AppState,
    caller: &Caller,
    scope: Option<IdempotencyScope>,
    command: Command,
) -> ApiResult<Written> {
    let actor = actor(caller);
    submit(state, Some(actor), scope, Write::Command(command)).await
}

/// Decides `command` for the system itself (a provider's webhook, named `who`): no key,
/// so no stored answer; the command's own rules make a repeat harmless.
pub async fn as_system(state: &AppState, who: &str, command: Command) -> ApiResult<Written> {
    let actor = Actor {
        who: who.to_owned(),
        request_id: current_request_id(),
    };
    submit(state, Some(actor), None, Write::Command(command)).await
}

/// Decides the command `make` builds from a path's id and the request's body, under the
/// request's key. An id that cannot exist or a body that does not validate is refused, and
/// the refusal stored under the key like any answer.
pub async fn command_on<I, T>(
    state: &AppState,
    caller: &Caller,
    id: ApiResult<I>,
    req: Idempotent<T>,
    make: impl FnOnce(I, T) -> Result<Command, ApiError>,
) -> ApiResult<Response> {
    let scope = req.scope(caller);
    let written = match id.and_then(|id| make(id, req.body?)) {
        Ok(cmd) => command(state, caller, Some(scope), cmd).await?,
        Err(refusal) => refuse(state, scope, refusal).await?,
    };
    Ok(written.response)
}

/// Decides the command `make` builds from the request's body when building it needs the
/// database (a location named by its code, say), under the request's key: a body that does
/// not validate, or that names what does not exist, is refused and the refusal stored under
/// the key like any answer.
pub async fn command_from<T, F, Fut>(
    state: &AppState,
    caller: &Caller,
    req: Idempotent<T>,
    make: F,
) -> ApiResult<Written>
where
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = Result<Command, ApiError>>,
{
    let scope = req.scope(caller);
    let made = match req.body {
        Ok(body) => make(body).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(cmd) => command(state, caller, Some(scope), cmd).await,
        Err(refusal) => refuse(state, scope, refusal).await,
    }
}

/// The caller as the audit log names it.
pub fn actor(caller: &Caller) -> Actor {
    Actor {
        who: caller.key_id.to_string(),
        request_id: current_request_id(),
    }
}

/// Answers a request refused before it became a command (a body that does not validate,
/// an id that cannot exist), storing the refusal under its key like any other answer: a
/// retry gets the same refusal replayed, and the key cannot be reused for another request.
pub async fn refuse(
    state: &AppState,
    scope: IdempotencyScope,
    refusal: ApiError,
) -> ApiResult<Written> {
    if refusal.status().is_server_error() {
        return Err(refusal);
    }
    let request_id = current_request_id().unwrap_or_default();
    let write = Write::Refused {
        response: crate::presenter::problem(&request_id, &refusal),
        kind: refusal.kind(),
    };
    submit(state, None, Some(scope), write).await
}

async fn submit(
    state: &AppState,
    actor: Option<Actor>,
    scope: Option<IdempotencyScope>,
    write: Write,
) -> ApiResult<Written> {
    let submission = Submission {
        scope,
        actor,
        request_id: current_request_id().unwrap_or_default(),
        write,
    };
    match state.writer().submit(submission).await? {
        Settled::Fresh { response, verdict } => Ok(Written {
            response: respond(response, false),
            verdict: Some(verdict),
        }),
        Settled::Replay { response, waited } => Ok(Written {
            response: replayed(response, waited),
            verdict: None,
        }),
        Settled::Mismatch => Err(mismatch()),
        Settled::InFlight => Err(StoreError::KeyInFlight.into()),
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
fn replayed(stored: StoredResponse, waited: bool) -> Response {
    metrics::counter!("caja_idempotent_replays_total").increment(1);
    if waited {
        metrics::counter!("caja_idempotency_waits_total").increment(1);
    }
    respond(stored, true)
}

/// The HTTP response for a stored answer; `replayed` adds `Idempotent-Replayed: true`.
fn respond(stored: StoredResponse, replayed: bool) -> Response {
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

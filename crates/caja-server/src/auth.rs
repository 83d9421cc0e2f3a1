//! Authentication: every `/v1` route needs `Authorization: Bearer KEY`. The key is hashed
//! and looked up; the caller's role then decides each action in the handler, through
//! [`Caller::require`], so the role rule stays in `caja-core`.
//!
//! Requests without a valid key are rate limited per client IP, so keys cannot be guessed
//! at speed; requests with a valid key are limited only if a rate is configured.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use caja_core::auth::{Action, ApiKeySecret, Role};
use caja_core::ids::KeyId;

use crate::error::{ApiError, ApiResult};
use crate::limits::retry_after_secs;
use crate::AppState;

/// Who is calling, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: KeyId,
    pub role: Role,
    /// The location the key is bound to, if any: where it sells.
    pub location: Option<caja_core::ids::LocationId>,
}

impl Caller {
    pub fn require(&self, action: Action) -> ApiResult<()> {
        if self.role.may(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} key may not do this",
                self.role
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("this route requires an API key"))
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = bearer(req.headers()).map(str::to_owned);
    let ip = client_ip(&req);
    match caller(&state, token.as_deref(), ip).await {
        Ok(caller) => {
            let key_id = caller.key_id.clone();
            req.extensions_mut().insert(caller);
            let mut response = next.run(req).await;
            response.extensions_mut().insert(key_id);
            response
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn caller(state: &AppState, token: Option<&str>, ip: IpAddr) -> ApiResult<Caller> {
    let limit = state.config().anonymous_rate_limit;
    // An address already over its budget for bad keys is refused before any lookup: a
    // guesser cannot make the server work, and a key guessed right from there is no use.
    if let Some(wait) = state.limiters().by_ip.waiting(&ip, limit) {
        return Err(ApiError::rate_limited(retry_after_secs(wait)));
    }
    let refuse = |e: ApiError| -> ApiResult<Caller> {
        match state.limiters().by_ip.check(&ip, limit) {
            Ok(()) => Err(e),
            Err(wait) => Err(ApiError::rate_limited(retry_after_secs(wait))),
        }
    };
    let Some(token) = token else {
        return refuse(ApiError::unauthorized(
            "send your API key as `Authorization: Bearer KEY`",
        ));
    };
    let hash = ApiKeySecret::presented(token).hash();
    let key = match state.keys().find(state.store(), &hash).await? {
        Some(key) if key.revoked_at.is_none() => key,
        Some(_) => return refuse(ApiError::unauthorized("this API key has been revoked")),
        None => return refuse(ApiError::unauthorized("unknown API key")),
    };
    if let Some(limit) = key.rate_limit.or(state.config().key_rate_limit) {
        state
            .limiters()
            .by_key
            .check(&key.id, limit)
            .map_err(|wait| ApiError::rate_limited(retry_after_secs(wait)))?;
    }
    // A public key is shared by every buyer's browser: each address keeps the anonymous
    // budget, whatever key it presents.
    if key.role == Role::Public {
        state
            .limiters()
            .public_by_ip
            .check(&ip, limit)
            .map_err(|wait| ApiError::rate_limited(retry_after_secs(wait)))?;
    }
    state.note_key_used(&key.id);
    Ok(Caller {
        key_id: key.id,
        role: key.role,
        location: key.location,
    })
}

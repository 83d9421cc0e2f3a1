//! Optimistic concurrency on the wire: the `ETag` a resource is read with, and the
//! `If-Match` a change must carry, for every resource that has a version.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use caja_core::product::Version;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// `body` as JSON with the `ETag` of `version`.
pub fn with_etag(body: impl Serialize, version: Version) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(etag) = HeaderValue::from_str(&version.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The version the client last saw, from `If-Match`; required for every change.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Version> {
    let value = headers
        .get(header::IF_MATCH)
        .ok_or_else(ApiError::precondition_required)?;
    let text = value.to_str().unwrap_or("");
    // `*` and an empty value name no version the client saw: as good as missing.
    if text.trim() == "*" || text.trim().is_empty() {
        return Err(ApiError::precondition_required());
    }
    // A tag that is not one of ours can match no version: treat it as stale.
    Ok(Version::from_if_match(text).unwrap_or(Version(-1)))
}

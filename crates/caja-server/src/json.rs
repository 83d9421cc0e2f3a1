//! Extractors that turn bad input into our problem shape instead of axum's plain text:
//! JSON bodies (400 with line and column, 422 naming the field, 413, 415) and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::AppState;

/// A JSON request body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(state.config().body_limit)
            } else {
                ApiError::bad_request("unreadable-body", rejection.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

pub fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a body, naming the line and column of a syntax error or the path of a bad field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, the whole body: `{"a":1} x` is malformed JSON (400), whatever `a` is.
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| syntax(&e))?;
    integral(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = strip_position(&e.into_inner().to_string());
        ApiError::invalid_field(&field_name(&path, &message), message)
    })
}

/// Numbers written with a zero fraction (`3627030.0`) are the integers they equal, as JSON
/// Schema counts them; a fraction (`1.5`) stays a fraction and is refused where an integer
/// is expected.
pub fn integral(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral),
        _ => {}
    }
}

fn syntax(e: &serde_json::Error) -> ApiError {
    ApiError::malformed_json(format!(
        "{} at line {} column {}",
        strip_position(&e.to_string()),
        e.line(),
        e.column()
    ))
    .with("line", e.line())
    .with("column", e.column())
}

/// serde_json appends " at line L column C"; the problem carries those as members.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The field a data error is about: the path, extended by the name serde quotes for a
/// missing or unknown field.
fn field_name(path: &str, message: &str) -> String {
    let quoted = message
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    let named = message.starts_with("missing field") || message.starts_with("unknown field");
    match (named, quoted) {
        (true, Some(name)) if path == "." => name.to_owned(),
        (true, Some(name)) if !path.ends_with(name) => format!("{path}.{name}"),
        _ if path == "." => "body".to_owned(),
        _ => path.to_owned(),
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

/// The query of a list that has nothing but its page: every list pages the same way.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(invalid_query)
    }
}

/// A list's `limit` and `after`, parsed the one way every list does: a limit out of range
/// is 400 `invalid-query`, a cursor `parse` refuses is 400 `invalid-cursor`.
pub fn page<C, E>(
    limit: Option<i64>,
    after: Option<&str>,
    parse: impl FnOnce(&str) -> Result<C, E>,
) -> Result<(caja_core::page::PageLimit, Option<C>), ApiError> {
    let limit = caja_core::page::PageLimit::parse(limit).map_err(invalid_query)?;
    let after = after.map(parse).transpose().map_err(|_| {
        ApiError::bad_request("invalid-cursor", "after: not a cursor from this list")
    })?;
    Ok((limit, after))
}

/// A query parameter that does not parse: 400 `invalid-query`.
pub fn invalid_query(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid-query", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        sku: String,
        price: Price,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Price {
        amount: i64,
    }

    fn err(body: &str) -> serde_json::Value {
        let e = parse::<Body>(body.as_bytes()).unwrap_err();
        let response = axum::response::IntoResponse::into_response(e);
        let bytes = futures_body(response);
        serde_json::from_slice(&bytes).unwrap()
    }

    fn futures_body(r: axum::response::Response) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec()
        })
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let p = err("{\n  \"sku\": ,\n}");
        assert_eq!(p["type"], "malformed-json");
        assert_eq!(p["line"], 2);
        assert!(p["detail"].as_str().unwrap().contains("line 2"));
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_are_named() {
        assert_eq!(err(r#"{"price": {"amount": 1}}"#)["field"], "sku");
        assert_eq!(err(r#"{"sku": "a", "price": {}}"#)["field"], "price.amount");
        assert_eq!(
            err(r#"{"sku": "a", "price": {"amount": 1}, "x": 1}"#)["field"],
            "x"
        );
        assert_eq!(
            err(r#"{"sku": "a", "price": {"amount": "one"}}"#)["field"],
            "price.amount"
        );
        assert_eq!(err("[]")["field"], "body");
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction() {
        let body: Body = parse(br#"{"sku": "a", "price": {"amount": 3627030.0}}"#).unwrap();
        assert_eq!(body.price.amount, 3627030);
        assert_eq!(
            err(r#"{"sku": "a", "price": {"amount": 1.5}}"#)["field"],
            "price.amount"
        );
        assert_eq!(
            err(r#"{"sku": "a", "price": {"amount": 1e300}}"#)["field"],
            "price.amount"
        );
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        assert_eq!(
            err(r#"{"sku": "a", "price": {"amount": 1}} x"#)["type"],
            "malformed-json"
        );
        assert_eq!(
            err(r#"{"a": 1} x"#)["type"],
            "malformed-json",
            "syntax is judged before fields"
        );
    }
}

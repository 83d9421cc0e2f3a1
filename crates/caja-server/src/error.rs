//! The one error shape of the API: RFC 9457 problem+json with a stable `type` slug.
//!
//! Handlers return [`ApiError`]; storage and domain errors convert into it, so a handler
//! never decides a status code by hand for a failure another layer already named. A 5xx
//! body says nothing internal: its cause travels to the request log in a response
//! extension and is logged there, once.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use caja_core::command::Refusal;
use caja_core::product::{Stock, Version};
use caja_core::DomainError;
use caja_store::StoreError;
use serde_json::{json, Map, Value};

use crate::request::current_request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Boxed so that `Result<T, ApiError>` stays one pointer wide on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Problem>);

#[derive(Debug)]
struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Value>,
    retry_after: Option<u64>,
    cause: Option<String>,
}

/// The internal cause of a 5xx, handed to the request log and never to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
            cause: None,
        }))
    }

    /// Adds a member to the problem body (e.g. which field, the current ETag).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds.max(1));
        self
    }

    fn caused_by(mut self, cause: &dyn std::error::Error) -> Self {
        let mut text = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.0.cause = Some(text);
        self
    }

    /// The seconds of its `Retry-After`, if it has one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.0.retry_after
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn kind(&self) -> &'static str {
        self.0.kind
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        )
    }

    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, "Bad request", detail)
    }

    pub fn invalid_field(field: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid field",
            format!("{field}: {reason}"),
        )
        .with("field", field)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid API key",
            detail,
        )
    }

    /// What the client is told, for transports that carry it in their own shape.
    pub fn detail(&self) -> String {
        self.0.detail.clone()
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this resource does not support this method",
        )
    }

    pub fn precondition_required() -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "If-Match required",
            "send the resource's ETag in If-Match so a concurrent change is not overwritten",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
        .with("limit_bytes", limit)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with Content-Type: application/json",
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            "slow down and retry after the time in Retry-After",
        )
        .retry_after(retry_after_secs)
    }

    /// A call to the payment provider failed, or its breaker is open: nothing was changed,
    /// and the same request may be retried after `Retry-After`.
    pub fn provider(e: &crate::payments::CallError) -> Self {
        use crate::payments::CallError;
        let (status, kind, retry) = match e {
            CallError::Unavailable { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-unavailable",
                retry_after.as_secs_f64().ceil().max(1.0) as u64,
            ),
            CallError::Timeout(_) | CallError::Transport(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "provider-unavailable", 5)
            }
            CallError::Status { status, .. } if *status >= 500 || *status == 429 => {
                (StatusCode::SERVICE_UNAVAILABLE, "provider-unavailable", 5)
            }
            CallError::Status { .. } | CallError::NotFound(_) | CallError::Malformed(_) => {
                (StatusCode::BAD_GATEWAY, "provider-error", 0)
            }
        };
        let error = Self::new(status, kind, "Payment provider", e.to_string());
        if retry > 0 {
            error.retry_after(retry)
        } else {
            error
        }
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
            "the request took longer than the server allows; retry it (with the same Idempotency-Key for writes)",
        )
        .retry_after(1)
    }

    pub fn internal(cause: &dyn std::error::Error) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the request id identifies it in the server's log",
        )
        .caused_by(cause)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::InvalidField { field, reason } => Self::invalid_field(field, reason),
            DomainError::CurrencyMismatch { expected, got } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "currency-mismatch",
                "Wrong currency",
                e.to_string(),
            )
            .with("expected", expected.as_str())
            .with("got", got.as_str()),
            DomainError::Forbidden(why) => Self::forbidden(why.clone()),
        }
    }
}

impl From<&Refusal> for ApiError {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::UnknownProducts(ids) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-product",
                "Unknown product",
                format!("no live product {}", ids.join(", ")),
            )
            .with("product_ids", ids.clone()),
            Refusal::OutOfStock(lines) => Self::new(
                StatusCode::CONFLICT,
                "out-of-stock",
                "Out of stock",
                format!("{} line(s) ask for more than is in stock", lines.len()),
            )
            .with("lines", serde_json::to_value(lines).unwrap_or_default()),
            Refusal::NotEnoughStock {
                location,
                available,
            } => Self::new(
                StatusCode::CONFLICT,
                "out-of-stock",
                "Out of stock",
                format!(
                    "only {available} in stock at location {location}: stock never goes below zero"
                ),
            )
            .with("available", *available)
            .with("location_id", location.as_str()),
            Refusal::AmountTooLarge { max } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount-too-large",
                "Amount too large",
                format!("the order's total would exceed {max} minor units"),
            )
            .with("max", *max),
            Refusal::OrderNotFound => Self::not_found("no such order"),
            Refusal::ProductNotFound => Self::not_found("no such product"),
            Refusal::InvalidTransition(t) => Self::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Invalid transition",
                t.to_string(),
            )
            .with("current_status", t.from.as_str()),
            Refusal::AmountMismatch { total } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount-mismatch",
                "Wrong amount",
                format!("a payment must be for the order's total, {total}"),
            )
            .with("total", *total),
            Refusal::Archived => Self::new(
                StatusCode::CONFLICT,
                "archived",
                "Archived",
                "the product is archived and cannot change",
            ),
            Refusal::StockLimit { current } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "stock-limit",
                "Too much stock",
                format!("stock is {current} and may not exceed {}", Stock::MAX),
            )
            .with("current", *current),
            Refusal::StaleVersion { current } => Self::stale(*current),
            Refusal::DuplicateSku => Self::duplicate_sku(),
            Refusal::TabNotFound => Self::not_found("no such tab"),
            Refusal::TabItemNotFound => Self::not_found("no such item on the tab"),
            Refusal::ResourceBusy { resource, tab } => Self::new(
                StatusCode::CONFLICT,
                "resource-busy",
                "Resource busy",
                format!("{resource} is held by open tab {tab}: close or void it first"),
            )
            .with("tab_id", tab.as_str()),
            Refusal::TabTransition {
                state,
                action,
                order,
            } => {
                let e = Self::new(
                    StatusCode::CONFLICT,
                    "invalid-transition",
                    "Invalid transition",
                    format!("cannot {} a tab that is {state}", action.as_str()),
                )
                .with("current_status", *state);
                match order {
                    Some(o) => e.with("order_id", o.as_str()),
                    None => e,
                }
            }
            Refusal::EmptyTab => Self::new(
                StatusCode::CONFLICT,
                "empty-tab",
                "Nothing to charge",
                "the tab has no items and bills no time: void it instead",
            ),
            Refusal::TabFull { max } => Self::new(
                StatusCode::CONFLICT,
                "tab-full",
                "Tab full",
                format!("a tab holds at most {max} items: close it and open another"),
            )
            .with("max", *max),
            Refusal::UnknownPayment => Self::new(
                StatusCode::CONFLICT,
                "unknown-payment",
                "Not this order's payment",
                "the order was not paid by the provider payment named",
            ),
            Refusal::EventNotFound => Self::not_found("no such event"),
            Refusal::HoldNotFound => Self::not_found("no such hold"),
            Refusal::SaleNotOpen { opens_at } => Self::new(
                StatusCode::CONFLICT,
                "sale-not-open",
                "Sale not open",
                format!("the sale opens at {}", caja_core::time::format(opens_at)),
            )
            .with("opens_at", caja_core::time::format(opens_at)),
            Refusal::SaleClosed { closed_at } => Self::new(
                StatusCode::CONFLICT,
                "sale-closed",
                "Sale closed",
                format!("the sale closed at {}", caja_core::time::format(closed_at)),
            )
            .with("closed_at", caja_core::time::format(closed_at)),
            Refusal::EventCancelled => Self::new(
                StatusCode::CONFLICT,
                "event-cancelled",
                "Event cancelled",
                "the event was cancelled: nothing more is sold",
            ),
            Refusal::NotAvailable {
                section,
                requested,
                available,
                taken,
            } => {
                let detail = if taken.is_empty() {
                    format!("{section}: {requested} asked for, {available} free")
                } else {
                    format!("{section}: taken: {}", taken.join(", "))
                };
                Self::new(StatusCode::CONFLICT, "not-available", "Not available", detail)
                    .with("section", section.as_str())
                    .with("requested", *requested)
                    .with("available", *available)
                    .with("taken_seats", taken.clone())
            }
            Refusal::UnknownSection(name) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-seats",
                "Unknown section",
                format!("the event has no section {name:?}"),
            ),
            Refusal::UnknownSeats(labels) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-seats",
                "Unknown seats",
                format!("the event has no seats {}", labels.join(", ")),
            )
            .with("seats", labels.clone()),
            Refusal::SeatsInSeveralSections => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-seats",
                "Seats of several sections",
                "one hold takes seats of one section",
            ),
            Refusal::TooManyTickets { max } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-tickets",
                "Too many tickets",
                format!("one order of this event has 1 to {max} tickets"),
            )
            .with("max", *max),
            Refusal::HoldExpired => Self::new(
                StatusCode::CONFLICT,
                "hold-expired",
                "Hold expired",
                "the hold ran out of time and its places went back: hold again",
            ),
            Refusal::HoldOrdered { order } => {
                let e = Self::new(
                    StatusCode::CONFLICT,
                    "invalid-transition",
                    "Invalid transition",
                    "the hold is an order already",
                );
                match order {
                    Some(o) => e.with("order_id", o.as_str()),
                    None => e,
                }
            }
            Refusal::TicketsNeedHold(products) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "tickets-need-a-hold",
                "Tickets need a hold",
                "these products are sections of an event: hold places (POST /v1/events/{id}/holds), then order the hold",
            )
            .with("product_ids", products.clone()),
            Refusal::InvalidEvent(e) => Self::from(e.clone()),
            Refusal::NoWaitingRoom => Self::new(
                StatusCode::CONFLICT,
                "no-waiting-room",
                "No waiting room",
                "this event has no waiting room: hold places directly",
            ),
            Refusal::QueueFull { retry_after } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue-full",
                "Waiting room full",
                "the waiting room is full: try again after Retry-After",
            )
            .retry_after(retry_after.num_seconds().max(1) as u64),
            Refusal::AdmissionRequired => Self::new(
                StatusCode::FORBIDDEN,
                "admission-required",
                "Admission required",
                "this event sells through its waiting room: join it, and hold with the admission token once admitted",
            ),
            Refusal::AdmissionInvalid(why) => Self::new(
                StatusCode::FORBIDDEN,
                "admission-invalid",
                "Admission not valid",
                format!("the admission cannot be used: {why}"),
            ),
            Refusal::LocationNotFound => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-location",
                "Unknown location",
                "no location has this id or code",
            ),
            Refusal::DuplicateLocationCode => Self::new(
                StatusCode::CONFLICT,
                "duplicate-code",
                "Code taken",
                "another location has this code",
            ),
            Refusal::TransferNotFound => Self::not_found("no such transfer"),
            Refusal::TransferReceived => Self::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Invalid transition",
                "this transfer was received already",
            )
            .with("current_status", "received"),
            Refusal::AlreadyThere => Self::new(
                StatusCode::CONFLICT,
                "already-there",
                "Already there",
                "the order is at this location already",
            ),
            Refusal::SellsElsewhere { location } => Self::forbidden(format!(
                "this key sells at location {location} only"
            )),
            Refusal::AdmissionUsed { hold } => {
                let e = Self::new(
                    StatusCode::CONFLICT,
                    "admission-used",
                    "Admission used",
                    "this admission was used for a hold already",
                );
                match hold {
                    Some(h) => e.with("hold_id", h.as_str()),
                    None => e,
                }
            }
            Refusal::EventSection => Self::new(
                StatusCode::CONFLICT,
                "event-section",
                "Managed by its event",
                "this product is a section of an event: its stock, price and sku change only with the event",
            ),
        }
    }
}

impl ApiError {
    fn stale(current: Version) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Stale version",
            "the resource changed since you read it; read it again and reapply your change",
        )
        .with("current_etag", current.etag())
    }

    fn duplicate_sku() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "duplicate-sku",
            "Duplicate sku",
            "a live product already has this sku",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound => Self::not_found("no such resource"),
            StoreError::DuplicateSku => Self::duplicate_sku(),
            StoreError::KeyInFlight => Self::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-flight",
                "Request still running",
                "a request with this Idempotency-Key is still running; retry after the time in Retry-After to get its result",
            )
            .retry_after(1),
            StoreError::ShuttingDown
            | StoreError::Retry(_)
            | StoreError::GuardMismatch(_)
            | StoreError::KeyAnswered
            | StoreError::LockTimeout(_) => {
                Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily-unavailable",
                "Try again",
                "the write could not be completed now; retry it with the same Idempotency-Key",
            )
            .retry_after(1)
            .caused_by(&e)
            }
            StoreError::StorageFull(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage-full",
                "Storage full",
                "the database's disk is full; nothing was written, and writes resume by themselves once space is freed",
            )
            .retry_after(5)
            .caused_by(&e),
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Database unavailable",
                "the database cannot be reached right now; retry shortly",
            )
            .retry_after(1)
            .caused_by(&e),
            StoreError::Database(_) | StoreError::Corrupt(_) => Self::internal(&e),
        }
    }
}

impl ApiError {
    /// The problem+json body, naming `request_id`.
    pub fn body(&self, request_id: Option<String>) -> String {
        let problem = &self.0;
        let mut body = json!({
            "type": problem.kind,
            "title": problem.title,
            "status": problem.status.as_u16(),
            "detail": problem.detail,
        });
        if let Value::Object(map) = &mut body {
            if let Some(id) = request_id {
                map.insert("request_id".into(), Value::String(id));
            }
            map.extend(problem.extra.clone());
        }
        body.to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body(current_request_id());
        let problem = *self.0;
        let mut response = (problem.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = problem.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(cause) = problem.cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

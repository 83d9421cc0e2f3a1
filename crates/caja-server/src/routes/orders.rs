//! `/v1/orders`: checkout and the order lifecycle. Every POST is idempotent; refusals are
//! stored and replayed like successes.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::ids::{OrderId, ProductId};
use caja_core::money::Money;
use caja_core::order::{
    self, CheckoutRefusal, Customer, NewOrder, Order, OrderLine, RequestedLine,
};
use caja_core::page::PageLimit;
use caja_core::text;
use caja_core::DomainError;
use caja_store::batch::Outcome;
use caja_store::{ActionRefusal, ActionRequest, PaymentMethod, StoredResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::{
    claim, finish, mismatch, refuse, replayed, respond, scope, Claimed, Idempotent,
};
use crate::json::ApiQuery;
use crate::request::current_request_id;
use crate::routes::products::MoneyBody;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", get(list).post(create))
        .route("/v1/orders/{id}", get(read))
        .route("/v1/orders/{id}/payments", post(pay))
        .route("/v1/orders/{id}/cancel", post(cancel))
        .route("/v1/orders/{id}/fulfill", post(fulfill))
        .route("/v1/orders/{id}/refund", post(refund))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    pub lines: Vec<LineBody>,
    pub tip: Option<MoneyBody>,
    pub note: Option<String>,
    pub customer: Option<CustomerBody>,
}

impl CreateOrder {
    fn parse(&self, state: &AppState) -> Result<NewOrder, DomainError> {
        let store = state.config().currency;
        let lines = self
            .lines
            .iter()
            .map(|l| {
                Ok(RequestedLine {
                    product_id: ProductId::parse("lines.product_id", &l.product_id)?,
                    quantity: l.quantity,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let tip = match &self.tip {
            Some(t) => order::parse_tip(t.amount, &t.currency, store)?,
            None => Money {
                amount: 0,
                currency: store,
            },
        };
        let note = text::optional("note", self.note.as_deref(), 1000)?;
        let customer = match &self.customer {
            None => None,
            Some(c) => {
                let name =
                    text::optional("customer.name", Some(&c.name), 200)?.ok_or_else(|| {
                        DomainError::invalid("customer.name", "must be 1 to 200 characters")
                    })?;
                let email = text::optional("customer.email", c.email.as_deref(), 254)?;
                if email.as_deref().is_some_and(|e| !e.contains('@')) {
                    return Err(DomainError::invalid(
                        "customer.email",
                        "is not an email address",
                    ));
                }
                Some(Customer { name, email })
            }
        };
        Ok(NewOrder {
            lines: order::merge_lines(lines, state.config().order_limits)?,
            tip,
            note,
            customer,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineBody {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: MoneyBody,
    pub line_total: MoneyBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    #[schema(example = "ord_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    /// Human, sequential, unique.
    pub number: i64,
    #[schema(example = "pending_payment")]
    pub status: String,
    pub lines: Vec<OrderLineBody>,
    pub subtotal: MoneyBody,
    pub tip: MoneyBody,
    pub total: MoneyBody,
    pub currency: String,
    pub note: Option<String>,
    pub customer: Option<CustomerBody>,
    pub created_at: String,
    pub updated_at: String,
    /// When an unpaid order gives its stock back.
    pub expires_at: String,
}

impl From<&Order> for OrderBody {
    fn from(o: &Order) -> Self {
        let money = |amount| {
            MoneyBody::from(Money {
                amount,
                currency: o.currency,
            })
        };
        let line = |l: &OrderLine| OrderLineBody {
            product_id: l.product_id.to_string(),
            sku: l.sku.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: money(l.unit_price),
            line_total: money(l.line_total),
        };
        Self {
            id: o.id.to_string(),
            number: o.number,
            status: o.status.to_string(),
            lines: o.lines.iter().map(line).collect(),
            subtotal: money(o.subtotal),
            tip: money(o.tip),
            total: money(o.total),
            currency: o.currency.to_string(),
            note: o.note.clone(),
            customer: o.customer.as_ref().map(|c| CustomerBody {
                name: c.name.clone(),
                email: c.email.clone(),
            }),
            created_at: caja_core::time::format(&o.created_at),
            updated_at: caja_core::time::format(&o.updated_at),
            expires_at: caja_core::time::format(&o.expires_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub data: Vec<OrderBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// cash, card, transfer or provider.
    pub method: String,
    /// Must equal the order's total.
    pub amount: MoneyBody,
    pub reference: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Put the units back in stock.
    #[serde(default)]
    pub restock: bool,
}

fn order_response(status: StatusCode, order: &Order) -> Response {
    let mut response = (status, Json(OrderBody::from(order))).into_response();
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/orders/{}", order.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}

fn checkout_refusal(r: CheckoutRefusal) -> ApiError {
    match r {
        CheckoutRefusal::OutOfStock(lines) => {
            let detail = format!("{} line(s) ask for more than is in stock", lines.len());
            ApiError::new(StatusCode::CONFLICT, "out-of-stock", "Out of stock", detail)
                .with("lines", serde_json::to_value(lines).unwrap_or_default())
        }
        CheckoutRefusal::UnknownProducts(ids) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-product",
            "Unknown product",
            format!("no live product {}", ids.join(", ")),
        )
        .with("product_ids", ids),
    }
}

fn action_refusal(r: ActionRefusal) -> ApiError {
    match r {
        ActionRefusal::NotFound => ApiError::not_found("no such order"),
        ActionRefusal::Invalid(t) => ApiError::new(
            StatusCode::CONFLICT,
            "invalid-transition",
            "Invalid transition",
            t.to_string(),
        )
        .with("current_status", t.from.as_str()),
        ActionRefusal::AmountMismatch { total } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount-mismatch",
            "Wrong amount",
            format!("a payment must be for the order's total, {total}"),
        )
        .with("total", total),
    }
}

fn order_id(raw: &str) -> ApiResult<OrderId> {
    OrderId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no order {raw}")))
}

#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "One fresh value per checkout, repeated on retries")),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "Created, stock reserved", body = OrderBody),
        (status = 409, description = "Out of stock (every short line listed), or key in flight", body = crate::openapi::Problem),
        (status = 422, description = "Invalid, unknown product or key reused", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    req: Idempotent<CreateOrder>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let result = checkout(&state, &caller, &req).await;
    // Counted here, once per request that decided something now: never for a replay, and
    // never twice for a batch that fell back to the per-request path.
    match &result {
        Ok(Decided::Fresh(stored)) if stored.status == 201 => {
            metrics::counter!("caja_orders_created_total").increment(1);
        }
        Ok(Decided::Fresh(stored)) => {
            let kind = serde_json::from_str::<serde_json::Value>(&stored.body)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_else(|| stored.status.to_string());
            metrics::counter!("caja_orders_refused_total", "reason" => kind).increment(1);
        }
        Ok(Decided::Replayed(_)) => {}
        Ok(Decided::Refused { kind, .. }) => {
            metrics::counter!("caja_orders_refused_total", "reason" => *kind).increment(1);
        }
        Err(e) => {
            metrics::counter!("caja_orders_refused_total", "reason" => e.kind()).increment(1);
        }
    }
    metrics::histogram!("caja_checkout_duration_seconds").record(started.elapsed().as_secs_f64());
    Ok(match result? {
        Decided::Fresh(stored) => respond(stored, false),
        Decided::Replayed(response) | Decided::Refused { response, .. } => response,
    })
}

/// A checkout's answer: decided by this request, or replayed from the first with its key.
enum Decided {
    Fresh(StoredResponse),
    Replayed(Response),
    /// Refused before any work, and stored under the key all the same.
    Refused {
        response: Response,
        kind: &'static str,
    },
}

async fn checkout(
    state: &AppState,
    caller: &Caller,
    req: &Idempotent<CreateOrder>,
) -> ApiResult<Decided> {
    caller.require(Action::Sell)?;
    let new = match req.body.parse(state) {
        Ok(new) => new,
        Err(e) => {
            let refusal = ApiError::from(e);
            let kind = refusal.kind();
            let response = refuse(state, caller, req, refusal).await?;
            return Ok(Decided::Refused { response, kind });
        }
    };
    let request_id = current_request_id().unwrap_or_default();
    match state.batcher() {
        Some(batcher) => {
            // No read-only look for a stored answer first: the batch claims every key and
            // replays those answered before, and a fresh checkout (the common case) saves
            // a round trip.
            match batcher
                .checkout(scope(caller, req), new, request_id)
                .await?
            {
                Outcome::Fresh(stored) => Ok(Decided::Fresh(stored)),
                Outcome::Replay { response, waited } => {
                    Ok(Decided::Replayed(replayed(response, waited)))
                }
                Outcome::Mismatch => Err(mismatch()),
            }
        }
        None => {
            let mut work = match claim(state, caller, req).await? {
                Claimed::Replay(r) => return Ok(Decided::Replayed(r)),
                Claimed::Fresh(w) => w,
            };
            let decided = work.create_order(&new, state.order_ttl()).await?;
            let stored = render_checkout(&request_id, decided.as_ref());
            work.commit(&stored).await?;
            Ok(Decided::Fresh(stored))
        }
    }
}

/// The one rendering of a checkout's outcome, shared by the batched and per-request paths
/// so both answer byte for byte alike.
pub fn render_checkout(
    request_id: &str,
    outcome: Result<&Order, &CheckoutRefusal>,
) -> StoredResponse {
    match outcome {
        Ok(order) => StoredResponse {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("location".into(), format!("/v1/orders/{}", order.id)),
            ],
            body: serde_json::to_string(&OrderBody::from(order)).unwrap_or_default(),
        },
        Err(refusal) => {
            let e = checkout_refusal(refusal.clone());
            StoredResponse {
                status: e.status().as_u16(),
                headers: vec![("content-type".into(), crate::error::PROBLEM_JSON.into())],
                body: e.body(Some(request_id.to_owned())),
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderBody),
              (status = 404, description = "No such order", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderBody>> {
    caller.require(Action::ReadOrders)?;
    let order = state.store().order(&order_id(&id)?).await?;
    Ok(Json(OrderBody::from(&order)))
}

#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    params(ListQuery),
    responses((status = 200, description = "Orders in creation order", body = OrderPage),
              (status = 400, description = "Bad status, cursor or limit", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    caller.require(Action::ReadOrders)?;
    let bad = |e: DomainError| ApiError::bad_request("invalid-query", e.to_string());
    let limit = PageLimit::parse(query.limit).map_err(bad)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(bad)?;
    let after = query
        .after
        .as_deref()
        .map(|a| OrderId::parse("after", a))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request("invalid-cursor", "after: not a cursor from this list")
        })?;
    let page = state
        .store()
        .list_orders(status, after.as_ref(), limit)
        .await?;
    Ok(Json(OrderPage {
        data: page.items.iter().map(OrderBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Runs one lifecycle action idempotently.
async fn act<T>(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &Idempotent<T>,
    request: ActionRequest,
) -> ApiResult<Response> {
    let id = match order_id(id) {
        Ok(id) => id,
        Err(e) => return refuse(state, caller, req, e).await,
    };
    let mut work = match claim(state, caller, req).await? {
        Claimed::Replay(r) => return Ok(r),
        Claimed::Fresh(w) => w,
    };
    let response = match work.act(&id, &request).await? {
        Ok(order) => order_response(StatusCode::OK, &order),
        Err(refusal) => action_refusal(refusal).into_response(),
    };
    finish(work, response).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/payments", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = PaymentBody,
    responses((status = 200, description = "Paid", body = OrderBody),
              (status = 409, description = "Not payable in its current status (e.g. expired)", body = crate::openapi::Problem),
              (status = 422, description = "Amount is not the total", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn pay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<PaymentBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    let request = match payment(&state, &req.body) {
        Ok(request) => request,
        Err(e) => return refuse(&state, &caller, &req, e).await,
    };
    act(&state, &caller, &id, &req, request).await
}

fn payment(state: &AppState, body: &PaymentBody) -> ApiResult<ActionRequest> {
    let method: PaymentMethod = body.method.parse()?;
    let amount = Money::parse_price(
        "amount",
        body.amount.amount,
        &body.amount.currency,
        state.config().currency,
    )?;
    let reference = text::optional("reference", body.reference.as_deref(), 200)?;
    Ok(ActionRequest::Pay {
        method,
        amount: amount.amount,
        reference,
    })
}

#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "Cancelled, stock released", body = OrderBody),
              (status = 409, description = "Not cancellable in its current status", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    act(&state, &caller, &id, &req, ActionRequest::Cancel).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/fulfill", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    responses((status = 200, description = "Fulfilled", body = OrderBody),
              (status = 409, description = "Only a paid order can be fulfilled", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn fulfill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<EmptyBody>,
) -> ApiResult<Response> {
    caller.require(Action::Sell)?;
    act(&state, &caller, &id, &req, ActionRequest::Fulfill).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders",
    params(("id" = String, Path, description = "Order id"),
           ("Idempotency-Key" = String, Header, description = "Repeated on retries")),
    request_body = RefundBody,
    responses((status = 200, description = "Refunded", body = OrderBody),
              (status = 409, description = "Only a paid or fulfilled order can be refunded", body = crate::openapi::Problem)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Idempotent<RefundBody>,
) -> ApiResult<Response> {
    caller.require(Action::Refund)?;
    let restock = req.body.restock;
    act(
        &state,
        &caller,
        &id,
        &req,
        ActionRequest::Refund { restock },
    )
    .await
}

//! `caja dev-provider`: a payment provider on loopback that speaks the HTTP caja's
//! MercadoPago adapter speaks, so tests and demos never reach the internet.
//!
//! The provider's side (what the adapter calls):
//! - `POST /checkout/preferences` creates a checkout (a retried `x-idempotency-key` gets
//!   the same one); `GET /v1/payments/{id}`; `POST /v1/payments/{id}/refunds`.
//!
//! The control side (what a test or a person drives), under `/_sim`:
//! - `POST /_sim/preferences/{id}/pay` `{status?, delay_ms?, notify?}`: the buyer pays;
//! - `POST /_sim/payments` `{external_reference, amount, currency?, status?}`: a payment
//!   made directly, without a checkout;
//! - `POST /_sim/payments/{id}/refund` `{notify?}`;
//! - `POST /_sim/payments/{id}/notify` `{times?, signature?: valid|bad|stale, action?,
//!   event_id?, url?}`: sends the notification (again, duplicated, badly signed, or
//!   stale) and answers the status of each delivery;
//! - `POST /_sim/mode` `{mode: ok|fail|hang}`: how the provider's side answers.
//!
//! Notifications are signed as MercadoPago signs them (`x-signature: ts=…,v1=…`) with the
//! webhook secret it was started with, by the clock it was given.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caja_core::payments::signature;
use caja_core::time::{self, SharedClock};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the simulator starts.
#[derive(Clone)]
pub struct Options {
    /// Signs notifications.
    pub webhook_secret: String,
    /// Where notifications go when a checkout names no `notification_url`.
    pub notify_url: Option<String>,
    /// "Now" for signature timestamps.
    pub clock: SharedClock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail,
    Hang,
}

struct Preference {
    id: String,
    external_reference: Option<String>,
    amount: f64,
    currency: String,
    notification_url: Option<String>,
}

#[derive(Clone)]
struct Payment {
    id: u64,
    status: String,
    external_reference: Option<String>,
    amount: f64,
    currency: String,
    notification_url: Option<String>,
}

impl Payment {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "status_detail": if self.status == "approved" { "accredited" } else { "" },
            "external_reference": self.external_reference,
            "transaction_amount": self.amount,
            "currency_id": self.currency,
            "payment_method_id": "visa",
            "live_mode": false,
        })
    }
}

struct World {
    mode: Mode,
    preferences: HashMap<String, Preference>,
    by_key: HashMap<String, String>,
    payments: HashMap<u64, Payment>,
    next_payment: u64,
    next_event: u64,
}

#[derive(Clone)]
struct Sim {
    options: Options,
    world: Arc<Mutex<World>>,
    http: reqwest::Client,
    base: String,
}

impl Sim {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // Every handler finishes its change before releasing the lock.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves the simulator on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let base = format!("http://{}", listener.local_addr()?);
    let app = router(options, base);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn router(options: Options, base: String) -> Router {
    let sim = Sim {
        options,
        world: Arc::new(Mutex::new(World {
            mode: Mode::Ok,
            preferences: HashMap::new(),
            by_key: HashMap::new(),
            payments: HashMap::new(),
            next_payment: 1_000_000_001,
            next_event: 5_000_000_001,
        })),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        base,
    };
    Router::new()
        .route("/checkout/preferences", post(create_preference))
        .route("/v1/payments/{id}", get(read_payment))
        .route("/v1/payments/{id}/refunds", post(refund_payment))
        .route("/_sim/preferences/{id}/pay", post(sim_pay))
        .route("/_sim/payments", post(sim_direct_payment))
        .route("/_sim/payments/{id}/refund", post(sim_refund))
        .route("/_sim/payments/{id}/notify", post(sim_notify))
        .route("/_sim/mode", post(sim_mode))
        .with_state(sim)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "status": status.as_u16()})),
    )
        .into_response()
}

/// The provider's side answers as the mode says: normally, 500, or not at all.
async fn gate(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > "Bearer ".len() && v.starts_with("Bearer "));
    let mode = sim.world().mode;
    match mode {
        Mode::Hang => {
            std::future::pending::<()>().await;
            None
        }
        Mode::Fail => Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated failure",
        )),
        Mode::Ok if !authorized => Some(error(StatusCode::UNAUTHORIZED, "invalid access token")),
        Mode::Ok => None,
    }
}

async fn create_preference(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    let key = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let amount: f64 = items
        .iter()
        .map(|i| i["unit_price"].as_f64().unwrap_or(0.0) * i["quantity"].as_f64().unwrap_or(0.0))
        .sum();
    let currency = items
        .first()
        .and_then(|i| i["currency_id"].as_str())
        .unwrap_or("MXN")
        .to_owned();
    let mut world = sim.world();
    if let Some(existing) = key.as_ref().and_then(|k| world.by_key.get(k)).cloned() {
        return (
            StatusCode::CREATED,
            Json(preference_json(&sim, &world.preferences[&existing])),
        )
            .into_response();
    }
    let id = format!("pref-{}", ulid::Ulid::new().to_string().to_lowercase());
    let preference = Preference {
        id: id.clone(),
        external_reference: body["external_reference"].as_str().map(str::to_owned),
        amount,
        currency,
        notification_url: body["notification_url"].as_str().map(str::to_owned),
    };
    let answer = preference_json(&sim, &preference);
    world.preferences.insert(id.clone(), preference);
    if let Some(k) = key {
        world.by_key.insert(k, id);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

fn preference_json(sim: &Sim, p: &Preference) -> Value {
    json!({
        "id": p.id,
        "init_point": format!("{}/checkout/{}", sim.base, p.id),
        "sandbox_init_point": format!("{}/checkout/{}", sim.base, p.id),
        "external_reference": p.external_reference,
        "items": [{"unit_price": p.amount, "quantity": 1, "currency_id": p.currency}],
    })
}

async fn read_payment(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    let payment = id
        .parse::<u64>()
        .ok()
        .and_then(|id| sim.world().payments.get(&id).cloned());
    match payment {
        Some(p) => Json(p.json()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Payment not found"),
    }
}

async fn refund_payment(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    match refund(&sim, &id, true).await {
        Some(p) => (
            StatusCode::CREATED,
            Json(json!({"id": p.id, "payment_id": p.id, "status": "approved"})),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "Payment not found"),
    }
}

async fn refund(sim: &Sim, id: &str, notify: bool) -> Option<Payment> {
    let payment = {
        let mut world = sim.world();
        let p = world.payments.get_mut(&id.parse::<u64>().ok()?)?;
        p.status = "refunded".into();
        p.clone()
    };
    if notify {
        let s = sim.clone();
        let p = payment.clone();
        tokio::spawn(async move {
            s.notify(&p, &Notify::updated()).await;
        });
    }
    Some(payment)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PayBody {
    status: Option<String>,
    delay_ms: u64,
    notify: Option<bool>,
}

async fn sim_pay(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Option<Json<PayBody>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let payment = {
        let mut world = sim.world();
        let Some(pref) = world.preferences.get(&id) else {
            return error(StatusCode::NOT_FOUND, "no such preference");
        };
        let (reference, amount, currency, url) = (
            pref.external_reference.clone(),
            pref.amount,
            pref.currency.clone(),
            pref.notification_url.clone(),
        );
        new_payment(
            &mut world,
            body.status.as_deref(),
            reference,
            amount,
            currency,
            url,
        )
    };
    after_payment(&sim, &payment, body.notify.unwrap_or(true), body.delay_ms);
    (StatusCode::CREATED, Json(payment.json())).into_response()
}

#[derive(Debug, Deserialize)]
struct DirectBody {
    external_reference: Option<String>,
    amount: f64,
    currency: Option<String>,
    status: Option<String>,
    notify: Option<bool>,
    #[serde(default)]
    delay_ms: u64,
}

async fn sim_direct_payment(State(sim): State<Sim>, Json(body): Json<DirectBody>) -> Response {
    let payment = {
        let mut world = sim.world();
        new_payment(
            &mut world,
            body.status.as_deref(),
            body.external_reference,
            body.amount,
            body.currency.unwrap_or_else(|| "MXN".into()),
            None,
        )
    };
    after_payment(&sim, &payment, body.notify.unwrap_or(false), body.delay_ms);
    (StatusCode::CREATED, Json(payment.json())).into_response()
}

fn new_payment(
    world: &mut World,
    status: Option<&str>,
    external_reference: Option<String>,
    amount: f64,
    currency: String,
    notification_url: Option<String>,
) -> Payment {
    let id = world.next_payment;
    world.next_payment += 1;
    let payment = Payment {
        id,
        status: status.unwrap_or("approved").to_owned(),
        external_reference,
        amount,
        currency,
        notification_url,
    };
    world.payments.insert(id, payment.clone());
    payment
}

fn after_payment(sim: &Sim, payment: &Payment, notify: bool, delay_ms: u64) {
    if !notify {
        return;
    }
    let s = sim.clone();
    let p = payment.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        s.notify(&p, &Notify::created()).await;
    });
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefundBody {
    notify: Option<bool>,
}

async fn sim_refund(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Option<Json<RefundBody>>,
) -> Response {
    let notify = body.and_then(|Json(b)| b.notify).unwrap_or(true);
    match refund(&sim, &id, notify).await {
        Some(p) => Json(p.json()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Payment not found"),
    }
}

/// One notification to send.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Notify {
    times: usize,
    /// valid, bad or stale.
    signature: String,
    action: String,
    event_id: Option<u64>,
    url: Option<String>,
}

impl Default for Notify {
    fn default() -> Self {
        Self::created()
    }
}

impl Notify {
    fn created() -> Self {
        Self {
            times: 1,
            signature: "valid".into(),
            action: "payment.created".into(),
            event_id: None,
            url: None,
        }
    }

    fn updated() -> Self {
        Self {
            action: "payment.updated".into(),
            ..Self::created()
        }
    }
}

async fn sim_notify(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Option<Json<Notify>>,
) -> Response {
    let notify = body.map(|Json(b)| b).unwrap_or_default();
    let payment = id
        .parse::<u64>()
        .ok()
        .and_then(|id| sim.world().payments.get(&id).cloned());
    let Some(payment) = payment else {
        return error(StatusCode::NOT_FOUND, "Payment not found");
    };
    let (event_id, deliveries) = sim.notify(&payment, &notify).await;
    Json(json!({"event_id": event_id, "deliveries": deliveries})).into_response()
}

#[derive(Debug, Deserialize)]
struct ModeBody {
    mode: String,
}

async fn sim_mode(State(sim): State<Sim>, Json(body): Json<ModeBody>) -> Response {
    let mode = match body.mode.as_str() {
        "ok" => Mode::Ok,
        "fail" => Mode::Fail,
        "hang" => Mode::Hang,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mode must be ok, fail or hang",
            )
        }
    };
    sim.world().mode = mode;
    Json(json!({"mode": body.mode})).into_response()
}

impl Sim {
    /// Sends `notify` about `payment` `times` times (one event id: a redelivery), and
    /// returns the event id and each delivery's HTTP status (0: not delivered).
    async fn notify(&self, payment: &Payment, notify: &Notify) -> (u64, Vec<u16>) {
        let event_id = notify.event_id.unwrap_or_else(|| {
            let mut world = self.world();
            world.next_event += 1;
            world.next_event
        });
        let Some(url) = notify
            .url
            .clone()
            .or_else(|| payment.notification_url.clone())
            .or_else(|| self.options.notify_url.clone())
        else {
            return (event_id, Vec::new());
        };
        let data_id = payment.id.to_string();
        let body = json!({
            "id": event_id,
            "live_mode": false,
            "type": "payment",
            "date_created": time::format(&self.options.clock.now()),
            "user_id": 1,
            "api_version": "v1",
            "action": notify.action,
            "data": {"id": data_id},
        });
        let mut statuses = Vec::new();
        for _ in 0..notify.times.max(1) {
            let request_id = ulid::Ulid::new().to_string();
            let now = self.options.clock.now();
            let ts = match notify.signature.as_str() {
                "stale" => now - chrono::Duration::minutes(30),
                _ => now,
            }
            .timestamp()
            .to_string();
            let secret = if notify.signature == "bad" {
                "not the secret"
            } else {
                self.options.webhook_secret.as_str()
            };
            let header = signature::sign(secret.as_bytes(), Some(&data_id), Some(&request_id), &ts);
            let sent = self
                .http
                .post(&url)
                .query(&[("data.id", data_id.as_str()), ("type", "payment")])
                .header("x-signature", header)
                .header("x-request-id", &request_id)
                .json(&body)
                .send()
                .await;
            statuses.push(sent.map(|r| r.status().as_u16()).unwrap_or(0));
        }
        tracing::debug!(event_id, ?statuses, "notified");
        (event_id, statuses)
    }
}

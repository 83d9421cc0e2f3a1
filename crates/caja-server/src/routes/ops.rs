//! Operations endpoints, outside `/v1` and without a key: liveness, readiness (in the
//! `application/health+json` shape), Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use caja_core::payments::breaker::State as Breaker;
use caja_store::migrate::Migrator;
use serde_json::{json, Value};

use crate::AppState;

const HEALTH_JSON: &str = "application/health+json";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

fn health_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
    response
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", content_type = "application/health+json")))]
pub async fn health() -> Response {
    health_json(StatusCode::OK, json!({ "status": "pass" }))
}

/// Readiness: the database answers, no migration is pending, and shutdown has not begun.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", content_type = "application/health+json"),
        (status = 503, description = "Not ready", content_type = "application/health+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut pass = !state.is_shutting_down();
    let database = match state.store().ping().await {
        Ok(latency) => json!({
            "componentType": "datastore",
            "observedValue": (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "observedUnit": "ms",
            "status": "pass",
        }),
        Err(e) => {
            pass = false;
            json!({ "componentType": "datastore", "status": "fail", "output": e.to_string() })
        }
    };
    // Writes that could not commit (a full disk, a database that went away) fail the check
    // until a write commits again; a probe write finds out before any client has to.
    let writes = match state.store().write_fault() {
        None if state.store().write_panicked() => {
            pass = false;
            json!({ "componentType": "datastore", "status": "fail", "output": "a write batch panicked and none has committed since; see the log" })
        }
        None => json!({ "componentType": "datastore", "status": "pass" }),
        Some(_) => match state.store().probe_write().await {
            Ok(()) => json!({ "componentType": "datastore", "status": "pass" }),
            Err(e) => {
                pass = false;
                json!({ "componentType": "datastore", "status": "fail", "output": e.to_string() })
            }
        },
    };
    // Maintenance mode leaves the server ready (reads and the feed work) and says so.
    let maintenance = match state.maintenance().current(state.store()).await {
        Ok(Some(m)) => json!({ "componentType": "system", "status": "warn", "observedValue": true,
            "output": format!("maintenance mode since {}: writes are refused", caja_core::time::format(&m.since)) }),
        Ok(None) => json!({ "componentType": "system", "status": "pass", "observedValue": false }),
        Err(e) => json!({ "componentType": "system", "status": "warn", "output": e.to_string() }),
    };
    let migrator = Migrator::new(state.store(), Default::default(), Default::default());
    let migrations = match migrator.pending_checked().await {
        Ok(pending) => {
            let ok = pending.is_empty();
            pass &= ok;
            // Newer expand migrations (a rolling upgrade under way) leave this replica ready.
            let newer = migrator.newer_expand().await.unwrap_or_default();
            let output = if !ok {
                format!("pending: {}", pending.join(", "))
            } else if !newer.is_empty() {
                format!(
                    "newer expand migrations applied, which this binary predates and keeps working with: {}",
                    newer.join(", ")
                )
            } else {
                String::new()
            };
            json!({
                "componentType": "datastore",
                "observedValue": pending.len(),
                "status": if ok { "pass" } else { "fail" },
                "output": output,
            })
        }
        Err(e) => {
            pass = false;
            json!({ "componentType": "datastore", "status": "fail", "output": e.to_string() })
        }
    };
    let uptime = json!({
        "componentType": "system",
        "observedValue": state.uptime().as_secs(),
        "observedUnit": "s",
        "status": "pass",
    });
    let shutdown = json!({
        "componentType": "system",
        "observedValue": state.is_shutting_down(),
        "status": if state.is_shutting_down() { "fail" } else { "pass" },
    });
    let mut body = json!({
        "status": if pass { "pass" } else { "fail" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "database:responseTime": [database],
            "database:writes": [writes],
            "process:maintenance": [maintenance],
            "migrations:pending": [migrations],
            "process:uptime": [uptime],
            "process:shuttingDown": [shutdown],
        },
    });
    // A provider that is down stops provider payments, not sales: a warning, never a fail.
    if let Some(payments) = state.payments() {
        let breaker = payments.calls.state();
        let (status, output) = match breaker {
            Breaker::Closed => ("pass", String::new()),
            Breaker::HalfOpen { .. } => ("warn", "probing whether the provider is back".to_owned()),
            Breaker::Open { until } => (
                "warn",
                format!(
                    "calls fail fast until {}: the provider kept failing",
                    caja_core::time::format(&until)
                ),
            ),
        };
        body["checks"][format!("provider:{}", payments.calls.name())] = json!([{
            "componentType": "component",
            "observedValue": breaker.name(),
            "status": status,
            "output": output,
        }]);
    }
    metrics::gauge!("caja_ready").set(if pass { 1.0 } else { 0.0 });
    let status = if pass {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    health_json(status, body)
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.store().pool_stats();
    crate::metrics::record_pool(stats.size, stats.idle);
    crate::metrics::record_memory();
    if let Ok(n) = state.store().orders_needing_refund().await {
        metrics::gauge!("caja_orders_needing_refund").set(n as f64);
    }
    let text = crate::metrics::handle()
        .map(|h| h.render())
        .unwrap_or_else(|| "# metrics recorder unavailable\n".to_owned());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::openapi_document(state.config()))
}

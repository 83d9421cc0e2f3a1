//! Maintenance mode: every write answers 503 `maintenance` (with `Retry-After` and the
//! operator's message) while reads, `/health` and the change feed keep working. The switch
//! lives in the database, so it holds on every replica (within moments, through the change
//! feed) and across restarts.

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use caja_store::{Maintenance, Store, StoreError};

use crate::error::ApiError;
use crate::AppState;

/// The switch as last read, and the flags generation it was read at.
#[derive(Default)]
pub struct MaintenanceCache(Mutex<Option<(u64, Option<Maintenance>)>>);

impl MaintenanceCache {
    /// Maintenance mode now: from memory unless a flag changed since it was read.
    pub async fn current(&self, store: &Store) -> Result<Option<Maintenance>, StoreError> {
        let generation = store.flags_generation();
        if let Some((g, m)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if *g == generation {
                return Ok(m.clone());
            }
        }
        let m = store.maintenance().await?;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, m.clone()));
        Ok(m)
    }
}

/// The refusal of a write in maintenance mode.
pub fn refusal(m: &Maintenance) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "maintenance",
        "Down for maintenance",
        if m.message.is_empty() {
            "the server is in maintenance mode: writes are refused for now; reads work".to_owned()
        } else {
            m.message.clone()
        },
    )
    .with("since", caja_core::time::format(&m.since))
    .retry_after(30)
}

/// Refuses writes while maintenance mode is on; the switch itself stays reachable.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if writes && req.uri().path() != "/v1/maintenance" {
        match state.maintenance().current(state.store()).await {
            Ok(Some(m)) => return refusal(&m).into_response(),
            Ok(None) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    next.run(req).await
}

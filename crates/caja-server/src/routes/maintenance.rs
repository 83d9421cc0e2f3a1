//! `/v1/maintenance`: read and flip maintenance mode (admin).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::text;
use caja_store::Maintenance;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/maintenance", get(read).put(set))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceBody {
    pub on: bool,
    /// What refused writes are told.
    pub message: Option<String>,
    pub since: Option<String>,
}

impl From<Option<Maintenance>> for MaintenanceBody {
    fn from(m: Option<Maintenance>) -> Self {
        Self {
            on: m.is_some(),
            message: m.as_ref().map(|m| m.message.clone()),
            since: m.map(|m| caja_core::time::format(&m.since)),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMaintenance {
    pub on: bool,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub message: Option<String>,
}

#[utoipa::path(get, path = "/v1/maintenance", tag = "operations",
    responses((status = 200, description = "Maintenance mode", body = MaintenanceBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<MaintenanceBody>> {
    caller.require(Action::Administer)?;
    let m = state.maintenance().current(state.store()).await?;
    Ok(Json(m.into()))
}

#[utoipa::path(put, path = "/v1/maintenance", tag = "operations",
    request_body = SetMaintenance,
    responses((status = 200, description = "Maintenance mode, as set for every replica", body = MaintenanceBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SetMaintenance>,
) -> ApiResult<Json<MaintenanceBody>> {
    caller.require(Action::Administer)?;
    let message = text::optional("message", body.message.as_deref(), 500)?.unwrap_or_default();
    let m = state
        .store()
        .set_maintenance(
            body.on.then_some(message.as_str()),
            &crate::idempotent::actor(&caller),
        )
        .await?;
    tracing::warn!(on = body.on, key_id = %caller.key_id, "maintenance mode changed");
    Ok(Json(m.into()))
}

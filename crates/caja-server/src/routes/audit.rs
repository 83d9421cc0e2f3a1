//! `GET /v1/audit`: the audit log of admin actions, oldest first (admin).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::ids::AuditId;
use caja_core::text;
use caja_store::audit::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiQuery;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditBody {
    pub id: String,
    pub at: String,
    /// The API key id that acted, or `cli:user@host`, or `caja` for caja's own jobs.
    pub actor: String,
    pub request_id: Option<String>,
    /// e.g. `product.updated`, `stock.moved`, `order.refunded`, `key.revoked`,
    /// `maintenance.on`, `backup.restored`.
    pub action: String,
    pub target: Option<String>,
    /// The resource before and after, as the API shows it.
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl From<&AuditEntry> for AuditBody {
    fn from(e: &AuditEntry) -> Self {
        let json = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
        Self {
            id: e.id.clone(),
            at: caja_core::time::format(&e.at),
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            before: json(&e.before),
            after: json(&e.after),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub after: Option<String>,
    pub limit: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
    /// Only actions on this resource id.
    pub target: Option<String>,
    /// Only this actor (a key id).
    pub actor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "operations", params(AuditQuery),
    responses((status = 200, description = "Admin actions, oldest first", body = AuditPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    caller.require(Action::Administer)?;
    let (limit, after) =
        crate::json::page(q.limit, q.after.as_deref(), |a| AuditId::parse("after", a))?;
    // Free text from the query string: no control characters (PostgreSQL cannot even
    // compare a NUL), at most 200 characters.
    let filter = AuditFilter {
        action: text::optional("action", q.action.as_deref(), 200)?,
        target: text::optional("target", q.target.as_deref(), 200)?,
        actor: text::optional("actor", q.actor.as_deref(), 200)?,
    };
    let page = state
        .store()
        .list_audit(&filter, after.as_ref(), limit)
        .await?;
    Ok(Json(AuditPage {
        data: page.items.iter().map(AuditBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

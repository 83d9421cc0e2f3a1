//! `/v1/locations`: the branches stock is kept and sold from, and the one rule of where a
//! request sells ([`selling_at`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::{Action, Role};
use caja_core::command::{Command, Refusal};
use caja_core::ids::LocationId;
use caja_core::location::{
    may_sell_at, parse_name, Location, LocationCode, LocationPatch, NewLocation,
};
use caja_core::DomainError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotent::command;
use crate::json::{ApiJson, ApiQuery, PageQuery};
use crate::versions::{if_match, with_etag};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/locations", get(list).post(create))
        .route("/v1/locations/{id}", get(read).patch(update))
}

/// The location a request sells at: the one it names (by id or code), else its key's,
/// else the main one. A clerk's key bound to a location sells there only.
pub(crate) async fn selling_at(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> ApiResult<LocationId> {
    let Some(named) = named else {
        return Ok(caller.location.clone().unwrap_or_else(LocationId::main));
    };
    let at = find(state, "location", named).await?;
    let bound = bound(caller);
    if may_sell_at(bound, &at) {
        Ok(at)
    } else {
        Err(ApiError::from(&Refusal::SellsElsewhere {
            location: bound.cloned().unwrap_or_else(LocationId::main),
        }))
    }
}

/// The location a caller sells at only: a clerk's bound key's (an admin's key bound to a
/// location only defaults to it).
pub(crate) fn bound(caller: &Caller) -> Option<&LocationId> {
    caller
        .location
        .as_ref()
        .filter(|_| caller.role != Role::Admin)
}

/// The location a request names by id or code, or a 422 naming `field`.
pub(crate) async fn find(state: &AppState, field: &str, named: &str) -> ApiResult<LocationId> {
    match state.store().find_location(named).await {
        Ok(l) => Ok(l.id),
        Err(caja_store::StoreError::NotFound) => {
            Err(ApiError::from(&Refusal::LocationNotFound).with("field", field))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLocation {
    /// Unique; what a till or a URL names it by.
    #[schema(example = "centro", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub code: String,
    #[schema(example = "Sucursal Centro", max_length = 200)]
    pub name: String,
}

/// Fields to change; at least one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLocation {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub code: Option<String>,
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

impl PatchLocation {
    fn parse(&self) -> Result<LocationPatch, DomainError> {
        let patch = LocationPatch {
            code: self.code.as_deref().map(LocationCode::parse).transpose()?,
            name: self.name.as_deref().map(parse_name).transpose()?,
        };
        if patch.code.is_none() && patch.name.is_none() {
            return Err(DomainError::invalid(
                "body",
                "name at least one of code, name",
            ));
        }
        Ok(patch)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationBody {
    #[schema(example = "loc_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    pub code: String,
    pub name: String,
    /// The location all stock belonged to before there were others; where a request
    /// sells when neither it nor its key names one.
    pub default: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Location> for LocationBody {
    fn from(l: &Location) -> Self {
        Self {
            id: l.id.to_string(),
            code: l.code.as_str().to_owned(),
            name: l.name.clone(),
            default: l.is_default(),
            version: l.version.0,
            created_at: caja_core::time::format(&l.created_at),
            updated_at: caja_core::time::format(&l.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationPage {
    pub data: Vec<LocationBody>,
    pub next_cursor: Option<String>,
}

fn location_id(raw: &str) -> ApiResult<LocationId> {
    LocationId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no location {raw}")))
}

#[utoipa::path(post, path = "/v1/locations", tag = "locations",
    request_body = CreateLocation,
    responses(
        (status = 201, description = "Created", body = LocationBody, headers(("ETag" = String))),
        (status = 409, description = "Another location has this code", body = crate::openapi::Problem),
        (status = 422, description = "Invalid field", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateLocation>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let new = NewLocation {
        code: LocationCode::parse(&body.code)?,
        name: parse_name(&body.name)?,
    };
    Ok(command(&state, &caller, None, Command::CreateLocation(new))
        .await?
        .response)
}

#[utoipa::path(get, path = "/v1/locations", tag = "locations",
    params(PageQuery),
    responses((status = 200, description = "Locations, the default first", body = LocationPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<LocationPage>> {
    caller.require(Action::ReadCatalog)?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), |a| {
        LocationId::parse("after", a)
    })?;
    let page = state.store().list_locations(after.as_ref(), limit).await?;
    Ok(Json(LocationPage {
        data: page.items.iter().map(LocationBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/locations/{id}", tag = "locations",
    params(("id" = String, Path, description = "Location id")),
    responses(
        (status = 200, description = "The location", body = LocationBody, headers(("ETag" = String))),
        (status = 404, description = "No such location", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ReadCatalog)?;
    let location = state.store().location(&location_id(&id)?).await?;
    Ok(with_etag(LocationBody::from(&location), location.version))
}

#[utoipa::path(patch, path = "/v1/locations/{id}", tag = "locations",
    params(("id" = String, Path, description = "Location id"),
           ("If-Match" = String, Header, description = "The ETag last read")),
    request_body = PatchLocation,
    responses(
        (status = 200, description = "Updated", body = LocationBody, headers(("ETag" = String))),
        (status = 409, description = "Another location has this code", body = crate::openapi::Problem),
        (status = 412, description = "Stale If-Match", body = crate::openapi::Problem),
        (status = 428, description = "If-Match missing", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchLocation>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let location = location_id(&id)?;
    // A location is never deleted: one that exists now is there when the update is decided.
    state.store().location(&location).await?;
    let expected = if_match(&headers)?;
    let update = Command::UpdateLocation {
        location,
        expected,
        patch: body.parse()?,
    };
    Ok(command(&state, &caller, None, update).await?.response)
}

//! `/v1/products`: the catalog. Handlers parse, check the caller's role, and hand a command
//! to the store's one writer; the rules live in `caja-core`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use caja_core::auth::Action;
use caja_core::command::Command;
use caja_core::ids::{LocationId, ProductId};
use caja_core::money::{Currency, Money};
use caja_core::product::{NewProduct, Product, ProductName, ProductPatch, Sku, Stock};
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
        .route("/v1/products", get(list).post(create))
        .route("/v1/products/{id}", get(read).patch(update).delete(archive))
}

/// An amount in minor units and its ISO 4217 currency.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    #[schema(example = 4550, minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// The store's currency; any other is refused.
    #[schema(example = "MXN", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl MoneyBody {
    fn parse(&self, field: &'static str, store: Currency) -> Result<Money, DomainError> {
        Money::parse_price(field, self.amount, &self.currency, store)
    }
}

impl From<Money> for MoneyBody {
    fn from(m: Money) -> Self {
        Self {
            amount: m.amount,
            currency: m.currency.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    #[schema(example = "CAFE-AMERICANO", pattern = "^[A-Za-z0-9._/-]{1,64}$")]
    pub sku: String,
    /// 1–200 characters once trimmed, no control characters.
    #[schema(
        example = "Café americano",
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    pub price: MoneyBody,
    /// Units on hand at creation; 0 when absent. Changes later only through stock movements.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
    /// Where that stock is (a location's id or code): the key's location, or the default,
    /// when absent.
    #[schema(max_length = 64)]
    pub location: Option<String>,
}

impl CreateProduct {
    fn parse(&self, store: Currency, location: LocationId) -> Result<NewProduct, DomainError> {
        Ok(NewProduct {
            sku: Sku::parse(&self.sku)?,
            name: ProductName::parse(&self.name)?,
            price: self.price.parse("price", store)?,
            stock: Stock::parse(self.stock.unwrap_or(0))?,
            location,
        })
    }
}

/// Fields to change; at least one. Stock is not among them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProduct {
    #[schema(pattern = "^[A-Za-z0-9._/-]{1,64}$")]
    pub sku: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    pub price: Option<MoneyBody>,
    /// Accepted only to refuse it with a clear reason.
    #[serde(default)]
    #[schema(ignore)]
    pub stock: Option<serde::de::IgnoredAny>,
}

impl PatchProduct {
    fn parse(&self, store: Currency) -> Result<ProductPatch, DomainError> {
        if self.stock.is_some() {
            return Err(DomainError::invalid(
                "stock",
                "stock changes only through stock movements, never through PATCH",
            ));
        }
        let patch = ProductPatch {
            sku: self.sku.as_deref().map(Sku::parse).transpose()?,
            name: self.name.as_deref().map(ProductName::parse).transpose()?,
            price: self
                .price
                .as_ref()
                .map(|p| p.parse("price", store))
                .transpose()?,
        };
        if patch.is_empty() {
            return Err(DomainError::invalid(
                "body",
                "name at least one of sku, name, price",
            ));
        }
        Ok(patch)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBody {
    #[schema(example = "prod_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price: MoneyBody,
    /// What every location can sell, in total.
    pub stock: i64,
    /// Each location's share of `stock` (locations with none are left out).
    pub locations: Vec<LocationShare>,
    /// Bumped by every change; the `ETag` is this number in quotes.
    pub version: i64,
    pub archived: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Product> for ProductBody {
    fn from(p: &Product) -> Self {
        Self {
            id: p.id.to_string(),
            sku: p.sku.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            price: p.price.into(),
            stock: p.stock.value(),
            locations: p
                .locations
                .iter()
                .map(|(l, n)| LocationShare {
                    location_id: l.to_string(),
                    stock: n,
                })
                .collect(),
            version: p.version.0,
            archived: p.archived,
            created_at: caja_core::time::format(&p.created_at),
            updated_at: caja_core::time::format(&p.updated_at),
        }
    }
}

/// How much of a product one location can sell.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationShare {
    pub location_id: String,
    pub stock: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub data: Vec<ProductBody>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

fn product_id(raw: &str) -> ApiResult<ProductId> {
    ProductId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no product {raw}")))
}

#[utoipa::path(post, path = "/v1/products", tag = "products",
    request_body = CreateProduct,
    responses(
        (status = 201, description = "Created", body = ProductBody, headers(("ETag" = String))),
        (status = 409, description = "A live product has this sku", body = crate::openapi::Problem),
        (status = 422, description = "Invalid field or wrong currency", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProduct>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let at = super::locations::selling_at(&state, &caller, body.location.as_deref()).await?;
    let new = body.parse(state.config().currency, at)?;
    Ok(command(&state, &caller, None, Command::CreateProduct(new))
        .await?
        .response)
}

#[utoipa::path(get, path = "/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductBody, headers(("ETag" = String))),
        (status = 404, description = "No such product", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ReadCatalog)?;
    let product = state.store().product(&product_id(&id)?).await?;
    Ok(with_etag(ProductBody::from(&product), product.version))
}

#[utoipa::path(get, path = "/v1/products", tag = "products",
    params(PageQuery),
    responses(
        (status = 200, description = "Live products in creation order", body = ProductPage),
        (status = 400, description = "Bad cursor or limit", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<ProductPage>> {
    caller.require(Action::ReadCatalog)?;
    let (limit, after) = crate::json::page(query.limit, query.after.as_deref(), |a| {
        ProductId::parse("after", a)
    })?;
    let page = state.store().list_products(after.as_ref(), limit).await?;
    Ok(Json(ProductPage {
        data: page.items.iter().map(ProductBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(patch, path = "/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id"),
           ("If-Match" = String, Header, description = "The ETag last read")),
    request_body = PatchProduct,
    responses(
        (status = 200, description = "Updated", body = ProductBody, headers(("ETag" = String))),
        (status = 412, description = "Stale If-Match", body = crate::openapi::Problem),
        (status = 428, description = "If-Match missing", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchProduct>,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let id = product_id(&id)?;
    let expected = if_match(&headers)?;
    let patch = body.parse(state.config().currency)?;
    let update = Command::UpdateProduct {
        product: id,
        expected,
        patch,
    };
    Ok(command(&state, &caller, None, update).await?.response)
}

#[utoipa::path(delete, path = "/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id"),
           ("If-Match" = String, Header, description = "The ETag last read")),
    responses(
        (status = 200, description = "Archived (history kept)", body = ProductBody, headers(("ETag" = String))),
        (status = 412, description = "Stale If-Match", body = crate::openapi::Problem),
        (status = 428, description = "If-Match missing", body = crate::openapi::Problem),
    ),
    security(("bearer" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(Action::WriteCatalog)?;
    let id = product_id(&id)?;
    let expected = if_match(&headers)?;
    let archive = Command::ArchiveProduct {
        product: id,
        expected,
    };
    Ok(command(&state, &caller, None, archive).await?.response)
}

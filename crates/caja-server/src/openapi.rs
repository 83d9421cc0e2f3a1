//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{changes, ops, orders, products, stock, stream};

/// An RFC 9457 problem, as every error is returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable slug such as `out-of-stock` or `precondition-failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub request_id: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "caja", description = "A self-hosted sales server that never loses a sale or sells the same thing twice."),
    paths(
        products::create, products::read, products::list, products::update, products::archive,
        stock::create, stock::list,
        orders::create, orders::read, orders::list, orders::pay, orders::cancel, orders::fulfill, orders::refund,
        changes::poll, stream::stream,
        ops::health, ops::ready, ops::metrics, ops::openapi,
    ),
    components(schemas(Problem, products::ProductBody, products::ProductPage,
        products::CreateProduct, products::PatchProduct, products::MoneyBody,
        stock::CreateMovement, stock::MovementBody, stock::MovementPage,
        orders::CreateOrder, orders::OrderBody, orders::OrderPage, orders::PaymentBody, orders::RefundBody)),
    modifiers(&BearerAuth),
)]
struct Doc;

pub fn openapi_document() -> serde_json::Value {
    serde_json::to_value(Doc::openapi()).unwrap_or_default()
}

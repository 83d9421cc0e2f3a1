//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{
    audit, changes, events, locations, maintenance, ops, orders, products, stock, stream,
    subscriptions, tabs, transfers, webhooks,
};
use crate::ServerConfig;

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
        stock::create, stock::list, stock::per_location,
        orders::create, orders::read, orders::list, orders::pay, orders::checkout, orders::cancel, orders::fulfill, orders::refund,
        orders::hand_over,
        locations::create, locations::list, locations::read, locations::update,
        transfers::create, transfers::list, transfers::read, transfers::receive,
        webhooks::mercadopago, webhooks::list_events,
        subscriptions::create, subscriptions::list, subscriptions::read, subscriptions::remove,
        subscriptions::enable, subscriptions::disable, subscriptions::replay, subscriptions::deliveries,
        events::create, events::list, events::read, events::availability, events::place_hold, events::read_hold,
        events::join_queue, events::read_ticket, events::update, events::cancel,
        tabs::open, tabs::read, tabs::list, tabs::add_item, tabs::remove_item, tabs::pause, tabs::resume, tabs::close, tabs::void,
        changes::poll, stream::stream, maintenance::read, maintenance::set, audit::list,
        ops::health, ops::ready, ops::metrics, ops::openapi,
    ),
    components(schemas(Problem, audit::AuditBody, audit::AuditPage, maintenance::MaintenanceBody, maintenance::SetMaintenance, products::ProductBody, products::ProductPage,
        products::CreateProduct, products::PatchProduct, products::MoneyBody,
        stock::CreateMovement, stock::MovementBody, stock::MovementPage, stock::StockBody, stock::LocationStockBody,
        products::LocationShare, orders::HandOverBody, orders::HandoverBody,
        locations::CreateLocation, locations::PatchLocation, locations::LocationBody, locations::LocationPage,
        transfers::CreateTransfer, transfers::TransferBody, transfers::TransferPage,
        orders::CreateOrder, orders::LineBody, orders::CustomerBody, orders::OrderBody, orders::OrderLineBody, orders::OrderPage, orders::PaymentBody, orders::RefundBody,
        tabs::OpenTab, tabs::AddItem, tabs::CloseTab, tabs::VoidTab, tabs::RoundingBody, tabs::TabBody, tabs::TabItemBody,
        tabs::PeriodBody, tabs::DueBody, tabs::DueLineBody, tabs::TimeBody, tabs::TabPage,
        orders::CheckoutBody, webhooks::WebhookAnswer, webhooks::ProviderEventBody, webhooks::ProviderEventPage,
        subscriptions::CreateSubscription, subscriptions::SubscriptionBody, subscriptions::SubscriptionPage,
        subscriptions::Replay, subscriptions::DeliveryBody, subscriptions::DeliveryPage,
        events::CreateEvent, events::NewSectionBody, events::EventBody, events::SectionBody, events::EventPage,
        events::AvailabilityBody, events::SectionAvailabilityBody, events::PlaceHold, events::HoldBody,
        events::JoinQueue, events::TicketBody, events::WaitingRoomBody, events::PatchEvent)),
    modifiers(&BearerAuth),
)]
struct Doc;

/// The document as this server, with this configuration, answers: the store's currency and
/// the order limits are stated where they apply.
pub fn openapi_document(config: &ServerConfig) -> serde_json::Value {
    let mut doc = serde_json::to_value(Doc::openapi()).unwrap_or_default();
    conventions(&mut doc);
    configured(&mut doc, config);
    doc
}

/// Puts the configuration's limits into the schemas that depend on them.
fn configured(doc: &mut Value, config: &ServerConfig) {
    let Some(schemas) = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(currency) = schemas
        .get_mut("MoneyBody")
        .and_then(|m| m.get_mut("properties"))
        .and_then(|p| p.get_mut("currency"))
    {
        currency["enum"] = json!([config.currency.as_str()]);
    }
    if let Some(lines) = schemas
        .get_mut("CreateOrder")
        .and_then(|m| m.get_mut("properties"))
        .and_then(|p| p.get_mut("lines"))
    {
        lines["minItems"] = json!(1);
        lines["maxItems"] = json!(config.order_limits.max_lines);
    }
    if let Some(quantity) = schemas
        .get_mut("LineBody")
        .and_then(|m| m.get_mut("properties"))
        .and_then(|p| p.get_mut("quantity"))
    {
        quantity["minimum"] = json!(1);
        quantity["maximum"] = json!(config.order_limits.max_quantity);
    }
}

/// The refusals every operation of a kind can give, and the limits every parameter of a
/// name has, stated once here rather than on each handler: the document must describe what
/// the server does, and these come from shared layers (auth, rate limits, body parsing,
/// timeouts), not from the handlers.
fn conventions(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let v1 = path.starts_with("/v1/");
            let has_body = op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses.entry(status).or_insert_with(|| {
                    json!({
                        "description": description,
                        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    })
                });
            };
            if v1 {
                add("400", "Malformed JSON, query or header");
                add("401", "No valid API key");
                add("403", "The key's role may not do this");
                add(
                    "422",
                    "A field is missing, unknown, mistyped or out of range",
                );
                add("429", "Rate limited; see Retry-After");
                add("503", "Timed out, database unavailable, storage full, or shutting down; see Retry-After");
                if path.contains('{') {
                    add("404", "No such resource");
                }
                if has_body || method == "post" {
                    add("413", "Body over the limit");
                    add("415", "Body not sent as JSON");
                }
            }
            // Every refusal is problem+json.
            for (status, response) in responses.iter_mut() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                    if let Some(schema) = content.remove("application/json") {
                        content.insert(PROBLEM.to_owned(), schema);
                    }
                }
            }
        }
        for op in item.values_mut() {
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params {
                    constrain(path, p);
                }
            }
        }
    }
}

const PROBLEM: &str = "application/problem+json";

/// A product or order id: its prefix and a ULID (whose first digit is at most 7).
const ID_PRODUCT: &str = "^prod_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_ORDER: &str = "^ord_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_TAB: &str = "^tab_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_EVENT: &str = "^evt_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_SUBSCRIPTION: &str = "^whs_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_LOCATION: &str = "^loc_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
const ID_TRANSFER: &str = "^trf_[0-7][0-9A-HJKMNP-TV-Z]{25}$";

/// The limits the server enforces on a parameter, by its name.
fn constrain(path: &str, p: &mut Value) {
    let name = p["name"].as_str().unwrap_or_default().to_owned();
    let schema = match name.as_str() {
        "limit" if path == "/v1/changes" => {
            json!({"type": "integer", "minimum": 1, "maximum": 1000})
        }
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 200}),
        "after" if path == "/v1/changes" || path == "/v1/stream" => {
            json!({"type": "integer", "minimum": 0, "maximum": i64::MAX})
        }
        "after" if path == "/v1/products" => json!({"type": "string", "pattern": ID_PRODUCT}),
        "after" if path == "/v1/orders" => json!({"type": "string", "pattern": ID_ORDER}),
        "after" if path == "/v1/tabs" => json!({"type": "string", "pattern": ID_TAB}),
        "status" if path == "/v1/tabs" => {
            json!({"type": "string", "enum": ["open", "closed", "void"]})
        }
        "resource" if path == "/v1/tabs" => {
            json!({"type": "string", "pattern": "^[A-Za-z0-9._:/-]{1,64}$"})
        }
        "id" if path.starts_with("/v1/tabs") => json!({"type": "string", "pattern": ID_TAB}),
        "item_id" => json!({"type": "string", "pattern": "^item_[0-7][0-9A-HJKMNP-TV-Z]{25}$"}),
        "after" if path == "/v1/payments/events" => {
            json!({"type": "string", "pattern": "^[0-9T:.Z+-]{1,40}\\|[a-z]{1,20}\\|[^\\u0000-\\u001f\\u007f-\\u009f]{1,100}$"})
        }
        "status" if path == "/v1/payments/events" => {
            json!({"type": "string", "enum": ["received", "applied", "ignored"]})
        }
        "after" if path == "/v1/events" => json!({"type": "string", "pattern": ID_EVENT}),
        "after" if path == "/v1/locations" => json!({"type": "string", "pattern": ID_LOCATION}),
        "id" if path.starts_with("/v1/locations") => {
            json!({"type": "string", "pattern": ID_LOCATION})
        }
        "after" if path == "/v1/transfers" => json!({"type": "string", "pattern": ID_TRANSFER}),
        "id" if path.starts_with("/v1/transfers") => {
            json!({"type": "string", "pattern": ID_TRANSFER})
        }
        "status" if path == "/v1/transfers" => {
            json!({"type": "string", "enum": ["in_transit", "received"]})
        }
        "product_id" if path == "/v1/transfers" => {
            json!({"type": "string", "pattern": ID_PRODUCT})
        }
        "id" if path.starts_with("/v1/events") => json!({"type": "string", "pattern": ID_EVENT}),
        "client_ref" => json!({"type": "string", "pattern": "^[!-~]{1,100}$"}),
        "ticket" => json!({"type": "string", "pattern": "^qt_[0-7][0-9A-HJKMNP-TV-Z]{25}$"}),
        "id" if path.starts_with("/v1/holds") => {
            json!({"type": "string", "pattern": "^hold_[0-7][0-9A-HJKMNP-TV-Z]{25}$"})
        }
        "after" if path == "/v1/webhook-subscriptions" => {
            json!({"type": "string", "pattern": ID_SUBSCRIPTION})
        }
        "id" if path.starts_with("/v1/webhook-subscriptions") => {
            json!({"type": "string", "pattern": ID_SUBSCRIPTION})
        }
        "after" if path == "/v1/audit" => {
            json!({"type": "string", "pattern": "^aud_[0-7][0-9A-HJKMNP-TV-Z]{25}$"})
        }
        "after" => json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
        "status" if path == "/v1/orders" => json!({"type": "string", "enum":
            ["pending_payment", "paid", "fulfilled", "cancelled", "expired", "refunded", "needs_refund"]}),
        "topics" => json!({"type": "string", "pattern":
            "^((products|orders|stock|tabs|events|locations|(product|order|tab|event|queue):[A-Za-z0-9_]{1,64})(,(products|orders|stock|tabs|events|locations|(product|order|tab|event|queue):[A-Za-z0-9_]{1,64}))*)?$"}),
        "action" | "target" | "actor" => json!({"type": "string", "maxLength": 200,
            "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"}),
        "id" if path.starts_with("/v1/products") => {
            json!({"type": "string", "pattern": ID_PRODUCT})
        }
        "id" if path.starts_with("/v1/orders") => json!({"type": "string", "pattern": ID_ORDER}),
        "wait" => json!({"type": "integer", "minimum": 0, "maximum": 25}),
        "Idempotency-Key" => {
            p["required"] = Value::Bool(true);
            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"})
        }
        "If-Match" => {
            p["required"] = Value::Bool(true);
            json!({"type": "string", "minLength": 1})
        }
        _ => return,
    };
    p["schema"] = schema;
}

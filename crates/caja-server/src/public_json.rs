//! The change feed carries each resource exactly as the API returns it, so a screen can
//! apply an event without a second request. This is the one place that renders them.

use caja_core::order::Order;
use caja_core::product::Product;
use caja_store::changes::PublicJson;
use caja_store::Movement;

use crate::routes::orders::OrderBody;
use crate::routes::products::ProductBody;
use crate::routes::stock::MovementBody;

pub struct ApiJson;

// Serializing these plain structs cannot fail; an empty object would still be valid JSON.
impl PublicJson for ApiJson {
    fn product(&self, p: &Product) -> String {
        serde_json::to_string(&ProductBody::from(p)).unwrap_or_else(|_| "{}".to_owned())
    }
    fn order(&self, o: &Order) -> String {
        serde_json::to_string(&OrderBody::from(o)).unwrap_or_else(|_| "{}".to_owned())
    }
    fn movement(&self, m: &Movement) -> String {
        serde_json::to_string(&MovementBody::from(m)).unwrap_or_else(|_| "{}".to_owned())
    }
}

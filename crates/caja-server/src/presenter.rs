//! The one rendering of answers and events, handed to the store at connect time: a
//! replayed answer, a live event and a `GET` show a resource the same way, byte for byte,
//! whichever process wrote it.

use std::sync::Arc;

use caja_core::command::{Answer, Event, Outcome};
use caja_store::{Presenter, StoredResponse};
use serde::Serialize;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::routes::events::{EventBody, HoldBody};
use crate::routes::locations::LocationBody;
use crate::routes::orders::OrderBody;
use crate::routes::products::ProductBody;
use crate::routes::stock::MovementBody;
use crate::routes::tabs::TabBody;
use crate::routes::transfers::TransferBody;

/// The presenter every store of caja is opened with.
pub fn presenter() -> Arc<dyn Presenter> {
    Arc::new(ApiPresenter)
}

struct ApiPresenter;

// Serializing these plain structs cannot fail; an empty object would still be valid JSON.
fn json(body: &impl Serialize) -> String {
    serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned())
}

const JSON: &str = "application/json";

fn ok(status: u16, body: String, headers: &[(&str, String)]) -> StoredResponse {
    let mut all = vec![("content-type".to_owned(), JSON.to_owned())];
    all.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    StoredResponse {
        status,
        headers: all,
        body,
    }
}

impl Presenter for ApiPresenter {
    fn answer(&self, request_id: &str, outcome: &Outcome) -> StoredResponse {
        match outcome {
            Ok(Answer::OrderCreated(o)) => ok(
                201,
                json(&OrderBody::from(o)),
                &[("location", format!("/v1/orders/{}", o.id))],
            ),
            Ok(Answer::Order(o)) => ok(200, json(&OrderBody::from(o)), &[]),
            Ok(Answer::ProductCreated(p)) => ok(
                201,
                json(&ProductBody::from(p)),
                &[
                    ("etag", p.version.etag()),
                    ("location", format!("/v1/products/{}", p.id)),
                ],
            ),
            Ok(Answer::Product(p)) => ok(
                200,
                json(&ProductBody::from(p)),
                &[("etag", p.version.etag())],
            ),
            Ok(Answer::Movement(m)) => ok(201, json(&MovementBody::from(m)), &[]),
            Ok(Answer::TabOpened(t)) => ok(
                201,
                json(&TabBody::at(t, t.updated_at)),
                &[
                    ("etag", t.version.etag()),
                    ("location", format!("/v1/tabs/{}", t.id)),
                ],
            ),
            Ok(Answer::TabItemAdded(t)) => ok(
                201,
                json(&TabBody::at(t, t.updated_at)),
                &[("etag", t.version.etag())],
            ),
            Ok(Answer::Tab(t)) => ok(
                200,
                json(&TabBody::at(t, t.updated_at)),
                &[("etag", t.version.etag())],
            ),
            Ok(Answer::EventCreated(e)) => ok(
                201,
                json(&EventBody::from(e)),
                &[("location", format!("/v1/events/{}", e.id))],
            ),
            Ok(Answer::Event(e)) => ok(
                200,
                json(&EventBody::from(e)),
                &[("etag", e.version.etag())],
            ),
            // A hold is answered only when it is placed; later versions are the feed's.
            Ok(Answer::Hold(h)) => ok(
                if h.version.0 == 1 { 201 } else { 200 },
                json(&HoldBody::of(h)),
                &[("location", format!("/v1/holds/{}", h.id))],
            ),
            // The ticket as taken; its standing (position, admission) is read with GET.
            Ok(Answer::Ticket(t, new)) => ok(
                if *new { 201 } else { 200 },
                json(&crate::routes::events::TicketBody::joined(t)),
                &[(
                    "location",
                    format!("/v1/events/{}/queue/{}", t.event_id, t.id),
                )],
            ),
            Ok(Answer::LocationCreated(l)) => ok(
                201,
                json(&LocationBody::from(l)),
                &[
                    ("etag", l.version.etag()),
                    ("location", format!("/v1/locations/{}", l.id)),
                ],
            ),
            Ok(Answer::Location(l)) => ok(
                200,
                json(&LocationBody::from(l)),
                &[("etag", l.version.etag())],
            ),
            Ok(Answer::TransferCreated(t)) => ok(
                201,
                json(&TransferBody::from(t)),
                &[("location", format!("/v1/transfers/{}", t.id))],
            ),
            Ok(Answer::Transfer(t)) => ok(200, json(&TransferBody::from(t)), &[]),
            Ok(Answer::Unchanged) => StoredResponse {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            Err(refusal) => problem(request_id, &ApiError::from(refusal)),
        }
    }

    fn event(&self, event: &Event) -> String {
        match event {
            Event::Product(_, p) => json(&ProductBody::from(p)),
            Event::OrderCreated(o) | Event::Order(o) | Event::OrderTransferred(o) => {
                json(&OrderBody::from(o))
            }
            Event::Location(_, l) => json(&LocationBody::from(l)),
            Event::Transfer(_, t) => json(&TransferBody::from(t)),
            Event::StockMoved(m) => json(&MovementBody::from(m)),
            // As of the change: a replay, the feed and every till show the same bytes.
            Event::Tab(_, t) => json(&TabBody::at(t, t.updated_at)),
            Event::EventCreated(e) | Event::Event(e) => json(&EventBody::from(e)),
            Event::Hold(_, h) => json(&HoldBody::of(h)),
        }
    }
}

/// A problem as stored under a key.
pub(crate) fn problem(request_id: &str, e: &ApiError) -> StoredResponse {
    let mut headers = vec![("content-type".to_owned(), PROBLEM_JSON.to_owned())];
    if let Some(secs) = e.retry_after_secs() {
        headers.push(("retry-after".to_owned(), secs.to_string()));
    }
    StoredResponse {
        status: e.status().as_u16(),
        headers,
        body: e.body(Some(request_id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use caja_core::command::{Answer, Event};
    use caja_core::ids::{OrderId, ProductId};
    use caja_core::money::Currency;
    use caja_core::order::{Order, OrderLine, OrderStatus};

    use super::*;

    #[test]
    fn a_new_orders_event_is_its_answers_body() {
        let now = caja_core::time::now();
        let order = Order {
            id: OrderId::generate(),
            number: 7,
            status: OrderStatus::PendingPayment,
            lines: vec![OrderLine {
                product_id: ProductId::generate(),
                sku: "A".into(),
                name: "A".into(),
                quantity: 2,
                unit_price: 100,
                line_total: 200,
            }],
            subtotal: 200,
            tip: 0,
            total: 200,
            currency: Currency::parse("c", "MXN").unwrap(),
            note: None,
            customer: None,
            tab_id: None,
            hold_id: None,
            time: None,
            location_id: caja_core::ids::LocationId::main(),
            handovers: Vec::new(),
            created_at: now,
            updated_at: now,
            expires_at: now,
        };
        let p = presenter();
        let answer = p.answer("req", &Ok(Answer::OrderCreated(order.clone())));
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body, p.event(&Event::OrderCreated(order)));
    }
}

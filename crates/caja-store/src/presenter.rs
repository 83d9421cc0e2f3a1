//! How answers and events look on the wire, decided by the API layer and handed to the
//! store at connect time.
//!
//! The store writes an answer's bytes under its idempotency key and an event's bytes into
//! the change feed in the same transaction as the change, so it must render them itself;
//! the presenter lets it do so without knowing HTTP. One presenter renders both, so a
//! replayed answer, a live event and a `GET` show a resource the same way.

use caja_core::command::{Event, Outcome};

/// A response as stored for replay: status, the headers that matter, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub trait Presenter: Send + Sync {
    /// The response to a decided command. `request_id` names the request in a problem.
    fn answer(&self, request_id: &str, outcome: &Outcome) -> StoredResponse;
    /// An event's `data`: the resource as the API shows it after the change. For
    /// `Event::OrderCreated(o)` it must be the body of `answer` for
    /// `Ok(Answer::OrderCreated(o))`: the writer renders that once and uses it for both.
    fn event(&self, event: &Event) -> String;
}

//! The rows a batch decides against, loaded and locked by the writer, changed in memory by
//! each decision in turn.

use std::collections::{BTreeMap, VecDeque};

use crate::box_office::{Hold, TicketEvent};
use crate::ids::{EventId, HoldId, OrderId, ProductId, TabId};
use crate::order::Order;
use crate::product::{Product, Sku};
use crate::tab::{Tab, TabStatus};

use super::effects::Payment;

/// Ids handed out before deciding: ledger rows are numbered in memory so a movement's
/// answer and event can show its id, and the rows are then written in one statement.
#[derive(Debug, Clone, Default)]
pub struct IdPool(VecDeque<i64>);

impl IdPool {
    pub fn new(ids: impl IntoIterator<Item = i64>) -> Self {
        Self(ids.into_iter().collect())
    }

    /// The next id, or 0 when the writer reserved too few. 0 is never a real id (both
    /// engines number from 1), and the writer refuses to write a batch that holds one, so
    /// an under-reservation fails its batch instead of colliding.
    pub fn take(&mut self) -> i64 {
        self.0.pop_front().unwrap_or(0)
    }
}

/// The state a batch is decided against.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub products: BTreeMap<ProductId, Product>,
    pub orders: BTreeMap<OrderId, Order>,
    pub tabs: BTreeMap<TabId, Tab>,
    /// The payment of each loaded order that has one.
    pub payments: BTreeMap<OrderId, Payment>,
    pub ticket_events: BTreeMap<EventId, TicketEvent>,
    pub holds: BTreeMap<HoldId, Hold>,
    /// The seats of the seated sections a batch may take from, by section product, in the
    /// section's order: each names the hold that has it, or none.
    pub seats: BTreeMap<ProductId, Vec<(String, Option<HoldId>)>>,
    pub rooms: BTreeMap<EventId, crate::waiting_room::Room>,
    pub tickets: BTreeMap<crate::ids::TicketId, crate::waiting_room::QueueTicket>,
    /// The locations the batch names (by id or code; never locked: a location is never
    /// deleted, and its code's uniqueness is the index's last word).
    pub locations: BTreeMap<crate::ids::LocationId, crate::location::Location>,
    pub transfers: BTreeMap<crate::ids::TransferId, crate::location::Transfer>,
    /// The last order number handed out (read from its counter when the batch may create
    /// orders).
    pub last_order_number: i64,
    pub movement_ids: IdPool,
}

impl World {
    /// The live product holding `sku`, other than `except`.
    pub fn live_sku_holder(&self, sku: &Sku, except: Option<&ProductId>) -> Option<&Product> {
        self.products
            .values()
            .find(|p| !p.archived && p.sku == *sku && Some(&p.id) != except)
    }

    /// The open tab holding `resource`.
    pub fn resource_holder(&self, resource: &str) -> Option<&Tab> {
        self.tabs
            .values()
            .find(|t| t.status == TabStatus::Open && t.resource.as_deref() == Some(resource))
    }

    pub(crate) fn next_order_number(&mut self) -> i64 {
        self.last_order_number += 1;
        self.last_order_number
    }
}

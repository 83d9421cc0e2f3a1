//! What decisions record for the writer to persist: rows to insert and update, ledger
//! movements, payments, and the events of the change feed.

use std::collections::BTreeSet;

use crate::box_office::{Hold, TicketEvent};
use crate::ids::{EventId, HoldId, LocationId, OrderId, ProductId, TabId, TabItemId, TransferId};
use crate::ledger::{Movement, Reason};
use crate::location::{Location, Transfer};
use crate::order::{Order, OrderStatus, PaymentMethod};
use crate::product::{Product, Stock, Version};
use crate::tab::Tab;
use crate::time::Timestamp;

use super::world::World;

/// A payment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub order_id: OrderId,
    pub method: PaymentMethod,
    pub amount: i64,
    pub reference: Option<String>,
    pub created_at: Timestamp,
}

/// Who holds the stock a ledger row moves, if anyone.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Held<'a> {
    /// A person moved it (restock, correction, damage, return).
    Nobody,
    Order(&'a OrderId),
    Tab(&'a TabId),
    Hold(&'a HoldId),
    Transfer(&'a TransferId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabEvent {
    Opened,
    ItemAdded,
    ItemRemoved,
    Paused,
    Resumed,
    Closed,
    Voided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationEvent {
    Created,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEvent {
    /// Sent: received at once, or in transit.
    Created,
    Received,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductEvent {
    Created,
    Updated,
    Archived,
    StockChanged,
}

/// One event of the change feed, with the resource as it was right after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Product(ProductEvent, Product),
    OrderCreated(Order),
    /// `order.<its new status>`.
    Order(Order),
    StockMoved(Movement),
    Tab(TabEvent, Tab),
    EventCreated(TicketEvent),
    /// `event.updated` or `event.cancelled`.
    Event(TicketEvent),
    Hold(HoldEvent, Hold),
    Location(LocationEvent, Location),
    Transfer(TransferEvent, Transfer),
    /// The order moved to another location (its last hand-over).
    OrderTransferred(Order),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEvent {
    Created,
    Ordered,
    Expired,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Product(ProductEvent::Created, _) => "product.created",
            Event::Product(ProductEvent::Updated, _) => "product.updated",
            Event::Product(ProductEvent::Archived, _) => "product.archived",
            Event::Product(ProductEvent::StockChanged, _) => "product.stock_changed",
            Event::OrderCreated(_) => "order.created",
            Event::Order(o) => match o.status {
                OrderStatus::PendingPayment => "order.pending_payment",
                OrderStatus::Paid => "order.paid",
                OrderStatus::Fulfilled => "order.fulfilled",
                OrderStatus::Cancelled => "order.cancelled",
                OrderStatus::Expired => "order.expired",
                OrderStatus::Refunded => "order.refunded",
                OrderStatus::NeedsRefund => "order.needs_refund",
            },
            Event::StockMoved(_) => "stock.moved",
            Event::Tab(kind, _) => match kind {
                TabEvent::Opened => "tab.opened",
                TabEvent::ItemAdded => "tab.item_added",
                TabEvent::ItemRemoved => "tab.item_removed",
                TabEvent::Paused => "tab.paused",
                TabEvent::Resumed => "tab.resumed",
                TabEvent::Closed => "tab.closed",
                TabEvent::Voided => "tab.voided",
            },
            Event::EventCreated(_) => "event.created",
            Event::Event(e) => match e.status {
                crate::box_office::EventStatus::OnSale => "event.updated",
                crate::box_office::EventStatus::Cancelled => "event.cancelled",
            },
            Event::Hold(HoldEvent::Created, _) => "hold.created",
            Event::Hold(HoldEvent::Ordered, _) => "hold.ordered",
            Event::Hold(HoldEvent::Expired, _) => "hold.expired",
            Event::Location(LocationEvent::Created, _) => "location.created",
            Event::Location(LocationEvent::Updated, _) => "location.updated",
            Event::Transfer(TransferEvent::Created, _) => "transfer.created",
            Event::Transfer(TransferEvent::Received, _) => "transfer.received",
            Event::OrderTransferred(_) => "order.transferred",
        }
    }

    pub fn resource_id(&self) -> &str {
        match self {
            Event::Product(_, p) => p.id.as_str(),
            Event::OrderCreated(o) | Event::Order(o) | Event::OrderTransferred(o) => o.id.as_str(),
            Event::StockMoved(m) => m.product_id.as_str(),
            Event::Tab(_, t) => t.id.as_str(),
            Event::EventCreated(e) | Event::Event(e) => e.id.as_str(),
            Event::Hold(_, h) => h.id.as_str(),
            Event::Location(_, l) => l.id.as_str(),
            Event::Transfer(_, t) => t.id.as_str(),
        }
    }
}

/// An admin action for the audit log: what was done to what, and the resource before and
/// after (as the events that would show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub action: &'static str,
    pub target: String,
    pub before: Option<Event>,
    pub after: Option<Event>,
}

/// Everything a batch's decisions changed. Rows are named by id and written as the
/// [`World`] holds them once every command is decided.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub created_products: Vec<ProductId>,
    /// Products changed that existed before the batch.
    pub changed_products: BTreeSet<ProductId>,
    pub created_orders: Vec<OrderId>,
    /// Orders whose status changed that existed before the batch.
    pub changed_orders: BTreeSet<OrderId>,
    pub payments: Vec<Payment>,
    pub movements: Vec<Movement>,
    pub events: Vec<Event>,
    /// Admin actions, in decision order.
    pub audits: Vec<AuditNote>,
    pub created_tabs: Vec<TabId>,
    /// Tabs changed that existed before the batch.
    pub changed_tabs: BTreeSet<TabId>,
    /// Items put on tabs.
    pub added_items: Vec<(TabId, TabItemId)>,
    /// Items taken off tabs.
    pub removed_items: Vec<(TabId, TabItemId)>,
    pub created_events: Vec<EventId>,
    /// Events changed that existed before the batch.
    pub changed_events: BTreeSet<EventId>,
    pub created_holds: Vec<HoldId>,
    /// Holds changed that existed before the batch.
    pub changed_holds: BTreeSet<HoldId>,
    /// Seats taken by holds, in decision order: (section product, label, hold).
    pub taken_seats: Vec<(ProductId, String, HoldId)>,
    /// Holds whose seats went back, in decision order.
    pub freed_seats: Vec<HoldId>,
    pub created_rooms: Vec<EventId>,
    /// Rooms changed that existed before the batch.
    pub changed_rooms: BTreeSet<EventId>,
    pub created_tickets: Vec<crate::ids::TicketId>,
    /// Tickets whose admission a hold used (existed before the batch).
    pub used_tickets: BTreeSet<crate::ids::TicketId>,
    pub created_locations: Vec<LocationId>,
    /// Locations changed that existed before the batch.
    pub changed_locations: BTreeSet<LocationId>,
    pub created_transfers: Vec<TransferId>,
    /// Transfers received that existed before the batch.
    pub changed_transfers: BTreeSet<TransferId>,
}

impl Effects {
    /// Moves a product's stock at a location and records the ledger row. The caller has
    /// checked the product exists and the location's stock stays at or above zero; `None`
    /// (and nothing changed) otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn move_stock(
        &mut self,
        world: &mut World,
        product_id: &ProductId,
        location: &LocationId,
        delta: i64,
        reason: Reason,
        note: Option<&str>,
        held: Held<'_>,
        now: Timestamp,
    ) -> Option<Movement> {
        let product = world.products.get_mut(product_id)?;
        let after = Stock::stored(product.stock.value().checked_add(delta)?).ok()?;
        // `apply` changes nothing when it refuses, and the total was checked above.
        product.locations.apply(location, delta)?;
        product.stock = after;
        let after = after.value();
        let id = world.movement_ids.take();
        product.version = Version(product.version.0 + 1);
        product.updated_at = now;
        let movement = Movement {
            id,
            product_id: product_id.clone(),
            location_id: location.clone(),
            delta,
            reason,
            note: note.map(str::to_owned),
            order_id: match held {
                Held::Order(o) => Some(o.clone()),
                _ => None,
            },
            tab_id: match held {
                Held::Tab(t) => Some(t.clone()),
                _ => None,
            },
            hold_id: match held {
                Held::Hold(h) => Some(h.clone()),
                _ => None,
            },
            transfer_id: match held {
                Held::Transfer(t) => Some(t.clone()),
                _ => None,
            },
            stock_after: after,
            created_at: now,
        };
        self.movements.push(movement.clone());
        self.product_changed(product_id);
        Some(movement)
    }

    /// Notes an admin action for the audit log.
    pub(crate) fn audit(
        &mut self,
        action: &'static str,
        target: &str,
        before: Option<Event>,
        after: Option<Event>,
    ) {
        self.audits.push(AuditNote {
            action,
            target: target.to_owned(),
            before,
            after,
        });
    }

    pub(crate) fn product_changed(&mut self, id: &ProductId) {
        if !self.created_products.contains(id) {
            self.changed_products.insert(id.clone());
        }
    }

    pub(crate) fn tab_changed(&mut self, id: &TabId) {
        if !self.created_tabs.contains(id) {
            self.changed_tabs.insert(id.clone());
        }
    }

    pub(crate) fn order_changed(&mut self, id: &OrderId) {
        if !self.created_orders.contains(id) {
            self.changed_orders.insert(id.clone());
        }
    }

    /// One `product.stock_changed` per product, with the product as it is now. Every
    /// command announces the stock it moved itself, so the feed says the same whether the
    /// command ran alone or in a batch.
    pub(crate) fn stock_changed<'a>(
        &mut self,
        world: &World,
        ids: impl IntoIterator<Item = &'a ProductId>,
    ) {
        let ids: BTreeSet<&ProductId> = ids.into_iter().collect();
        for id in ids {
            if let Some(p) = world.products.get(id) {
                self.events
                    .push(Event::Product(ProductEvent::StockChanged, p.clone()));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.created_products.is_empty()
            && self.changed_products.is_empty()
            && self.created_orders.is_empty()
            && self.changed_orders.is_empty()
            && self.payments.is_empty()
            && self.movements.is_empty()
            && self.events.is_empty()
            && self.audits.is_empty()
            && self.created_tabs.is_empty()
            && self.changed_tabs.is_empty()
            && self.created_events.is_empty()
            && self.changed_events.is_empty()
            && self.created_holds.is_empty()
            && self.changed_holds.is_empty()
            && self.created_rooms.is_empty()
            && self.changed_rooms.is_empty()
            && self.created_tickets.is_empty()
            && self.used_tickets.is_empty()
            && self.created_locations.is_empty()
            && self.changed_locations.is_empty()
            && self.created_transfers.is_empty()
            && self.changed_transfers.is_empty()
    }

    pub(crate) fn hold_changed(&mut self, id: &HoldId) {
        if !self.created_holds.contains(id) {
            self.changed_holds.insert(id.clone());
        }
    }
}

//! Commands: every write that moves money, stock or state, as data, with its pure decision.
//!
//! A route parses a request into a [`Command`]; the store's one writer loads the rows the
//! command [`needs`](Command::needs) into a [`World`], calls [`decide`] with the batch's one
//! `now`, and writes the [`Effects`] it recorded. Deciding is pure (rows and `now` in,
//! effects and an [`Outcome`] out), so a batch of a hundred checkouts is decided in memory
//! one after the other, each against the state the previous ones left, exactly as if they
//! had run one transaction each. A new kind of write is one more variant here, its decision
//! function, and the effects it records; the writer does not change.

mod box_office;
mod effects;
mod locations;
mod orders;
mod products;
mod refusal;
mod stock;
mod tabs;
mod world;

use crate::box_office::{Hold, HoldRequest, NewTicketEvent, TicketEvent};
use crate::ids::{EventId, HoldId, LocationId, OrderId, ProductId, TabId, TabItemId, TransferId};
use crate::ledger::Reason;
use crate::location::{Location, LocationCode, LocationPatch, NewLocation, NewTransfer, Transfer};
use crate::money::Money;
use crate::order::{NewOrder, Order, PaymentMethod};
use crate::product::{NewProduct, Product, ProductPatch, Sku, Version};
use crate::tab::{NewTab, Tab};
use crate::time::Timestamp;

pub use effects::{
    AuditNote, Effects, Event, HoldEvent, LocationEvent, Payment, ProductEvent, TabEvent,
    TransferEvent,
};
pub use refusal::Refusal;
pub use world::{IdPool, World};

pub use crate::ledger::Movement;

/// One write, parsed and trusted.
#[derive(Debug, Clone)]
pub enum Command {
    /// Reserve every line or none and create an order awaiting payment.
    Checkout(NewOrder),
    Pay {
        order: OrderId,
        method: PaymentMethod,
        amount: i64,
        reference: Option<String>,
    },
    Cancel {
        order: OrderId,
    },
    Fulfill {
        order: OrderId,
    },
    Refund {
        order: OrderId,
        restock: bool,
    },
    /// The provider reports its payment `reference` of the order refunded.
    RefundedAtProvider {
        order: OrderId,
        reference: String,
    },
    /// The sweeper's: expire an unpaid order whose time is up (a no-op otherwise).
    Expire {
        order: OrderId,
    },
    /// A manual ledger movement (restock, correction, damage, return) at a location.
    MoveStock {
        product: ProductId,
        location: LocationId,
        delta: i64,
        reason: Reason,
        note: Option<String>,
    },
    CreateProduct(NewProduct),
    UpdateProduct {
        product: ProductId,
        expected: Version,
        patch: ProductPatch,
    },
    ArchiveProduct {
        product: ProductId,
        expected: Version,
    },
    OpenTab(NewTab),
    /// Put an item on an open tab, reserving its stock at once.
    AddTabItem {
        tab: TabId,
        product: ProductId,
        quantity: i64,
        note: Option<String>,
        /// The location the seller's key sells at only (a clerk's bound key): the tab must
        /// be there.
        seller_bound: Option<LocationId>,
    },
    /// Take an item off an open tab, releasing its stock; `expected` is the tab's version.
    RemoveTabItem {
        tab: TabId,
        item: TabItemId,
        expected: Version,
    },
    PauseTab {
        tab: TabId,
    },
    ResumeTab {
        tab: TabId,
    },
    /// Close the tab into one order awaiting payment.
    CloseTab {
        tab: TabId,
        tip: Money,
    },
    /// Give every item's stock back and charge nothing.
    VoidTab {
        tab: TabId,
        reason: String,
    },
    /// A ticketed event with its sections (each a product) and seats.
    CreateEvent(NewTicketEvent),
    /// Hold places of an event until `hold_ttl` runs out.
    PlaceHold {
        event: EventId,
        request: HoldRequest,
        /// Required when the event has a waiting room.
        admission: Option<crate::box_office::Admission>,
        /// The buyer's reference (the admission's, when there is one).
        client_ref: Option<String>,
    },
    /// Change an event's name, dates or limit; `expected` is its version.
    UpdateEvent {
        event: EventId,
        expected: Version,
        patch: crate::box_office::EventPatch,
    },
    /// Stop an event's sale for good: no more holds, orders of holds or queue joins; its
    /// active holds give their places back. Orders already made are the merchant's to
    /// refund.
    CancelEvent {
        event: EventId,
    },
    /// Take a place in an event's waiting room (one per client reference).
    JoinQueue {
        event: EventId,
        client_ref: String,
    },
    /// Turn a hold into an order awaiting payment.
    OrderHold {
        hold: HoldId,
        note: Option<String>,
        customer: Option<crate::order::Customer>,
        /// When set (a buyer's own request), the hold must have been placed with it.
        client_ref: Option<String>,
    },
    /// The sweeper's: give an expired hold's places back (a no-op otherwise).
    ExpireHold {
        hold: HoldId,
    },
    CreateLocation(NewLocation),
    /// Rename or recode a location; `expected` is its version.
    UpdateLocation {
        location: LocationId,
        expected: Version,
        patch: LocationPatch,
    },
    /// Send stock from one location to another.
    Transfer(NewTransfer),
    /// Receive a transfer in transit at its target.
    ReceiveTransfer {
        transfer: TransferId,
    },
    /// Move an unpaid or paid-but-unfulfilled order, with the stock it holds, to another
    /// location: all of it is taken there, or nothing moves.
    HandOver {
        order: OrderId,
        to: LocationId,
    },
}

/// The rows a command reads, which the writer locks and loads before deciding. Orders are
/// loaded first; the products their lines name are added by the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub orders: Vec<OrderId>,
    /// Tabs, locked before anything else a command reads.
    pub tabs: Vec<TabId>,
    /// Open tabs holding these resources (for uniqueness).
    pub resources: Vec<String>,
    pub products: Vec<ProductId>,
    /// Live products holding these skus (for uniqueness).
    pub skus: Vec<Sku>,
    /// The next order number (a lock on the counter).
    pub order_numbers: bool,
    /// Most ledger rows the command may write, not counting those of its orders' lines,
    /// which the writer adds once the orders are loaded.
    pub movements: usize,
    /// Most ledger rows per line of the orders it names: 1 when it may release or restock
    /// them, 2 when it may move them between locations.
    pub movements_per_order_line: usize,
    /// Whether the command may release every item of the tabs it names.
    pub tab_movements: bool,
    /// Events, locked after tabs; their sections' products are loaded by the writer.
    pub ticket_events: Vec<EventId>,
    /// Whether the seats of those events' seated sections are loaded too: only a hold
    /// chooses seats (everything else that frees them does so by hold id).
    pub seats: bool,
    /// Holds, locked with the events; their events are loaded too.
    pub holds: Vec<HoldId>,
    /// Waiting rooms, locked after holds.
    pub rooms: Vec<EventId>,
    /// Queue tickets by id, and by event and client reference.
    pub tickets: Vec<crate::ids::TicketId>,
    pub client_refs: Vec<(EventId, String)>,
    /// Events whose active holds are all loaded (and locked), with a ledger row each.
    pub event_holds: Vec<EventId>,
    /// Locations that must exist (read, not locked: none is ever deleted).
    pub locations: Vec<LocationId>,
    /// Locations holding these codes (for uniqueness).
    pub location_codes: Vec<LocationCode>,
    /// Transfers, locked after orders.
    pub transfers: Vec<TransferId>,
}

impl Command {
    pub fn needs(&self) -> Needs {
        match self {
            Command::Checkout(new) => Needs {
                products: new.lines.iter().map(|l| l.product_id.clone()).collect(),
                order_numbers: true,
                movements: new.lines.len(),
                ..Needs::default()
            },
            Command::Pay { order, .. }
            | Command::Cancel { order }
            | Command::Refund { order, .. }
            | Command::RefundedAtProvider { order, .. }
            | Command::Expire { order } => Needs {
                orders: vec![order.clone()],
                movements_per_order_line: 1,
                ..Needs::default()
            },
            Command::Fulfill { order } => Needs {
                orders: vec![order.clone()],
                ..Needs::default()
            },
            Command::MoveStock {
                product, location, ..
            } => Needs {
                products: vec![product.clone()],
                locations: vec![location.clone()],
                movements: 1,
                ..Needs::default()
            },
            Command::CreateProduct(new) => Needs {
                skus: vec![new.sku.clone()],
                locations: vec![new.location.clone()],
                movements: 1,
                ..Needs::default()
            },
            Command::UpdateProduct { product, patch, .. } => Needs {
                products: vec![product.clone()],
                skus: patch.sku.iter().cloned().collect(),
                ..Needs::default()
            },
            Command::ArchiveProduct { product, .. } => Needs {
                products: vec![product.clone()],
                ..Needs::default()
            },
            Command::OpenTab(new) => Needs {
                resources: new.resource.iter().cloned().collect(),
                ..Needs::default()
            },
            Command::AddTabItem { tab, product, .. } => Needs {
                tabs: vec![tab.clone()],
                products: vec![product.clone()],
                movements: 1,
                ..Needs::default()
            },
            Command::RemoveTabItem { tab, .. } => Needs {
                tabs: vec![tab.clone()],
                movements: 1,
                ..Needs::default()
            },
            Command::PauseTab { tab } | Command::ResumeTab { tab } => Needs {
                tabs: vec![tab.clone()],
                ..Needs::default()
            },
            Command::CloseTab { tab, .. } => Needs {
                tabs: vec![tab.clone()],
                order_numbers: true,
                ..Needs::default()
            },
            Command::VoidTab { tab, .. } => Needs {
                tabs: vec![tab.clone()],
                tab_movements: true,
                ..Needs::default()
            },
            Command::CreateEvent(new) => Needs {
                movements: new.sections.len(),
                ..Needs::default()
            },
            Command::PlaceHold {
                event, admission, ..
            } => Needs {
                ticket_events: vec![event.clone()],
                seats: true,
                rooms: vec![event.clone()],
                tickets: admission.iter().map(|a| a.ticket.clone()).collect(),
                movements: 1,
                ..Needs::default()
            },
            Command::UpdateEvent { event, .. } => Needs {
                ticket_events: vec![event.clone()],
                ..Needs::default()
            },
            Command::CancelEvent { event } => Needs {
                ticket_events: vec![event.clone()],
                event_holds: vec![event.clone()],
                movements: 0,
                ..Needs::default()
            },
            Command::JoinQueue { event, client_ref } => Needs {
                ticket_events: vec![event.clone()],
                rooms: vec![event.clone()],
                client_refs: vec![(event.clone(), client_ref.clone())],
                ..Needs::default()
            },
            Command::OrderHold { hold, .. } => Needs {
                holds: vec![hold.clone()],
                order_numbers: true,
                movements: 1,
                ..Needs::default()
            },
            Command::ExpireHold { hold } => Needs {
                holds: vec![hold.clone()],
                movements: 1,
                ..Needs::default()
            },
            Command::CreateLocation(new) => Needs {
                location_codes: vec![new.code.clone()],
                ..Needs::default()
            },
            Command::UpdateLocation {
                location, patch, ..
            } => Needs {
                locations: vec![location.clone()],
                location_codes: patch.code.iter().cloned().collect(),
                ..Needs::default()
            },
            Command::Transfer(new) => Needs {
                products: vec![new.product_id.clone()],
                locations: vec![new.from.clone(), new.to.clone()],
                movements: 2,
                ..Needs::default()
            },
            Command::ReceiveTransfer { transfer } => Needs {
                transfers: vec![transfer.clone()],
                movements: 1,
                ..Needs::default()
            },
            // Two ledger rows per line: given back where it was, taken where it goes.
            Command::HandOver { order, to } => Needs {
                orders: vec![order.clone()],
                locations: vec![to.clone()],
                movements_per_order_line: 2,
                ..Needs::default()
            },
        }
    }
}

/// What a decided command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    OrderCreated(Order),
    Order(Order),
    ProductCreated(Product),
    Product(Product),
    Movement(Movement),
    TabOpened(Tab),
    /// The tab with its new item (the last of its items).
    TabItemAdded(Tab),
    Tab(Tab),
    EventCreated(TicketEvent),
    Event(TicketEvent),
    Hold(Hold),
    LocationCreated(Location),
    Location(Location),
    TransferCreated(Transfer),
    /// A transfer as it is after a change (received).
    Transfer(Transfer),
    /// A place in a waiting room; `true` when this command took it.
    Ticket(crate::waiting_room::QueueTicket, bool),
    /// Nothing changed and nothing is owed an answer (an expiry that found the order
    /// already settled).
    Unchanged,
}

pub type Outcome = Result<Answer, Refusal>;

/// The store's rules that come from settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How long an unpaid order holds its stock.
    pub order_ttl: chrono::Duration,
    /// How long a box-office hold keeps its places.
    pub hold_ttl: chrono::Duration,
}

/// Decides one command against `world` at `now`: records its effects and returns its
/// answer, or refuses. A refusal records no effect, with one deliberate exception: a
/// payment that arrives after the order's expiry expires it (the expiry is a fact whatever
/// the payment's fate) and is then refused.
pub fn decide(
    command: &Command,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
    policy: &Policy,
) -> Outcome {
    match command {
        Command::Checkout(new) => orders::checkout(new, world, effects, now, policy),
        Command::Pay {
            order,
            method,
            amount,
            reference,
        } => orders::pay(
            order,
            *method,
            *amount,
            reference.as_deref(),
            world,
            effects,
            now,
        ),
        Command::Cancel { order } => orders::cancel(order, world, effects, now),
        Command::Fulfill { order } => orders::fulfill(order, world, effects, now),
        Command::Refund { order, restock } => orders::refund(order, *restock, world, effects, now),
        Command::RefundedAtProvider { order, reference } => {
            orders::refunded_at_provider(order, reference, world, effects, now)
        }
        Command::Expire { order } => orders::expire(order, world, effects, now),
        Command::MoveStock {
            product,
            location,
            delta,
            reason,
            note,
        } => stock::move_stock(
            product,
            location,
            *delta,
            *reason,
            note.as_deref(),
            world,
            effects,
            now,
        ),
        Command::CreateProduct(new) => products::create(new, world, effects, now),
        Command::UpdateProduct {
            product,
            expected,
            patch,
        } => products::update(product, *expected, patch, world, effects, now),
        Command::ArchiveProduct { product, expected } => {
            products::archive(product, *expected, world, effects, now)
        }
        Command::OpenTab(new) => tabs::open(new, world, effects, now),
        Command::AddTabItem {
            tab,
            product,
            quantity,
            note,
            seller_bound,
        } => tabs::add_item(
            tabs::ItemAsk {
                tab,
                product,
                quantity: *quantity,
                note: note.as_deref(),
                seller_bound: seller_bound.as_ref(),
            },
            world,
            effects,
            now,
        ),
        Command::RemoveTabItem {
            tab,
            item,
            expected,
        } => tabs::remove_item(tab, item, *expected, world, effects, now),
        Command::PauseTab { tab } => tabs::pause(tab, world, effects, now),
        Command::ResumeTab { tab } => tabs::resume(tab, world, effects, now),
        Command::CloseTab { tab, tip } => tabs::close(tab, *tip, world, effects, now, policy),
        Command::VoidTab { tab, reason } => tabs::void(tab, reason, world, effects, now),
        Command::CreateEvent(new) => box_office::create_event(new, world, effects, now),
        Command::PlaceHold {
            event,
            request,
            admission,
            client_ref,
        } => box_office::place_hold(
            box_office::HoldAsk {
                event,
                request,
                admission: admission.as_ref(),
                client_ref: client_ref.as_deref(),
            },
            world,
            effects,
            now,
            policy,
        ),
        Command::JoinQueue { event, client_ref } => {
            box_office::join_queue(event, client_ref, world, effects, now)
        }
        Command::UpdateEvent {
            event,
            expected,
            patch,
        } => box_office::update_event(event, *expected, patch, world, effects, now),
        Command::CancelEvent { event } => box_office::cancel_event(event, world, effects, now),
        Command::OrderHold {
            hold,
            note,
            customer,
            client_ref,
        } => box_office::order_hold(
            box_office::OrderAsk {
                hold,
                client_ref: client_ref.as_deref(),
                note: note.as_deref(),
                customer: customer.as_ref(),
            },
            world,
            effects,
            now,
            policy,
        ),
        Command::ExpireHold { hold } => box_office::expire_hold(hold, world, effects, now),
        Command::CreateLocation(new) => locations::create(new, world, effects, now),
        Command::UpdateLocation {
            location,
            expected,
            patch,
        } => locations::update(location, *expected, patch, world, effects, now),
        Command::Transfer(new) => locations::transfer(new, world, effects, now),
        Command::ReceiveTransfer { transfer } => locations::receive(transfer, world, effects, now),
        Command::HandOver { order, to } => orders::hand_over(order, to, world, effects, now),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod box_office_tests;

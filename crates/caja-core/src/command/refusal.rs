//! Why a command was refused: each refusal has a stable problem type, which the API shows
//! and the metrics count.

use crate::ids::{HoldId, OrderId, TabId};
use crate::order::{InvalidTransition, Shortage};
use crate::product::Version;
use crate::tab::TabAction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Some lines name products that do not exist or are archived.
    UnknownProducts(Vec<String>),
    /// Some lines ask for more than is in stock; every short line is listed.
    OutOfStock(Vec<Shortage>),
    /// The order's total would pass [`crate::order::MAX_ORDER_TOTAL`].
    AmountTooLarge {
        max: i64,
    },
    OrderNotFound,
    ProductNotFound,
    InvalidTransition(InvalidTransition),
    /// A payment must be for exactly the total.
    AmountMismatch {
        total: i64,
    },
    /// The product is archived and cannot change.
    Archived,
    /// A manual movement would take stock below zero at its location.
    NotEnoughStock {
        location: crate::ids::LocationId,
        available: i64,
    },
    /// A manual movement would take stock above [`crate::product::Stock::MAX`].
    StockLimit {
        current: i64,
    },
    /// `If-Match` named another version.
    StaleVersion {
        current: Version,
    },
    /// A live product already has this sku.
    DuplicateSku,
    TabNotFound,
    TabItemNotFound,
    /// Another open tab holds the resource.
    ResourceBusy {
        resource: String,
        tab: TabId,
    },
    /// The tab is not in a state that allows the action (`state` is open, paused, closed
    /// or void); a closed tab names its order.
    TabTransition {
        state: &'static str,
        action: TabAction,
        order: Option<OrderId>,
    },
    /// Nothing to charge: no items and no time line.
    EmptyTab,
    /// The tab holds [`crate::tab::MAX_TAB_ITEMS`] items already.
    TabFull {
        max: usize,
    },
    /// The order was not paid by the provider payment named.
    UnknownPayment,
    EventNotFound,
    HoldNotFound,
    /// The event's sale has not begun.
    SaleNotOpen {
        opens_at: crate::time::Timestamp,
    },
    SaleClosed {
        closed_at: crate::time::Timestamp,
    },
    EventCancelled,
    /// Fewer places (or not these seats) are free than asked for.
    NotAvailable {
        section: String,
        requested: i64,
        available: i64,
        /// The seats asked for that are taken.
        taken: Vec<String>,
    },
    UnknownSection(String),
    UnknownSeats(Vec<String>),
    /// One hold takes seats of one section.
    SeatsInSeveralSections,
    /// More than the event's `max_per_order`, or none.
    TooManyTickets {
        max: i64,
    },
    HoldExpired,
    /// The hold is an order already.
    HoldOrdered {
        order: Option<OrderId>,
    },
    /// A checkout or tab named ticket sections: those are sold through holds.
    TicketsNeedHold(Vec<String>),
    /// A ticket section's stock, price and sku belong to its event.
    EventSection,
    /// Something about the event that no event may be (a sale that ends before it starts).
    InvalidEvent(crate::DomainError),
    /// The event has no waiting room to join.
    NoWaitingRoom,
    QueueFull {
        retry_after: chrono::Duration,
    },
    /// The event's waiting room admits holders: this hold brought no admission.
    AdmissionRequired,
    /// The admission is not for this event and client, or not (or no longer) admitted.
    AdmissionInvalid(&'static str),
    /// The admission was used for a hold already.
    AdmissionUsed {
        hold: Option<HoldId>,
    },
    LocationNotFound,
    /// Another location has this code.
    DuplicateLocationCode,
    TransferNotFound,
    /// The transfer was received already.
    TransferReceived,
    /// The order is at that location already.
    AlreadyThere,
    /// The seller's key sells at `location` only.
    SellsElsewhere {
        location: crate::ids::LocationId,
    },
}

impl Refusal {
    /// The stable problem type.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnknownProducts(_) => "unknown-product",
            Refusal::OutOfStock(_) | Refusal::NotEnoughStock { .. } => "out-of-stock",
            Refusal::AmountTooLarge { .. } => "amount-too-large",
            Refusal::OrderNotFound
            | Refusal::ProductNotFound
            | Refusal::TabNotFound
            | Refusal::TabItemNotFound => "not-found",
            Refusal::InvalidTransition(_) | Refusal::TabTransition { .. } => "invalid-transition",
            Refusal::AmountMismatch { .. } => "amount-mismatch",
            Refusal::Archived => "archived",
            Refusal::StockLimit { .. } => "stock-limit",
            Refusal::StaleVersion { .. } => "precondition-failed",
            Refusal::DuplicateSku => "duplicate-sku",
            Refusal::ResourceBusy { .. } => "resource-busy",
            Refusal::EmptyTab => "empty-tab",
            Refusal::TabFull { .. } => "tab-full",
            Refusal::UnknownPayment => "unknown-payment",
            Refusal::EventNotFound | Refusal::HoldNotFound => "not-found",
            Refusal::SaleNotOpen { .. } => "sale-not-open",
            Refusal::SaleClosed { .. } => "sale-closed",
            Refusal::EventCancelled => "event-cancelled",
            Refusal::NotAvailable { .. } => "not-available",
            Refusal::UnknownSection(_)
            | Refusal::UnknownSeats(_)
            | Refusal::SeatsInSeveralSections => "unknown-seats",
            Refusal::TooManyTickets { .. } => "too-many-tickets",
            Refusal::HoldExpired => "hold-expired",
            Refusal::HoldOrdered { .. } => "invalid-transition",
            Refusal::TicketsNeedHold(_) => "tickets-need-a-hold",
            Refusal::EventSection => "event-section",
            Refusal::NoWaitingRoom => "no-waiting-room",
            Refusal::InvalidEvent(_) => "invalid-field",
            Refusal::QueueFull { .. } => "queue-full",
            Refusal::AdmissionRequired => "admission-required",
            Refusal::AdmissionInvalid(_) => "admission-invalid",
            Refusal::AdmissionUsed { .. } => "admission-used",
            Refusal::LocationNotFound => "unknown-location",
            Refusal::DuplicateLocationCode => "duplicate-code",
            Refusal::TransferNotFound => "not-found",
            Refusal::TransferReceived => "invalid-transition",
            Refusal::AlreadyThere => "already-there",
            Refusal::SellsElsewhere { .. } => "forbidden",
        }
    }
}

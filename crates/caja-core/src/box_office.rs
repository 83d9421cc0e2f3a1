//! The box office: ticketed events, their sections (a general-admission floor with a
//! capacity, or numbered seats), and holds.
//!
//! Each section is sold as a product of its own (its stock is what is free, its ledger the
//! story of every place), so every rule that keeps a café from overselling keeps a concert
//! from it too: a hold takes stock like a tab's item does (ledger reason `hold`), the
//! order a hold becomes inherits it, and a cancel or expiry gives it back. Numbered seats
//! are tracked beside the stock: a seat names the hold that has it, or none.

use std::collections::BTreeSet;

use crate::ids::{EventId, HoldId, OrderId, ProductId};
use crate::money::{Currency, MAX_AMOUNT};
use crate::time::Timestamp;
use crate::DomainError;

/// Most sections in an event, places in a section, and tickets in one order.
pub const MAX_SECTIONS: usize = 50;
pub const MAX_CAPACITY: i64 = 100_000;
pub const MAX_SEATS: usize = 10_000;
pub const MAX_PER_ORDER: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Places without numbers.
    General { capacity: i64 },
    /// These seats, by label.
    Seated { seats: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSection {
    pub name: String,
    pub price: i64,
    pub layout: Layout,
}

/// An event to create, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketEvent {
    pub name: String,
    pub starts_at: Timestamp,
    pub sale_starts_at: Timestamp,
    pub sale_ends_at: Option<Timestamp>,
    pub max_per_order: i64,
    pub currency: Currency,
    pub sections: Vec<NewSection>,
    /// A line in front of the holds, if the event has one.
    pub waiting_room: Option<crate::waiting_room::RoomConfig>,
}

fn label(field: &'static str, s: &str, max: usize) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(t.to_owned())
}

impl NewTicketEvent {
    /// Checks everything an event must be: names, a sale window that closes after it
    /// opens, 1–50 sections with distinct names, capacities and prices in range, and seat
    /// labels unique across the whole event (so `{seats: ["B4"]}` is never ambiguous).
    pub fn check(mut self) -> Result<Self, DomainError> {
        self.name = label("name", &self.name, 200)?;
        self.waiting_room = self.waiting_room.map(|r| r.check()).transpose()?;
        if let Some(end) = self.sale_ends_at {
            if end <= self.sale_starts_at {
                return Err(DomainError::invalid(
                    "sale_ends_at",
                    "must be after sale_starts_at",
                ));
            }
        }
        if !(1..=MAX_PER_ORDER).contains(&self.max_per_order) {
            return Err(DomainError::invalid(
                "max_per_order",
                format!("must be between 1 and {MAX_PER_ORDER}"),
            ));
        }
        if self.sections.is_empty() || self.sections.len() > MAX_SECTIONS {
            return Err(DomainError::invalid(
                "sections",
                format!("an event has 1 to {MAX_SECTIONS} sections"),
            ));
        }
        let mut names = BTreeSet::new();
        let mut labels = BTreeSet::new();
        for section in &mut self.sections {
            section.name = label("sections.name", &section.name, 100)?;
            if !names.insert(section.name.to_lowercase()) {
                return Err(DomainError::invalid(
                    "sections.name",
                    format!("`{}` names two sections", section.name),
                ));
            }
            if !(0..=MAX_AMOUNT).contains(&section.price) {
                return Err(DomainError::invalid(
                    "sections.price",
                    "must be between 0 and 1000000000000 minor units",
                ));
            }
            match &mut section.layout {
                Layout::General { capacity } => {
                    if !(1..=MAX_CAPACITY).contains(capacity) {
                        return Err(DomainError::invalid(
                            "sections.capacity",
                            format!("must be between 1 and {MAX_CAPACITY}"),
                        ));
                    }
                }
                Layout::Seated { seats } => {
                    if seats.is_empty() || seats.len() > MAX_SEATS {
                        return Err(DomainError::invalid(
                            "sections.seats",
                            format!("a seated section has 1 to {MAX_SEATS} seats"),
                        ));
                    }
                    for seat in seats.iter_mut() {
                        *seat = label("sections.seats", seat, 16)?;
                        if !labels.insert(seat.clone()) {
                            return Err(DomainError::invalid(
                                "sections.seats",
                                format!("seat `{seat}` is listed twice in the event"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(self)
    }
}

/// What a PATCH of an event may change (its sections and room never change: sold places
/// would lose their meaning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPatch {
    pub name: Option<String>,
    pub starts_at: Option<Timestamp>,
    pub sale_starts_at: Option<Timestamp>,
    /// `Some(None)` removes the end of the sale.
    pub sale_ends_at: Option<Option<Timestamp>>,
    pub max_per_order: Option<i64>,
}

impl EventPatch {
    /// The event with the patch applied, checked like a new one.
    pub fn apply(&self, event: &TicketEvent) -> Result<TicketEvent, DomainError> {
        let mut e = event.clone();
        if let Some(name) = &self.name {
            e.name = label("name", name, 200)?;
        }
        if let Some(t) = self.starts_at {
            e.starts_at = t;
        }
        if let Some(t) = self.sale_starts_at {
            e.sale_starts_at = t;
        }
        if let Some(t) = self.sale_ends_at {
            e.sale_ends_at = t;
        }
        if let Some(m) = self.max_per_order {
            e.max_per_order = m;
        }
        if let Some(end) = e.sale_ends_at {
            if end <= e.sale_starts_at {
                return Err(DomainError::invalid(
                    "sale_ends_at",
                    "must be after sale_starts_at",
                ));
            }
        }
        if !(1..=MAX_PER_ORDER).contains(&e.max_per_order) {
            return Err(DomainError::invalid(
                "max_per_order",
                format!("must be between 1 and {MAX_PER_ORDER}"),
            ));
        }
        Ok(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    OnSale,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::OnSale => "on_sale",
            EventStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "on_sale" => Ok(EventStatus::OnSale),
            "cancelled" => Ok(EventStatus::Cancelled),
            _ => Err(DomainError::invalid(
                "status",
                "must be on_sale or cancelled",
            )),
        }
    }
}

/// A section as sold: its product carries the price and what is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub product_id: ProductId,
    pub price: i64,
    pub capacity: i64,
    pub seated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub id: EventId,
    pub name: String,
    pub starts_at: Timestamp,
    pub sale_starts_at: Timestamp,
    pub sale_ends_at: Option<Timestamp>,
    pub max_per_order: i64,
    pub currency: Currency,
    pub status: EventStatus,
    pub sections: Vec<Section>,
    pub version: crate::product::Version,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TicketEvent {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn section_of(&self, product: &ProductId) -> Option<&Section> {
        self.sections.iter().find(|s| &s.product_id == product)
    }
}

/// An admission a hold presents, its token already verified: the ticket and its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub ticket: crate::ids::TicketId,
    pub client_ref: String,
}

/// What a buyer asks to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRequest {
    /// Any places of a section (the best free seats, for a seated one).
    Quantity { section: String, quantity: i64 },
    /// These seats, all or none.
    Seats(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    /// Holding its places until `expires_at`.
    Active,
    /// Became an order, which holds the places now.
    Ordered,
    /// Ran out of time; its places went back.
    Expired,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Ordered => "ordered",
            HoldStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "active" => Ok(HoldStatus::Active),
            "ordered" => Ok(HoldStatus::Ordered),
            "expired" => Ok(HoldStatus::Expired),
            _ => Err(DomainError::invalid(
                "status",
                "must be active, ordered or expired",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: HoldId,
    pub event_id: EventId,
    pub section: String,
    pub product_id: ProductId,
    pub quantity: i64,
    /// The seats held, for a seated section (sorted).
    pub seats: Vec<String>,
    pub unit_price: i64,
    pub currency: Currency,
    /// The buyer's own reference, when the hold was placed with one: only that buyer may
    /// order it through the public role.
    pub client_ref: Option<String>,
    pub status: HoldStatus,
    pub expires_at: Timestamp,
    pub order_id: Option<OrderId>,
    pub version: crate::product::Version,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why an event is not selling now, if it is not: cancelled, before `sale_starts_at`, or
/// from `sale_ends_at` (or, without one, from `starts_at`) on.
pub fn sale_closed(event: &TicketEvent, now: Timestamp) -> Option<SaleState> {
    if event.status == EventStatus::Cancelled {
        return Some(SaleState::Cancelled);
    }
    if now < event.sale_starts_at {
        return Some(SaleState::NotOpen {
            opens_at: event.sale_starts_at,
        });
    }
    // Without an end of its own, the sale closes when the event begins.
    let end = event.sale_ends_at.unwrap_or(event.starts_at);
    (now >= end).then_some(SaleState::Closed { closed_at: end })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    NotOpen { opens_at: Timestamp },
    Closed { closed_at: Timestamp },
    Cancelled,
}

/// The best `quantity` free seats: the first run of adjacent labels in the section's order
/// when there is one (a party sits together), else the first free ones.
pub fn best_seats(free_in_order: &[&str], all_in_order: &[&str], quantity: usize) -> Vec<String> {
    if quantity == 0 || free_in_order.len() < quantity {
        return Vec::new();
    }
    let free: BTreeSet<&str> = free_in_order.iter().copied().collect();
    for window in all_in_order.windows(quantity) {
        if window.iter().all(|s| free.contains(s)) {
            return window.iter().map(|s| s.to_string()).collect();
        }
    }
    free_in_order[..quantity]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        crate::time::parse("t", s).unwrap()
    }

    fn new_event(sections: Vec<NewSection>) -> NewTicketEvent {
        NewTicketEvent {
            name: " Concert ".into(),
            starts_at: t("2026-12-20T21:00:00Z"),
            sale_starts_at: t("2026-12-01T10:00:00Z"),
            sale_ends_at: Some(t("2026-12-20T20:00:00Z")),
            max_per_order: 6,
            currency: Currency::parse("c", "MXN").unwrap(),
            sections,
            waiting_room: None,
        }
    }

    fn floor(capacity: i64) -> NewSection {
        NewSection {
            name: "Floor".into(),
            price: 50_000,
            layout: Layout::General { capacity },
        }
    }

    fn balcony(seats: &[&str]) -> NewSection {
        NewSection {
            name: "Balcony".into(),
            price: 80_000,
            layout: Layout::Seated {
                seats: seats.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    #[test]
    fn an_event_is_checked_whole() {
        let ok = new_event(vec![floor(100), balcony(&["A1", "A2"])])
            .check()
            .unwrap();
        assert_eq!(ok.name, "Concert");
        assert!(new_event(vec![]).check().is_err());
        assert!(new_event(vec![floor(0)]).check().is_err());
        assert!(new_event(vec![floor(MAX_CAPACITY + 1)]).check().is_err());
        assert!(
            new_event(vec![floor(1), floor(2)]).check().is_err(),
            "two Floors"
        );
        assert!(new_event(vec![balcony(&["A1", "A1"])]).check().is_err());
        assert!(new_event(vec![balcony(&[])]).check().is_err());
        let mut late = new_event(vec![floor(1)]);
        late.sale_ends_at = Some(late.sale_starts_at);
        assert!(late.check().is_err());
        let mut greedy = new_event(vec![floor(1)]);
        greedy.max_per_order = 0;
        assert!(greedy.check().is_err());
    }

    #[test]
    fn best_seats_keep_a_party_together_when_they_can() {
        let all = ["A1", "A2", "A3", "A4", "A5"];
        assert_eq!(best_seats(&["A1", "A3", "A4"], &all, 2), vec!["A3", "A4"]);
        assert_eq!(best_seats(&["A1", "A3", "A5"], &all, 2), vec!["A1", "A3"]);
        assert!(best_seats(&["A1"], &all, 2).is_empty());
    }
}

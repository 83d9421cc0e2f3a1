//! The JSON of events, sections, availability and holds.

use caja_core::box_office::{Hold, HoldRequest, Layout, NewSection, NewTicketEvent, TicketEvent};
use caja_core::money::{Currency, Money};
use caja_core::time;
use caja_core::DomainError;
use caja_store::box_office::SectionAvailability;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::products::MoneyBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSectionBody {
    #[schema(max_length = 100)]
    pub name: String,
    pub price: MoneyBody,
    /// Places of a general-admission section; or, instead, `seats`.
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: Option<i64>,
    /// The labels of a seated section's seats, in the section's order (unique in the event).
    pub seats: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    #[schema(max_length = 200)]
    pub name: String,
    pub starts_at: String,
    /// Holds are refused before this (409 `sale-not-open`).
    pub sale_starts_at: String,
    /// And from this on (409 `sale-closed`).
    pub sale_ends_at: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: i64,
    pub sections: Vec<NewSectionBody>,
    /// A fair line in front of the holds: holds then need an admission token.
    pub waiting_room: Option<WaitingRoomBody>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomBody {
    #[schema(minimum = 1, maximum = 1000000)]
    pub admit_per_minute: i64,
    #[schema(minimum = 1, maximum = 10000000)]
    pub max_queue: i64,
    /// Seconds an admission lasts.
    #[schema(minimum = 10, maximum = 86400)]
    pub admission_ttl: i64,
    /// Who joins before this is shuffled into a random order at this time; later joiners
    /// queue first come, first served.
    pub opens_at: String,
}

impl CreateEvent {
    pub fn parse(&self, store: Currency) -> Result<NewTicketEvent, DomainError> {
        let sections = self
            .sections
            .iter()
            .map(|s| {
                let price =
                    Money::parse_price("sections.price", s.price.amount, &s.price.currency, store)?;
                let layout = match (&s.capacity, &s.seats) {
                    (Some(capacity), None) => Layout::General {
                        capacity: *capacity,
                    },
                    (None, Some(seats)) => Layout::Seated {
                        seats: seats.clone(),
                    },
                    _ => {
                        return Err(DomainError::invalid(
                            "sections",
                            "each section has either a capacity or seats",
                        ))
                    }
                };
                Ok(NewSection {
                    name: s.name.clone(),
                    price: price.amount,
                    layout,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        NewTicketEvent {
            name: self.name.clone(),
            starts_at: time::parse("starts_at", &self.starts_at)?,
            sale_starts_at: time::parse("sale_starts_at", &self.sale_starts_at)?,
            sale_ends_at: self
                .sale_ends_at
                .as_deref()
                .map(|t| time::parse("sale_ends_at", t))
                .transpose()?,
            max_per_order: self.max_per_order,
            currency: store,
            sections,
            waiting_room: self
                .waiting_room
                .as_ref()
                .map(|w| {
                    Ok::<_, DomainError>(caja_core::waiting_room::RoomConfig {
                        admit_per_minute: w.admit_per_minute,
                        max_queue: w.max_queue,
                        admission_ttl: chrono::Duration::seconds(
                            w.admission_ttl.clamp(0, 10_000_000),
                        ),
                        opens_at: time::parse("waiting_room.opens_at", &w.opens_at)?,
                    })
                })
                .transpose()?,
        }
        .check()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEvent {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    pub starts_at: Option<String>,
    pub sale_starts_at: Option<String>,
    /// `null` removes the end of the sale (it then ends when the event starts).
    #[serde(default, deserialize_with = "present")]
    pub sale_ends_at: Option<Option<String>>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i64>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl PatchEvent {
    pub fn parse(&self) -> Result<caja_core::box_office::EventPatch, DomainError> {
        let at = |field: &'static str, v: &Option<String>| {
            v.as_deref().map(|t| time::parse(field, t)).transpose()
        };
        Ok(caja_core::box_office::EventPatch {
            name: self.name.clone(),
            starts_at: at("starts_at", &self.starts_at)?,
            sale_starts_at: at("sale_starts_at", &self.sale_starts_at)?,
            sale_ends_at: match &self.sale_ends_at {
                None => None,
                Some(v) => Some(at("sale_ends_at", v)?),
            },
            max_per_order: self.max_per_order,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SectionBody {
    pub name: String,
    pub price: MoneyBody,
    pub capacity: i64,
    pub seated: bool,
    /// The product that carries the section's stock and ledger.
    pub product_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    pub id: String,
    pub name: String,
    pub starts_at: String,
    pub sale_starts_at: String,
    pub sale_ends_at: Option<String>,
    pub max_per_order: i64,
    /// on_sale or cancelled.
    pub status: String,
    pub sections: Vec<SectionBody>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&TicketEvent> for EventBody {
    fn from(e: &TicketEvent) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            starts_at: time::format(&e.starts_at),
            sale_starts_at: time::format(&e.sale_starts_at),
            sale_ends_at: e.sale_ends_at.as_ref().map(time::format),
            max_per_order: e.max_per_order,
            status: e.status.as_str().to_owned(),
            sections: e
                .sections
                .iter()
                .map(|s| SectionBody {
                    name: s.name.clone(),
                    price: MoneyBody::from(Money {
                        amount: s.price,
                        currency: e.currency,
                    }),
                    capacity: s.capacity,
                    seated: s.seated,
                    product_id: s.product_id.to_string(),
                })
                .collect(),
            created_at: time::format(&e.created_at),
            updated_at: time::format(&e.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SectionAvailabilityBody {
    pub name: String,
    pub price: MoneyBody,
    pub capacity: i64,
    pub held: i64,
    pub sold: i64,
    pub free: i64,
    /// A seated section's free seats, in its order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_seats: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityBody {
    pub event_id: String,
    pub sections: Vec<SectionAvailabilityBody>,
}

impl AvailabilityBody {
    pub fn of(event: &TicketEvent, sections: Vec<SectionAvailability>) -> Self {
        Self {
            event_id: event.id.to_string(),
            sections: sections
                .into_iter()
                .map(|s| SectionAvailabilityBody {
                    name: s.name,
                    price: MoneyBody::from(Money {
                        amount: s.price,
                        currency: event.currency,
                    }),
                    capacity: s.capacity,
                    held: s.held,
                    sold: s.sold,
                    free: s.free,
                    free_seats: s.free_seats,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHold {
    /// With `quantity`: any places of this section (the best free seats of a seated one).
    #[schema(max_length = 100)]
    pub section: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i64>,
    /// Or these seats, all or none.
    pub seats: Option<Vec<String>>,
    /// When the event has a waiting room: the admission token of the client's ticket…
    pub admission: Option<String>,
    /// …and the client's reference it was issued for.
    #[schema(max_length = 100)]
    pub client_ref: Option<String>,
}

impl PlaceHold {
    pub fn parse(&self) -> Result<HoldRequest, DomainError> {
        match (&self.section, self.quantity, &self.seats) {
            (Some(section), Some(quantity), None) => Ok(HoldRequest::Quantity {
                section: section.clone(),
                quantity,
            }),
            (None, None, Some(seats)) if !seats.is_empty() && seats.len() <= 100 => {
                let mut unique = seats.clone();
                unique.sort();
                unique.dedup();
                if unique.len() != seats.len() {
                    return Err(DomainError::invalid("seats", "a seat is listed twice"));
                }
                Ok(HoldRequest::Seats(seats.clone()))
            }
            _ => Err(DomainError::invalid(
                "seats",
                "send {section, quantity} or {seats: [..]} (1 to 100 seats)",
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldBody {
    pub id: String,
    pub event_id: String,
    pub section: String,
    pub quantity: i64,
    pub seats: Vec<String>,
    pub unit_price: MoneyBody,
    pub total: MoneyBody,
    /// active, ordered or expired.
    pub status: String,
    /// When an active hold gives its places back.
    pub expires_at: String,
    pub order_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl HoldBody {
    pub fn of(h: &Hold) -> Self {
        let money = |amount| {
            MoneyBody::from(Money {
                amount,
                currency: h.currency,
            })
        };
        Self {
            id: h.id.to_string(),
            event_id: h.event_id.to_string(),
            section: h.section.clone(),
            quantity: h.quantity,
            seats: h.seats.clone(),
            unit_price: money(h.unit_price),
            total: money(h.unit_price * h.quantity),
            status: h.status.as_str().to_owned(),
            expires_at: time::format(&h.expires_at),
            order_id: h.order_id.as_ref().map(ToString::to_string),
            created_at: time::format(&h.created_at),
            updated_at: time::format(&h.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinQueue {
    /// The client's own reference (a browser session, an app install): one ticket each.
    #[schema(min_length = 1, max_length = 100, pattern = "^[!-~]+$")]
    pub client_ref: String,
}

/// A ticket of the waiting room, and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketBody {
    pub id: String,
    pub event_id: String,
    pub client_ref: String,
    /// drawing (joined before opening: the line is drawn then), waiting, admitted or
    /// expired.
    pub status: String,
    /// Tickets ahead, this one included, while waiting.
    pub position: Option<i64>,
    pub estimated_wait_seconds: Option<i64>,
    /// When it is (or was) admitted.
    pub admit_at: Option<String>,
    /// While admitted: what a hold must carry, with `client_ref`.
    pub admission: Option<String>,
    pub admission_expires_at: Option<String>,
    pub joined_at: String,
}

impl TicketBody {
    /// As answered to the join (no standing: that is the GET's, at its own time).
    pub fn joined(t: &caja_core::waiting_room::QueueTicket) -> Self {
        Self {
            id: t.id.to_string(),
            event_id: t.event_id.to_string(),
            client_ref: t.client_ref.clone(),
            status: if t.rank.is_some() {
                "drawing"
            } else {
                "waiting"
            }
            .to_owned(),
            position: None,
            estimated_wait_seconds: None,
            admit_at: t.admit_at.as_ref().map(time::format),
            admission: None,
            admission_expires_at: None,
            joined_at: time::format(&t.joined_at),
        }
    }
}

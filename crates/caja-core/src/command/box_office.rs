//! Decisions of the box office: create an event, hold places, turn a hold into an order,
//! expire a hold.
//!
//! A hold takes its places from the section's stock (ledger reason `hold`, held by the
//! hold) and, in a seated section, names the seats. The order a hold becomes inherits both,
//! as a tab's order inherits the tab's items; when that order is cancelled or expires, its
//! stock goes back as any order's does and its seats are freed with it.

use crate::box_office::{
    best_seats, sale_closed, Admission, Hold, HoldRequest, HoldStatus, Layout, NewTicketEvent,
    SaleState, Section, TicketEvent,
};
use crate::ids::{EventId, HoldId, LocationId, OrderId, ProductId, TicketId};
use crate::ledger::{Movement, Reason};
use crate::location::StockByLocation;
use crate::money::Money;
use crate::order::{Order, OrderLine, OrderStatus};
use crate::product::{Product, ProductName, Sku, Stock, Version};
use crate::time::Timestamp;
use crate::waiting_room::{standing, Placement, QueueTicket, Standing};

use super::effects::{Effects, Event, Held, HoldEvent};
use super::{Answer, Outcome, Policy, Refusal, World};

pub(super) fn create_event(
    new: &NewTicketEvent,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let id = EventId::generate();
    let mut sections = Vec::new();
    for (n, s) in new.sections.iter().enumerate() {
        let (capacity, seated) = match &s.layout {
            Layout::General { capacity } => (*capacity, false),
            Layout::Seated { seats } => (seats.len() as i64, true),
        };
        // Checked by `NewTicketEvent::check`: these parse.
        let product = Product {
            id: ProductId::generate(),
            sku: Sku::parse(&format!("{id}/{}", n + 1)).map_err(|_| Refusal::EventNotFound)?,
            name: ProductName::parse(&format!("{} — {}", new.name, s.name))
                .or_else(|_| ProductName::parse(&s.name))
                .map_err(|_| Refusal::EventNotFound)?,
            price: Money {
                amount: s.price,
                currency: new.currency,
            },
            stock: Stock::stored(capacity).map_err(|_| Refusal::EventNotFound)?,
            // A section's places are sold where caja sells by default.
            locations: StockByLocation::at_main(capacity),
            version: Version(1),
            archived: false,
            event_id: Some(id.clone()),
            created_at: now,
            updated_at: now,
        };
        effects.movements.push(Movement {
            id: world.movement_ids.take(),
            product_id: product.id.clone(),
            location_id: LocationId::main(),
            delta: capacity,
            reason: Reason::Initial,
            note: None,
            order_id: None,
            tab_id: None,
            hold_id: None,
            transfer_id: None,
            stock_after: capacity,
            created_at: now,
        });
        effects.created_products.push(product.id.clone());
        if let Layout::Seated { seats } = &s.layout {
            world.seats.insert(
                product.id.clone(),
                seats.iter().map(|l| (l.clone(), None)).collect(),
            );
        }
        sections.push(Section {
            name: s.name.clone(),
            product_id: product.id.clone(),
            price: s.price,
            capacity,
            seated,
        });
        world.products.insert(product.id.clone(), product);
    }
    let event = TicketEvent {
        id: id.clone(),
        name: new.name.clone(),
        starts_at: new.starts_at,
        sale_starts_at: new.sale_starts_at,
        sale_ends_at: new.sale_ends_at,
        max_per_order: new.max_per_order,
        currency: new.currency,
        status: crate::box_office::EventStatus::OnSale,
        sections,
        version: Version(1),
        created_at: now,
        updated_at: now,
    };
    if let Some(config) = new.waiting_room {
        world.rooms.insert(
            id.clone(),
            crate::waiting_room::Room {
                event_id: id.clone(),
                config,
                pre_open: 0,
                last_admit_at: None,
                drawn: false,
                version: Version(1),
            },
        );
        effects.created_rooms.push(id.clone());
    }
    effects.created_events.push(id.clone());
    effects.events.push(Event::EventCreated(event.clone()));
    world.ticket_events.insert(id, event.clone());
    Ok(Answer::EventCreated(event))
}

fn selling<'w>(world: &'w World, id: &EventId, now: Timestamp) -> Result<&'w TicketEvent, Refusal> {
    let event = world.ticket_events.get(id).ok_or(Refusal::EventNotFound)?;
    match sale_closed(event, now) {
        None => Ok(event),
        Some(SaleState::NotOpen { opens_at }) => Err(Refusal::SaleNotOpen { opens_at }),
        Some(SaleState::Closed { closed_at }) => Err(Refusal::SaleClosed { closed_at }),
        Some(SaleState::Cancelled) => Err(Refusal::EventCancelled),
    }
}

/// Which section and seats a request names, or why it cannot be had.
fn choose(
    event: &TicketEvent,
    request: &HoldRequest,
    world: &World,
) -> Result<(Section, i64, Vec<String>), Refusal> {
    match request {
        HoldRequest::Quantity { section, quantity } => {
            let s = event
                .section(section)
                .ok_or_else(|| Refusal::UnknownSection(section.clone()))?;
            let free = world
                .products
                .get(&s.product_id)
                .map_or(0, |p| p.stock.value());
            let short = |available| Refusal::NotAvailable {
                section: s.name.clone(),
                requested: *quantity,
                available,
                taken: Vec::new(),
            };
            if free < *quantity {
                return Err(short(free));
            }
            if !s.seated {
                return Ok((s.clone(), *quantity, Vec::new()));
            }
            let seats = world
                .seats
                .get(&s.product_id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let all: Vec<&str> = seats.iter().map(|(l, _)| l.as_str()).collect();
            let open: Vec<&str> = seats
                .iter()
                .filter(|(_, h)| h.is_none())
                .map(|(l, _)| l.as_str())
                .collect();
            let chosen = best_seats(&open, &all, *quantity as usize);
            if chosen.len() as i64 != *quantity {
                return Err(short(open.len() as i64));
            }
            Ok((s.clone(), *quantity, chosen))
        }
        HoldRequest::Seats(labels) => {
            let mut section: Option<&Section> = None;
            let mut unknown = Vec::new();
            let mut taken = Vec::new();
            for label in labels {
                let found = event.sections.iter().filter(|s| s.seated).find_map(|s| {
                    world
                        .seats
                        .get(&s.product_id)?
                        .iter()
                        .find(|(l, _)| l == label)
                        .map(|(_, h)| (s, h))
                });
                match found {
                    None => unknown.push(label.clone()),
                    Some((s, holder)) => {
                        if section.is_some_and(|x| x.product_id != s.product_id) {
                            return Err(Refusal::SeatsInSeveralSections);
                        }
                        section = Some(s);
                        if holder.is_some() {
                            taken.push(label.clone());
                        }
                    }
                }
            }
            if !unknown.is_empty() {
                return Err(Refusal::UnknownSeats(unknown));
            }
            let s = section.ok_or_else(|| Refusal::UnknownSeats(labels.clone()))?;
            if !taken.is_empty() {
                let free = world
                    .seats
                    .get(&s.product_id)
                    .map_or(0, |v| v.iter().filter(|(_, h)| h.is_none()).count());
                return Err(Refusal::NotAvailable {
                    section: s.name.clone(),
                    requested: labels.len() as i64,
                    available: free as i64,
                    taken,
                });
            }
            let mut chosen = labels.clone();
            chosen.sort();
            Ok((s.clone(), labels.len() as i64, chosen))
        }
    }
}

/// What a hold asks for.
pub(super) struct HoldAsk<'a> {
    pub event: &'a EventId,
    pub request: &'a HoldRequest,
    pub admission: Option<&'a Admission>,
    pub client_ref: Option<&'a str>,
}

pub(super) fn place_hold(
    ask: HoldAsk<'_>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
    policy: &Policy,
) -> Outcome {
    let HoldAsk {
        event: event_id,
        request,
        admission,
        client_ref,
    } = ask;
    let event = selling(world, event_id, now)?;
    let ticket = admitted(world, event_id, admission, now)?;
    let wanted = match request {
        HoldRequest::Quantity { quantity, .. } => *quantity,
        HoldRequest::Seats(s) => s.len() as i64,
    };
    if !(1..=event.max_per_order).contains(&wanted) {
        return Err(Refusal::TooManyTickets {
            max: event.max_per_order,
        });
    }
    let (section, quantity, seats) = choose(event, request, world)?;
    let hold = Hold {
        id: HoldId::generate(),
        event_id: event_id.clone(),
        section: section.name.clone(),
        product_id: section.product_id.clone(),
        quantity,
        seats: seats.clone(),
        unit_price: section.price,
        currency: event.currency,
        client_ref: admission
            .map(|a| a.client_ref.clone())
            .or_else(|| client_ref.map(str::to_owned)),
        status: HoldStatus::Active,
        expires_at: now + policy.hold_ttl,
        order_id: None,
        version: Version(1),
        created_at: now,
        updated_at: now,
    };
    effects.move_stock(
        world,
        &section.product_id,
        &LocationId::main(),
        -quantity,
        Reason::Hold,
        None,
        Held::Hold(&hold.id),
        now,
    );
    if let Some(list) = world.seats.get_mut(&section.product_id) {
        for (label, holder) in list.iter_mut() {
            if seats.contains(label) {
                *holder = Some(hold.id.clone());
                effects.taken_seats.push((
                    section.product_id.clone(),
                    label.clone(),
                    hold.id.clone(),
                ));
            }
        }
    }
    if let Some(t) = ticket.and_then(|t| world.tickets.get_mut(&t)) {
        t.hold_id = Some(hold.id.clone());
        if !effects.created_tickets.contains(&t.id) {
            effects.used_tickets.insert(t.id.clone());
        }
    }
    effects.created_holds.push(hold.id.clone());
    effects
        .events
        .push(Event::Hold(HoldEvent::Created, hold.clone()));
    effects.stock_changed(world, [&section.product_id]);
    world.holds.insert(hold.id.clone(), hold.clone());
    Ok(Answer::Hold(hold))
}

/// Gives a hold's places back: its stock (ledger reason `release`, held by the hold) and
/// its seats.
fn release_hold(world: &mut World, effects: &mut Effects, id: &HoldId, now: Timestamp) {
    let Some(hold) = world.holds.get(id).cloned() else {
        return;
    };
    effects.move_stock(
        world,
        &hold.product_id,
        &LocationId::main(),
        hold.quantity,
        Reason::Release,
        None,
        Held::Hold(&hold.id),
        now,
    );
    free_seats(world, effects, id);
    effects.stock_changed(world, [&hold.product_id]);
}

/// Frees the seats `hold` has, if any (an order made from it was cancelled, expired or
/// refunded with its places back, or the hold itself ended).
pub(super) fn free_seats(world: &mut World, effects: &mut Effects, hold: &HoldId) {
    for list in world.seats.values_mut() {
        for (_, holder) in list.iter_mut() {
            if holder.as_ref() == Some(hold) {
                *holder = None;
            }
        }
    }
    // The writer frees them by hold, loaded in this batch or not.
    effects.freed_seats.push(hold.clone());
}

fn changed_hold(
    world: &mut World,
    effects: &mut Effects,
    id: &HoldId,
    event: HoldEvent,
    now: Timestamp,
    change: impl FnOnce(&mut Hold),
) -> Option<Hold> {
    let hold = world.holds.get_mut(id)?;
    change(hold);
    hold.version = Version(hold.version.0 + 1);
    hold.updated_at = now;
    let hold = hold.clone();
    effects.hold_changed(id);
    effects.events.push(Event::Hold(event, hold.clone()));
    Some(hold)
}

/// Ends an active hold whose time is up; changes nothing otherwise (another sweeper, or
/// its order, got there first).
pub(super) fn expire_hold(
    id: &HoldId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let hold = world.holds.get(id).ok_or(Refusal::HoldNotFound)?;
    if hold.status != HoldStatus::Active || hold.expires_at > now {
        return Ok(Answer::Unchanged);
    }
    release_hold(world, effects, id, now);
    let hold = changed_hold(world, effects, id, HoldEvent::Expired, now, |h| {
        h.status = HoldStatus::Expired
    })
    .ok_or(Refusal::HoldNotFound)?;
    Ok(Answer::Hold(hold))
}

/// The order a hold becomes: its places at the hold's price, awaiting payment like any
/// order. A hold that ran out of time is expired (a fact whatever the order's fate) and
/// refused.
/// What an order of a hold asks for.
pub(super) struct OrderAsk<'a> {
    pub hold: &'a HoldId,
    /// A buyer's own request: the hold must have been placed with it.
    pub client_ref: Option<&'a str>,
    pub note: Option<&'a str>,
    pub customer: Option<&'a crate::order::Customer>,
}

pub(super) fn order_hold(
    ask: OrderAsk<'_>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
    policy: &Policy,
) -> Outcome {
    let OrderAsk {
        hold: id,
        client_ref,
        note,
        customer,
    } = ask;
    let hold = world.holds.get(id).ok_or(Refusal::HoldNotFound)?.clone();
    // A buyer's own request names the hold it placed; another's hold is not found.
    if client_ref.is_some() && hold.client_ref.as_deref() != client_ref {
        return Err(Refusal::HoldNotFound);
    }
    if hold.status == HoldStatus::Active && hold.expires_at <= now {
        expire_hold(id, world, effects, now)?;
        return Err(Refusal::HoldExpired);
    }
    match hold.status {
        HoldStatus::Active => {}
        HoldStatus::Expired => return Err(Refusal::HoldExpired),
        HoldStatus::Ordered => {
            return Err(Refusal::HoldOrdered {
                order: hold.order_id.clone(),
            })
        }
    }
    let event = world
        .ticket_events
        .get(&hold.event_id)
        .ok_or(Refusal::EventNotFound)?;
    if event.status == crate::box_office::EventStatus::Cancelled {
        return Err(Refusal::EventCancelled);
    }
    let currency = event.currency;
    let product = world
        .products
        .get(&hold.product_id)
        .ok_or(Refusal::EventNotFound)?;
    let line_total = hold.unit_price * hold.quantity;
    let name = match hold.seats.as_slice() {
        [] => product.name.as_str().to_owned(),
        seats => format!("{} ({})", product.name.as_str(), seats.join(", ")),
    };
    let sku = product.sku.as_str().to_owned();
    let number = world.next_order_number();
    let order = Order {
        id: OrderId::generate(),
        number,
        status: OrderStatus::PendingPayment,
        lines: vec![OrderLine {
            product_id: hold.product_id.clone(),
            sku,
            name: name.chars().take(200).collect(),
            quantity: hold.quantity,
            unit_price: hold.unit_price,
            line_total,
        }],
        subtotal: line_total,
        tip: 0,
        total: line_total,
        currency,
        note: note.map(str::to_owned),
        customer: customer.cloned(),
        tab_id: None,
        hold_id: Some(hold.id.clone()),
        time: None,
        location_id: LocationId::main(),
        handovers: Vec::new(),
        created_at: now,
        updated_at: now,
        expires_at: now + policy.order_ttl,
    };
    changed_hold(world, effects, id, HoldEvent::Ordered, now, |h| {
        h.status = HoldStatus::Ordered;
        h.order_id = Some(order.id.clone());
    });
    effects.created_orders.push(order.id.clone());
    effects.events.push(Event::OrderCreated(order.clone()));
    world.orders.insert(order.id.clone(), order.clone());
    Ok(Answer::OrderCreated(order))
}

/// Refuses a checkout or tab item naming a ticket section: tickets are sold through holds.
pub(super) fn refuse_sections<'a>(
    world: &World,
    products: impl IntoIterator<Item = &'a ProductId>,
) -> Result<(), Refusal> {
    let sections: Vec<String> = products
        .into_iter()
        .filter(|p| world.products.get(*p).is_some_and(|p| p.event_id.is_some()))
        .map(|p| p.to_string())
        .collect();
    if sections.is_empty() {
        Ok(())
    } else {
        Err(Refusal::TicketsNeedHold(sections))
    }
}

/// The ticket whose admission lets this hold through, when the event has a waiting room:
/// it must be this event's and this client's, admitted now, and not used yet.
fn admitted(
    world: &World,
    event: &EventId,
    admission: Option<&Admission>,
    now: Timestamp,
) -> Result<Option<TicketId>, Refusal> {
    let Some(room) = world.rooms.get(event) else {
        return Ok(None);
    };
    let admission = admission.ok_or(Refusal::AdmissionRequired)?;
    let ticket = world
        .tickets
        .get(&admission.ticket)
        .filter(|t| &t.event_id == event && t.client_ref == admission.client_ref)
        .ok_or(Refusal::AdmissionInvalid(
            "not a ticket of this event and client",
        ))?;
    match standing(&room.config, ticket.admit_at, now) {
        Standing::Admitted { .. } => {}
        Standing::Expired => return Err(Refusal::AdmissionInvalid("the admission expired")),
        Standing::Drawing | Standing::Waiting { .. } => {
            return Err(Refusal::AdmissionInvalid("not admitted yet"))
        }
    }
    if ticket.hold_id.is_some() {
        return Err(Refusal::AdmissionUsed {
            hold: ticket.hold_id.clone(),
        });
    }
    Ok(Some(ticket.id.clone()))
}

/// A place in the event's waiting room for `client_ref`: the one it has, or a new one.
pub(super) fn join_queue(
    event_id: &EventId,
    client_ref: &str,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let event = world
        .ticket_events
        .get(event_id)
        .ok_or(Refusal::EventNotFound)?;
    match sale_closed(event, now) {
        Some(SaleState::Closed { closed_at }) => return Err(Refusal::SaleClosed { closed_at }),
        Some(SaleState::Cancelled) => return Err(Refusal::EventCancelled),
        Some(SaleState::NotOpen { .. }) | None => {}
    }
    if let Some(existing) = world
        .tickets
        .values()
        .find(|t| &t.event_id == event_id && t.client_ref == client_ref)
    {
        return Ok(Answer::Ticket(existing.clone(), false));
    }
    let room = world
        .rooms
        .get_mut(event_id)
        .ok_or(Refusal::NoWaitingRoom)?;
    // A uniform draw for the shuffle at opening; ids are monotonic, so not from them.
    let placement = room
        .join(now, rand::random())
        .map_err(|full| Refusal::QueueFull {
            retry_after: full.retry_after,
        })?;
    room.version = Version(room.version.0 + 1);
    if !effects.created_rooms.contains(event_id) {
        effects.changed_rooms.insert(event_id.clone());
    }
    let (rank, admit_at) = match placement {
        Placement::Drawn { rank } => (Some(rank), None),
        Placement::InLine { admit_at } => (None, Some(admit_at)),
    };
    let ticket = QueueTicket {
        id: TicketId::generate(),
        event_id: event_id.clone(),
        client_ref: client_ref.to_owned(),
        rank,
        place: None,
        admit_at,
        hold_id: None,
        joined_at: now,
    };
    effects.created_tickets.push(ticket.id.clone());
    world.tickets.insert(ticket.id.clone(), ticket.clone());
    Ok(Answer::Ticket(ticket, true))
}

fn changed_event(
    world: &mut World,
    effects: &mut Effects,
    event: TicketEvent,
    now: Timestamp,
) -> TicketEvent {
    let mut event = event;
    event.version = Version(event.version.0 + 1);
    event.updated_at = now;
    effects.changed_events.insert(event.id.clone());
    effects.events.push(Event::Event(event.clone()));
    world.ticket_events.insert(event.id.clone(), event.clone());
    event
}

pub(super) fn update_event(
    id: &EventId,
    expected: Version,
    patch: &crate::box_office::EventPatch,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let event = world.ticket_events.get(id).ok_or(Refusal::EventNotFound)?;
    if event.version != expected {
        return Err(Refusal::StaleVersion {
            current: event.version,
        });
    }
    if event.status == crate::box_office::EventStatus::Cancelled {
        return Err(Refusal::EventCancelled);
    }
    let patched = patch.apply(event).map_err(Refusal::InvalidEvent)?;
    Ok(Answer::Event(changed_event(world, effects, patched, now)))
}

pub(super) fn cancel_event(
    id: &EventId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let event = world.ticket_events.get(id).ok_or(Refusal::EventNotFound)?;
    if event.status == crate::box_office::EventStatus::Cancelled {
        return Ok(Answer::Event(event.clone()));
    }
    let mut cancelled = event.clone();
    cancelled.status = crate::box_office::EventStatus::Cancelled;
    let active: Vec<HoldId> = world
        .holds
        .values()
        .filter(|h| &h.event_id == id && h.status == HoldStatus::Active)
        .map(|h| h.id.clone())
        .collect();
    for hold in active {
        release_hold(world, effects, &hold, now);
        changed_hold(world, effects, &hold, HoldEvent::Expired, now, |h| {
            h.status = HoldStatus::Expired
        });
    }
    Ok(Answer::Event(changed_event(world, effects, cancelled, now)))
}

//! The box office's decisions, in memory.

use super::*;
use crate::box_office::{HoldStatus, Layout, NewSection};
use crate::money::Currency;
use crate::order::{OrderStatus, RequestedLine};

fn t0() -> Timestamp {
    crate::time::parse("t", "2026-12-01T10:00:00Z").unwrap()
}

fn policy() -> Policy {
    Policy {
        order_ttl: chrono::Duration::minutes(15),
        hold_ttl: chrono::Duration::minutes(10),
    }
}

fn run(cmd: &Command, w: &mut World, e: &mut Effects, now: Timestamp) -> Outcome {
    decide(cmd, w, e, now, &policy())
}

fn world() -> World {
    World {
        movement_ids: IdPool::new(1..10_000),
        ..World::default()
    }
}

/// A concert on sale from t0: a 3-place floor and a balcony of A1–A4.
fn concert(w: &mut World) -> TicketEvent {
    let new = NewTicketEvent {
        name: "Concert".into(),
        starts_at: t0() + chrono::Duration::days(20),
        sale_starts_at: t0(),
        sale_ends_at: Some(t0() + chrono::Duration::days(19)),
        max_per_order: 4,
        currency: Currency::parse("c", "MXN").unwrap(),
        sections: vec![
            NewSection {
                name: "Floor".into(),
                price: 500,
                layout: Layout::General { capacity: 3 },
            },
            NewSection {
                name: "Balcony".into(),
                price: 800,
                layout: Layout::Seated {
                    seats: ["A1", "A2", "A3", "A4"].map(String::from).to_vec(),
                },
            },
        ],
        waiting_room: None,
    }
    .check()
    .unwrap();
    let mut e = Effects::default();
    match run(&Command::CreateEvent(new), w, &mut e, t0()) {
        Ok(Answer::EventCreated(ev)) => ev,
        other => panic!("{other:?}"),
    }
}

fn hold(event: &TicketEvent, request: HoldRequest) -> Command {
    Command::PlaceHold {
        event: event.id.clone(),
        request,
        admission: None,
        client_ref: None,
    }
}

fn floor(n: i64) -> HoldRequest {
    HoldRequest::Quantity {
        section: "floor".into(),
        quantity: n,
    }
}

fn seats(labels: &[&str]) -> HoldRequest {
    HoldRequest::Seats(labels.iter().map(|s| s.to_string()).collect())
}

fn order_hold(h: &Hold) -> Command {
    Command::OrderHold {
        hold: h.id.clone(),
        note: None,
        customer: None,
        client_ref: None,
    }
}

fn held(outcome: Outcome) -> Hold {
    match outcome {
        Ok(Answer::Hold(h)) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn holds_take_places_and_never_more_than_there_are() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    let now = t0() + chrono::Duration::minutes(1);
    let a = held(run(&hold(&ev, floor(2)), &mut w, &mut e, now));
    assert_eq!(a.expires_at, now + chrono::Duration::minutes(10));
    match run(&hold(&ev, floor(2)), &mut w, &mut e, now) {
        Err(Refusal::NotAvailable { available, .. }) => assert_eq!(available, 1),
        other => panic!("{other:?}"),
    }
    held(run(&hold(&ev, floor(1)), &mut w, &mut e, now));
    assert_eq!(w.products[&ev.sections[0].product_id].stock.value(), 0);
    let m = e.movements.last().unwrap();
    assert_eq!((m.reason, m.delta), (Reason::Hold, -1));
    assert!(m.hold_id.is_some());
    assert!(matches!(
        run(&hold(&ev, floor(5)), &mut w, &mut e, now),
        Err(Refusal::TooManyTickets { max: 4 })
    ));
}

#[test]
fn seats_are_all_or_none_and_never_twice() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    let now = t0();
    let a = held(run(&hold(&ev, seats(&["A2", "A3"])), &mut w, &mut e, now));
    assert_eq!(a.seats, vec!["A2", "A3"]);
    match run(&hold(&ev, seats(&["A3", "A4"])), &mut w, &mut e, now) {
        Err(Refusal::NotAvailable { taken, .. }) => assert_eq!(taken, vec!["A3"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run(&hold(&ev, seats(&["Z9"])), &mut w, &mut e, now),
        Err(Refusal::UnknownSeats(_))
    ));
    // A party of two by quantity: no two adjacent seats are left, so the first free ones.
    let b = held(run(
        &hold(
            &ev,
            HoldRequest::Quantity {
                section: "Balcony".into(),
                quantity: 2,
            },
        ),
        &mut w,
        &mut e,
        now,
    ));
    assert_eq!(b.seats, vec!["A1", "A4"]);
    assert_eq!(e.taken_seats.len(), 4);
    assert_eq!(w.products[&ev.sections[1].product_id].stock.value(), 0);
}

#[test]
fn the_sale_window_is_kept() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    assert!(matches!(
        run(
            &hold(&ev, floor(1)),
            &mut w,
            &mut e,
            t0() - chrono::Duration::seconds(1)
        ),
        Err(Refusal::SaleNotOpen { .. })
    ));
    assert!(matches!(
        run(
            &hold(&ev, floor(1)),
            &mut w,
            &mut e,
            t0() + chrono::Duration::days(19)
        ),
        Err(Refusal::SaleClosed { .. })
    ));
}

#[test]
fn a_hold_becomes_an_order_that_inherits_its_places() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    let h = held(run(&hold(&ev, seats(&["A1", "A2"])), &mut w, &mut e, t0()));
    let moves = e.movements.len();
    let order = match run(&order_hold(&h), &mut w, &mut e, t0()) {
        Ok(Answer::OrderCreated(o)) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(order.total, 1600);
    assert_eq!(order.hold_id.as_ref(), Some(&h.id));
    assert!(order.lines[0].name.contains("A1, A2"));
    assert_eq!(
        e.movements.len(),
        moves,
        "no stock moves: the order inherits"
    );
    assert_eq!(w.holds[&h.id].status, HoldStatus::Ordered);
    assert!(matches!(
        run(&order_hold(&h), &mut w, &mut e, t0()),
        Err(Refusal::HoldOrdered { .. })
    ));
    // The order expires unpaid: its places and seats come back.
    let late = t0() + chrono::Duration::minutes(15);
    run(
        &Command::Expire {
            order: order.id.clone(),
        },
        &mut w,
        &mut e,
        late,
    )
    .unwrap();
    assert_eq!(w.orders[&order.id].status, OrderStatus::Expired);
    assert_eq!(w.products[&ev.sections[1].product_id].stock.value(), 4);
    assert!(w.seats[&ev.sections[1].product_id]
        .iter()
        .all(|(_, h)| h.is_none()));
    assert_eq!(e.freed_seats, vec![h.id.clone()]);
    held(run(&hold(&ev, seats(&["A1"])), &mut w, &mut e, late));
}

#[test]
fn an_expired_hold_gives_its_places_back_and_cannot_be_ordered() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    let h = held(run(&hold(&ev, floor(3)), &mut w, &mut e, t0()));
    let expire = Command::ExpireHold { hold: h.id.clone() };
    assert_eq!(
        run(&expire, &mut w, &mut e, t0()),
        Ok(Answer::Unchanged),
        "not yet"
    );
    let late = t0() + chrono::Duration::minutes(10);
    assert!(matches!(
        run(&order_hold(&h), &mut w, &mut e, late),
        Err(Refusal::HoldExpired)
    ));
    assert_eq!(
        w.holds[&h.id].status,
        HoldStatus::Expired,
        "the expiry is recorded"
    );
    assert_eq!(w.products[&ev.sections[0].product_id].stock.value(), 3);
    assert_eq!(run(&expire, &mut w, &mut e, late), Ok(Answer::Unchanged));
    let kinds: Vec<&str> = e.events.iter().map(Event::kind).collect();
    assert!(kinds.contains(&"hold.expired"));
}

#[test]
fn sections_are_sold_only_through_holds() {
    let mut w = world();
    let ev = concert(&mut w);
    let mut e = Effects::default();
    let product = ev.sections[0].product_id.clone();
    let checkout = Command::Checkout(NewOrder {
        lines: vec![RequestedLine {
            product_id: product.clone(),
            quantity: 1,
        }],
        tip: Money {
            amount: 0,
            currency: Currency::parse("c", "MXN").unwrap(),
        },
        note: None,
        customer: None,
        location: crate::ids::LocationId::main(),
    });
    assert!(matches!(
        run(&checkout, &mut w, &mut e, t0()),
        Err(Refusal::TicketsNeedHold(_))
    ));
    let restock = Command::MoveStock {
        product,
        location: crate::ids::LocationId::main(),
        delta: 10,
        reason: Reason::Restock,
        note: None,
    };
    assert_eq!(
        run(&restock, &mut w, &mut e, t0()),
        Err(Refusal::EventSection)
    );
}

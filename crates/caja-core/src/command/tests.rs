//! The decisions, exercised in memory: no database, no clock.

use std::collections::BTreeMap;

use super::*;
use crate::ledger::Reason;
use crate::money::{Currency, Money};
use crate::order::{OrderStatus, RequestedLine};
use crate::product::{ProductName, Sku, Stock};

fn mxn() -> Currency {
    Currency::parse("c", "MXN").unwrap()
}

fn t0() -> Timestamp {
    crate::time::parse("t", "2026-11-29T10:00:00Z").unwrap()
}

fn policy() -> Policy {
    Policy {
        order_ttl: chrono::Duration::minutes(15),
        hold_ttl: chrono::Duration::minutes(10),
    }
}

fn product(sku: &str, stock: i64) -> Product {
    Product {
        id: ProductId::generate(),
        sku: Sku::parse(sku).unwrap(),
        name: ProductName::parse(sku).unwrap(),
        price: Money {
            amount: 100,
            currency: mxn(),
        },
        stock: Stock::parse(stock).unwrap(),
        locations: crate::location::StockByLocation::at_main(stock),
        version: Version(1),
        archived: false,
        event_id: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn world(products: &[&Product]) -> World {
    World {
        products: products
            .iter()
            .map(|p| (p.id.clone(), (*p).clone()))
            .collect::<BTreeMap<_, _>>(),
        movement_ids: IdPool::new(1..1000),
        locations: [location("main", LocationId::main())].into_iter().collect(),
        ..World::default()
    }
}

fn location(code: &str, id: LocationId) -> (LocationId, Location) {
    let l = Location {
        id: id.clone(),
        code: LocationCode::parse(code).unwrap(),
        name: code.into(),
        version: Version(1),
        created_at: t0(),
        updated_at: t0(),
    };
    (id, l)
}

fn checkout(p: &Product, quantity: i64) -> Command {
    Command::Checkout(NewOrder {
        lines: vec![RequestedLine {
            product_id: p.id.clone(),
            quantity,
        }],
        tip: Money {
            amount: 0,
            currency: mxn(),
        },
        note: None,
        customer: None,
        location: LocationId::main(),
    })
}

fn run(cmd: &Command, w: &mut World, e: &mut Effects, now: Timestamp) -> Outcome {
    decide(cmd, w, e, now, &policy())
}

fn created(outcome: Outcome) -> Order {
    match outcome {
        Ok(Answer::OrderCreated(o)) => o,
        other => panic!("{other:?}"),
    }
}

#[test]
fn checkouts_in_one_batch_see_the_stock_the_earlier_ones_left() {
    let p = product("A", 3);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let first = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let second = run(&checkout(&p, 2), &mut w, &mut e, t0());
    assert!(matches!(second, Err(Refusal::OutOfStock(ref s)) if s[0].available == 1));
    let third = created(run(&checkout(&p, 1), &mut w, &mut e, t0()));
    assert_eq!((first.number, third.number), (1, 2));
    assert_eq!(w.products[&p.id].stock.value(), 0);
    assert_eq!(
        w.products[&p.id].version,
        Version(3),
        "one version per sale"
    );
    let after: Vec<i64> = e.movements.iter().map(|m| m.stock_after).collect();
    assert_eq!(after, [1, 0]);
    assert!(e.movements.iter().all(|m| m.reason == Reason::Sale));
    assert_eq!(e.created_orders.len(), 2);
    assert!(e.changed_products.contains(&p.id));
    let kinds: Vec<&str> = e.events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "order.created",
            "product.stock_changed",
            "order.created",
            "product.stock_changed"
        ],
        "each command announces what it changed, batched or not"
    );
    let stock: Vec<&Event> = e
        .events
        .iter()
        .filter(|e| e.kind() == "product.stock_changed")
        .collect();
    assert!(matches!(stock[0], Event::Product(_, p) if p.stock.value() == 1));
    assert!(matches!(stock[1], Event::Product(_, p) if p.stock.value() == 0));
}

#[test]
fn a_refused_command_records_nothing() {
    let p = product("A", 1);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    assert!(run(&checkout(&p, 2), &mut w, &mut e, t0()).is_err());
    let missing = Command::Cancel {
        order: OrderId::generate(),
    };
    assert_eq!(
        run(&missing, &mut w, &mut e, t0()),
        Err(Refusal::OrderNotFound)
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(w.last_order_number, 0);
}

#[test]
fn the_order_life_moves_stock_and_money_as_it_should() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let pay = |amount| Command::Pay {
        order: o.id.clone(),
        method: PaymentMethod::Cash,
        amount,
        reference: None,
    };
    assert_eq!(
        run(&pay(1), &mut w, &mut e, t0()),
        Err(Refusal::AmountMismatch { total: 200 })
    );
    assert!(
        matches!(run(&pay(200), &mut w, &mut e, t0()), Ok(Answer::Order(ref o)) if o.status == OrderStatus::Paid)
    );
    assert_eq!(e.payments.len(), 1);
    let refund = Command::Refund {
        order: o.id.clone(),
        restock: true,
    };
    run(&refund, &mut w, &mut e, t0()).unwrap();
    assert_eq!(w.products[&p.id].stock.value(), 5);
    assert_eq!(e.movements.last().unwrap().reason, Reason::RefundRestock);
    assert!(matches!(
        run(&refund, &mut w, &mut e, t0()),
        Err(Refusal::InvalidTransition(_))
    ));
}

#[test]
fn a_late_payment_expires_the_order_and_is_refused() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let late = t0() + chrono::Duration::minutes(15);
    let pay = Command::Pay {
        order: o.id.clone(),
        method: PaymentMethod::Card,
        amount: o.total,
        reference: None,
    };
    match run(&pay, &mut w, &mut e, late) {
        Err(Refusal::InvalidTransition(t)) => assert_eq!(t.from, OrderStatus::Expired),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.orders[&o.id].status, OrderStatus::Expired);
    assert_eq!(w.products[&p.id].stock.value(), 5, "the expiry released it");
    assert!(e.payments.is_empty());
}

#[test]
fn expiry_waits_for_the_deadline_and_happens_once() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let expire = Command::Expire {
        order: o.id.clone(),
    };
    let early = t0() + chrono::Duration::minutes(14);
    assert_eq!(run(&expire, &mut w, &mut e, early), Ok(Answer::Unchanged));
    let due = t0() + chrono::Duration::minutes(15);
    assert!(matches!(
        run(&expire, &mut w, &mut e, due),
        Ok(Answer::Order(_))
    ));
    assert_eq!(run(&expire, &mut w, &mut e, due), Ok(Answer::Unchanged));
    assert_eq!(w.products[&p.id].stock.value(), 5);
}

#[test]
fn manual_movements_keep_the_floor_and_the_ceiling() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let mv = |delta| Command::MoveStock {
        product: p.id.clone(),
        location: LocationId::main(),
        delta,
        reason: Reason::Restock,
        note: Some("truck".into()),
    };
    assert_eq!(
        run(&mv(-6), &mut w, &mut e, t0()),
        Err(Refusal::NotEnoughStock {
            location: LocationId::main(),
            available: 5
        })
    );
    assert_eq!(
        run(&mv(Stock::MAX), &mut w, &mut e, t0()),
        Err(Refusal::StockLimit { current: 5 })
    );
    match run(&mv(3), &mut w, &mut e, t0()) {
        Ok(Answer::Movement(m)) => {
            assert_eq!(
                (m.id, m.stock_after, m.note.as_deref()),
                (1, 8, Some("truck"))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn skus_stay_unique_among_live_products_within_a_batch() {
    let p = product("A", 0);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let new = |sku: &str| {
        Command::CreateProduct(NewProduct {
            sku: Sku::parse(sku).unwrap(),
            name: ProductName::parse("x").unwrap(),
            price: p.price,
            stock: Stock::parse(2).unwrap(),
            location: LocationId::main(),
        })
    };
    assert_eq!(
        run(&new("A"), &mut w, &mut e, t0()),
        Err(Refusal::DuplicateSku)
    );
    let b = match run(&new("B"), &mut w, &mut e, t0()) {
        Ok(Answer::ProductCreated(b)) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        run(&new("B"), &mut w, &mut e, t0()),
        Err(Refusal::DuplicateSku)
    );
    assert_eq!(e.movements[0].reason, Reason::Initial);
    assert_eq!(e.movements[0].stock_after, 2);
    let archive = Command::ArchiveProduct {
        product: p.id.clone(),
        expected: Version(1),
    };
    run(&archive, &mut w, &mut e, t0()).unwrap();
    assert!(
        run(&new("A"), &mut w, &mut e, t0()).is_ok(),
        "archiving frees the sku"
    );
    let stale = Command::UpdateProduct {
        product: b.id.clone(),
        expected: Version(7),
        patch: ProductPatch::default(),
    };
    assert_eq!(
        run(&stale, &mut w, &mut e, t0()),
        Err(Refusal::StaleVersion {
            current: Version(1)
        })
    );
    assert_eq!(e.created_products.len(), 2);
    assert!(e.changed_products.contains(&p.id));
}

#[test]
fn commands_name_what_they_read() {
    let p = product("A", 1);
    let needs = checkout(&p, 1).needs();
    assert_eq!(needs.products, vec![p.id.clone()]);
    assert!(needs.order_numbers);
    assert_eq!(needs.movements, 1);
    let cancel = Command::Cancel {
        order: OrderId::generate(),
    }
    .needs();
    assert!(cancel.movements_per_order_line == 1 && cancel.products.is_empty());
}

fn open_tab(resource: Option<&str>, rate: i64) -> Command {
    Command::OpenTab(crate::tab::NewTab {
        label: "Desk".into(),
        resource: resource.map(str::to_owned),
        rate_per_hour: rate,
        currency: mxn(),
        rounding: crate::tab::Rounding::default(),
        customer: None,
        note: None,
        location: LocationId::main(),
    })
}

fn opened(outcome: Outcome) -> crate::tab::Tab {
    match outcome {
        Ok(Answer::TabOpened(t)) => t,
        other => panic!("{other:?}"),
    }
}

fn add(tab: &crate::tab::Tab, p: &Product, quantity: i64) -> Command {
    Command::AddTabItem {
        tab: tab.id.clone(),
        product: p.id.clone(),
        quantity,
        note: None,
        seller_bound: None,
    }
}

fn close(tab: &crate::tab::Tab) -> Command {
    Command::CloseTab {
        tab: tab.id.clone(),
        tip: Money {
            amount: 500,
            currency: mxn(),
        },
    }
}

#[test]
fn a_resource_holds_one_open_tab_at_a_time() {
    let mut w = world(&[]);
    let mut e = Effects::default();
    let first = opened(run(&open_tab(Some("desk-3"), 0), &mut w, &mut e, t0()));
    let second = run(&open_tab(Some("desk-3"), 0), &mut w, &mut e, t0());
    assert!(matches!(second, Err(Refusal::ResourceBusy { ref tab, .. }) if *tab == first.id));
    opened(run(&open_tab(Some("desk-4"), 0), &mut w, &mut e, t0()));
    opened(run(&open_tab(None, 0), &mut w, &mut e, t0()));
}

#[test]
fn items_reserve_stock_at_once_and_closing_bills_them_with_the_time() {
    let p = product("COFFEE", 3);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let tab = opened(run(&open_tab(Some("desk-3"), 6000), &mut w, &mut e, t0()));
    run(&add(&tab, &p, 2), &mut w, &mut e, t0()).unwrap();
    let short = run(&add(&tab, &p, 2), &mut w, &mut e, t0());
    assert!(matches!(short, Err(Refusal::OutOfStock(ref s)) if s[0].available == 1));
    assert_eq!(w.products[&p.id].stock.value(), 1);
    assert_eq!(e.movements.len(), 1);
    assert_eq!(e.movements[0].reason, Reason::Tab);
    assert_eq!(e.movements[0].tab_id.as_ref(), Some(&tab.id));

    let later = t0() + chrono::Duration::minutes(90);
    let order = created(run(&close(&tab), &mut w, &mut e, later));
    assert_eq!(order.tab_id.as_ref(), Some(&tab.id));
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].quantity, 2);
    let time = order.time.unwrap();
    assert_eq!((time.minutes, time.amount), (90, 9000));
    assert_eq!(order.subtotal, 200 + 9000);
    assert_eq!(order.total, 200 + 9000 + 500);
    assert_eq!(e.movements.len(), 1, "closing moves no stock");

    let again = run(&close(&tab), &mut w, &mut e, later);
    assert!(
        matches!(again, Err(Refusal::TabTransition { state: "closed", order: Some(ref o), .. }) if *o == order.id)
    );
    let late_item = run(&add(&tab, &p, 1), &mut w, &mut e, later);
    assert_eq!(late_item.unwrap_err().kind(), "invalid-transition");
}

#[test]
fn voiding_gives_every_item_back_and_charges_nothing() {
    let p = product("SANDWICH", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let tab = opened(run(&open_tab(None, 0), &mut w, &mut e, t0()));
    run(&add(&tab, &p, 2), &mut w, &mut e, t0()).unwrap();
    run(&add(&tab, &p, 1), &mut w, &mut e, t0()).unwrap();
    assert_eq!(w.products[&p.id].stock.value(), 2);
    let void = Command::VoidTab {
        tab: tab.id.clone(),
        reason: "walked out".into(),
    };
    run(&void, &mut w, &mut e, t0()).unwrap();
    assert_eq!(w.products[&p.id].stock.value(), 5);
    assert!(e.created_orders.is_empty());
    assert_eq!(e.audits.len(), 1);
    let closing = run(&close(&tab), &mut w, &mut e, t0());
    assert_eq!(closing.unwrap_err().kind(), "invalid-transition");
}

#[test]
fn an_empty_tab_without_a_rate_has_nothing_to_close_into() {
    let mut w = world(&[]);
    let mut e = Effects::default();
    let tab = opened(run(&open_tab(None, 0), &mut w, &mut e, t0()));
    assert_eq!(
        run(&close(&tab), &mut w, &mut e, t0()),
        Err(Refusal::EmptyTab)
    );
    assert_eq!(w.last_order_number, 0, "no number taken");
}

#[test]
fn pausing_twice_or_resuming_a_running_tab_is_refused() {
    let mut w = world(&[]);
    let mut e = Effects::default();
    let tab = opened(run(&open_tab(None, 100), &mut w, &mut e, t0()));
    let pause = Command::PauseTab {
        tab: tab.id.clone(),
    };
    let resume = Command::ResumeTab {
        tab: tab.id.clone(),
    };
    assert_eq!(
        run(&resume, &mut w, &mut e, t0()).unwrap_err().kind(),
        "invalid-transition"
    );
    run(&pause, &mut w, &mut e, t0()).unwrap();
    assert!(matches!(
        run(&pause, &mut w, &mut e, t0()),
        Err(Refusal::TabTransition {
            state: "paused",
            ..
        })
    ));
    run(&resume, &mut w, &mut e, t0()).unwrap();
    assert_eq!(w.tabs[&tab.id].periods.len(), 2);
}

fn provider_pay(o: &Order, reference: &str) -> Command {
    Command::Pay {
        order: o.id.clone(),
        method: PaymentMethod::Provider,
        amount: o.total,
        reference: Some(reference.to_owned()),
    }
}

#[test]
fn the_same_provider_payment_twice_pays_once() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let paid = run(&provider_pay(&o, "mp-1"), &mut w, &mut e, t0()).unwrap();
    let events = e.events.len();
    let again = run(&provider_pay(&o, "mp-1"), &mut w, &mut e, t0()).unwrap();
    assert_eq!(paid, again, "paid → paid answers the order as it is");
    assert_eq!(e.payments.len(), 1);
    assert_eq!(e.events.len(), events, "and announces nothing");
    // Another payment for a paid order is not the same one.
    assert!(matches!(
        run(&provider_pay(&o, "mp-2"), &mut w, &mut e, t0()),
        Err(Refusal::InvalidTransition(_))
    ));
    // Nor is a clerk's cash payment naming the same reference.
    let cash = Command::Pay {
        order: o.id.clone(),
        method: PaymentMethod::Cash,
        amount: o.total,
        reference: Some("mp-1".into()),
    };
    assert!(run(&cash, &mut w, &mut e, t0()).is_err());
}

#[test]
fn a_late_provider_payment_takes_the_stock_again_when_it_is_there() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let late = t0() + chrono::Duration::minutes(20);
    match run(&provider_pay(&o, "mp-1"), &mut w, &mut e, late) {
        Ok(Answer::Order(o)) => assert_eq!(o.status, OrderStatus::Paid),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.products[&p.id].stock.value(),
        3,
        "released, then taken again"
    );
    let reasons: Vec<(Reason, i64)> = e.movements.iter().map(|m| (m.reason, m.delta)).collect();
    assert_eq!(
        reasons,
        [(Reason::Sale, -2), (Reason::Release, 2), (Reason::Sale, -2)]
    );
    let kinds: Vec<&str> = e.events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "order.created",
            "product.stock_changed",
            "order.expired",
            "product.stock_changed",
            "order.paid",
            "product.stock_changed"
        ]
    );
    assert_eq!(e.payments.len(), 1);
}

#[test]
fn a_late_provider_payment_without_stock_needs_a_refund() {
    let p = product("A", 2);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    let late = t0() + chrono::Duration::minutes(20);
    run(
        &Command::Expire {
            order: o.id.clone(),
        },
        &mut w,
        &mut e,
        late,
    )
    .unwrap();
    created(run(&checkout(&p, 1), &mut w, &mut e, late));
    match run(&provider_pay(&o, "mp-1"), &mut w, &mut e, late) {
        Ok(Answer::Order(o)) => assert_eq!(o.status, OrderStatus::NeedsRefund),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.products[&p.id].stock.value(),
        1,
        "the other buyer keeps it"
    );
    assert_eq!(e.payments.len(), 1, "the money is recorded, owed back");
    assert_eq!(e.events.last().unwrap().kind(), "order.needs_refund");
    // Refunding it puts no stock back: it holds none.
    let refund = Command::Refund {
        order: o.id.clone(),
        restock: true,
    };
    run(&refund, &mut w, &mut e, late).unwrap();
    assert_eq!(w.orders[&o.id].status, OrderStatus::Refunded);
    assert_eq!(w.products[&p.id].stock.value(), 1);
}

#[test]
fn a_provider_payment_for_a_cancelled_order_needs_a_refund() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let o = created(run(&checkout(&p, 2), &mut w, &mut e, t0()));
    run(
        &Command::Cancel {
            order: o.id.clone(),
        },
        &mut w,
        &mut e,
        t0(),
    )
    .unwrap();
    let paid = run(&provider_pay(&o, "mp-1"), &mut w, &mut e, t0()).unwrap();
    assert!(matches!(paid, Answer::Order(ref o) if o.status == OrderStatus::NeedsRefund));
    assert_eq!(w.products[&p.id].stock.value(), 5, "a cancel is not undone");
}

#[test]
fn a_refund_at_the_provider_restocks_only_what_never_left() {
    let p = product("A", 5);
    let mut w = world(&[&p]);
    let mut e = Effects::default();
    let kept = created(run(&checkout(&p, 1), &mut w, &mut e, t0()));
    let sent = created(run(&checkout(&p, 1), &mut w, &mut e, t0()));
    for (o, r) in [(&kept, "mp-1"), (&sent, "mp-2")] {
        run(&provider_pay(o, r), &mut w, &mut e, t0()).unwrap();
    }
    run(
        &Command::Fulfill {
            order: sent.id.clone(),
        },
        &mut w,
        &mut e,
        t0(),
    )
    .unwrap();
    let refunded = |o: &Order, r: &str| Command::RefundedAtProvider {
        order: o.id.clone(),
        reference: r.into(),
    };
    assert_eq!(
        run(&refunded(&kept, "mp-2"), &mut w, &mut e, t0()),
        Err(Refusal::UnknownPayment)
    );
    run(&refunded(&kept, "mp-1"), &mut w, &mut e, t0()).unwrap();
    run(&refunded(&sent, "mp-2"), &mut w, &mut e, t0()).unwrap();
    assert_eq!(w.products[&p.id].stock.value(), 4, "the paid one came back");
    let movements = e.movements.len();
    let again = run(&refunded(&kept, "mp-1"), &mut w, &mut e, t0()).unwrap();
    assert!(matches!(again, Answer::Order(ref o) if o.status == OrderStatus::Refunded));
    assert_eq!(
        e.movements.len(),
        movements,
        "refunded twice changes nothing"
    );
}

/// A world with the main location and `north`, and `p` stocked 5 at main and 2 at north.
fn two_branches(p: &mut Product) -> (World, LocationId) {
    let north = LocationId::generate();
    p.locations = crate::location::StockByLocation::from_map(
        [(LocationId::main(), 5), (north.clone(), 2)].into(),
    );
    p.stock = Stock::parse(7).unwrap();
    let mut w = world(&[p]);
    let (id, l) = location("north", north.clone());
    w.locations.insert(id, l);
    (w, north)
}

fn at(w: &World, p: &Product, location: &LocationId) -> (i64, i64) {
    let p = &w.products[&p.id];
    (p.locations.at(location), p.stock.value())
}

#[test]
fn a_checkout_takes_from_its_location_and_a_shortage_names_it() {
    let mut p = product("A", 0);
    let (mut w, north) = two_branches(&mut p);
    let mut e = Effects::default();
    let mut there = checkout(&p, 3);
    if let Command::Checkout(new) = &mut there {
        new.location = north.clone();
    }
    match run(&there, &mut w, &mut e, t0()) {
        Err(Refusal::OutOfStock(s)) => {
            assert_eq!(s[0].location_id, north.to_string());
            assert_eq!((s[0].requested, s[0].available), (3, 2));
        }
        other => panic!("{other:?}"),
    }
    let order = created(run(&checkout(&p, 3), &mut w, &mut e, t0()));
    assert_eq!(order.location_id, LocationId::main());
    assert_eq!(at(&w, &p, &LocationId::main()), (2, 4));
    assert!(e
        .movements
        .iter()
        .all(|m| m.location_id == LocationId::main()));
}

#[test]
fn a_transfer_arrives_at_once_or_travels_until_received() {
    let mut p = product("A", 0);
    let (mut w, north) = two_branches(&mut p);
    let mut e = Effects::default();
    let send = |quantity, in_transit| {
        Command::Transfer(crate::location::NewTransfer {
            product_id: p.id.clone(),
            from: LocationId::main(),
            to: north.clone(),
            quantity,
            note: None,
            in_transit,
        })
    };
    match run(&send(6, false), &mut w, &mut e, t0()) {
        Err(Refusal::OutOfStock(s)) => assert_eq!(s[0].location_id, LocationId::main().to_string()),
        other => panic!("{other:?}"),
    }
    let Ok(Answer::TransferCreated(now)) = run(&send(2, false), &mut w, &mut e, t0()) else {
        panic!("a transfer at once");
    };
    assert_eq!(now.status, crate::location::TransferStatus::Received);
    assert_eq!(at(&w, &p, &north), (4, 7), "the total does not move");
    let Ok(Answer::TransferCreated(later)) = run(&send(3, true), &mut w, &mut e, t0()) else {
        panic!("a transfer in transit");
    };
    assert_eq!(later.status, crate::location::TransferStatus::InTransit);
    assert_eq!(
        at(&w, &p, &LocationId::main()),
        (0, 4),
        "in transit: sellable nowhere"
    );
    assert_eq!(at(&w, &p, &north), (4, 4));
    let receive = Command::ReceiveTransfer {
        transfer: later.id.clone(),
    };
    assert!(run(&receive, &mut w, &mut e, t0()).is_ok());
    assert_eq!(at(&w, &p, &north), (7, 7));
    assert_eq!(
        run(&receive, &mut w, &mut e, t0()),
        Err(Refusal::TransferReceived)
    );
    let rows: Vec<(Reason, i64)> = e
        .movements
        .iter()
        .filter(|m| m.transfer_id.as_ref() == Some(&later.id))
        .map(|m| (m.reason, m.delta))
        .collect();
    assert_eq!(rows, [(Reason::TransferOut, -3), (Reason::TransferIn, 3)]);
    let mut nowhere = send(1, false);
    if let Command::Transfer(t) = &mut nowhere {
        t.to = LocationId::generate();
    }
    assert_eq!(
        run(&nowhere, &mut w, &mut e, t0()),
        Err(Refusal::LocationNotFound)
    );
}

#[test]
fn a_hand_over_moves_the_orders_stock_all_or_nothing() {
    let mut p = product("A", 0);
    let (mut w, north) = two_branches(&mut p);
    let mut e = Effects::default();
    let order = created(run(&checkout(&p, 3), &mut w, &mut e, t0()));
    let hand_over = |to: &LocationId| Command::HandOver {
        order: order.id.clone(),
        to: to.clone(),
    };
    match run(&hand_over(&north), &mut w, &mut e, t0()) {
        Err(Refusal::OutOfStock(s)) => {
            assert_eq!(
                (s[0].location_id.as_str(), s[0].available),
                (north.as_str(), 2)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(at(&w, &p, &LocationId::main()), (2, 4), "nothing moved");
    assert!(run(&restock_at(&p, &north, 1), &mut w, &mut e, t0()).is_ok());
    let Ok(Answer::Order(moved)) = run(&hand_over(&north), &mut w, &mut e, t0()) else {
        panic!("a hand-over");
    };
    assert_eq!(moved.location_id, north);
    assert_eq!(moved.handovers.len(), 1);
    assert_eq!(moved.handovers[0].from, LocationId::main());
    assert_eq!(at(&w, &p, &LocationId::main()), (5, 5));
    assert_eq!(at(&w, &p, &north), (0, 5));
    assert_eq!(
        run(&hand_over(&north), &mut w, &mut e, t0()),
        Err(Refusal::AlreadyThere)
    );
    // Its release gives the stock back where it is now.
    let cancel = Command::Cancel {
        order: order.id.clone(),
    };
    assert!(run(&cancel, &mut w, &mut e, t0()).is_ok());
    assert_eq!(at(&w, &p, &north), (3, 8));
    assert!(matches!(
        run(&hand_over(&LocationId::main()), &mut w, &mut e, t0()),
        Err(Refusal::InvalidTransition(_))
    ));
}

#[test]
fn an_order_past_its_time_expires_instead_of_moving() {
    let mut p = product("A", 0);
    let (mut w, north) = two_branches(&mut p);
    let mut e = Effects::default();
    let order = created(run(&checkout(&p, 1), &mut w, &mut e, t0()));
    let late = t0() + policy().order_ttl;
    let hand_over = Command::HandOver {
        order: order.id.clone(),
        to: north.clone(),
    };
    assert!(matches!(
        run(&hand_over, &mut w, &mut e, late),
        Err(Refusal::InvalidTransition(_))
    ));
    assert_eq!(w.orders[&order.id].status, OrderStatus::Expired);
    assert_eq!(at(&w, &p, &LocationId::main()), (5, 7));
}

fn restock_at(p: &Product, location: &LocationId, delta: i64) -> Command {
    Command::MoveStock {
        product: p.id.clone(),
        location: location.clone(),
        delta,
        reason: Reason::Restock,
        note: None,
    }
}

#[test]
fn a_manual_movement_keeps_the_floor_of_its_location() {
    let mut p = product("A", 0);
    let (mut w, north) = two_branches(&mut p);
    let mut e = Effects::default();
    assert_eq!(
        run(&restock_at(&p, &north, -3), &mut w, &mut e, t0()),
        Err(Refusal::NotEnoughStock {
            location: north.clone(),
            available: 2
        })
    );
    assert_eq!(
        run(
            &restock_at(&p, &LocationId::generate(), 3),
            &mut w,
            &mut e,
            t0()
        ),
        Err(Refusal::LocationNotFound)
    );
    assert!(run(&restock_at(&p, &north, -2), &mut w, &mut e, t0()).is_ok());
    assert_eq!(at(&w, &p, &north), (0, 5));
}

#[test]
fn location_codes_stay_unique() {
    let mut w = world(&[]);
    let mut e = Effects::default();
    let new = |code: &str| {
        Command::CreateLocation(crate::location::NewLocation {
            code: LocationCode::parse(code).unwrap(),
            name: "Sucursal".into(),
        })
    };
    assert_eq!(
        run(&new("main"), &mut w, &mut e, t0()),
        Err(Refusal::DuplicateLocationCode)
    );
    let Ok(Answer::LocationCreated(l)) = run(&new("north"), &mut w, &mut e, t0()) else {
        panic!("a new location");
    };
    let rename = |code: &str, expected| Command::UpdateLocation {
        location: l.id.clone(),
        expected: Version(expected),
        patch: crate::location::LocationPatch {
            code: Some(LocationCode::parse(code).unwrap()),
            name: None,
        },
    };
    assert_eq!(
        run(&rename("main", 1), &mut w, &mut e, t0()),
        Err(Refusal::DuplicateLocationCode)
    );
    assert!(run(&rename("norte", 1), &mut w, &mut e, t0()).is_ok());
    assert!(matches!(
        run(&rename("nord", 1), &mut w, &mut e, t0()),
        Err(Refusal::StaleVersion { .. })
    ));
}

//! Decisions about orders: checkout, payment, cancel, fulfil, refund, expiry.

use crate::ids::{LocationId, OrderId};
use crate::ledger::Reason;
use crate::location::Handover;
use crate::order::{self, NewOrder, Order, OrderAction, OrderStatus, PaymentMethod};
use crate::time::Timestamp;

use super::effects::{Effects, Event, Held, Payment};
use super::{Answer, Outcome, Policy, Refusal, World};

pub(super) fn checkout(
    new: &NewOrder,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
    policy: &Policy,
) -> Outcome {
    super::box_office::refuse_sections(world, new.lines.iter().map(|l| &l.product_id))?;
    let priced = order::price(new, &world.products)?;
    let number = world.next_order_number();
    let order = Order::pending(new, priced, number, now, policy.order_ttl);
    for line in &order.lines {
        effects.move_stock(
            world,
            &line.product_id,
            &order.location_id,
            -line.quantity,
            Reason::Sale,
            None,
            Held::Order(&order.id),
            now,
        );
    }
    effects.created_orders.push(order.id.clone());
    effects.events.push(Event::OrderCreated(order.clone()));
    effects.stock_changed(world, order.lines.iter().map(|l| &l.product_id));
    world.orders.insert(order.id.clone(), order.clone());
    Ok(Answer::OrderCreated(order))
}

/// The order, or a refusal naming what is missing.
fn found<'w>(world: &'w World, id: &OrderId) -> Result<&'w Order, Refusal> {
    world.orders.get(id).ok_or(Refusal::OrderNotFound)
}

/// The status `action` leads to from the order's, or the refusal.
fn next(world: &World, id: &OrderId, action: OrderAction) -> Result<OrderStatus, Refusal> {
    let order = found(world, id)?;
    order::transition(order.status, action).map_err(Refusal::InvalidTransition)
}

/// Moves the order to `status`, giving its stock back for `release`, and records the event.
fn settle(
    world: &mut World,
    effects: &mut Effects,
    id: &OrderId,
    status: OrderStatus,
    release: Option<Reason>,
    now: Timestamp,
) -> Answer {
    let Some(order) = world.orders.get_mut(id) else {
        return Answer::Unchanged;
    };
    order.status = status;
    order.updated_at = now;
    let order = order.clone();
    effects.order_changed(id);
    effects.events.push(Event::Order(order.clone()));
    if let Some(reason) = release {
        for line in &order.lines {
            effects.move_stock(
                world,
                &line.product_id,
                &order.location_id,
                line.quantity,
                reason,
                None,
                Held::Order(&order.id),
                now,
            );
        }
        effects.stock_changed(world, order.lines.iter().map(|l| &l.product_id));
        // A box-office order's seats go with its places.
        if let Some(hold) = &order.hold_id {
            super::box_office::free_seats(world, effects, hold);
        }
    }
    Answer::Order(order)
}

pub(super) fn pay(
    id: &OrderId,
    method: PaymentMethod,
    amount: i64,
    reference: Option<&str>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let order = found(world, id)?;
    // The same provider payment confirmed again (its webhook racing the buyer's return, a
    // retried webhook): paid → paid changes nothing, whatever became of the order since.
    if method == PaymentMethod::Provider {
        if let Some(paid) = world.payments.get(id) {
            if paid.method == PaymentMethod::Provider && paid.reference.as_deref() == reference {
                return Ok(Answer::Order(order.clone()));
            }
        }
    }
    if order.status == OrderStatus::PendingPayment && now >= order.expires_at {
        // The expiry is a fact whatever becomes of this payment: record it first.
        settle(
            world,
            effects,
            id,
            OrderStatus::Expired,
            Some(Reason::Release),
            now,
        );
    }
    let order = found(world, id)?;
    if method == PaymentMethod::Provider
        && matches!(order.status, OrderStatus::Expired | OrderStatus::Cancelled)
    {
        return late_provider_payment(id, amount, reference, world, effects, now);
    }
    let status = next(world, id, OrderAction::Pay)?;
    let total = found(world, id)?.total;
    if amount != total {
        return Err(Refusal::AmountMismatch { total });
    }
    record_payment(id, method, amount, reference, world, effects, now);
    Ok(settle(world, effects, id, status, None, now))
}

/// Money the provider took for an order that no longer waits for it. An expired order
/// whose stock is all still there takes it again and is paid; otherwise (stock sold to
/// others, product archived, or the order cancelled on purpose) the order becomes
/// `needs_refund`: the money is recorded and owed back, never dropped.
fn late_provider_payment(
    id: &OrderId,
    amount: i64,
    reference: Option<&str>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let order = found(world, id)?.clone();
    if amount != order.total {
        return Err(Refusal::AmountMismatch { total: order.total });
    }
    let wanted = order.quantities();
    // Seats freed by the expiry may be someone else's now: a seated hold's order is never
    // re-reserved (nor one whose hold this batch did not load).
    let seated = order
        .hold_id
        .as_ref()
        .is_some_and(|h| world.holds.get(h).is_none_or(|hold| !hold.seats.is_empty()));
    let available = order.status == OrderStatus::Expired
        && !seated
        && wanted.iter().all(|(product, quantity)| {
            world
                .products
                .get(*product)
                .is_some_and(|p| !p.archived && p.locations.at(&order.location_id) >= *quantity)
        });
    record_payment(
        id,
        PaymentMethod::Provider,
        amount,
        reference,
        world,
        effects,
        now,
    );
    if !available {
        return Ok(settle(
            world,
            effects,
            id,
            OrderStatus::NeedsRefund,
            None,
            now,
        ));
    }
    let answer = settle(world, effects, id, OrderStatus::Paid, None, now);
    for line in &order.lines {
        effects.move_stock(
            world,
            &line.product_id,
            &order.location_id,
            -line.quantity,
            Reason::Sale,
            None,
            Held::Order(&order.id),
            now,
        );
    }
    effects.stock_changed(world, order.lines.iter().map(|l| &l.product_id));
    Ok(answer)
}

fn record_payment(
    id: &OrderId,
    method: PaymentMethod,
    amount: i64,
    reference: Option<&str>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) {
    let payment = Payment {
        id: format!("pay_{}", ulid::Ulid::new()),
        order_id: id.clone(),
        method,
        amount,
        reference: reference.map(str::to_owned),
        created_at: now,
    };
    world.payments.insert(id.clone(), payment.clone());
    effects.payments.push(payment);
}

pub(super) fn cancel(
    id: &OrderId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let status = next(world, id, OrderAction::Cancel)?;
    Ok(settle(
        world,
        effects,
        id,
        status,
        Some(Reason::Release),
        now,
    ))
}

pub(super) fn fulfill(
    id: &OrderId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let status = next(world, id, OrderAction::Fulfill)?;
    Ok(settle(world, effects, id, status, None, now))
}

pub(super) fn refund(
    id: &OrderId,
    restock: bool,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let status = next(world, id, OrderAction::Refund)?;
    let before = found(world, id)?.clone();
    // An order that holds no stock (needs_refund) has none to put back.
    let release = (restock && before.status.holds_stock()).then_some(Reason::RefundRestock);
    let answer = settle(world, effects, id, status, release, now);
    let after = world.orders.get(id).cloned().map(Event::Order);
    effects.audit(
        "order.refunded",
        id.as_str(),
        Some(Event::Order(before)),
        after,
    );
    Ok(answer)
}

/// Expires the order if it is unpaid and due; otherwise changes nothing (another sweeper,
/// a payment or a cancel got there first).
pub(super) fn expire(
    id: &OrderId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let order = found(world, id)?;
    if order.status != OrderStatus::PendingPayment || order.expires_at > now {
        return Ok(Answer::Unchanged);
    }
    Ok(settle(
        world,
        effects,
        id,
        OrderStatus::Expired,
        Some(Reason::Release),
        now,
    ))
}

/// The provider says payment `reference` was refunded (from its dashboard, or a
/// chargeback). A paid order's goods never left, so they go back to stock; a fulfilled
/// order's did. Refunded already: nothing changes.
pub(super) fn refunded_at_provider(
    id: &OrderId,
    reference: &str,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let order = found(world, id)?;
    let ours = world.payments.get(id).is_some_and(|p| {
        p.method == PaymentMethod::Provider && p.reference.as_deref() == Some(reference)
    });
    if !ours {
        return Err(Refusal::UnknownPayment);
    }
    if order.status == OrderStatus::Refunded {
        return Ok(Answer::Order(order.clone()));
    }
    let restock = order.status == OrderStatus::Paid;
    refund(id, restock, world, effects, now)
}

/// Moves an order to another location with the stock it holds: every line is taken at
/// `to` (all or nothing, refused naming what is short there) and given back where it was.
/// A box-office order stays where its event sells.
pub(super) fn hand_over(
    id: &OrderId,
    to: &LocationId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let order = found(world, id)?;
    if order.status == OrderStatus::PendingPayment && now >= order.expires_at {
        // Its time is up: the expiry is a fact, and an expired order moves nowhere.
        expire(id, world, effects, now)?;
    }
    next(world, id, OrderAction::Transfer)?;
    let order = found(world, id)?.clone();
    if order.hold_id.is_some() {
        return Err(Refusal::EventSection);
    }
    if !world.locations.contains_key(to) {
        return Err(Refusal::LocationNotFound);
    }
    if order.location_id == *to {
        return Err(Refusal::AlreadyThere);
    }
    let wanted = order.quantities();
    let mut shortages = Vec::new();
    for (product, quantity) in &wanted {
        let p = world
            .products
            .get(*product)
            .ok_or(Refusal::ProductNotFound)?;
        if p.locations.at(to) < *quantity {
            shortages.push(crate::order::Shortage::of(p, to, *quantity));
        }
    }
    if !shortages.is_empty() {
        return Err(Refusal::OutOfStock(shortages));
    }
    for line in &order.lines {
        let held = Held::Order(&order.id);
        let back = (&order.location_id, line.quantity);
        let take = (to, -line.quantity);
        for (at, delta) in [back, take] {
            effects
                .move_stock(
                    world,
                    &line.product_id,
                    at,
                    delta,
                    Reason::Handover,
                    None,
                    held,
                    now,
                )
                .ok_or(Refusal::ProductNotFound)?;
        }
    }
    let moved = world.orders.get_mut(id).ok_or(Refusal::OrderNotFound)?;
    moved.handovers.push(Handover {
        from: moved.location_id.clone(),
        to: to.clone(),
        at: now,
    });
    moved.location_id = to.clone();
    moved.updated_at = now;
    let moved = moved.clone();
    effects.order_changed(id);
    effects.events.push(Event::OrderTransferred(moved.clone()));
    effects.stock_changed(world, order.lines.iter().map(|l| &l.product_id));
    Ok(Answer::Order(moved))
}

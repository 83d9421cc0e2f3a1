//! Decisions about orders: checkout, payment, cancel, fulfil, refund, expiry.

use crate::ids::OrderId;
use crate::ledger::Reason;
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
    let priced = order::price(new, &world.products)?;
    let number = world.next_order_number();
    let order = Order::pending(new, priced, number, now, policy.order_ttl);
    for line in &order.lines {
        effects.move_stock(
            world,
            &line.product_id,
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
                line.quantity,
                reason,
                None,
                Held::Order(&order.id),
                now,
            );
        }
        effects.stock_changed(world, order.lines.iter().map(|l| &l.product_id));
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
    if order.status == OrderStatus::PendingPayment && now >= order.expires_at {
        // The expiry is a fact whatever becomes of this payment: record it, then refuse.
        settle(
            world,
            effects,
            id,
            OrderStatus::Expired,
            Some(Reason::Release),
            now,
        );
    }
    let status = next(world, id, OrderAction::Pay)?;
    let total = found(world, id)?.total;
    if amount != total {
        return Err(Refusal::AmountMismatch { total });
    }
    effects.payments.push(Payment {
        id: format!("pay_{}", ulid::Ulid::new()),
        order_id: id.clone(),
        method,
        amount,
        reference: reference.map(str::to_owned),
        created_at: now,
    });
    Ok(settle(world, effects, id, status, None, now))
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
    let release = restock.then_some(Reason::RefundRestock);
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

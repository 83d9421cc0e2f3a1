//! Decisions about tabs: open, add and remove items, pause and resume the clock, close into
//! an order, void.
//!
//! An item's stock is reserved when it is added (ledger reason `tab`, held by the tab) and
//! given back when it is removed or the tab is voided. Closing moves no stock: the order it
//! creates inherits what the tab holds, and from then on lives the normal order life (its
//! cancel or expiry releases the stock as any order's would).

use crate::ids::{ProductId, TabId, TabItemId};
use crate::ledger::Reason;
use crate::money::Money;
use crate::order::{Order, Shortage, MAX_ORDER_TOTAL};
use crate::product::Version;
use crate::tab::{NewTab, Period, Tab, TabAction, TabItem, TabStatus, MAX_TAB_ITEMS};
use crate::time::Timestamp;

use super::effects::{Effects, Event, Held, TabEvent};
use super::{Answer, Outcome, Policy, Refusal, World};

pub(super) fn open(
    new: &NewTab,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    if let Some(resource) = &new.resource {
        if let Some(holder) = world.resource_holder(resource) {
            return Err(Refusal::ResourceBusy {
                resource: resource.clone(),
                tab: holder.id.clone(),
            });
        }
    }
    let tab = Tab::open(new, now);
    effects.created_tabs.push(tab.id.clone());
    effects
        .events
        .push(Event::Tab(TabEvent::Opened, tab.clone()));
    world.tabs.insert(tab.id.clone(), tab.clone());
    Ok(Answer::TabOpened(tab))
}

/// How a tab's state reads in a refusal.
fn state(tab: &Tab) -> &'static str {
    if tab.paused() {
        "paused"
    } else {
        tab.status.as_str()
    }
}

/// The tab if it is open, or the refusal of `action`.
fn open_tab<'w>(world: &'w World, id: &TabId, action: TabAction) -> Result<&'w Tab, Refusal> {
    let tab = world.tabs.get(id).ok_or(Refusal::TabNotFound)?;
    if tab.status != TabStatus::Open {
        return Err(refused(tab, action));
    }
    Ok(tab)
}

fn refused(tab: &Tab, action: TabAction) -> Refusal {
    Refusal::TabTransition {
        state: state(tab),
        action,
        order: tab.order_id.clone(),
    }
}

/// Applies `change` to the tab, bumps its version, and records the event.
fn changed(
    world: &mut World,
    effects: &mut Effects,
    id: &TabId,
    event: TabEvent,
    now: Timestamp,
    change: impl FnOnce(&mut Tab),
) -> Option<Tab> {
    let tab = world.tabs.get_mut(id)?;
    change(tab);
    tab.version = Version(tab.version.0 + 1);
    tab.updated_at = now;
    let tab = tab.clone();
    effects.tab_changed(id);
    effects.events.push(Event::Tab(event, tab.clone()));
    Some(tab)
}

/// An item to put on a tab, as asked.
pub(super) struct ItemAsk<'a> {
    pub tab: &'a TabId,
    pub product: &'a ProductId,
    pub quantity: i64,
    pub note: Option<&'a str>,
    pub seller_bound: Option<&'a crate::ids::LocationId>,
}

pub(super) fn add_item(
    ask: ItemAsk<'_>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let ItemAsk {
        tab: id,
        product: product_id,
        quantity,
        note,
        seller_bound,
    } = ask;
    let tab = open_tab(world, id, TabAction::AddItem)?;
    if !crate::location::may_sell_at(seller_bound, &tab.location_id) {
        return Err(Refusal::SellsElsewhere {
            location: seller_bound
                .cloned()
                .unwrap_or_else(crate::ids::LocationId::main),
        });
    }
    super::box_office::refuse_sections(world, [product_id])?;
    if tab.live_items().count() >= MAX_TAB_ITEMS {
        return Err(Refusal::TabFull { max: MAX_TAB_ITEMS });
    }
    let product = world
        .products
        .get(product_id)
        .filter(|p| !p.archived)
        .ok_or_else(|| Refusal::UnknownProducts(vec![product_id.to_string()]))?;
    let location = tab.location_id.clone();
    if product.locations.at(&location) < quantity {
        return Err(Refusal::OutOfStock(vec![Shortage::of(
            product, &location, quantity,
        )]));
    }
    let item = TabItem {
        id: TabItemId::generate(),
        product_id: product_id.clone(),
        sku: product.sku.as_str().to_owned(),
        name: product.name.as_str().to_owned(),
        quantity,
        unit_price: product.price.amount,
        note: note.map(str::to_owned),
        added_at: now,
        removed_at: None,
    };
    effects
        .move_stock(
            world,
            product_id,
            &location,
            -quantity,
            Reason::Tab,
            None,
            Held::Tab(id),
            now,
        )
        .ok_or(Refusal::ProductNotFound)?;
    effects.added_items.push((id.clone(), item.id.clone()));
    let tab = changed(world, effects, id, TabEvent::ItemAdded, now, |t| {
        t.items.push(item)
    })
    .ok_or(Refusal::TabNotFound)?;
    effects.stock_changed(world, [product_id]);
    Ok(Answer::TabItemAdded(tab))
}

pub(super) fn remove_item(
    id: &TabId,
    item_id: &TabItemId,
    expected: Version,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let tab = open_tab(world, id, TabAction::RemoveItem)?;
    if tab.version != expected {
        return Err(Refusal::StaleVersion {
            current: tab.version,
        });
    }
    let item = tab
        .live_items()
        .find(|i| i.id == *item_id)
        .ok_or(Refusal::TabItemNotFound)?
        .clone();
    release(world, effects, id, &item, now)?;
    effects.removed_items.push((id.clone(), item.id.clone()));
    let tab = changed(world, effects, id, TabEvent::ItemRemoved, now, |t| {
        if let Some(i) = t.items.iter_mut().find(|i| i.id == item.id) {
            i.removed_at = Some(now);
        }
    })
    .ok_or(Refusal::TabNotFound)?;
    effects.stock_changed(world, [&item.product_id]);
    Ok(Answer::Tab(tab))
}

/// Gives an item's stock back to its product (ledger reason `release`, held by the tab).
fn release(
    world: &mut World,
    effects: &mut Effects,
    tab: &TabId,
    item: &TabItem,
    now: Timestamp,
) -> Result<(), Refusal> {
    let location = world
        .tabs
        .get(tab)
        .ok_or(Refusal::TabNotFound)?
        .location_id
        .clone();
    effects
        .move_stock(
            world,
            &item.product_id,
            &location,
            item.quantity,
            Reason::Release,
            None,
            Held::Tab(tab),
            now,
        )
        .map(|_| ())
        .ok_or(Refusal::ProductNotFound)
}

/// Stops the running period at `now`, if one runs.
fn stop_clock(tab: &mut Tab, now: Timestamp) {
    if let Some(p) = tab.periods.last_mut().filter(|p| p.ended_at.is_none()) {
        p.ended_at = Some(now);
    }
}

pub(super) fn pause(
    id: &TabId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let tab = open_tab(world, id, TabAction::Pause)?;
    if tab.paused() {
        return Err(refused(tab, TabAction::Pause));
    }
    changed(world, effects, id, TabEvent::Paused, now, |t| {
        stop_clock(t, now)
    })
    .map(Answer::Tab)
    .ok_or(Refusal::TabNotFound)
}

pub(super) fn resume(
    id: &TabId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let tab = open_tab(world, id, TabAction::Resume)?;
    if !tab.paused() {
        return Err(refused(tab, TabAction::Resume));
    }
    changed(world, effects, id, TabEvent::Resumed, now, |t| {
        t.periods.push(Period {
            started_at: now,
            ended_at: None,
        })
    })
    .map(Answer::Tab)
    .ok_or(Refusal::TabNotFound)
}

pub(super) fn close(
    id: &TabId,
    tip: Money,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
    policy: &Policy,
) -> Outcome {
    let tab = open_tab(world, id, TabAction::Close)?;
    if tab.live_items().next().is_none() && tab.rate_per_hour == 0 {
        return Err(Refusal::EmptyTab);
    }
    let too_large = Refusal::AmountTooLarge {
        max: MAX_ORDER_TOTAL,
    };
    let due = tab.due(now).ok_or_else(|| too_large.clone())?;
    // Priced before a number is taken: a refusal leaves the counter as it was.
    let mut order = Order::from_tab(tab, due, tip, 0, now, policy.order_ttl).ok_or(too_large)?;
    order.number = world.next_order_number();
    let order_id = order.id.clone();
    changed(world, effects, id, TabEvent::Closed, now, |t| {
        stop_clock(t, now);
        t.status = TabStatus::Closed;
        t.closed_at = Some(now);
        t.order_id = Some(order_id);
    })
    .ok_or(Refusal::TabNotFound)?;
    effects.created_orders.push(order.id.clone());
    effects.events.push(Event::OrderCreated(order.clone()));
    world.orders.insert(order.id.clone(), order.clone());
    Ok(Answer::OrderCreated(order))
}

pub(super) fn void(
    id: &TabId,
    reason: &str,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let tab = open_tab(world, id, TabAction::Void)?;
    let before = tab.clone();
    let items: Vec<TabItem> = tab.live_items().cloned().collect();
    for item in &items {
        release(world, effects, id, item, now)?;
    }
    let tab = changed(world, effects, id, TabEvent::Voided, now, |t| {
        stop_clock(t, now);
        t.status = TabStatus::Void;
        t.closed_at = Some(now);
        t.void_reason = Some(reason.to_owned());
    })
    .ok_or(Refusal::TabNotFound)?;
    effects.stock_changed(world, items.iter().map(|i| &i.product_id));
    effects.audit(
        "tab.voided",
        id.as_str(),
        Some(Event::Tab(TabEvent::Voided, before)),
        Some(Event::Tab(TabEvent::Voided, tab.clone())),
    );
    Ok(Answer::Tab(tab))
}

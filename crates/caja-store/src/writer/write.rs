//! Writing a batch's effects and answers: a fixed number of multi-row statements whatever
//! the batch's size. Every update is guarded by what the batch loaded and checks how many
//! rows it matched: a guard that does not match fails the whole batch, so the ledger never
//! records a movement whose stock was not written. Each of these returns the rows its
//! statements wrote ([`crate::chunks::write`]).

use crate::sql::Sql;
use caja_core::box_office::{Hold, TicketEvent};
use caja_core::command::{Effects, World};
use caja_core::ledger::Movement;
use caja_core::location::{Location, Transfer};
use caja_core::order::Order;
use caja_core::product::Product;
use caja_core::tab::{Tab, TabItem};
use caja_core::time::{self, Timestamp};

use super::box_office;
use super::claim::encode_headers;
use super::load::Loaded;
use super::IdempotencyScope;
use crate::chunks::Kind;
use crate::dialect::Dialect;
use crate::presenter::StoredResponse;
use crate::rows::{handovers_json, stock_elsewhere_json};
use crate::StoreError;

pub(super) async fn effects(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    world: &World,
    effects: &Effects,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    if effects.movements.iter().any(|m| m.id == 0) {
        return Err(StoreError::Corrupt(
            "a ledger row was decided without a reserved id".into(),
        ));
    }
    // Inserts first (products before the rows that name them), then the guarded updates:
    // an update whose guard misses fails the batch after its ledger rows were written, and
    // the rollback takes them back with everything else.
    let locations: Vec<&Location> = effects
        .created_locations
        .iter()
        .filter_map(|id| world.locations.get(id))
        .collect();
    insert_locations(tx, dialect, &locations).await?;
    let changed_locations: Vec<(&Location, i64)> = effects
        .changed_locations
        .iter()
        .filter_map(|id| {
            Some((
                world.locations.get(id)?,
                loaded.location_versions.get(id)?.0,
            ))
        })
        .collect();
    update_locations(tx, dialect, &changed_locations).await?;
    let created: Vec<&Product> = effects
        .created_products
        .iter()
        .filter_map(|id| world.products.get(id))
        .collect();
    insert_products(tx, dialect, &created).await?;
    let events: Vec<&TicketEvent> = effects
        .created_events
        .iter()
        .filter_map(|id| world.ticket_events.get(id))
        .collect();
    box_office::insert_events(tx, dialect, world, &events).await?;
    let changed_events: Vec<(&TicketEvent, i64)> = effects
        .changed_events
        .iter()
        .filter_map(|id| {
            Some((
                world.ticket_events.get(id)?,
                loaded.event_versions.get(id)?.0,
            ))
        })
        .collect();
    box_office::update_events(tx, dialect, &changed_events).await?;
    let holds: Vec<&Hold> = effects
        .created_holds
        .iter()
        .filter_map(|id| world.holds.get(id))
        .collect();
    box_office::insert_holds(tx, dialect, &holds).await?;
    let rooms: Vec<&caja_core::waiting_room::Room> = effects
        .created_rooms
        .iter()
        .filter_map(|id| world.rooms.get(id))
        .collect();
    box_office::insert_rooms(tx, dialect, &rooms).await?;
    let changed_rooms: Vec<(&caja_core::waiting_room::Room, i64)> = effects
        .changed_rooms
        .iter()
        .filter_map(|id| Some((world.rooms.get(id)?, loaded.room_versions.get(id)?.0)))
        .collect();
    box_office::update_rooms(tx, dialect, &changed_rooms).await?;
    let tickets: Vec<&caja_core::waiting_room::QueueTicket> = effects
        .created_tickets
        .iter()
        .filter_map(|id| world.tickets.get(id))
        .collect();
    box_office::insert_tickets(tx, dialect, &tickets).await?;
    let used: Vec<&caja_core::waiting_room::QueueTicket> = effects
        .used_tickets
        .iter()
        .filter_map(|id| world.tickets.get(id))
        .collect();
    box_office::use_tickets(tx, dialect, &used).await?;
    let tabs: Vec<&Tab> = effects
        .created_tabs
        .iter()
        .filter_map(|id| world.tabs.get(id))
        .collect();
    insert_tabs(tx, dialect, &tabs).await?;
    let items: Vec<(&Tab, &TabItem)> = effects
        .added_items
        .iter()
        .filter_map(|(tab, item)| {
            let tab = world.tabs.get(tab)?;
            Some((tab, tab.items.iter().find(|i| i.id == *item)?))
        })
        .collect();
    insert_items(tx, dialect, &items).await?;
    let orders: Vec<&Order> = effects
        .created_orders
        .iter()
        .filter_map(|id| world.orders.get(id))
        .collect();
    insert_orders(tx, dialect, &orders).await?;
    insert_lines(tx, dialect, &orders).await?;
    insert_payments(tx, dialect, effects).await?;
    let transfers: Vec<&Transfer> = effects
        .created_transfers
        .iter()
        .filter_map(|id| world.transfers.get(id))
        .collect();
    insert_transfers(tx, dialect, &transfers).await?;
    let received: Vec<&Transfer> = effects
        .changed_transfers
        .iter()
        .filter(|id| loaded.transfers.contains(*id))
        .filter_map(|id| world.transfers.get(id))
        .collect();
    matched(
        "transfers",
        received.len() as u64,
        effects.changed_transfers.len(),
    )?;
    receive_transfers(tx, dialect, &received).await?;
    insert_movements(tx, dialect, &effects.movements).await?;
    let changed: Vec<(&Product, i64)> = effects
        .changed_products
        .iter()
        .filter_map(|id| Some((world.products.get(id)?, loaded.product_versions.get(id)?.0)))
        .collect();
    update_products(tx, dialect, &changed).await?;
    let settled: Vec<(&Order, &str, &str)> = effects
        .changed_orders
        .iter()
        .filter_map(|id| {
            Some((
                world.orders.get(id)?,
                loaded.order_statuses.get(id)?.as_str(),
                loaded.order_locations.get(id)?.as_str(),
            ))
        })
        .collect();
    update_orders(tx, dialect, &settled).await?;
    let changed_tabs: Vec<(&Tab, i64)> = effects
        .changed_tabs
        .iter()
        .filter_map(|id| Some((world.tabs.get(id)?, loaded.tab_versions.get(id)?.0)))
        .collect();
    update_tabs(tx, dialect, &changed_tabs).await?;
    let removed: Vec<(&Tab, &TabItem)> = effects
        .removed_items
        .iter()
        .filter_map(|(tab, item)| {
            let tab = world.tabs.get(tab)?;
            Some((tab, tab.items.iter().find(|i| i.id == *item)?))
        })
        .collect();
    remove_items(tx, dialect, &removed).await?;
    let changed_holds: Vec<(&Hold, i64)> = effects
        .changed_holds
        .iter()
        .filter_map(|id| Some((world.holds.get(id)?, loaded.hold_versions.get(id)?.0)))
        .collect();
    box_office::update_holds(tx, dialect, &changed_holds).await?;
    // Seats: those given back first, then those taken (one may be both in one batch).
    box_office::free_seats(tx, dialect, &effects.freed_seats).await?;
    box_office::take_seats(tx, dialect, &effects.taken_seats).await?;
    if let Some((before, taken)) = loaded.order_numbers {
        let used = world.last_order_number - before;
        if used != taken {
            // Hand back the numbers refused checkouts did not use: numbers stay gapless.
            let n = crate::sql::query(
                "UPDATE counters SET value = $1 WHERE name = 'order_number' AND value = $2",
            )
            .bind(world.last_order_number)
            .bind(before + taken)
            .execute(&mut *tx)
            .await?;
            matched("order number counter", n, 1)?;
        }
    }
    Ok(())
}

/// Fails the batch when a guarded update matched other than every row it meant to.
fn matched(what: &str, got: u64, want: usize) -> Result<(), StoreError> {
    if got == want as u64 {
        Ok(())
    } else {
        Err(StoreError::GuardMismatch(format!(
            "{what}: matched {got} of {want} rows"
        )))
    }
}

async fn insert_products(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    products: &[&Product],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO products (id, sku, name, price_amount, currency, stock, \
             stock_elsewhere, version, archived_at, event_id, created_at, updated_at) \
             {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        products,
        12,
        Kind::Insert,
        statement,
        |q, p| {
            q.bind(p.id.as_str())
                .bind(p.sku.as_str())
                .bind(p.name.as_str())
                .bind(p.price.amount)
                .bind(p.price.currency.as_str())
                .bind(p.stock.value())
                .bind(stock_elsewhere_json(&p.locations))
                .bind(p.version.0)
                .bind(p.archived.then(|| time::format(&p.updated_at)))
                .bind(p.event_id.as_ref().map(|e| e.as_str()))
                .bind(time::format(&p.created_at))
                .bind(time::format(&p.updated_at))
        },
    )
    .await
}

/// Writes each product as the batch left it, if it is still at the version it was loaded
/// at. An archive time, once set, is kept.
async fn update_products(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    products: &[(&Product, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE products SET sku = v.column2, name = v.column3, price_amount = v.column4, \
             stock = v.column5, version = v.column6, \
             archived_at = COALESCE(products.archived_at, v.column7), updated_at = v.column8, \
             stock_elsewhere = v.column10 \
             FROM (VALUES {values}) AS v \
             WHERE products.id = v.column1 AND products.version = v.column9"
        )
    };
    let kind = Kind::Guarded("products");
    crate::chunks::write(tx, dialect, products, 10, kind, statement, |q, (p, was)| {
        let at = time::format(&p.updated_at);
        q.bind(p.id.as_str())
            .bind(p.sku.as_str())
            .bind(p.name.as_str())
            .bind(p.price.amount)
            .bind(p.stock.value())
            .bind(p.version.0)
            .bind(p.archived.then(|| at.clone()))
            .bind(at)
            .bind(*was)
            .bind(stock_elsewhere_json(&p.locations))
    })
    .await
}

async fn insert_orders(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    orders: &[&Order],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO orders (id, number, status, subtotal, tip, total, currency, note, \
             customer_name, customer_email, created_at, updated_at, expires_at, tab_id, \
             time_minutes, time_rate, time_amount, hold_id, location_id, handovers) \
             {values}"
        )
    };
    crate::chunks::write(tx, dialect, orders, 20, Kind::Insert, statement, |q, o| {
        q.bind(o.id.as_str())
            .bind(o.number)
            .bind(o.status.as_str())
            .bind(o.subtotal)
            .bind(o.tip)
            .bind(o.total)
            .bind(o.currency.as_str())
            .bind(o.note.as_deref())
            .bind(o.customer.as_ref().map(|c| c.name.as_str()))
            .bind(o.customer.as_ref().and_then(|c| c.email.as_deref()))
            .bind(time::format(&o.created_at))
            .bind(time::format(&o.updated_at))
            .bind(time::format(&o.expires_at))
            .bind(o.tab_id.as_ref().map(|t| t.as_str()))
            .bind(o.time.map(|t| t.minutes))
            .bind(o.time.map(|t| t.rate_per_hour))
            .bind(o.time.map(|t| t.amount))
            .bind(o.hold_id.as_ref().map(|h| h.as_str()))
            .bind(o.location_id.as_str())
            .bind(handovers_json(&o.handovers))
    })
    .await
}

async fn insert_lines(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    orders: &[&Order],
) -> Result<u64, StoreError> {
    let lines: Vec<(&Order, usize)> = orders
        .iter()
        .flat_map(|o| (0..o.lines.len()).map(move |i| (*o, i)))
        .collect();
    let statement = |values: &str| {
        format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, \
             unit_price, line_total) {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        &lines,
        8,
        Kind::Insert,
        statement,
        |q, (o, i)| {
            let l = &o.lines[*i];
            q.bind(o.id.as_str())
                .bind(*i as i64 + 1)
                .bind(l.product_id.as_str())
                .bind(l.sku.as_str())
                .bind(l.name.as_str())
                .bind(l.quantity)
                .bind(l.unit_price)
                .bind(l.line_total)
        },
    )
    .await
}

/// Moves each order to its new status and location, if it is still in the status and at
/// the location it was loaded in.
async fn update_orders(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    orders: &[(&Order, &str, &str)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE orders SET status = v.column2, updated_at = v.column3, \
             location_id = v.column5, handovers = v.column6 \
             FROM (VALUES {values}) AS v \
             WHERE orders.id = v.column1 AND orders.status = v.column4 \
             AND orders.location_id = v.column7"
        )
    };
    let kind = Kind::Guarded("orders");
    crate::chunks::write(
        tx,
        dialect,
        orders,
        7,
        kind,
        statement,
        |q, (o, was, at)| {
            q.bind(o.id.as_str())
                .bind(o.status.as_str())
                .bind(time::format(&o.updated_at))
                .bind(*was)
                .bind(o.location_id.as_str())
                .bind(handovers_json(&o.handovers))
                .bind(*at)
        },
    )
    .await
}

async fn insert_payments(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    effects: &Effects,
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO payments (id, order_id, method, amount, reference, created_at) \
             {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        &effects.payments,
        6,
        Kind::Insert,
        statement,
        |q, p| {
            q.bind(p.id.as_str())
                .bind(p.order_id.as_str())
                .bind(p.method.as_str())
                .bind(p.amount)
                .bind(p.reference.as_deref())
                .bind(time::format(&p.created_at))
        },
    )
    .await
}

async fn insert_movements(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    movements: &[Movement],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO stock_movements (id, product_id, delta, reason, note, order_id, \
             tab_id, hold_id, stock_after, created_at, location_id, transfer_id) {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        movements,
        12,
        Kind::Insert,
        statement,
        |q, m| {
            q.bind(m.id)
                .bind(m.product_id.as_str())
                .bind(m.delta)
                .bind(m.reason.as_str())
                .bind(m.note.as_deref())
                .bind(m.order_id.as_ref().map(|o| o.as_str()))
                .bind(m.tab_id.as_ref().map(|t| t.as_str()))
                .bind(m.hold_id.as_ref().map(|h| h.as_str()))
                .bind(m.stock_after)
                .bind(time::format(&m.created_at))
                .bind(m.location_id.as_str())
                .bind(m.transfer_id.as_ref().map(|t| t.as_str()))
        },
    )
    .await
}

async fn insert_tabs(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    tabs: &[&Tab],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO tabs (id, label, resource, status, rate, currency, unit_minutes, \
             minimum_minutes, grace_minutes, customer_name, customer_email, note, periods, \
             order_id, void_reason, version, opened_at, closed_at, updated_at, location_id) \
             {values}"
        )
    };
    crate::chunks::write(tx, dialect, tabs, 20, Kind::Insert, statement, |q, t| {
        q.bind(t.id.as_str())
            .bind(t.label.as_str())
            .bind(t.resource.as_deref())
            .bind(t.status.as_str())
            .bind(t.rate_per_hour)
            .bind(t.currency.as_str())
            .bind(t.rounding.unit_minutes)
            .bind(t.rounding.minimum_minutes)
            .bind(t.rounding.grace_minutes)
            .bind(t.customer.as_ref().map(|c| c.name.as_str()))
            .bind(t.customer.as_ref().and_then(|c| c.email.as_deref()))
            .bind(t.note.as_deref())
            .bind(crate::rows::periods_json(&t.periods))
            .bind(t.order_id.as_ref().map(|o| o.as_str()))
            .bind(t.void_reason.as_deref())
            .bind(t.version.0)
            .bind(time::format(&t.opened_at))
            .bind(t.closed_at.as_ref().map(time::format))
            .bind(time::format(&t.updated_at))
            .bind(t.location_id.as_str())
    })
    .await
}

/// Writes each tab's changing columns as the batch left it, if it is still at the version
/// it was loaded at.
async fn update_tabs(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    tabs: &[(&Tab, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE tabs SET status = v.column2, periods = v.column3, order_id = v.column4, \
             void_reason = v.column5, version = v.column6, closed_at = v.column7, \
             updated_at = v.column8 FROM (VALUES {values}) AS v \
             WHERE tabs.id = v.column1 AND tabs.version = v.column9"
        )
    };
    let kind = Kind::Guarded("tabs");
    crate::chunks::write(tx, dialect, tabs, 9, kind, statement, |q, (t, was)| {
        q.bind(t.id.as_str())
            .bind(t.status.as_str())
            .bind(crate::rows::periods_json(&t.periods))
            .bind(t.order_id.as_ref().map(|o| o.as_str()))
            .bind(t.void_reason.as_deref())
            .bind(t.version.0)
            .bind(t.closed_at.as_ref().map(time::format))
            .bind(time::format(&t.updated_at))
            .bind(*was)
    })
    .await
}

async fn insert_items(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    items: &[(&Tab, &TabItem)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO tab_items (id, tab_id, product_id, sku, name, quantity, unit_price, \
             note, added_at, removed_at) {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        items,
        10,
        Kind::Insert,
        statement,
        |q, (t, i)| {
            q.bind(i.id.as_str())
                .bind(t.id.as_str())
                .bind(i.product_id.as_str())
                .bind(i.sku.as_str())
                .bind(i.name.as_str())
                .bind(i.quantity)
                .bind(i.unit_price)
                .bind(i.note.as_deref())
                .bind(time::format(&i.added_at))
                .bind(i.removed_at.as_ref().map(time::format))
        },
    )
    .await
}

/// Marks items taken off their tabs, if they were still on them.
async fn remove_items(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    items: &[(&Tab, &TabItem)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE tab_items SET removed_at = v.column2 FROM (VALUES {values}) AS v \
             WHERE tab_items.id = v.column1 AND tab_items.removed_at IS NULL"
        )
    };
    let kind = Kind::Guarded("tab items");
    crate::chunks::write(tx, dialect, items, 2, kind, statement, |q, (_, i)| {
        q.bind(i.id.as_str())
            .bind(i.removed_at.as_ref().map(time::format))
    })
    .await
}

/// Stores every answer under its key, in key order: this insert is the key's claim
/// (`claim.rs`). A key another writer answered since the batch read it is not inserted, and
/// fails the batch ([`StoreError::KeyAnswered`]); a key another replica is still writing
/// past the batch's lock wait is [`StoreError::KeyInFlight`].
pub(super) async fn answers(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    answers: &[(&IdempotencyScope, &StoredResponse)],
    now: Timestamp,
) -> Result<(), StoreError> {
    let at = time::format(&now);
    let mut sorted = answers.to_vec();
    sorted.sort_by(|(a, _), (b, _)| a.pair().cmp(&b.pair()));
    let statement = |values: &str| {
        format!(
            "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, \
             created_at) {values} ON CONFLICT (key_id, key) DO NOTHING"
        )
    };
    let inserted = crate::chunks::write(
        tx,
        dialect,
        &sorted,
        7,
        Kind::Insert,
        statement,
        |q, (scope, response)| {
            q.bind(scope.key_id.as_str())
                .bind(scope.key.as_str())
                .bind(scope.fingerprint.as_str())
                .bind(i64::from(response.status))
                .bind(encode_headers(&response.headers))
                .bind(response.body.as_str())
                .bind(at.as_str())
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::LockTimeout(_) => {
            metrics::counter!("caja_idempotency_wait_timeouts_total").increment(1);
            StoreError::KeyInFlight
        }
        e => e,
    })?;
    if inserted == sorted.len() as u64 {
        Ok(())
    } else {
        Err(StoreError::KeyAnswered)
    }
}

async fn insert_locations(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    locations: &[&Location],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO locations (id, code, name, version, created_at, updated_at) \
             {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        locations,
        6,
        Kind::Insert,
        statement,
        |q, l| {
            q.bind(l.id.as_str())
                .bind(l.code.as_str())
                .bind(l.name.as_str())
                .bind(l.version.0)
                .bind(time::format(&l.created_at))
                .bind(time::format(&l.updated_at))
        },
    )
    .await
}

/// Writes each location as the batch left it, if it is still at the version it was loaded
/// at.
async fn update_locations(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    locations: &[(&Location, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE locations SET code = v.column2, name = v.column3, version = v.column4, \
             updated_at = v.column5 FROM (VALUES {values}) AS v \
             WHERE locations.id = v.column1 AND locations.version = v.column6"
        )
    };
    let kind = Kind::Guarded("locations");
    crate::chunks::write(tx, dialect, locations, 6, kind, statement, |q, (l, was)| {
        q.bind(l.id.as_str())
            .bind(l.code.as_str())
            .bind(l.name.as_str())
            .bind(l.version.0)
            .bind(time::format(&l.updated_at))
            .bind(*was)
    })
    .await
}

async fn insert_transfers(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    transfers: &[&Transfer],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO transfers (id, product_id, from_location, to_location, quantity, note, \
             status, created_at, received_at) {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        transfers,
        9,
        Kind::Insert,
        statement,
        |q, t| {
            q.bind(t.id.as_str())
                .bind(t.product_id.as_str())
                .bind(t.from.as_str())
                .bind(t.to.as_str())
                .bind(t.quantity)
                .bind(t.note.as_deref())
                .bind(t.status.as_str())
                .bind(time::format(&t.created_at))
                .bind(t.received_at.as_ref().map(time::format))
        },
    )
    .await
}

/// Marks transfers received, if they were still in transit.
async fn receive_transfers(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    transfers: &[&Transfer],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE transfers SET status = v.column2, received_at = v.column3 \
             FROM (VALUES {values}) AS v \
             WHERE transfers.id = v.column1 AND transfers.status = 'in_transit'"
        )
    };
    let kind = Kind::Guarded("transfers");
    crate::chunks::write(tx, dialect, transfers, 3, kind, statement, |q, t| {
        q.bind(t.id.as_str())
            .bind(t.status.as_str())
            .bind(t.received_at.as_ref().map(time::format))
    })
    .await
}

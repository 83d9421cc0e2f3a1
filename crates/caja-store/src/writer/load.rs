//! Locking and loading the rows a batch's commands read, in the one lock order: tabs, holds,
//! waiting rooms, queue tickets, events, orders, transfers, products (each by id), then the
//! counters. Locations are read, never locked.

use std::collections::{BTreeMap, BTreeSet};

use crate::sql::{Columns, Sql};
use caja_core::command::{Command, IdPool, World};
use caja_core::ids::{HoldId, LocationId, OrderId, ProductId, TabId, TransferId};
use caja_core::order::OrderStatus;
use caja_core::product::{Sku, Version};

use crate::box_office::with_sections;
use crate::dialect::Dialect;
use crate::orders::with_lines;
use crate::rows::{
    hold, location, payment, product, transfer, EVENT_COLUMNS, HOLD_COLUMNS, LOCATION_COLUMNS,
    ORDER_COLUMNS, PAYMENT_COLUMNS, PRODUCT_COLUMNS, TAB_COLUMNS, TRANSFER_COLUMNS,
};
use crate::tabs::with_items;
use crate::StoreError;

/// The rows as loaded, before any decision: what the guarded updates expect to find.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub product_versions: BTreeMap<ProductId, Version>,
    pub order_statuses: BTreeMap<OrderId, OrderStatus>,
    pub tab_versions: BTreeMap<TabId, Version>,
    pub hold_versions: BTreeMap<HoldId, Version>,
    pub room_versions: BTreeMap<caja_core::ids::EventId, Version>,
    pub event_versions: BTreeMap<caja_core::ids::EventId, Version>,
    /// Where each loaded order was: a hand-over's guard.
    pub order_locations: BTreeMap<OrderId, LocationId>,
    pub location_versions: BTreeMap<LocationId, Version>,
    /// Transfers as loaded, all in transit (a received one never changes again).
    pub transfers: BTreeSet<TransferId>,
    /// The last order number before the batch, and how many the batch took, if it may
    /// create orders.
    pub order_numbers: Option<(i64, i64)>,
}

pub(super) async fn load(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    commands: &[&Command],
) -> Result<(World, Loaded), StoreError> {
    let needs: Vec<_> = commands.iter().map(|c| c.needs()).collect();
    let mut world = World::default();
    let mut loaded = Loaded::default();

    let tab_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.tabs)
        .map(TabId::as_str)
        .collect();
    let tab_ids: Vec<&str> = tab_ids.into_iter().collect();
    let select = format!("SELECT {TAB_COLUMNS} FROM tabs WHERE id");
    for chunk in crate::chunks::padded(&tab_ids) {
        let rows = select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await?;
        for tab in with_items(&mut *tx, dialect, &rows).await? {
            loaded.tab_versions.insert(tab.id.clone(), tab.version);
            world.tabs.insert(tab.id.clone(), tab);
        }
    }
    // Open holders of the resources the batch would take. Not locked: the unique index is
    // the last word, and a race it catches fails the batch, whose writes then run alone.
    let resources: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.resources)
        .map(String::as_str)
        .collect();
    let resources: Vec<&str> = resources.into_iter().collect();
    let select = format!("SELECT {TAB_COLUMNS} FROM tabs WHERE status = 'open' AND resource");
    for chunk in crate::chunks::padded(&resources) {
        let rows = select_in(tx, dialect, &select, &chunk, Lock::None).await?;
        for tab in with_items(&mut *tx, dialect, &rows).await? {
            loaded
                .tab_versions
                .entry(tab.id.clone())
                .or_insert(tab.version);
            world.tabs.entry(tab.id.clone()).or_insert(tab);
        }
    }

    // Holds, locked after tabs (those the commands name, and every active hold of an event
    // being cancelled); then rooms, tickets, and the events, locked too: a hold decided
    // against an event must not commit after that event's cancel.
    let mut hold_ids: BTreeSet<String> = needs
        .iter()
        .flat_map(|n| &n.holds)
        .map(|h| h.as_str().to_owned())
        .collect();
    for event in needs.iter().flat_map(|n| &n.event_holds) {
        let rows =
            crate::sql::query("SELECT id FROM holds WHERE event_id = $1 AND status = 'active'")
                .bind(event.as_str())
                .fetch_all(&mut *tx)
                .await?;
        for row in &rows {
            hold_ids.insert(row.text("id")?);
        }
    }
    let hold_ids: Vec<&str> = hold_ids.iter().map(String::as_str).collect();
    let select = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id");
    for chunk in crate::chunks::padded(&hold_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await? {
            let h = hold(&row)?;
            loaded.hold_versions.insert(h.id.clone(), h.version);
            world.holds.insert(h.id.clone(), h);
        }
    }
    // Waiting rooms, locked after holds; then the tickets the commands name.
    let room_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.rooms)
        .map(|e| e.as_str())
        .collect();
    let room_ids: Vec<&str> = room_ids.into_iter().collect();
    let select = format!(
        "SELECT {} FROM waiting_rooms WHERE event_id",
        crate::rows::ROOM_COLUMNS
    );
    for chunk in crate::chunks::padded(&room_ids) {
        let sql_lock = Lock::InKeyOrder("event_id");
        for row in select_in(tx, dialect, &select, &chunk, sql_lock).await? {
            let r = crate::rows::room(&row)?;
            loaded.room_versions.insert(r.event_id.clone(), r.version);
            world.rooms.insert(r.event_id.clone(), r);
        }
    }
    let ticket_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.tickets)
        .map(|t| t.as_str())
        .collect();
    let ticket_ids: Vec<&str> = ticket_ids.into_iter().collect();
    let select = format!(
        "SELECT {} FROM queue_tickets WHERE id",
        crate::rows::TICKET_COLUMNS
    );
    let mut tickets = Vec::new();
    for chunk in crate::chunks::padded(&ticket_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await? {
            tickets.push(crate::rows::ticket(&row)?);
        }
    }
    // The tickets the joiners may already have, a chunk of (event, client_ref) pairs per
    // statement: a flash sale's batch is mostly joins, and a query each was a round trip
    // each in the writer. One probe of the unique index per pair (`Dialect::lookup`);
    // PostgreSQL's generic plan for `client_ref IN (64 params)` read the whole event's
    // index range instead.
    let joiners: BTreeSet<(&str, &str)> = needs
        .iter()
        .flat_map(|n| &n.client_refs)
        .map(|(event, client_ref)| (event.as_str(), client_ref.as_str()))
        .collect();
    let joiners: Vec<(&str, &str)> = joiners.into_iter().collect();
    let statement = |dialect: Dialect, values: &str| {
        dialect.lookup(
            &crate::rows::qualified("k", crate::rows::TICKET_COLUMNS),
            values,
            "queue_tickets",
            "k.event_id = v.column1 AND k.client_ref = v.column2",
        )
    };
    for chunk in crate::chunks::padded(&joiners) {
        let sql = crate::chunks::statement_on(dialect, chunk.len(), 2, &statement);
        let mut q = crate::sql::query(&sql);
        for (event, client_ref) in chunk.iter() {
            q = q.bind(*event).bind(*client_ref);
        }
        for row in q.fetch_all(&mut *tx).await? {
            tickets.push(crate::rows::ticket(&row)?);
        }
    }
    for mut t in tickets {
        if let Some(room) = world.rooms.get(&t.event_id) {
            crate::box_office::drawn_admit_at(room, &mut t);
        }
        world.tickets.insert(t.id.clone(), t);
    }
    let mut event_ids: BTreeSet<String> = needs
        .iter()
        .flat_map(|n| &n.ticket_events)
        .map(|e| e.as_str().to_owned())
        .collect();
    event_ids.extend(world.holds.values().map(|h| h.event_id.as_str().to_owned()));
    let event_ids: Vec<&str> = event_ids.iter().map(String::as_str).collect();
    let select = format!("SELECT {EVENT_COLUMNS} FROM ticket_events WHERE id");
    for chunk in crate::chunks::padded(&event_ids) {
        let rows = select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await?;
        for event in with_sections(&mut *tx, dialect, &rows).await? {
            loaded
                .event_versions
                .insert(event.id.clone(), event.version);
            world.ticket_events.insert(event.id.clone(), event);
        }
    }

    let order_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.orders)
        .map(OrderId::as_str)
        .collect();
    let order_ids: Vec<&str> = order_ids.into_iter().collect();
    let select = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id");
    for chunk in crate::chunks::padded(&order_ids) {
        let rows = select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await?;
        for order in with_lines(&mut *tx, dialect, &rows).await? {
            loaded.order_statuses.insert(order.id.clone(), order.status);
            loaded
                .order_locations
                .insert(order.id.clone(), order.location_id.clone());
            world.orders.insert(order.id.clone(), order);
        }
    }
    // The holds their box-office orders came from (read, not locked: an order's change
    // frees its hold's seats by the hold's id, and never changes the hold row).
    let order_holds: BTreeSet<&str> = world
        .orders
        .values()
        .filter_map(|o| o.hold_id.as_ref())
        .filter(|h| !world.holds.contains_key(*h))
        .map(HoldId::as_str)
        .collect();
    let order_holds: Vec<&str> = order_holds.into_iter().collect();
    let select = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id");
    let mut extra = Vec::new();
    for chunk in crate::chunks::padded(&order_holds) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::None).await? {
            extra.push(hold(&row)?);
        }
    }
    for h in extra {
        world.holds.entry(h.id.clone()).or_insert(h);
    }
    // Their payments: a provider payment confirmed twice is recognised by its reference.
    let select = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id");
    for chunk in crate::chunks::padded(&order_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::None).await? {
            let p = payment(&row)?;
            world.payments.insert(p.order_id.clone(), p);
        }
    }

    // Transfers, locked after orders; then the products they move.
    let transfer_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.transfers)
        .map(TransferId::as_str)
        .collect();
    let transfer_ids: Vec<&str> = transfer_ids.into_iter().collect();
    let select = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id");
    for chunk in crate::chunks::padded(&transfer_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await? {
            let t = transfer(&row)?;
            if t.status == caja_core::location::TransferStatus::InTransit {
                loaded.transfers.insert(t.id.clone());
            }
            world.transfers.insert(t.id.clone(), t);
        }
    }

    let mut product_ids: BTreeSet<&ProductId> = needs.iter().flat_map(|n| &n.products).collect();
    product_ids.extend(world.transfers.values().map(|t| &t.product_id));
    for order in world.orders.values() {
        product_ids.extend(order.lines.iter().map(|l| &l.product_id));
    }
    for tab in world.tabs.values() {
        product_ids.extend(tab.live_items().map(|i| &i.product_id));
    }
    for event in world.ticket_events.values() {
        product_ids.extend(event.sections.iter().map(|s| &s.product_id));
    }
    let product_ids: Vec<&str> = product_ids.into_iter().map(ProductId::as_str).collect();
    let select = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id");
    for chunk in crate::chunks::padded(&product_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::InIdOrder).await? {
            let p = product(&row)?;
            loaded.product_versions.insert(p.id.clone(), p.version);
            world.products.insert(p.id.clone(), p);
        }
    }

    // The seats of the seated sections a hold may take from, read after their sections'
    // products were locked: no other writer changes them until this batch commits.
    let seated: Vec<ProductId> = needs
        .iter()
        .filter(|n| n.seats)
        .flat_map(|n| &n.ticket_events)
        .filter_map(|e| world.ticket_events.get(e))
        .flat_map(|e| e.sections.iter().filter(|s| s.seated))
        .map(|s| s.product_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for product in seated {
        let row = crate::sql::query(dialect.seats_as_json())
            .bind(product.as_str())
            .fetch_one(&mut *tx)
            .await?;
        // No seats at all is NULL on PostgreSQL, `[]` on SQLite.
        let json = row.opt_text("seats")?;
        let seats: Vec<(String, Option<String>)> = match json {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                StoreError::Corrupt(format!("the seats of {product} do not read back: {e}"))
            })?,
            None => Vec::new(),
        };
        let mut list = Vec::with_capacity(seats.len());
        for (label, holder) in seats {
            let holder = holder.map(|h| HoldId::parse("hold_id", &h)).transpose()?;
            list.push((label, holder));
        }
        world.seats.insert(product, list);
    }

    // Live holders of the skus the batch would take. Not locked: the unique index is the
    // last word, and a race it catches fails the batch, whose writes then run alone.
    let skus: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.skus)
        .map(Sku::as_str)
        .collect();
    let skus: Vec<&str> = skus.into_iter().collect();
    let select =
        format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE archived_at IS NULL AND sku");
    for chunk in crate::chunks::padded(&skus) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::None).await? {
            let p = product(&row)?;
            loaded
                .product_versions
                .entry(p.id.clone())
                .or_insert(p.version);
            world.products.entry(p.id.clone()).or_insert(p);
        }
    }

    // The locations the commands name, by id and by code. Not locked: a location is never
    // deleted, a change to one is guarded by its version, and the unique index has the last
    // word on codes.
    let location_ids: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.locations)
        .map(LocationId::as_str)
        .collect();
    let location_ids: Vec<&str> = location_ids.into_iter().collect();
    let select = format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE id");
    for chunk in crate::chunks::padded(&location_ids) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::None).await? {
            let l = location(&row)?;
            loaded.location_versions.insert(l.id.clone(), l.version);
            world.locations.insert(l.id.clone(), l);
        }
    }
    let codes: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.location_codes)
        .map(|c| c.as_str())
        .collect();
    let codes: Vec<&str> = codes.into_iter().collect();
    let select = format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE code");
    for chunk in crate::chunks::padded(&codes) {
        for row in select_in(tx, dialect, &select, &chunk, Lock::None).await? {
            let l = location(&row)?;
            loaded
                .location_versions
                .entry(l.id.clone())
                .or_insert(l.version);
            world.locations.entry(l.id.clone()).or_insert(l);
        }
    }

    // Order numbers (one per checkout; those a refusal leaves unused are handed back
    // before commit) and ledger ids, last: the counter row is the last lock taken.
    let orders = needs.iter().filter(|n| n.order_numbers).count();
    let movements: usize = needs
        .iter()
        .map(|n| {
            let of_orders: usize = n
                .orders
                .iter()
                .filter_map(|id| world.orders.get(id))
                .map(|o| o.lines.len() * n.movements_per_order_line)
                .sum();
            let of_tabs: usize = if n.tab_movements {
                n.tabs
                    .iter()
                    .filter_map(|id| world.tabs.get(id))
                    .map(|t| t.live_items().count())
                    .sum()
            } else {
                0
            };
            // Every active hold of an event being cancelled gives its places back.
            let of_events = n
                .event_holds
                .iter()
                .map(|e| {
                    world
                        .holds
                        .values()
                        .filter(|h| {
                            &h.event_id == e
                                && h.status == caja_core::box_office::HoldStatus::Active
                        })
                        .count()
                })
                .sum::<usize>();
            n.movements + of_orders + of_tabs + of_events
        })
        .sum();
    let (last_order_number, ids) = dialect.reserve(tx, orders, movements).await?;
    if let Some(last) = last_order_number {
        world.last_order_number = last;
        loaded.order_numbers = Some((last, orders as i64));
    }
    world.movement_ids = IdPool::new(ids);
    Ok((world, loaded))
}

/// Whether [`select_in`] locks what it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    None,
    /// Lock every row read, in id order (the one lock order of every writer).
    InIdOrder,
    /// The same, for a table whose key column is not `id`.
    InKeyOrder(&'static str),
}

/// The rows of `{select} IN (values)`: `select` ends with the column the values match.
async fn select_in<S: Sql + ?Sized>(
    tx: &mut S,
    dialect: Dialect,
    select: &str,
    values: &[&str],
    lock: Lock,
) -> Result<Vec<S::Row>, StoreError> {
    let tail = match lock {
        Lock::None => String::new(),
        Lock::InIdOrder => format!(" ORDER BY id{}", dialect.lock_rows()),
        Lock::InKeyOrder(key) => format!(" ORDER BY {key}{}", dialect.lock_rows()),
    };
    let sql = format!(
        "{select} IN ({}){tail}",
        crate::chunks::list(dialect, values.len())
    );
    let mut q = crate::sql::query(&sql);
    for v in values {
        q = q.bind(*v);
    }
    q.fetch_all(&mut *tx).await
}

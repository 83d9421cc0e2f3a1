//! Writing the box office's effects: events with their sections and seats, holds, and the
//! seats holds take and give back. Seats are taken only where free, and every take must
//! match its row: a seat another writer took fails the batch.

use crate::sql::Sql;
use caja_core::box_office::{Hold, TicketEvent};
use caja_core::command::World;
use caja_core::ids::{HoldId, ProductId};
use caja_core::time;
use caja_core::waiting_room::{QueueTicket, Room};

use crate::chunks::Kind;
use crate::dialect::Dialect;
use crate::StoreError;

pub(super) async fn insert_events(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    world: &World,
    events: &[&TicketEvent],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO ticket_events (id, name, starts_at, sale_starts_at, sale_ends_at, \
             max_per_order, currency, status, version, created_at, updated_at) {values}"
        )
    };
    crate::chunks::write(tx, dialect, events, 11, Kind::Insert, statement, |q, e| {
        q.bind(e.id.as_str())
            .bind(e.name.as_str())
            .bind(time::format(&e.starts_at))
            .bind(time::format(&e.sale_starts_at))
            .bind(e.sale_ends_at.as_ref().map(time::format))
            .bind(e.max_per_order)
            .bind(e.currency.as_str())
            .bind(e.status.as_str())
            .bind(e.version.0)
            .bind(time::format(&e.created_at))
            .bind(time::format(&e.updated_at))
    })
    .await?;
    let sections: Vec<(&TicketEvent, i64, &caja_core::box_office::Section)> = events
        .iter()
        .flat_map(|e| {
            e.sections
                .iter()
                .enumerate()
                .map(move |(n, s)| (*e, n as i64, s))
        })
        .collect();
    let statement = |values: &str| {
        format!(
            "INSERT INTO event_sections (event_id, position, name, product_id, price, capacity, \
             seated) {values}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        &sections,
        7,
        Kind::Insert,
        statement,
        |q, (e, n, s)| {
            q.bind(e.id.as_str())
                .bind(*n)
                .bind(s.name.as_str())
                .bind(s.product_id.as_str())
                .bind(s.price)
                .bind(s.capacity)
                .bind(i64::from(s.seated))
        },
    )
    .await?;
    let seats: Vec<(&ProductId, i64, &str)> = sections
        .iter()
        .filter(|(_, _, s)| s.seated)
        .filter_map(|(_, _, s)| Some((&s.product_id, world.seats.get(&s.product_id)?)))
        .flat_map(|(p, list)| {
            list.iter()
                .enumerate()
                .map(move |(n, (label, _))| (p, n as i64, label.as_str()))
        })
        .collect();
    let statement =
        |values: &str| format!("INSERT INTO seats (product_id, position, label, hold_id) {values}");
    crate::chunks::write(
        tx,
        dialect,
        &seats,
        4,
        Kind::Insert,
        statement,
        |q, (p, n, label)| {
            q.bind(p.as_str())
                .bind(*n)
                .bind(*label)
                .bind(None::<String>)
        },
    )
    .await
}

pub(super) async fn insert_holds(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    holds: &[&Hold],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO holds (id, event_id, section, product_id, quantity, seats, unit_price, \
             currency, status, expires_at, order_id, version, created_at, updated_at, client_ref) \
             {values}"
        )
    };
    crate::chunks::write(tx, dialect, holds, 15, Kind::Insert, statement, |q, h| {
        q.bind(h.id.as_str())
            .bind(h.event_id.as_str())
            .bind(h.section.as_str())
            .bind(h.product_id.as_str())
            .bind(h.quantity)
            .bind(crate::rows::seats_json(&h.seats))
            .bind(h.unit_price)
            .bind(h.currency.as_str())
            .bind(h.status.as_str())
            .bind(time::format(&h.expires_at))
            .bind(h.order_id.as_ref().map(|o| o.as_str()))
            .bind(h.version.0)
            .bind(time::format(&h.created_at))
            .bind(time::format(&h.updated_at))
            .bind(h.client_ref.as_deref())
    })
    .await
}

/// Writes each hold's changing columns, if it is still at the version it was loaded at.
pub(super) async fn update_holds(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    holds: &[(&Hold, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE holds SET status = v.column2, order_id = v.column3, version = v.column4, \
             updated_at = v.column5 FROM (VALUES {values}) AS v \
             WHERE holds.id = v.column1 AND holds.version = v.column6"
        )
    };
    let kind = Kind::Guarded("holds");
    crate::chunks::write(tx, dialect, holds, 6, kind, statement, |q, (h, was)| {
        q.bind(h.id.as_str())
            .bind(h.status.as_str())
            .bind(h.order_id.as_ref().map(|o| o.as_str()))
            .bind(h.version.0)
            .bind(time::format(&h.updated_at))
            .bind(*was)
    })
    .await
}

/// Gives back every seat these holds have.
pub(super) async fn free_seats(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    holds: &[HoldId],
) -> Result<(), StoreError> {
    for chunk in crate::chunks::padded(holds) {
        let sql = format!(
            "UPDATE seats SET hold_id = NULL WHERE hold_id IN ({})",
            crate::chunks::list(dialect, chunk.len())
        );
        let mut q = crate::sql::query(&sql);
        for h in chunk.iter() {
            q = q.bind(h.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Gives each seat to its hold, only where it is free: every row must match.
pub(super) async fn take_seats(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    seats: &[(ProductId, String, HoldId)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE seats SET hold_id = v.column3 FROM (VALUES {values}) AS v \
             WHERE seats.product_id = v.column1 AND seats.label = v.column2 \
               AND seats.hold_id IS NULL"
        )
    };
    let kind = Kind::Guarded("seats");
    crate::chunks::write(
        tx,
        dialect,
        seats,
        3,
        kind,
        statement,
        |q, (p, label, h)| q.bind(p.as_str()).bind(label.as_str()).bind(h.as_str()),
    )
    .await
}

pub(super) async fn insert_rooms(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    rooms: &[&Room],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO waiting_rooms (event_id, admit_per_minute, max_queue, admission_ttl_secs, \
             opens_at, pre_open, last_admit_at, drawn, version) {values}"
        )
    };
    crate::chunks::write(tx, dialect, rooms, 9, Kind::Insert, statement, |q, r| {
        q.bind(r.event_id.as_str())
            .bind(r.config.admit_per_minute)
            .bind(r.config.max_queue)
            .bind(r.config.admission_ttl.num_seconds())
            .bind(time::format(&r.config.opens_at))
            .bind(r.pre_open)
            .bind(r.last_admit_at.as_ref().map(time::format))
            .bind(i64::from(r.drawn))
            .bind(r.version.0)
    })
    .await
}

/// Writes each room's line as the batch left it, if still at the version it was loaded at.
pub(super) async fn update_rooms(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    rooms: &[(&Room, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE waiting_rooms SET pre_open = v.column2, last_admit_at = v.column3, \
             version = v.column4 FROM (VALUES {values}) AS v \
             WHERE waiting_rooms.event_id = v.column1 AND waiting_rooms.version = v.column5"
        )
    };
    let kind = Kind::Guarded("waiting rooms");
    crate::chunks::write(tx, dialect, rooms, 5, kind, statement, |q, (r, was)| {
        q.bind(r.event_id.as_str())
            .bind(r.pre_open)
            .bind(r.last_admit_at.as_ref().map(time::format))
            .bind(r.version.0)
            .bind(*was)
    })
    .await
}

pub(super) async fn insert_tickets(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    tickets: &[&QueueTicket],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO queue_tickets (id, event_id, client_ref, rank, admit_at, hold_id, \
             joined_at) {values}"
        )
    };
    crate::chunks::write(tx, dialect, tickets, 7, Kind::Insert, statement, |q, t| {
        q.bind(t.id.as_str())
            .bind(t.event_id.as_str())
            .bind(t.client_ref.as_str())
            .bind(t.rank)
            // A drawn ticket's admission time is computed when read, never stored.
            .bind(
                t.rank
                    .is_none()
                    .then(|| t.admit_at.as_ref().map(time::format))
                    .flatten(),
            )
            .bind(t.hold_id.as_ref().map(|h| h.as_str()))
            .bind(time::format(&t.joined_at))
    })
    .await
}

/// Records the hold each admission was used for, only where none was: a ticket used twice
/// fails the batch.
pub(super) async fn use_tickets(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    tickets: &[&QueueTicket],
) -> Result<u64, StoreError> {
    // "No hold yet" is written `COALESCE(hold_id, '') = ''` (no hold id is empty), not
    // `hold_id IS NULL`: SQLite's planner takes `IS NULL` on the column's unique index for
    // one row, drives the update from it, and so compared every unused ticket of the room
    // with every row of the list (60–100 ms a statement at 20,000 tickets, in the writer).
    // As an expression it cannot use that index, and the update goes by id.
    let statement = |values: &str| {
        format!(
            "UPDATE queue_tickets SET hold_id = v.column2 FROM (VALUES {values}) AS v \
             WHERE queue_tickets.id = v.column1 AND COALESCE(queue_tickets.hold_id, '') = ''"
        )
    };
    let kind = Kind::Guarded("queue tickets");
    crate::chunks::write(tx, dialect, tickets, 2, kind, statement, |q, t| {
        q.bind(t.id.as_str())
            .bind(t.hold_id.as_ref().map(|h| h.as_str()))
    })
    .await
}

/// Writes each event's editable columns, if it is still at the version it was loaded at.
pub(super) async fn update_events(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    events: &[(&TicketEvent, i64)],
) -> Result<u64, StoreError> {
    let statement = |values: &str| {
        format!(
            "UPDATE ticket_events SET name = v.column2, starts_at = v.column3, \
             sale_starts_at = v.column4, sale_ends_at = v.column5, max_per_order = v.column6, \
             status = v.column7, version = v.column8, updated_at = v.column9 \
             FROM (VALUES {values}) AS v \
             WHERE ticket_events.id = v.column1 AND ticket_events.version = v.column10"
        )
    };
    let kind = Kind::Guarded("events");
    crate::chunks::write(tx, dialect, events, 10, kind, statement, |q, (e, was)| {
        q.bind(e.id.as_str())
            .bind(e.name.as_str())
            .bind(time::format(&e.starts_at))
            .bind(time::format(&e.sale_starts_at))
            .bind(e.sale_ends_at.as_ref().map(time::format))
            .bind(e.max_per_order)
            .bind(e.status.as_str())
            .bind(e.version.0)
            .bind(time::format(&e.updated_at))
            .bind(*was)
    })
    .await
}

//! Reading the box office: events with their sections, holds, seats, and availability.

use caja_core::box_office::{Hold, TicketEvent};
use caja_core::ids::{EventId, HoldId};
use caja_core::page::{Page, PageLimit};
use caja_core::time::{self, Timestamp};

use crate::dialect::Dialect;
use crate::rows::{self, EVENT_COLUMNS, HOLD_COLUMNS, SECTION_COLUMNS};
use crate::sql::Columns;
use crate::{Store, StoreError};

/// Events with their sections, in the order of `rows`.
pub(crate) async fn with_sections<S: crate::sql::Sql + ?Sized>(
    db: &mut S,
    dialect: Dialect,
    rows: &[S::Row],
) -> Result<Vec<TicketEvent>, StoreError> {
    let select = format!("SELECT {SECTION_COLUMNS} FROM event_sections WHERE event_id");
    rows::with_children(
        db,
        dialect,
        rows,
        &select,
        "event_id, position",
        rows::section,
        rows::ticket_event,
    )
    .await
}

/// What one section has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAvailability {
    pub name: String,
    pub price: i64,
    pub capacity: i64,
    /// Held by active holds.
    pub held: i64,
    /// In orders that still hold their places (awaiting payment, paid or fulfilled).
    pub sold: i64,
    pub free: i64,
    /// For a seated section, the free seats in the section's order.
    pub free_seats: Option<Vec<String>>,
}

impl Store {
    pub async fn ticket_event(&self, id: &EventId) -> Result<TicketEvent, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_all(self.reader())
        .await?;
        with_sections(&mut self.reader(), self.dialect(), &rows)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Events in creation order, after the cursor.
    pub async fn list_ticket_events(
        &self,
        after: Option<&EventId>,
        limit: PageLimit,
    ) -> Result<Page<TicketEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(EventId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let events = with_sections(&mut self.reader(), self.dialect(), &rows).await?;
        Ok(Page::from_overfetch(events, limit, |e| e.id.to_string()))
    }

    pub async fn hold(&self, id: &HoldId) -> Result<Hold, StoreError> {
        let row = sqlx::query(&format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        rows::hold(&row)
    }

    /// Active holds whose time is up at `now`, oldest first.
    pub async fn due_holds(&self, now: Timestamp, max: i64) -> Result<Vec<HoldId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM holds WHERE status = 'active' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(time::format(&now))
        .bind(max)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok(HoldId::parse("id", &r.text("id")?)?))
            .collect()
    }

    /// Per section: capacity, held, sold, free, and the free seats of a seated one, all
    /// read in one snapshot so the figures add up.
    pub async fn availability(
        &self,
        event: &TicketEvent,
    ) -> Result<Vec<SectionAvailability>, StoreError> {
        let mut tx = self.dialect().begin_snapshot(self.reader()).await?;
        let mut out = Vec::new();
        for s in &event.sections {
            let free = sqlx::query("SELECT stock FROM products WHERE id = $1")
                .bind(s.product_id.as_str())
                .fetch_one(&mut *tx)
                .await?
                .int("stock")?;
            let held = sqlx::query(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) AS n FROM holds \
                 WHERE product_id = $1 AND status = 'active'",
            )
            .bind(s.product_id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
            let free_seats = if s.seated {
                let rows = sqlx::query(
                    "SELECT label FROM seats WHERE product_id = $1 AND hold_id IS NULL \
                     ORDER BY position",
                )
                .bind(s.product_id.as_str())
                .fetch_all(&mut *tx)
                .await?;
                Some(
                    rows.iter()
                        .map(|r| r.text("label"))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            } else {
                None
            };
            out.push(SectionAvailability {
                name: s.name.clone(),
                price: s.price,
                capacity: s.capacity,
                held,
                sold: s.capacity - free - held,
                free,
                free_seats,
            });
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Fills in the admission time of a ticket drawn before opening, from its place in the
/// draw (none until the room is drawn).
pub(crate) fn drawn_admit_at(
    room: &caja_core::waiting_room::Room,
    ticket: &mut caja_core::waiting_room::QueueTicket,
) {
    if ticket.rank.is_some() {
        ticket.admit_at = ticket.place.map(|p| room.drawn_admit_at(p));
    }
}

impl Store {
    /// Draws every room whose opening has come: each pre-opening ticket gets its place,
    /// its rank's order. Done once per room (the `drawn` flag is claimed in the same
    /// transaction, which waits for any batch holding the room). Returns how many rooms.
    pub async fn draw_due_rooms(&self, now: Timestamp) -> Result<u64, StoreError> {
        let due =
            sqlx::query("SELECT event_id FROM waiting_rooms WHERE drawn = 0 AND opens_at <= $1")
                .bind(time::format(&now))
                .fetch_all(self.reader())
                .await?;
        let mut drawn = 0;
        for row in &due {
            let event = row.text("event_id")?;
            let (mut tx, _turn) = self.begin_write().await?;
            let claimed = sqlx::query(
                "UPDATE waiting_rooms SET drawn = 1, version = version + 1 \
                 WHERE event_id = $1 AND drawn = 0",
            )
            .bind(event.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 1 {
                sqlx::query(
                    "UPDATE queue_tickets SET place = d.place FROM \
                     (SELECT id, ROW_NUMBER() OVER (ORDER BY rank, id) - 1 AS place \
                      FROM queue_tickets WHERE event_id = $1 AND rank IS NOT NULL) AS d \
                     WHERE queue_tickets.id = d.id",
                )
                .bind(event.as_str())
                .execute(&mut *tx)
                .await?;
                drawn += 1;
            }
            tx.commit().await?;
        }
        Ok(drawn)
    }

    /// Announces on the change feed how far each opened waiting room's line has moved: one
    /// `queue.advanced` per room whose admitted count changed since the last announcement
    /// (claimed on the room row, so one replica announces each step). Returns how many.
    pub async fn announce_queues(&self, now: Timestamp) -> Result<u64, StoreError> {
        let rooms = sqlx::query(&format!(
            // Rooms whose every ticket was announced have nothing to say until one joins.
            "SELECT {}, announced FROM waiting_rooms WHERE drawn = 1 AND opens_at <= $1 \
             AND announced < (SELECT COUNT(*) FROM queue_tickets q \
                              WHERE q.event_id = waiting_rooms.event_id)",
            rows::ROOM_COLUMNS
        ))
        .bind(time::format(&now))
        .fetch_all(self.reader())
        .await?;
        let mut announced = 0;
        for row in &rooms {
            let room = rows::room(row)?;
            let before = row.int("announced")?;
            let interval = room
                .config
                .interval()
                .num_microseconds()
                .unwrap_or(1)
                .max(1);
            let since = (now - room.config.opens_at).num_microseconds().unwrap_or(0);
            let drawn_in = (since / interval + 1).clamp(0, room.pre_open);
            let counts = sqlx::query(
                "SELECT COUNT(*) AS total, \
                 CAST(COALESCE(SUM(CASE WHEN admit_at IS NOT NULL AND admit_at <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS fifo \
                 FROM queue_tickets WHERE event_id = $1",
            )
            .bind(room.event_id.as_str())
            .bind(time::format(&now))
            .fetch_one(self.reader())
            .await?;
            let total: i64 = counts.int("total")?;
            let fifo: i64 = counts.int("fifo")?;
            let admitted = drawn_in + fifo;
            if admitted <= before {
                continue;
            }
            let (mut tx, _turn) = self.begin_write().await?;
            let claimed = sqlx::query(
                "UPDATE waiting_rooms SET announced = $1 WHERE event_id = $2 AND announced < $1",
            )
            .bind(admitted)
            .bind(room.event_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 1 {
                let change = crate::changes::NewChange::queue_advanced(
                    room.event_id.as_str(),
                    admitted,
                    total - admitted,
                    &time::format(&now),
                );
                self.commit_with(tx, vec![change], now).await?;
                announced += 1;
            }
        }
        Ok(announced)
    }

    pub async fn waiting_room(
        &self,
        event: &EventId,
    ) -> Result<Option<caja_core::waiting_room::Room>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM waiting_rooms WHERE event_id = $1",
            rows::ROOM_COLUMNS
        ))
        .bind(event.as_str())
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(rows::room).transpose()
    }

    /// A ticket with its admission time (drawn tickets' computed from the draw).
    pub async fn queue_ticket(
        &self,
        id: &caja_core::ids::TicketId,
    ) -> Result<
        (
            caja_core::waiting_room::Room,
            caja_core::waiting_room::QueueTicket,
        ),
        StoreError,
    > {
        // One statement, not the ticket and then its room: every buyer in a queue reads
        // its ticket again and again while it waits.
        static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, {} FROM queue_tickets t JOIN waiting_rooms r \
                 ON r.event_id = t.event_id WHERE t.id = $1",
                rows::qualified("t", rows::TICKET_COLUMNS),
                rows::qualified("r", rows::ROOM_COLUMNS.replace("event_id, ", "").as_str()),
            )
        });
        let row = sqlx::query(SELECT.as_str())
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut ticket = rows::ticket(&row)?;
        let room = rows::room(&row)?;
        drawn_admit_at(&room, &mut ticket);
        Ok((room, ticket))
    }
}

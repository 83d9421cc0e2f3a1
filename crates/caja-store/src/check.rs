//! `caja check`: the invariants behind "never oversell" and "exactly once", read straight
//! from the tables so that no bug in the code that wrote them can hide a violation.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use crate::{Store, StoreError};

/// One broken invariant, with what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

/// Whether hold `h` (joined to its order `o`) still keeps its places: active, or ordered
/// and its order holds them (awaiting payment, paid, fulfilled, or refunded without giving
/// them back: no restock, and its sales and releases cancel out). One definition for every
/// check that asks.
macro_rules! hold_keeps_places {
    () => {
        "(h.status = 'active' OR (h.status = 'ordered' \
         AND (o.status IN ('pending_payment', 'paid', 'fulfilled') \
              OR (o.status = 'refunded' \
                  AND NOT EXISTS (SELECT 1 FROM stock_movements r WHERE r.order_id = o.id \
                                  AND r.reason = 'refund_restock') \
                  AND COALESCE((SELECT SUM(r.delta) FROM stock_movements r WHERE r.order_id = o.id \
                                AND r.reason IN ('sale', 'release')), 0) = 0))))"
    };
}

/// Each invariant as a query that returns one row per violation, with a `detail` column.
const CHECKS: &[(&str, &str)] = &[
    (
        "stock is never negative",
        "SELECT id || ': stock ' || CAST(stock AS TEXT) AS detail FROM products WHERE stock < 0",
    ),
    (
        "stock equals the sum of its ledger",
        "SELECT p.id || ': stock ' || CAST(p.stock AS TEXT) || ', ledger ' || CAST(COALESCE(SUM(m.delta), 0) AS TEXT) AS detail \
         FROM products p LEFT JOIN stock_movements m ON m.product_id = p.id \
         GROUP BY p.id, p.stock HAVING p.stock <> COALESCE(SUM(m.delta), 0)",
    ),
    (
        "each order line was reserved at least once",
        "SELECT l.order_id || ' ' || l.product_id || ': no sale row' AS detail \
         FROM (SELECT DISTINCT order_id, product_id FROM order_lines) l \
         JOIN orders o ON o.id = l.order_id AND o.tab_id IS NULL AND o.hold_id IS NULL \
         LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason = 'sale' \
         GROUP BY l.order_id, l.product_id HAVING COUNT(m.id) = 0",
    ),
    (
        "each order line holds its stock exactly while its order does",
        // A tab's or a hold's order starts holding what the tab or hold reserved; sales and releases under the
        // order's id then move it (an expired order a late payment re-reserves has one of
        // each more). Cancelled, expired and needs_refund orders hold nothing; a refunded
        // order holds what it held when paid, or nothing if it was refunded from
        // needs_refund (its restock, if any, is the refund check's).
        "SELECT l.order_id || ' (' || o.status || ') ' || l.product_id || ': holds ' \
             || CAST(-(COALESCE(SUM(m.delta), 0) + CASE WHEN o.tab_id IS NULL AND o.hold_id IS NULL THEN 0 ELSE -l.quantity END) AS TEXT) \
             || ' of ' || CAST(l.quantity AS TEXT) AS detail \
         FROM (SELECT order_id, product_id, SUM(quantity) AS quantity FROM order_lines GROUP BY order_id, product_id) l \
         JOIN orders o ON o.id = l.order_id \
         LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason IN ('sale', 'release') \
         GROUP BY l.order_id, o.status, o.tab_id, o.hold_id, l.product_id, l.quantity \
         HAVING COALESCE(SUM(m.delta), 0) + CASE WHEN o.tab_id IS NULL AND o.hold_id IS NULL THEN 0 ELSE -l.quantity END \
             NOT IN (CASE WHEN o.status IN ('cancelled', 'expired', 'needs_refund') THEN 0 ELSE -l.quantity END, \
                     CASE WHEN o.status = 'refunded' THEN 0 ELSE -l.quantity END)",
    ),
    (
        "refund restocks belong to refunded orders and never exceed the line",
        "SELECT l.order_id || ' (' || o.status || ') ' || l.product_id || ': restocked ' || CAST(COALESCE(SUM(m.delta), 0) AS TEXT) AS detail \
         FROM (SELECT order_id, product_id, SUM(quantity) AS quantity FROM order_lines GROUP BY order_id, product_id) l \
         JOIN orders o ON o.id = l.order_id \
         LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason = 'refund_restock' \
         GROUP BY l.order_id, o.status, l.product_id, l.quantity \
         HAVING COALESCE(SUM(m.delta), 0) NOT IN (0, CASE WHEN o.status = 'refunded' THEN l.quantity ELSE 0 END)",
    ),
    (
        "every order has lines, and its totals add up",
        "SELECT o.id || ': subtotal ' || CAST(o.subtotal AS TEXT) || ', lines ' || CAST(COALESCE(SUM(l.line_total), 0) AS TEXT) || ', time ' || CAST(COALESCE(o.time_amount, 0) AS TEXT) || ', total ' || CAST(o.total AS TEXT) AS detail \
         FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id \
         GROUP BY o.id, o.subtotal, o.total, o.tip, o.time_amount \
         HAVING (COUNT(l.line_no) = 0 AND o.time_amount IS NULL) \
             OR o.subtotal <> COALESCE(SUM(l.line_total), 0) + COALESCE(o.time_amount, 0) \
             OR o.total <> o.subtotal + o.tip",
    ),
    (
        "every tab item was reserved once, and released when taken off or voided",
        "SELECT t.id || ' (' || t.status || ') ' || k.product_id || ': ledger ' || CAST(COALESCE(m.delta, 0) AS TEXT) \
             || ' in ' || CAST(COALESCE(m.reserved, 0) AS TEXT) || ' reservations, items ' || CAST(COALESCE(i.live, 0) AS TEXT) \
             || ' of ' || CAST(COALESCE(i.items, 0) AS TEXT) AS detail \
         FROM tabs t \
         JOIN (SELECT tab_id, product_id FROM tab_items \
               UNION SELECT tab_id, product_id FROM stock_movements WHERE tab_id IS NOT NULL) k ON k.tab_id = t.id \
         LEFT JOIN (SELECT tab_id, product_id, COUNT(*) AS items, \
                           SUM(CASE WHEN removed_at IS NULL THEN quantity ELSE 0 END) AS live \
                    FROM tab_items GROUP BY tab_id, product_id) i \
           ON i.tab_id = k.tab_id AND i.product_id = k.product_id \
         LEFT JOIN (SELECT tab_id, product_id, SUM(delta) AS delta, \
                           SUM(CASE WHEN reason = 'tab' THEN 1 ELSE 0 END) AS reserved \
                    FROM stock_movements WHERE tab_id IS NOT NULL GROUP BY tab_id, product_id) m \
           ON m.tab_id = k.tab_id AND m.product_id = k.product_id \
         WHERE COALESCE(m.reserved, 0) <> COALESCE(i.items, 0) \
            OR COALESCE(m.delta, 0) <> CASE WHEN t.status = 'void' THEN 0 ELSE -COALESCE(i.live, 0) END",
    ),
    (
        "every closed tab has exactly one order, and only closed tabs have one",
        "SELECT t.id || ' (' || t.status || '): order ' || COALESCE(t.order_id, 'none') AS detail \
         FROM tabs t LEFT JOIN orders o ON o.id = t.order_id AND o.tab_id = t.id \
         WHERE CASE WHEN t.status = 'closed' THEN 1 ELSE 0 END <> CASE WHEN o.id IS NULL THEN 0 ELSE 1 END \
         UNION ALL \
         SELECT o.id || ': from tab ' || o.tab_id AS detail FROM orders o LEFT JOIN tabs t ON t.id = o.tab_id \
         WHERE o.tab_id IS NOT NULL AND (t.id IS NULL OR t.status <> 'closed' OR t.order_id IS NULL OR t.order_id <> o.id)",
    ),
    (
        "a closed tab's order lines are its items",
        "SELECT t.id || ' ' || k.product_id || ' at ' || CAST(k.unit_price AS TEXT) || ': items ' || CAST(COALESCE(i.q, 0) AS TEXT) \
             || ', order lines ' || CAST(COALESCE(ol.q, 0) AS TEXT) AS detail \
         FROM tabs t \
         JOIN (SELECT tab_id, product_id, unit_price FROM tab_items WHERE removed_at IS NULL \
               UNION SELECT o.tab_id, l.product_id, l.unit_price FROM order_lines l JOIN orders o ON o.id = l.order_id \
               WHERE o.tab_id IS NOT NULL) k ON k.tab_id = t.id \
         LEFT JOIN (SELECT tab_id, product_id, unit_price, SUM(quantity) AS q FROM tab_items WHERE removed_at IS NULL \
                    GROUP BY tab_id, product_id, unit_price) i \
           ON i.tab_id = k.tab_id AND i.product_id = k.product_id AND i.unit_price = k.unit_price \
         LEFT JOIN (SELECT o.tab_id, l.product_id, l.unit_price, SUM(l.quantity) AS q FROM order_lines l \
                    JOIN orders o ON o.id = l.order_id WHERE o.tab_id IS NOT NULL \
                    GROUP BY o.tab_id, l.product_id, l.unit_price) ol \
           ON ol.tab_id = k.tab_id AND ol.product_id = k.product_id AND ol.unit_price = k.unit_price \
         WHERE t.status = 'closed' AND COALESCE(i.q, 0) <> COALESCE(ol.q, 0)",
    ),
    (
        "a closed tab's order has its time line exactly when the tab has a rate, at that rate",
        "SELECT t.id || ': rate ' || CAST(t.rate AS TEXT) || ', time line ' || COALESCE(CAST(o.time_minutes AS TEXT) || ' min at ' \
             || CAST(o.time_rate AS TEXT) || ' = ' || CAST(o.time_amount AS TEXT), 'none') AS detail \
         FROM tabs t JOIN orders o ON o.id = t.order_id \
         WHERE CASE WHEN t.rate > 0 THEN 1 ELSE 0 END <> CASE WHEN o.time_minutes IS NULL THEN 0 ELSE 1 END \
            OR COALESCE(o.time_rate, t.rate) <> t.rate \
            OR COALESCE(o.time_amount, 0) <> COALESCE((o.time_rate * o.time_minutes * 2 + 60) / 120, 0)",
    ),
    (
        "each paid order has exactly one payment equal to its total, others none",
        "SELECT o.id || ' (' || o.status || '): ' || CAST(COUNT(p.id) AS TEXT) || ' payments' AS detail \
         FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
         GROUP BY o.id, o.status, o.total \
         HAVING COUNT(p.id) <> CASE WHEN o.status IN ('paid', 'fulfilled', 'refunded', 'needs_refund') THEN 1 ELSE 0 END \
             OR COALESCE(SUM(p.amount), o.total) <> o.total",
    ),
    (
        "the change feed holds every seq its counter handed out, after what retention removed",
        "SELECT 'events ' || CAST(COUNT(c.seq) AS TEXT) || ' (newest ' || CAST(COALESCE(MAX(c.seq), p.value) AS TEXT) \
             || '), counter ' || CAST(s.value AS TEXT) || ', pruned through ' || CAST(p.value AS TEXT) AS detail \
         FROM counters s JOIN counters p ON s.name = 'change_seq' AND p.name = 'changes_pruned_through' \
         LEFT JOIN changes c ON c.seq > p.value \
         GROUP BY s.value, p.value \
         HAVING COUNT(c.seq) <> s.value - p.value OR COALESCE(MAX(c.seq), p.value) <> s.value",
    ),
    (
        "every order created while the feed kept events has its order.created event",
        "SELECT o.id || ': no order.created event' AS detail FROM orders o \
         WHERE o.created_at >= (SELECT MIN(at) FROM changes) \
           AND o.id NOT IN (SELECT resource_id FROM changes WHERE type = 'order.created')",
    ),
    (
        "every hold reserved its places once, and gave them back exactly when it expired",
        "SELECT h.id || ' (' || h.status || '): ledger ' || CAST(COALESCE(SUM(m.delta), 0) AS TEXT) \
             || ' for ' || CAST(h.quantity AS TEXT) AS detail \
         FROM holds h LEFT JOIN stock_movements m ON m.hold_id = h.id \
         GROUP BY h.id, h.status, h.quantity \
         HAVING COALESCE(SUM(CASE WHEN m.reason = 'hold' THEN 1 ELSE 0 END), 0) <> 1 \
             OR COALESCE(SUM(m.delta), 0) <> CASE WHEN h.status = 'expired' THEN 0 ELSE -h.quantity END",
    ),
    (
        "a seat is taken exactly while its hold (or the hold's order) holds its places",
        concat!("SELECT h.id || ' (' || h.status || COALESCE(', order ' || o.status, '') || '): ' \
             || CAST(COUNT(s.label) AS TEXT) || ' seats' AS detail \
         FROM holds h LEFT JOIN orders o ON o.id = h.order_id \
         LEFT JOIN seats s ON s.hold_id = h.id \
         GROUP BY h.id, h.status, h.quantity, h.seats, o.id, o.status \
         HAVING COUNT(s.label) <> CASE WHEN h.seats = '[]' THEN 0 \
             WHEN ", hold_keeps_places!(), " THEN h.quantity ELSE 0 END \
         UNION ALL \
         SELECT s.product_id || ' ' || s.label || ': held by ' || s.hold_id || ', which does not exist' AS detail \
         FROM seats s LEFT JOIN holds h ON h.id = s.hold_id WHERE s.hold_id IS NOT NULL AND h.id IS NULL"),
    ),
    (
        "what a section holds, has sold and has left adds up to its capacity",
        concat!("SELECT e.event_id || ' ' || e.name || ': capacity ' || CAST(e.capacity AS TEXT) || ', free ' || CAST(p.stock AS TEXT) \
             || ', held and sold ' || CAST(COALESCE(t.taken, 0) AS TEXT) AS detail \
         FROM event_sections e JOIN products p ON p.id = e.product_id \
         LEFT JOIN (SELECT h.product_id, SUM(h.quantity) AS taken FROM holds h LEFT JOIN orders o ON o.id = h.order_id \
                    WHERE ", hold_keeps_places!(), " \
                    GROUP BY h.product_id) t ON t.product_id = e.product_id \
         WHERE p.stock + COALESCE(t.taken, 0) <> e.capacity OR p.stock < 0"),
    ),
    (
        "every transfer left one location exactly when it reached another",
        "SELECT t.id || ' (' || t.status || '): ' || CAST(COUNT(m.id) AS TEXT) || ' ledger rows' AS detail \
         FROM transfers t LEFT JOIN stock_movements m ON m.transfer_id = t.id \
         GROUP BY t.id, t.status, t.quantity, t.from_location, t.to_location \
         HAVING COUNT(m.id) <> CASE WHEN t.status = 'received' THEN 2 ELSE 1 END \
             OR SUM(CASE WHEN m.reason = 'transfer_out' AND m.location_id = t.from_location \
                         AND m.delta = -t.quantity THEN 1 ELSE 0 END) <> 1 \
             OR SUM(CASE WHEN m.reason = 'transfer_in' AND m.location_id = t.to_location \
                         AND m.delta = t.quantity THEN 1 ELSE 0 END) \
                <> CASE WHEN t.status = 'received' THEN 1 ELSE 0 END \
         UNION ALL \
         SELECT CAST(m.id AS TEXT) || ': ' || m.reason || ' of transfer ' || COALESCE(m.transfer_id, 'none') AS detail \
         FROM stock_movements m LEFT JOIN transfers t ON t.id = m.transfer_id \
         WHERE (m.reason IN ('transfer_out', 'transfer_in') OR m.transfer_id IS NOT NULL) \
           AND (t.id IS NULL OR m.reason NOT IN ('transfer_out', 'transfer_in'))",
    ),
    (
        "an order's stock is held where the order is: a hand-over moves it, never makes or loses it",
        "SELECT m.order_id || ' ' || m.product_id || ' at ' || m.location_id || ': ' || CAST(SUM(m.delta) AS TEXT) AS detail \
         FROM stock_movements m JOIN orders o ON o.id = m.order_id \
         WHERE o.tab_id IS NULL AND o.hold_id IS NULL AND m.location_id <> o.location_id \
           AND m.reason IN ('sale', 'release', 'handover') \
         GROUP BY m.order_id, m.product_id, m.location_id HAVING SUM(m.delta) <> 0 \
         UNION ALL \
         SELECT m.order_id || ' ' || m.product_id || ': hand-overs add up to ' || CAST(SUM(m.delta) AS TEXT) AS detail \
         FROM stock_movements m WHERE m.reason = 'handover' \
         GROUP BY m.order_id, m.product_id HAVING SUM(m.delta) <> 0 OR m.order_id IS NULL",
    ),
    (
        "ledger rows of a tab name a tab that exists",
        "SELECT CAST(m.id AS TEXT) || ': tab ' || m.tab_id AS detail FROM stock_movements m \
         LEFT JOIN tabs t ON t.id = m.tab_id WHERE m.tab_id IS NOT NULL AND t.id IS NULL",
    ),
    (
        "ledger rows of an order name an order that exists",
        "SELECT CAST(m.id AS TEXT) || ': order ' || m.order_id AS detail FROM stock_movements m \
         LEFT JOIN orders o ON o.id = m.order_id WHERE m.order_id IS NOT NULL AND o.id IS NULL",
    ),
];

impl Store {
    /// Every violation of every invariant; empty when the books balance.
    pub async fn check(&self) -> Result<(usize, Vec<Violation>), StoreError> {
        let mut violations = Vec::new();
        for (invariant, sql) in CHECKS {
            for row in sqlx::query(sql).fetch_all(self.reader()).await? {
                violations.push(Violation {
                    invariant,
                    detail: row.try_get("detail")?,
                });
            }
        }
        violations.extend(self.check_admissions().await?);
        violations.extend(self.check_locations().await?);
        Ok((CHECKS.len() + 2, violations))
    }

    /// Every product's share at every location is what its ledger there adds up to, and
    /// never below zero (the shares live in a JSON column, so this is read in Rust).
    async fn check_locations(&self) -> Result<Vec<Violation>, StoreError> {
        const INVARIANT: &str =
            "stock at each location equals the sum of its ledger there, and is never negative";
        let mut ledger: BTreeMap<(String, String), i64> = BTreeMap::new();
        let sums = sqlx::query(
            "SELECT product_id, location_id, CAST(SUM(delta) AS BIGINT) AS n FROM stock_movements \
             GROUP BY product_id, location_id",
        )
        .fetch_all(self.reader())
        .await?;
        for row in &sums {
            ledger.insert(
                (row.try_get("product_id")?, row.try_get("location_id")?),
                row.try_get("n")?,
            );
        }
        let rows = sqlx::query(&format!(
            "SELECT {} FROM products ORDER BY id",
            crate::rows::PRODUCT_COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let product = match crate::rows::product(row) {
                Ok(p) => p,
                Err(e) => {
                    out.push(Violation {
                        invariant: INVARIANT,
                        detail: e.to_string(),
                    });
                    continue;
                }
            };
            let id = product.id.to_string();
            let mut places: BTreeSet<String> = product
                .locations
                .iter()
                .map(|(l, _)| l.to_string())
                .collect();
            places.extend(
                ledger
                    .keys()
                    .filter(|(p, _)| *p == id)
                    .map(|(_, l)| l.clone()),
            );
            for place in places {
                let held = product
                    .locations
                    .iter()
                    .find(|(l, _)| l.as_str() == place)
                    .map_or(0, |(_, n)| n);
                let booked = ledger
                    .get(&(id.clone(), place.clone()))
                    .copied()
                    .unwrap_or(0);
                if held != booked || held < 0 {
                    out.push(Violation {
                        invariant: INVARIANT,
                        detail: format!("{id} at {place}: stock {held}, ledger {booked}"),
                    });
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// No waiting room admits faster than its rate: its pre-opening draw counts every ranked
    /// ticket, and the tickets that joined later are admitted at least one interval apart,
    /// after the last drawn one.
    async fn check_admissions(&self) -> Result<Vec<Violation>, StoreError> {
        const INVARIANT: &str = "no waiting room admits faster than admit_per_minute";
        let mut out = Vec::new();
        let rooms = sqlx::query(&format!(
            "SELECT {} FROM waiting_rooms ORDER BY event_id",
            crate::rows::ROOM_COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        for row in &rooms {
            let room = crate::rows::room(row)?;
            let drawn: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM queue_tickets WHERE event_id = $1 AND rank IS NOT NULL",
            )
            .bind(room.event_id.as_str())
            .fetch_one(self.reader())
            .await?
            .try_get("n")?;
            let placed: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM queue_tickets WHERE event_id = $1 AND place IS NOT NULL \
                 AND place >= 0 AND place < $2",
            )
            .bind(room.event_id.as_str())
            .bind(room.pre_open)
            .fetch_one(self.reader())
            .await?
            .try_get("n")?;
            if room.drawn && placed != room.pre_open {
                out.push(Violation {
                    invariant: INVARIANT,
                    detail: format!(
                        "{}: {placed} of {} drawn tickets have a place in the line",
                        room.event_id, room.pre_open
                    ),
                });
            }
            if drawn != room.pre_open {
                out.push(Violation {
                    invariant: INVARIANT,
                    detail: format!(
                        "{}: {drawn} drawn tickets, the room counts {}",
                        room.event_id, room.pre_open
                    ),
                });
            }
            let times = sqlx::query(
                "SELECT admit_at FROM queue_tickets WHERE event_id = $1 AND admit_at IS NOT NULL \
                 ORDER BY admit_at",
            )
            .bind(room.event_id.as_str())
            .fetch_all(self.reader())
            .await?;
            let interval = room.config.interval();
            let mut previous = (room.pre_open > 0).then(|| room.drawn_admit_at(room.pre_open - 1));
            for t in &times {
                let at = crate::rows::timestamp(t, "admit_at")?;
                if let Some(p) = previous {
                    if at - p < interval {
                        out.push(Violation {
                            invariant: INVARIANT,
                            detail: format!(
                                "{}: admissions at {} and {} are closer than {} ms",
                                room.event_id,
                                caja_core::time::format(&p),
                                caja_core::time::format(&at),
                                interval.num_milliseconds()
                            ),
                        });
                    }
                }
                previous = Some(at);
            }
        }
        Ok(out)
    }
}

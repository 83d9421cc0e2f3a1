//! `caja check`: the invariants behind "never oversell" and "exactly once", read straight
//! from the tables so that no bug in the code that wrote them can hide a violation.

use sqlx::Row;

use crate::{Store, StoreError};

/// One broken invariant, with what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
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
        "each order line was reserved exactly once",
        "SELECT l.order_id || ' ' || l.product_id || ': ' || CAST(COUNT(m.id) AS TEXT) || ' sale rows for ' || CAST(l.quantity AS TEXT) || ' units' AS detail \
         FROM order_lines l LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason = 'sale' \
         GROUP BY l.order_id, l.product_id, l.quantity \
         HAVING COUNT(m.id) <> 1 OR COALESCE(SUM(m.delta), 0) <> -l.quantity",
    ),
    (
        "stock is released exactly when an order is cancelled or expired",
        "SELECT l.order_id || ' (' || o.status || ') ' || l.product_id || ': released ' || CAST(COALESCE(SUM(m.delta), 0) AS TEXT) AS detail \
         FROM order_lines l JOIN orders o ON o.id = l.order_id \
         LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason = 'release' \
         GROUP BY l.order_id, o.status, l.product_id, l.quantity \
         HAVING COALESCE(SUM(m.delta), 0) <> CASE WHEN o.status IN ('cancelled', 'expired') THEN l.quantity ELSE 0 END",
    ),
    (
        "refund restocks belong to refunded orders and never exceed the line",
        "SELECT l.order_id || ' (' || o.status || ') ' || l.product_id || ': restocked ' || CAST(COALESCE(SUM(m.delta), 0) AS TEXT) AS detail \
         FROM order_lines l JOIN orders o ON o.id = l.order_id \
         LEFT JOIN stock_movements m \
           ON m.order_id = l.order_id AND m.product_id = l.product_id AND m.reason = 'refund_restock' \
         GROUP BY l.order_id, o.status, l.product_id, l.quantity \
         HAVING COALESCE(SUM(m.delta), 0) NOT IN (0, CASE WHEN o.status = 'refunded' THEN l.quantity ELSE 0 END)",
    ),
    (
        "every order has lines, and its totals add up",
        "SELECT o.id || ': subtotal ' || CAST(o.subtotal AS TEXT) || ', lines ' || CAST(COALESCE(SUM(l.line_total), 0) AS TEXT) || ', total ' || CAST(o.total AS TEXT) AS detail \
         FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id \
         GROUP BY o.id, o.subtotal, o.total, o.tip \
         HAVING COUNT(l.line_no) = 0 OR o.subtotal <> COALESCE(SUM(l.line_total), 0) OR o.total <> o.subtotal + o.tip",
    ),
    (
        "each paid order has exactly one payment equal to its total, others none",
        "SELECT o.id || ' (' || o.status || '): ' || CAST(COUNT(p.id) AS TEXT) || ' payments' AS detail \
         FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
         GROUP BY o.id, o.status, o.total \
         HAVING COUNT(p.id) <> CASE WHEN o.status IN ('paid', 'fulfilled', 'refunded') THEN 1 ELSE 0 END \
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
        Ok((CHECKS.len(), violations))
    }
}

//! Reading orders. Orders change only through commands on the writer.

use caja_core::ids::OrderId;
use caja_core::order::{Order, OrderStatus};
use caja_core::page::{Page, PageLimit};
use caja_core::time::{self, Timestamp};

use crate::dialect::Dialect;
use crate::rows::{self, LINE_COLUMNS, ORDER_COLUMNS};
use crate::sql::Columns;
use crate::{Store, StoreError};

/// Loads orders with their lines, in the order of `rows`.
pub(crate) async fn with_lines<S: crate::sql::Sql + ?Sized>(
    db: &mut S,
    dialect: Dialect,
    rows: &[S::Row],
) -> Result<Vec<Order>, StoreError> {
    let select = format!("SELECT {LINE_COLUMNS} FROM order_lines WHERE order_id");
    rows::with_children(
        db,
        dialect,
        rows,
        &select,
        "order_id, line_no",
        rows::line,
        rows::order,
    )
    .await
}

impl Store {
    pub async fn order(&self, id: &OrderId) -> Result<Order, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        with_lines(&mut self.reader(), self.dialect(), &[row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// The order's payment, if it has one.
    pub async fn payment_of(
        &self,
        id: &OrderId,
    ) -> Result<Option<caja_core::command::Payment>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM payments WHERE order_id = $1",
            crate::rows::PAYMENT_COLUMNS
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(crate::rows::payment).transpose()
    }

    /// Orders in id (creation) order, optionally of one status, after the cursor.
    pub async fn list_orders(
        &self,
        status: Option<OrderStatus>,
        after: Option<&OrderId>,
        limit: PageLimit,
    ) -> Result<Page<Order>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id > $1 AND ($2 = '' OR status = $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(after.map(OrderId::as_str).unwrap_or(""))
        .bind(status.map(OrderStatus::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let orders = with_lines(&mut self.reader(), self.dialect(), &rows).await?;
        Ok(Page::from_overfetch(orders, limit, |o| o.id.to_string()))
    }

    /// Unpaid orders whose time is up at `now`, soonest first, at most `max`: what the
    /// sweeper turns into expire commands. Each command re-checks its order under lock, so
    /// one found here and settled meanwhile (or by another replica) is left alone.
    pub async fn due_orders(&self, now: Timestamp, max: i64) -> Result<Vec<OrderId>, StoreError> {
        sqlx::query(
            "SELECT id FROM orders WHERE status = 'pending_payment' AND expires_at <= $1 \
             ORDER BY expires_at, id LIMIT $2",
        )
        .bind(time::format(&now))
        .bind(max)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| Ok(OrderId::parse("id", &r.text("id")?)?))
        .collect()
    }
}

//! Orders: checkout (reserve every line or none), the lifecycle actions, expiry, reads.

use std::collections::BTreeMap;
use std::str::FromStr;

use caja_core::ids::{OrderId, ProductId};
use caja_core::ledger::Reason;
use caja_core::money::Currency;
use caja_core::order::{
    self, CheckoutRefusal, Customer, InvalidTransition, NewOrder, Order, OrderAction, OrderLine,
    OrderStatus,
};
use caja_core::page::{Page, PageLimit};
use caja_core::product::Product;
use caja_core::time::{self, Timestamp};
use caja_core::DomainError;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::changes::NewChange;
use crate::ledger::{lock_products, moved, record};
use crate::location::Engine;
use crate::params::Params;
use crate::rows::{int, opt_text, text, timestamp};
use crate::work::Work;
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    Cash,
    Card,
    Transfer,
    Provider,
}

impl FromStr for PaymentMethod {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cash" => Self::Cash,
            "card" => Self::Card,
            "transfer" => Self::Transfer,
            "provider" => Self::Provider,
            _ => {
                return Err(DomainError::invalid(
                    "method",
                    "must be one of cash, card, transfer, provider",
                ))
            }
        })
    }
}

impl PaymentMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Card => "card",
            Self::Transfer => "transfer",
            Self::Provider => "provider",
        }
    }
}

/// A lifecycle action as requested.
#[derive(Debug, Clone)]
pub enum ActionRequest {
    Pay {
        method: PaymentMethod,
        amount: i64,
        reference: Option<String>,
    },
    Cancel,
    Fulfill,
    Refund {
        restock: bool,
    },
}

impl ActionRequest {
    fn action(&self) -> OrderAction {
        match self {
            Self::Pay { .. } => OrderAction::Pay,
            Self::Cancel => OrderAction::Cancel,
            Self::Fulfill => OrderAction::Fulfill,
            Self::Refund { .. } => OrderAction::Refund,
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRefusal {
    NotFound,
    Invalid(InvalidTransition),
    /// A payment must be for exactly the total.
    AmountMismatch {
        total: i64,
    },
}

const ORDER_COLUMNS: &str = "id, number, status, subtotal, tip, total, currency, note, \
     customer_name, customer_email, created_at, updated_at, expires_at";

fn order_row(row: &AnyRow, lines: Vec<OrderLine>) -> Result<Order, StoreError> {
    let customer = opt_text(row, "customer_name")?.map(|name| Customer { name, email: None });
    let customer = match customer {
        Some(mut c) => {
            c.email = opt_text(row, "customer_email")?;
            Some(c)
        }
        None => None,
    };
    Ok(Order {
        id: OrderId::parse("id", &text(row, "id")?)?,
        number: int(row, "number")?,
        status: text(row, "status")?.parse()?,
        lines,
        subtotal: int(row, "subtotal")?,
        tip: int(row, "tip")?,
        total: int(row, "total")?,
        currency: Currency::parse("currency", &text(row, "currency")?)?,
        note: opt_text(row, "note")?,
        customer,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

fn line_row(row: &AnyRow) -> Result<(String, OrderLine), StoreError> {
    Ok((
        text(row, "order_id")?,
        OrderLine {
            product_id: ProductId::parse("product_id", &text(row, "product_id")?)?,
            sku: text(row, "sku")?,
            name: text(row, "name")?,
            quantity: int(row, "quantity")?,
            unit_price: int(row, "unit_price")?,
            line_total: int(row, "line_total")?,
        },
    ))
}

/// Loads orders with their lines, in the order of `rows`.
async fn with_lines<'e, E>(executor: E, rows: &[AnyRow]) -> Result<Vec<Order>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows
        .iter()
        .map(|r| text(r, "id"))
        .collect::<Result<_, _>>()?;
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT order_id, line_no, product_id, sku, name, quantity, unit_price, line_total \
         FROM order_lines WHERE order_id IN ({}) ORDER BY order_id, line_no",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in &ids {
        query = query.bind(id.as_str());
    }
    let mut lines: BTreeMap<String, Vec<OrderLine>> = BTreeMap::new();
    for row in query.fetch_all(executor).await? {
        let (order_id, line) = line_row(&row)?;
        lines.entry(order_id).or_default().push(line);
    }
    rows.iter()
        .zip(ids)
        .map(|(row, id)| order_row(row, lines.remove(&id).unwrap_or_default()))
        .collect()
}

async fn locked_order(
    tx: &mut Transaction<'static, Any>,
    id: &OrderId,
    lock: &str,
) -> Result<Option<Order>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{lock}"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => Ok(with_lines(&mut **tx, &[row]).await?.pop()),
        None => Ok(None),
    }
}

/// Gives an order's stock back (cancel, expiry) and records why; returns the products
/// after.
async fn release(
    tx: &mut Transaction<'static, Any>,
    order: &Order,
    reason: Reason,
    lock: &str,
    at: Timestamp,
) -> Result<Vec<Product>, StoreError> {
    let ids: Vec<&ProductId> = order.lines.iter().map(|l| &l.product_id).collect();
    let mut products = lock_products(tx, &ids, lock).await?;
    let mut lines: Vec<&OrderLine> = order.lines.iter().collect();
    lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    for line in lines {
        let m = record(
            tx,
            &line.product_id,
            line.quantity,
            reason,
            None,
            Some(&order.id),
            at,
        )
        .await?;
        if let Some(p) = products.get_mut(&line.product_id) {
            moved(p, &m)?;
        }
    }
    Ok(products.into_values().collect())
}

async fn set_status(
    tx: &mut Transaction<'static, Any>,
    order: &mut Order,
    status: OrderStatus,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(time::format(&at))
        .bind(order.id.as_str())
        .execute(&mut **tx)
        .await?;
    order.status = status;
    order.updated_at = at;
    Ok(())
}

impl Work {
    /// Reserves every line or none, and records the order as `pending_payment`.
    pub async fn create_order(
        &mut self,
        new: &NewOrder,
        ttl: chrono::Duration,
    ) -> Result<Result<Order, CheckoutRefusal>, StoreError> {
        let lock = self.for_update();
        let ids: Vec<&ProductId> = new.lines.iter().map(|l| &l.product_id).collect();
        let products = lock_products(&mut self.tx, &ids, lock).await?;
        let (lines, subtotal) = match order::price(new, &products) {
            Ok(priced) => priced,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let number: i64 = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'order_number' RETURNING value",
        )
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("value")?;
        let now = time::now();
        let order = Order::pending(new, lines, subtotal, number, now, ttl);
        insert_orders(&mut self.tx, self.engine, &[&order]).await?;
        insert_lines(&mut self.tx, self.engine, &[&order]).await?;
        let mut products = products;
        for line in &order.lines {
            let m = record(
                &mut self.tx,
                &line.product_id,
                -line.quantity,
                Reason::Sale,
                None,
                Some(&order.id),
                now,
            )
            .await?;
            if let Some(p) = products.get_mut(&line.product_id) {
                moved(p, &m)?;
            }
        }
        self.changes
            .push(NewChange::order(&*self.store.json, true, &order));
        for p in products.values() {
            self.changes
                .push(NewChange::product(&*self.store.json, "stock_changed", p));
        }
        Ok(Ok(order))
    }

    /// Applies a lifecycle action. A payment that arrives after the order's expiry expires
    /// the order (releasing its stock) and is refused.
    pub async fn act(
        &mut self,
        id: &OrderId,
        request: &ActionRequest,
    ) -> Result<Result<Order, ActionRefusal>, StoreError> {
        let lock = self.for_update();
        let Some(mut order) = locked_order(&mut self.tx, id, lock).await? else {
            return Ok(Err(ActionRefusal::NotFound));
        };
        let now = time::now();
        let action = request.action();
        if action == OrderAction::Pay
            && order.status == OrderStatus::PendingPayment
            && now >= order.expires_at
        {
            let released = release(&mut self.tx, &order, Reason::Release, lock, now).await?;
            set_status(&mut self.tx, &mut order, OrderStatus::Expired, now).await?;
            self.note_changes(&order, &released);
        }
        let next = match order::transition(order.status, action) {
            Ok(next) => next,
            Err(invalid) => return Ok(Err(ActionRefusal::Invalid(invalid))),
        };
        let mut released = Vec::new();
        match request {
            ActionRequest::Pay {
                method,
                amount,
                reference,
            } => {
                if *amount != order.total {
                    return Ok(Err(ActionRefusal::AmountMismatch { total: order.total }));
                }
                sqlx::query(
                    "INSERT INTO payments (id, order_id, method, amount, reference, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(format!("pay_{}", ulid::Ulid::new()))
                .bind(order.id.as_str())
                .bind(method.as_str())
                .bind(*amount)
                .bind(reference.as_deref())
                .bind(time::format(&now))
                .execute(&mut *self.tx)
                .await?;
            }
            ActionRequest::Cancel => {
                released = release(&mut self.tx, &order, Reason::Release, lock, now).await?;
            }
            ActionRequest::Refund { restock: true } => {
                released = release(&mut self.tx, &order, Reason::RefundRestock, lock, now).await?;
            }
            ActionRequest::Fulfill | ActionRequest::Refund { restock: false } => {}
        }
        set_status(&mut self.tx, &mut order, next, now).await?;
        self.note_changes(&order, &released);
        Ok(Ok(order))
    }

    /// Queues the feed events of an order's new status and of the stock it moved.
    fn note_changes(&mut self, order: &Order, products: &[Product]) {
        self.changes
            .push(NewChange::order(&*self.store.json, false, order));
        for p in products {
            self.changes
                .push(NewChange::product(&*self.store.json, "stock_changed", p));
        }
    }
}

impl Store {
    pub async fn order(&self, id: &OrderId) -> Result<Order, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        with_lines(self.reader(), &[row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
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
        let orders = with_lines(self.reader(), &rows).await?;
        Ok(Page::from_overfetch(orders, limit, |o| o.id.to_string()))
    }

    /// Expires unpaid orders whose time is up, one transaction each, and returns them.
    /// With several replicas each order is taken by one sweeper (`SKIP LOCKED`) and
    /// re-checked under its lock, so none is expired twice.
    pub async fn expire_due(&self, now: Timestamp, max: i64) -> Result<Vec<Order>, StoreError> {
        let due: Vec<String> = sqlx::query(
            "SELECT id FROM orders WHERE status = 'pending_payment' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(time::format(&now))
        .bind(max)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| text(r, "id"))
        .collect::<Result<_, _>>()?;
        let (order_lock, product_lock) = match self.engine() {
            Engine::Postgres => (" FOR UPDATE SKIP LOCKED", " FOR UPDATE"),
            Engine::Sqlite => ("", ""),
        };
        let mut expired = Vec::new();
        for id in due {
            let id = OrderId::parse("id", &id)?;
            let mut tx = self.begin_write().await?;
            let Some(mut order) = locked_order(&mut tx, &id, order_lock).await? else {
                continue;
            };
            if order.status != OrderStatus::PendingPayment || order.expires_at > now {
                continue;
            }
            let released = release(&mut tx, &order, Reason::Release, product_lock, now).await?;
            set_status(&mut tx, &mut order, OrderStatus::Expired, now).await?;
            let mut changes = vec![NewChange::order(&*self.json, false, &order)];
            for p in &released {
                changes.push(NewChange::product(&*self.json, "stock_changed", p));
            }
            self.commit_with(tx, &changes).await?;
            expired.push(order);
        }
        Ok(expired)
    }
}

/// Rows per multi-row statement, well under both engines' parameter limits. A one-row
/// statement (the per-request path) has one text and is kept prepared; a batch's texts
/// vary with its size and are not.
pub(crate) const CHUNK: usize = 256;

/// Writes orders with one statement per [`CHUNK`] of them.
pub(crate) async fn insert_orders(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    orders: &[&Order],
) -> Result<(), StoreError> {
    for chunk in orders.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO orders (id, number, status, subtotal, tip, total, currency, note, \
             customer_name, customer_email, created_at, updated_at, expires_at) VALUES {}",
            Params::new(engine).rows(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql).persistent(chunk.len() == 1);
        for o in chunk {
            let at = time::format(&o.created_at);
            q = q
                .bind(o.id.as_str())
                .bind(o.number)
                .bind(o.status.as_str())
                .bind(o.subtotal)
                .bind(o.tip)
                .bind(o.total)
                .bind(o.currency.as_str())
                .bind(o.note.as_deref())
                .bind(o.customer.as_ref().map(|c| c.name.as_str()))
                .bind(o.customer.as_ref().and_then(|c| c.email.as_deref()))
                .bind(at.clone())
                .bind(at)
                .bind(time::format(&o.expires_at));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes every line of these orders with one statement per [`CHUNK`] of lines.
pub(crate) async fn insert_lines(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    orders: &[&Order],
) -> Result<(), StoreError> {
    let lines: Vec<(&Order, usize)> = orders
        .iter()
        .flat_map(|o| (0..o.lines.len()).map(move |i| (*o, i)))
        .collect();
    for chunk in lines.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, \
             unit_price, line_total) VALUES {}",
            Params::new(engine).rows(chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql).persistent(chunk.len() == 1);
        for (o, i) in chunk {
            let l = &o.lines[*i];
            q = q
                .bind(o.id.as_str())
                .bind(*i as i64 + 1)
                .bind(l.product_id.as_str())
                .bind(l.sku.as_str())
                .bind(l.name.as_str())
                .bind(l.quantity)
                .bind(l.unit_price)
                .bind(l.line_total);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

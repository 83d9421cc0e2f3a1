//! The stock ledger: every change of a product's stock is one row here, written in the same
//! transaction as the change, with the stock it left behind. A product's stock is always
//! the sum of its rows.

use std::collections::BTreeMap;

use caja_core::ids::{OrderId, ProductId};
use caja_core::ledger::{self, Reason};
use caja_core::page::{Page, PageLimit};
use caja_core::product::{Product, Stock, Version};
use caja_core::time::{self, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::changes::NewChange;
use crate::products::{product, COLUMNS};
use crate::rows::{int, opt_text, text, timestamp};
use crate::work::Work;
use crate::{Store, StoreError};

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub id: i64,
    pub product_id: ProductId,
    pub delta: i64,
    pub reason: Reason,
    pub note: Option<String>,
    pub order_id: Option<String>,
    pub stock_after: i64,
    pub created_at: Timestamp,
}

/// Why a manual movement was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveRefusal {
    NotFound,
    Archived,
    /// It would take stock below zero.
    OutOfStock {
        available: i64,
    },
    /// It would take stock above [`Stock::MAX`].
    AboveLimit {
        current: i64,
    },
}

fn movement(row: &AnyRow) -> Result<Movement, StoreError> {
    Ok(Movement {
        id: int(row, "id")?,
        product_id: ProductId::parse("product_id", &text(row, "product_id")?)?,
        delta: int(row, "delta")?,
        reason: text(row, "reason")?.parse()?,
        note: opt_text(row, "note")?,
        order_id: opt_text(row, "order_id")?,
        stock_after: int(row, "stock_after")?,
        created_at: timestamp(row, "created_at")?,
    })
}

/// Locks the products in id order (the one order every writer uses, so no two
/// transactions wait on each other in a cycle) and returns those that exist.
pub(crate) async fn lock_products(
    tx: &mut Transaction<'static, Any>,
    ids: &[&ProductId],
    for_update: &str,
) -> Result<BTreeMap<ProductId, Product>, StoreError> {
    let mut sorted: Vec<&ProductId> = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut params = crate::params::Params::for_connection(tx);
    let placeholders: Vec<String> = sorted.iter().map(|_| params.next()).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM products WHERE id IN ({}) ORDER BY id{for_update}",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in &sorted {
        query = query.bind(id.as_str());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| product(r).map(|p| (p.id.clone(), p)))
        .collect()
}

/// Moves a product's stock and writes its ledger row. The caller has locked the product
/// and checked the result stays at or above zero (the schema refuses it otherwise).
pub(crate) async fn record(
    tx: &mut Transaction<'static, Any>,
    product_id: &ProductId,
    delta: i64,
    reason: Reason,
    note: Option<&str>,
    order_id: Option<&OrderId>,
    at: Timestamp,
) -> Result<Movement, StoreError> {
    let at_text = time::format(&at);
    let stock_after: i64 = sqlx::query(
        "UPDATE products SET stock = stock + $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 RETURNING stock",
    )
    .bind(delta)
    .bind(&at_text)
    .bind(product_id.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get("stock")?;
    let id: i64 = sqlx::query(
        "INSERT INTO stock_movements (product_id, delta, reason, note, order_id, stock_after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(product_id.as_str())
    .bind(delta)
    .bind(reason.as_str())
    .bind(note)
    .bind(order_id.map(OrderId::as_str))
    .bind(stock_after)
    .bind(&at_text)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    Ok(Movement {
        id,
        product_id: product_id.clone(),
        delta,
        reason,
        note: note.map(str::to_owned),
        order_id: order_id.map(|o| o.to_string()),
        stock_after,
        created_at: at,
    })
}

/// A locked product as `record` left it: the stock the ledger row says, one version on.
/// Saves reading back a row this transaction just wrote.
pub(crate) fn moved(p: &mut Product, m: &Movement) -> Result<(), StoreError> {
    p.stock = Stock::stored(m.stock_after)?;
    p.version = Version(p.version.0 + 1);
    p.updated_at = m.created_at;
    Ok(())
}

/// Writes the `initial` row of a product created with stock.
pub(crate) async fn record_initial(
    tx: &mut Transaction<'static, Any>,
    p: &Product,
) -> Result<(), StoreError> {
    if p.stock.value() == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO stock_movements (product_id, delta, reason, stock_after, created_at) \
         VALUES ($1, $2, 'initial', $2, $3)",
    )
    .bind(p.id.as_str())
    .bind(p.stock.value())
    .bind(time::format(&p.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Work {
    /// A manual movement (restock, correction, damage, return).
    pub async fn move_stock(
        &mut self,
        product_id: &ProductId,
        delta: i64,
        reason: Reason,
        note: Option<&str>,
    ) -> Result<Result<(Movement, Product), MoveRefusal>, StoreError> {
        let lock = self.for_update();
        let mut found = lock_products(&mut self.tx, &[product_id], lock).await?;
        let Some(current) = found.remove(product_id) else {
            return Ok(Err(MoveRefusal::NotFound));
        };
        if current.archived {
            return Ok(Err(MoveRefusal::Archived));
        }
        match ledger::apply(current.stock.value(), delta) {
            None => {
                return Ok(Err(MoveRefusal::OutOfStock {
                    available: current.stock.value(),
                }))
            }
            Some(after) if after > Stock::MAX => {
                return Ok(Err(MoveRefusal::AboveLimit {
                    current: current.stock.value(),
                }))
            }
            Some(_) => {}
        }
        let at = time::now();
        let m = record(&mut self.tx, product_id, delta, reason, note, None, at).await?;
        let mut product = current;
        moved(&mut product, &m)?;
        self.changes.push(NewChange::product(
            &*self.store.json,
            "stock_changed",
            &product,
        ));
        self.changes
            .push(NewChange::movement(&*self.store.json, &m));
        Ok(Ok((m, product)))
    }
}

impl Store {
    /// A product's ledger, oldest first, after the cursor (a movement id).
    pub async fn list_movements(
        &self,
        product_id: &ProductId,
        after: Option<i64>,
        limit: PageLimit,
    ) -> Result<Page<Movement>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at \
             FROM stock_movements WHERE product_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(product_id.as_str())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(movement).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |m| m.id.to_string()))
    }
}

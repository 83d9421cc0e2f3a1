//! Writing a batch's effects and answers: a fixed number of multi-row statements whatever
//! the batch's size. Every update is guarded by what the batch loaded and checks how many
//! rows it matched: a guard that does not match fails the whole batch, so the ledger never
//! records a movement whose stock was not written.

use caja_core::command::{Effects, World};
use caja_core::ledger::Movement;
use caja_core::order::Order;
use caja_core::product::Product;
use caja_core::time::{self, Timestamp};
use sqlx::{Any, Transaction};

use super::claim::{encode_headers, CHUNK};
use super::load::Loaded;
use super::IdempotencyScope;
use crate::dialect::Dialect;
use crate::presenter::StoredResponse;
use crate::rowset::RowSet;
use crate::StoreError;

pub(super) async fn effects(
    tx: &mut Transaction<'static, Any>,
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
    let created: Vec<&Product> = effects
        .created_products
        .iter()
        .filter_map(|id| world.products.get(id))
        .collect();
    insert_products(tx, dialect, &created).await?;
    let orders: Vec<&Order> = effects
        .created_orders
        .iter()
        .filter_map(|id| world.orders.get(id))
        .collect();
    insert_orders(tx, dialect, &orders).await?;
    insert_lines(tx, dialect, &orders).await?;
    insert_payments(tx, dialect, effects).await?;
    insert_movements(tx, dialect, &effects.movements).await?;
    let changed: Vec<(&Product, i64)> = effects
        .changed_products
        .iter()
        .filter_map(|id| Some((world.products.get(id)?, loaded.product_versions.get(id)?.0)))
        .collect();
    update_products(tx, dialect, &changed).await?;
    let settled: Vec<(&Order, &str)> = effects
        .changed_orders
        .iter()
        .filter_map(|id| {
            Some((
                world.orders.get(id)?,
                loaded.order_statuses.get(id)?.as_str(),
            ))
        })
        .collect();
    update_orders(tx, dialect, &settled).await?;
    if let Some((before, taken)) = loaded.order_numbers {
        let used = world.last_order_number - before;
        if used != taken {
            // Hand back the numbers refused checkouts did not use: numbers stay gapless.
            let n = sqlx::query(
                "UPDATE counters SET value = $1 WHERE name = 'order_number' AND value = $2",
            )
            .bind(world.last_order_number)
            .bind(before + taken)
            .execute(&mut **tx)
            .await?
            .rows_affected();
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
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    products: &[&Product],
) -> Result<(), StoreError> {
    let rows = products
        .iter()
        .map(|p| {
            vec![
                p.id.as_str().into(),
                p.sku.as_str().into(),
                p.name.as_str().into(),
                p.price.amount.into(),
                p.price.currency.as_str().into(),
                p.stock.value().into(),
                p.version.0.into(),
                p.archived.then(|| time::format(&p.updated_at)).into(),
                time::format(&p.created_at).into(),
                time::format(&p.updated_at).into(),
            ]
        })
        .collect();
    let set = RowSet {
        table: "products",
        columns: &[
            ("id", false),
            ("sku", false),
            ("name", false),
            ("price_amount", true),
            ("currency", false),
            ("stock", true),
            ("version", true),
            ("archived_at", false),
            ("created_at", false),
            ("updated_at", false),
        ],
        on_conflict: "",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

/// Writes each product as the batch left it, if it is still at the version it was loaded
/// at. An archive time, once set, is kept.
async fn update_products(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    products: &[(&Product, i64)],
) -> Result<(), StoreError> {
    for chunk in products.chunks(CHUNK) {
        let sql = format!(
            "UPDATE products SET sku = v.column2, name = v.column3, price_amount = v.column4, \
             stock = v.column5, version = v.column6, \
             archived_at = COALESCE(products.archived_at, v.column7), updated_at = v.column8 \
             FROM (VALUES {}) AS v \
             WHERE products.id = v.column1 AND products.version = v.column9",
            dialect.params().rows(chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql).persistent(chunk.len() == 1);
        for (p, was) in chunk {
            let at = time::format(&p.updated_at);
            q = q
                .bind(p.id.as_str())
                .bind(p.sku.as_str())
                .bind(p.name.as_str())
                .bind(p.price.amount)
                .bind(p.stock.value())
                .bind(p.version.0)
                .bind(p.archived.then(|| at.clone()))
                .bind(at)
                .bind(*was);
        }
        let n = q.execute(&mut **tx).await?.rows_affected();
        matched("products", n, chunk.len())?;
    }
    Ok(())
}

async fn insert_orders(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[&Order],
) -> Result<(), StoreError> {
    let rows = orders
        .iter()
        .map(|o| {
            vec![
                o.id.as_str().into(),
                o.number.into(),
                o.status.as_str().into(),
                o.subtotal.into(),
                o.tip.into(),
                o.total.into(),
                o.currency.as_str().into(),
                o.note.as_deref().into(),
                o.customer.as_ref().map(|c| c.name.as_str()).into(),
                o.customer.as_ref().and_then(|c| c.email.as_deref()).into(),
                time::format(&o.created_at).into(),
                time::format(&o.updated_at).into(),
                time::format(&o.expires_at).into(),
            ]
        })
        .collect();
    let set = RowSet {
        table: "orders",
        columns: &[
            ("id", false),
            ("number", true),
            ("status", false),
            ("subtotal", true),
            ("tip", true),
            ("total", true),
            ("currency", false),
            ("note", false),
            ("customer_name", false),
            ("customer_email", false),
            ("created_at", false),
            ("updated_at", false),
            ("expires_at", false),
        ],
        on_conflict: "",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

async fn insert_lines(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[&Order],
) -> Result<(), StoreError> {
    let rows = orders
        .iter()
        .flat_map(|o| {
            o.lines.iter().enumerate().map(move |(i, l)| {
                vec![
                    o.id.as_str().into(),
                    (i as i64 + 1).into(),
                    l.product_id.as_str().into(),
                    l.sku.as_str().into(),
                    l.name.as_str().into(),
                    l.quantity.into(),
                    l.unit_price.into(),
                    l.line_total.into(),
                ]
            })
        })
        .collect();
    let set = RowSet {
        table: "order_lines",
        columns: &[
            ("order_id", false),
            ("line_no", true),
            ("product_id", false),
            ("sku", false),
            ("name", false),
            ("quantity", true),
            ("unit_price", true),
            ("line_total", true),
        ],
        on_conflict: "",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

/// Moves each order to its new status, if it is still in the status it was loaded in.
async fn update_orders(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[(&Order, &str)],
) -> Result<(), StoreError> {
    for chunk in orders.chunks(CHUNK) {
        let sql = format!(
            "UPDATE orders SET status = v.column2, updated_at = v.column3 FROM (VALUES {}) AS v \
             WHERE orders.id = v.column1 AND orders.status = v.column4",
            dialect.params().rows(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql).persistent(chunk.len() == 1);
        for (o, was) in chunk {
            q = q
                .bind(o.id.as_str())
                .bind(o.status.as_str())
                .bind(time::format(&o.updated_at))
                .bind(*was);
        }
        let n = q.execute(&mut **tx).await?.rows_affected();
        matched("orders", n, chunk.len())?;
    }
    Ok(())
}

async fn insert_payments(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    effects: &Effects,
) -> Result<(), StoreError> {
    let rows = effects
        .payments
        .iter()
        .map(|p| {
            vec![
                p.id.as_str().into(),
                p.order_id.as_str().into(),
                p.method.as_str().into(),
                p.amount.into(),
                p.reference.as_deref().into(),
                time::format(&p.created_at).into(),
            ]
        })
        .collect();
    let set = RowSet {
        table: "payments",
        columns: &[
            ("id", false),
            ("order_id", false),
            ("method", false),
            ("amount", true),
            ("reference", false),
            ("created_at", false),
        ],
        on_conflict: "",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

async fn insert_movements(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    movements: &[Movement],
) -> Result<(), StoreError> {
    let rows = movements
        .iter()
        .map(|m| {
            vec![
                m.id.into(),
                m.product_id.as_str().into(),
                m.delta.into(),
                m.reason.as_str().into(),
                m.note.as_deref().into(),
                m.order_id.as_ref().map(|o| o.as_str()).into(),
                m.stock_after.into(),
                time::format(&m.created_at).into(),
            ]
        })
        .collect();
    let set = RowSet {
        table: "stock_movements",
        columns: &[
            ("id", true),
            ("product_id", false),
            ("delta", true),
            ("reason", false),
            ("note", false),
            ("order_id", false),
            ("stock_after", true),
            ("created_at", false),
        ],
        on_conflict: "",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

/// Stores every answer under its key: into the row the claim inserted, or as a new row.
pub(super) async fn answers(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    answers: &[(&IdempotencyScope, &StoredResponse)],
    now: Timestamp,
) -> Result<(), StoreError> {
    let at = time::format(&now);
    let rows = answers
        .iter()
        .map(|(scope, response)| {
            vec![
                scope.key_id.as_str().into(),
                scope.key.as_str().into(),
                scope.fingerprint.as_str().into(),
                i64::from(response.status).into(),
                encode_headers(&response.headers).into(),
                response.body.as_str().into(),
                at.as_str().into(),
            ]
        })
        .collect();
    let set = RowSet {
        table: "idempotency_keys",
        columns: &[
            ("key_id", false),
            ("key", false),
            ("fingerprint", false),
            ("status", true),
            ("headers", false),
            ("body", false),
            ("created_at", false),
        ],
        on_conflict: "ON CONFLICT (key_id, key) DO UPDATE SET status = excluded.status, \
                      headers = excluded.headers, body = excluded.body",
        rows,
    };
    dialect.insert_rows(tx, &set).await
}

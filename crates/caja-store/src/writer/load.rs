//! Locking and loading the rows a batch's commands read, in the one lock order: orders,
//! then products (each by id), then the order-number counter.

use std::collections::{BTreeMap, BTreeSet};

use caja_core::command::{Command, IdPool, World};
use caja_core::ids::{OrderId, ProductId};
use caja_core::order::OrderStatus;
use caja_core::product::{Sku, Version};
use sqlx::{Any, Transaction};

use super::claim::CHUNK;
use crate::dialect::Dialect;
use crate::orders::with_lines;
use crate::rows::{product, ORDER_COLUMNS, PRODUCT_COLUMNS};
use crate::StoreError;

/// The rows as loaded, before any decision: what the guarded updates expect to find.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub product_versions: BTreeMap<ProductId, Version>,
    pub order_statuses: BTreeMap<OrderId, OrderStatus>,
    /// The last order number before the batch, and how many the batch took, if it may
    /// create orders.
    pub order_numbers: Option<(i64, i64)>,
}

pub(super) async fn load(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    commands: &[&Command],
) -> Result<(World, Loaded), StoreError> {
    let needs: Vec<_> = commands.iter().map(|c| c.needs()).collect();
    let mut world = World::default();
    let mut loaded = Loaded::default();

    let order_ids: BTreeSet<&OrderId> = needs.iter().flat_map(|n| &n.orders).collect();
    let order_ids: Vec<&OrderId> = order_ids.into_iter().collect();
    for chunk in order_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({}) ORDER BY id{}",
            dialect.params().list(chunk.len()),
            dialect.lock_rows()
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        let rows = q.fetch_all(&mut **tx).await?;
        for order in with_lines(&mut **tx, dialect, &rows).await? {
            loaded.order_statuses.insert(order.id.clone(), order.status);
            world.orders.insert(order.id.clone(), order);
        }
    }

    let mut product_ids: BTreeSet<&ProductId> = needs.iter().flat_map(|n| &n.products).collect();
    for order in world.orders.values() {
        product_ids.extend(order.lines.iter().map(|l| &l.product_id));
    }
    let product_ids: Vec<ProductId> = product_ids.into_iter().cloned().collect();
    for chunk in product_ids.chunks(CHUNK * 4) {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({}) ORDER BY id{}",
            dialect.params().list(chunk.len()),
            dialect.lock_rows()
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let p = product(&row)?;
            loaded.product_versions.insert(p.id.clone(), p.version);
            world.products.insert(p.id.clone(), p);
        }
    }

    // Live holders of the skus the batch would take. Not locked: the unique index is the
    // last word, and a race it catches fails the batch, whose writes then run alone.
    let skus: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| &n.skus)
        .map(Sku::as_str)
        .collect();
    let skus: Vec<&str> = skus.into_iter().collect();
    for chunk in skus.chunks(CHUNK) {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE archived_at IS NULL AND sku IN ({})",
            dialect.params().list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for sku in chunk {
            q = q.bind(*sku);
        }
        for row in q.fetch_all(&mut **tx).await? {
            let p = product(&row)?;
            loaded
                .product_versions
                .entry(p.id.clone())
                .or_insert(p.version);
            world.products.entry(p.id.clone()).or_insert(p);
        }
    }

    // Order numbers (one per checkout; those a refusal leaves unused are handed back
    // before commit) and ledger ids, last: the counter row is the last lock taken.
    let orders = needs.iter().filter(|n| n.order_numbers).count();
    let movements: usize = needs
        .iter()
        .map(|n| {
            let of_orders: usize = if n.order_movements {
                n.orders
                    .iter()
                    .filter_map(|id| world.orders.get(id))
                    .map(|o| o.lines.len())
                    .sum()
            } else {
                0
            };
            n.movements + of_orders
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

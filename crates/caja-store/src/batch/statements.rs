//! The multi-row statements a batch is written with: a fixed number of statements per
//! batch whatever its size, chunked well under both engines' parameter limits.

use std::collections::{BTreeMap, HashSet};

use caja_core::ids::{OrderId, ProductId};
use caja_core::product::Product;
use caja_core::time;
use sqlx::{Any, Row, Transaction};

use super::{scope_key, Job};
use crate::location::Engine;
use crate::params::Params;
use crate::work::StoredResponse;
use crate::StoreError;

use crate::orders::CHUNK;

/// One `sale` row per line, each with the stock it left, in the order they were decided.
pub(super) async fn insert_moves(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    before: &BTreeMap<ProductId, i64>,
    moves: &[(ProductId, i64, OrderId)],
    now: time::Timestamp,
) -> Result<(), StoreError> {
    let mut stock = before.clone();
    let at = time::format(&now);
    for chunk in moves.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO stock_movements (product_id, delta, reason, note, order_id, stock_after, created_at) VALUES {}",
            Params::new(engine).rows(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for (product, quantity, order) in chunk {
            let left = stock.entry(product.clone()).or_default();
            *left -= quantity;
            q = q
                .bind(product.as_str())
                .bind(-quantity)
                .bind("sale")
                .bind(None::<String>)
                .bind(order.as_str())
                .bind(*left)
                .bind(at.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn update_stock(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    before: &BTreeMap<ProductId, i64>,
    after: &BTreeMap<ProductId, Product>,
    moves: &[(ProductId, i64, OrderId)],
    now: time::Timestamp,
) -> Result<(), StoreError> {
    let mut count: BTreeMap<&ProductId, i64> = BTreeMap::new();
    for (p, _, _) in moves {
        *count.entry(p).or_default() += 1;
    }
    let rows: Vec<(&ProductId, i64, i64, i64)> = count
        .into_iter()
        .filter_map(|(id, n)| Some((id, after.get(id)?.stock.value(), n, *before.get(id)?)))
        .collect();
    let at = time::format(&now);
    // One statement per chunk, however many products the batch touched: a flash sale
    // spread over a thousand products must not cost a thousand round trips. The rows are
    // locked; the guard on the old stock only documents the expectation.
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "UPDATE products SET stock = v.column2, version = version + v.column3, \
             updated_at = v.column4 FROM (VALUES {}) AS v \
             WHERE products.id = v.column1 AND products.stock = v.column5",
            Params::new(engine).rows(chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for (id, stock, n, was) in chunk {
            q = q
                .bind(id.as_str())
                .bind(*stock)
                .bind(*n)
                .bind(at.as_str())
                .bind(*was);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts an unanswered row for every job's key, in key order; says which jobs claimed
/// theirs (the others were answered before, by this replica or another).
pub(super) async fn claim_keys(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    jobs: &[Job],
    at: String,
) -> Result<Vec<bool>, StoreError> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| scope_key(&jobs[a].scope).cmp(&scope_key(&jobs[b].scope)));
    let mut claimed: HashSet<(String, String)> = HashSet::with_capacity(jobs.len());
    for chunk in order.chunks(CHUNK) {
        let mut params = Params::new(engine);
        let rows: Vec<String> = (0..chunk.len())
            .map(|_| {
                let (a, b, c, d) = (params.next(), params.next(), params.next(), params.next());
                format!("({a}, {b}, {c}, 0, '', '', {d})")
            })
            .collect();
        let sql = format!(
            "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, created_at) \
             VALUES {} ON CONFLICT (key_id, key) DO NOTHING RETURNING key_id, key",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for &i in chunk {
            let scope = &jobs[i].scope;
            q = q
                .bind(scope.key_id.as_str())
                .bind(scope.key.as_str())
                .bind(scope.fingerprint.as_str())
                .bind(at.clone());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let key_id: String = row.try_get("key_id")?;
            let key: String = row.try_get("key")?;
            claimed.insert((key_id, key));
        }
    }
    Ok(jobs
        .iter()
        .map(|j| claimed.contains(&scope_key(&j.scope)))
        .collect())
}

/// Writes every answer: into the row its key claimed, or as a new row.
pub(super) async fn store_answers(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    jobs: &[Job],
    answers: &[(usize, StoredResponse)],
    now: time::Timestamp,
) -> Result<(), StoreError> {
    let at = time::format(&now);
    for chunk in answers.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, created_at) \
             VALUES {} ON CONFLICT (key_id, key) DO UPDATE SET status = excluded.status, \
             headers = excluded.headers, body = excluded.body",
            Params::new(engine).rows(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for (i, response) in chunk {
            let scope = &jobs[*i].scope;
            q = q
                .bind(scope.key_id.as_str())
                .bind(scope.key.as_str())
                .bind(scope.fingerprint.as_str())
                .bind(i64::from(response.status))
                .bind(crate::work::encode_headers(&response.headers))
                .bind(response.body.as_str())
                .bind(at.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

//! The group-commit write path for checkouts.
//!
//! On the night a concert goes on sale, thousands of buyers hit one product. One
//! transaction per checkout would queue them all on that product's row lock and pay one
//! durable commit each. Instead every checkout is handed to one batcher per process, which
//! takes whatever has arrived together and commits it as one transaction — while each
//! request keeps its own outcome, its own order and ledger rows, its own stored
//! idempotency answer. A request is answered only after its batch commits.
//!
//! A batch makes a fixed number of round trips whatever its size: claim every key (in key
//! order), lock the products (in id order), decide every checkout in memory, write orders,
//! lines, ledger rows, stock and idempotency answers with multi-row statements, commit.
//! Keys are always taken before products, here and on the per-request path, so batches and
//! single writes on any number of replicas never wait on each other in a cycle. A key
//! another replica is writing makes the claim wait for it and then replay its answer. If
//! anything else goes wrong the batch is rolled back and its checkouts run one by one on
//! the per-request path, which settles them exactly as if never batched.

mod statements;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use caja_core::ids::{OrderId, ProductId};
use caja_core::order::{self, CheckoutRefusal, NewOrder, Order};
use caja_core::product::{Product, Stock, Version};
use caja_core::time;
use sqlx::any::AnyRow;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::changes::NewChange;
use crate::ledger::lock_products;
use crate::location::Engine;
use crate::orders::{insert_lines, insert_orders};
use crate::work::{decide, select_existing, Claim, IdempotencyScope, StoredResponse};
use crate::{Store, StoreError};
use statements::{claim_keys, insert_moves, store_answers, update_stock};

/// Turns a checkout's outcome into the response stored and sent for it.
pub type Render =
    Arc<dyn Fn(&str, Result<&Order, &CheckoutRefusal>) -> StoredResponse + Send + Sync>;

#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Most checkouts in one transaction.
    pub max_batch: usize,
    pub order_ttl: chrono::Duration,
    /// How long a batch waits on a key another replica is writing.
    pub key_wait: Duration,
}

/// What a checkout came to.
#[derive(Debug)]
pub enum Outcome {
    /// Decided and committed now: send this.
    Fresh(StoredResponse),
    /// Answered before: send this again.
    Replay {
        response: StoredResponse,
        waited: bool,
    },
    /// The key was used for a different request.
    Mismatch,
}

struct Job {
    scope: IdempotencyScope,
    order: NewOrder,
    request_id: String,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batcher task. It runs until every handle is dropped.
    pub fn start(store: Store, render: Render, options: BatchOptions) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(options.max_batch * 8);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < options.max_batch {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // Each batch in its own task: a panic while running one fails that batch's
                // requests (their reply channels close: 503, retry with the same key)
                // instead of ending checkout for the whole process.
                let (store, render, options) = (store.clone(), render.clone(), options.clone());
                let ran = tokio::spawn(async move { run(&store, &render, &options, batch).await });
                if let Err(e) = ran.await {
                    tracing::error!(error = %e, "a checkout batch panicked; its requests were refused");
                }
            }
        });
        Self { jobs }
    }

    pub async fn checkout(
        &self,
        scope: IdempotencyScope,
        order: NewOrder,
        request_id: String,
    ) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            scope,
            order,
            request_id,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }
}

fn scope_key(s: &IdempotencyScope) -> (String, String) {
    (s.key_id.to_string(), s.key.as_str().to_owned())
}

/// Runs one batch and answers every job in it.
async fn run(store: &Store, render: &Render, options: &BatchOptions, batch: Vec<Job>) {
    // Copies of one key inside the batch: the first leads, the others follow its fate.
    let mut leaders: Vec<Job> = Vec::with_capacity(batch.len());
    let mut followers: Vec<(usize, Job)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for job in batch {
        match index.get(&scope_key(&job.scope)) {
            Some(&leader) => followers.push((leader, job)),
            None => {
                index.insert(scope_key(&job.scope), leaders.len());
                leaders.push(job);
            }
        }
    }
    metrics::histogram!("caja_checkout_batch_size").record(leaders.len() as f64);
    let outcomes = match fast(store, render, options, &leaders).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::debug!(error = %e, size = leaders.len(), "batch fell back to one transaction per checkout");
            metrics::counter!("caja_checkout_batch_fallbacks_total").increment(1);
            let mut outcomes = Vec::with_capacity(leaders.len());
            for job in &leaders {
                outcomes.push(single(store, render, options, job).await);
            }
            outcomes
        }
    };
    for (leader, job) in followers {
        let leader_job = &leaders[leader];
        let outcome = match &outcomes[leader] {
            _ if leader_job.scope.fingerprint != job.scope.fingerprint => Ok(Outcome::Mismatch),
            Ok(Outcome::Fresh(r) | Outcome::Replay { response: r, .. }) => Ok(Outcome::Replay {
                response: r.clone(),
                waited: true,
            }),
            Ok(Outcome::Mismatch) => Ok(Outcome::Mismatch),
            Err(e) => Err(e.shallow_clone()),
        };
        let _ = job.reply.send(outcome);
    }
    for (job, outcome) in leaders.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome);
    }
}

/// One checkout on the per-request path.
async fn single(
    store: &Store,
    render: &Render,
    options: &BatchOptions,
    job: &Job,
) -> Result<Outcome, StoreError> {
    match store.claim(job.scope.clone(), options.key_wait).await? {
        Claim::Replay { response, waited } => Ok(Outcome::Replay { response, waited }),
        Claim::Mismatch => Ok(Outcome::Mismatch),
        Claim::Fresh(mut work) => {
            let decided = work.create_order(&job.order, options.order_ttl).await?;
            let response = render(&job.request_id, decided.as_ref());
            work.commit(&response).await?;
            Ok(Outcome::Fresh(response))
        }
    }
}

/// The whole batch in one transaction, or an error and nothing written.
async fn fast(
    store: &Store,
    render: &Render,
    options: &BatchOptions,
    jobs: &[Job],
) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    let engine = store.engine();
    let mut tx = store.begin_write().await?;
    let mut outcomes: Vec<Option<Outcome>> = (0..jobs.len()).map(|_| None).collect();

    // 1. Find out which keys are new. On PostgreSQL, claim every key, in key order, before
    //    touching any product. Every writer takes keys before products (the per-request
    //    path claims its one key first, too), so no two transactions ever wait on each
    //    other in opposite orders. A key that another transaction is writing makes this
    //    statement wait for it (bounded by `lock_timeout`); a key answered before is
    //    simply not claimed. On SQLite this transaction holds the one write lock, so
    //    reading which keys exist is enough: nobody else can add one before commit.
    let now = time::now();
    let scopes: Vec<&IdempotencyScope> = jobs.iter().map(|j| &j.scope).collect();
    let (claimed, known) = match engine {
        Engine::Postgres => {
            sqlx::query(&format!(
                "SET LOCAL lock_timeout = {}",
                options.key_wait.as_millis().max(1)
            ))
            .execute(&mut *tx)
            .await?;
            let claimed = claim_keys(&mut tx, engine, jobs, time::format(&now)).await?;
            sqlx::query("SET LOCAL lock_timeout = 0")
                .execute(&mut *tx)
                .await?;
            let answered: Vec<&IdempotencyScope> = scopes
                .iter()
                .zip(&claimed)
                .filter(|(_, c)| !**c)
                .map(|(s, _)| *s)
                .collect();
            let positions: Vec<usize> = (0..jobs.len()).filter(|i| !claimed[*i]).collect();
            let known: Vec<(usize, AnyRow)> = if answered.is_empty() {
                Vec::new()
            } else {
                select_existing(&mut tx, engine, &answered)
                    .await?
                    .into_iter()
                    .map(|(k, row)| (positions[k], row))
                    .collect()
            };
            (claimed, known)
        }
        Engine::Sqlite => {
            let known = select_existing(&mut tx, engine, &scopes).await?;
            let mut claimed = vec![true; jobs.len()];
            for (i, _) in &known {
                claimed[*i] = false;
            }
            (claimed, known)
        }
    };
    for (i, row) in known {
        outcomes[i] = Some(match decide(&row, &jobs[i].scope, false)? {
            Claim::Replay { response, waited } => Outcome::Replay { response, waited },
            _ => Outcome::Mismatch,
        });
    }
    let fresh: Vec<usize> = (0..jobs.len()).filter(|i| claimed[*i]).collect();
    if fresh.is_empty() {
        tx.rollback().await?;
        return Ok(outcomes
            .into_iter()
            .map(|o| o.ok_or(StoreError::NotFound))
            .collect());
    }

    // 2. Lock every product the batch touches, in id order.
    let lock = match engine {
        Engine::Postgres => " FOR UPDATE",
        Engine::Sqlite => "",
    };
    let ids: Vec<&ProductId> = fresh
        .iter()
        .flat_map(|&i| jobs[i].order.lines.iter().map(|l| &l.product_id))
        .collect();
    let mut products: BTreeMap<ProductId, Product> = lock_products(&mut tx, &ids, lock).await?;
    let before: BTreeMap<ProductId, i64> = products
        .iter()
        .map(|(id, p)| (id.clone(), p.stock.value()))
        .collect();

    // 3. Decide each checkout in arrival order against the stock left by the ones before.
    let mut decided: Vec<(usize, Result<Order, CheckoutRefusal>)> = Vec::with_capacity(fresh.len());
    let mut moves: Vec<(ProductId, i64, OrderId)> = Vec::new();
    for &i in &fresh {
        let new = &jobs[i].order;
        match order::price(new, &products) {
            Ok((lines, subtotal)) => {
                // Numbered below, once the batch knows how many orders it makes.
                let o = Order::pending(new, lines, subtotal, 0, now, options.order_ttl);
                for l in &o.lines {
                    if let Some(p) = products.get_mut(&l.product_id) {
                        p.stock = Stock::parse(p.stock.value() - l.quantity)?;
                    }
                    moves.push((l.product_id.clone(), l.quantity, o.id.clone()));
                }
                decided.push((i, Ok(o)));
            }
            Err(refusal) => decided.push((i, Err(refusal))),
        }
    }

    // 4. Numbers, orders, lines, ledger, stock.
    let created = decided.iter().filter(|(_, d)| d.is_ok()).count() as i64;
    if created > 0 {
        let last: i64 = sqlx::query(
            "UPDATE counters SET value = value + $1 WHERE name = 'order_number' RETURNING value",
        )
        .bind(created)
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
        let mut next = last - created + 1;
        for (_, d) in decided.iter_mut() {
            if let Ok(o) = d {
                o.number = next;
                next += 1;
            }
        }
        let orders: Vec<&Order> = decided
            .iter()
            .filter_map(|(_, d)| d.as_ref().ok())
            .collect();
        insert_orders(&mut tx, engine, &orders).await?;
        insert_lines(&mut tx, engine, &orders).await?;
        insert_moves(&mut tx, engine, &before, &moves, now).await?;
        update_stock(&mut tx, engine, &before, &products, &moves, now).await?;
    }

    // 5. Every answer, into the rows claimed in step 1 (inserted, on SQLite).
    let mut answers: Vec<(usize, StoredResponse)> = Vec::with_capacity(decided.len());
    for (i, d) in &decided {
        answers.push((*i, render(&jobs[*i].request_id, d.as_ref())));
    }
    store_answers(&mut tx, engine, jobs, &answers, now).await?;

    // 6. The feed: each new order, and each product as the batch left it.
    let mut changes: Vec<NewChange> = decided
        .iter()
        .filter_map(|(_, d)| d.as_ref().ok())
        .map(|o| NewChange::order(&*store.json, true, o))
        .collect();
    let mut sold: BTreeMap<&ProductId, i64> = BTreeMap::new();
    for (p, _, _) in &moves {
        *sold.entry(p).or_default() += 1;
    }
    for (id, n) in sold {
        if let Some(p) = products.get_mut(id) {
            p.version = Version(p.version.0 + n);
            p.updated_at = now;
            changes.push(NewChange::product(&*store.json, "stock_changed", p));
        }
    }
    store.commit_with(tx, &changes).await?;
    for (i, response) in answers {
        outcomes[i] = Some(Outcome::Fresh(response));
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.ok_or(StoreError::NotFound))
        .collect())
}

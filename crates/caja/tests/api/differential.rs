//! Differential tests of the one writer: the same random script of commands (checkouts,
//! retries with the same key, reused keys, payments, cancels, fulfilments, refunds, stock
//! movements, tabs opened, filled, paused, resumed, closed and voided, sales at two
//! locations, transfers between them (at once and in transit, then received), orders
//! handed over, expiries under a moved clock) run once as batches of one, submitted one by
//! one, and once with batching on, submitted in groups, must give the same answers, the
//! same stock and ledger, the same feed, and books that balance. Batching is only allowed
//! to change how many commits it takes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use caja_core::command::{Command, Policy};
use caja_core::idempotency::{Fingerprint, IdempotencyKey};
use caja_core::ids::{KeyId, LocationId, OrderId, ProductId, TabId, TransferId};
use caja_core::ledger::Reason;
use caja_core::location::{LocationCode, NewLocation, NewTransfer};
use caja_core::money::{Currency, Money};
use caja_core::order::{NewOrder, PaymentMethod, RequestedLine};
use caja_core::page::PageLimit;
use caja_core::product::{NewProduct, ProductName, Sku, Stock};
use caja_core::tab::{NewTab, Rounding};
use caja_core::time::MovableClock;
use caja_store::writer::{IdempotencyScope, Settled, Submission, Write, Writer, WriterOptions};
use caja_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::helpers::{Backend, TestDb};

on_both_engines!(batches_of_one_and_batching_decide_a_random_script_alike);

const PRODUCTS: usize = 4;
const STEPS: usize = 1200;
const TTL_MINUTES: i64 = 15;

/// One step of the script, in terms both runs can resolve to their own ids.
#[derive(Debug, Clone)]
enum Step {
    Checkout {
        key: usize,
        lines: Vec<(usize, i64)>,
        tip: i64,
        /// At the second location instead of the main one.
        north: bool,
    },
    /// Send stock from main to north (or back).
    Transfer {
        key: usize,
        product: usize,
        quantity: i64,
        back: bool,
        in_transit: bool,
    },
    /// Receive the transfer of step `transfer`.
    Receive {
        key: usize,
        transfer: usize,
    },
    /// Hand the order of step `order` to north (or back to main).
    HandOver {
        key: usize,
        order: usize,
        back: bool,
    },
    /// The same key as step `of` with `of`'s body (a retry) or another body (a reuse).
    Again {
        of: usize,
        same_body: bool,
    },
    Pay {
        key: usize,
        order: usize,
        right_amount: bool,
        /// Through the provider, with the one provider payment of that order: repeats are
        /// the same payment, and late ones re-reserve or need a refund.
        provider: bool,
    },
    Cancel {
        key: usize,
        order: usize,
    },
    Fulfill {
        key: usize,
        order: usize,
    },
    Refund {
        key: usize,
        order: usize,
        restock: bool,
        /// Reported by the provider instead of asked for.
        at_provider: bool,
    },
    Move {
        key: usize,
        product: usize,
        delta: i64,
    },
    /// Open a tab, on one of three desks or none.
    OpenTab {
        key: usize,
        desk: Option<usize>,
    },
    AddItem {
        key: usize,
        tab: usize,
        product: usize,
        quantity: i64,
    },
    /// Pause the tab if `pause`, else resume it.
    Clock {
        key: usize,
        tab: usize,
        pause: bool,
    },
    CloseTab {
        key: usize,
        tab: usize,
    },
    VoidTab {
        key: usize,
        tab: usize,
    },
    /// Move the clock past every deadline so far and let the sweeper run.
    Expire,
}

/// The script, cut into the groups the batching run submits together. Steps refer only to
/// orders of earlier groups, whose ids both runs know by then.
fn script(seed: u64) -> Vec<Vec<Step>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut groups: Vec<Vec<Step>> = Vec::new();
    let mut all: Vec<Step> = Vec::new();
    let mut checkouts_before: Vec<usize> = Vec::new();
    let mut tabs_before: Vec<usize> = Vec::new();
    let mut transfers_before: Vec<usize> = Vec::new();
    // Steps with a key (every step but an expiry), for retries to repeat.
    let mut keyed: Vec<usize> = Vec::new();
    while all.len() < STEPS {
        if rng.gen_bool(0.03) {
            groups.push(vec![Step::Expire]);
            all.push(Step::Expire);
            continue;
        }
        let size = rng.gen_range(1..=24);
        let first = all.len();
        let mut group = Vec::with_capacity(size);
        for i in 0..size {
            let key = first + i;
            let pick = |rng: &mut StdRng| -> Option<usize> {
                if checkouts_before.is_empty() {
                    None
                } else {
                    Some(checkouts_before[rng.gen_range(0..checkouts_before.len())])
                }
            };
            let roll = rng.gen_range(0..100);
            let tab =
                (!tabs_before.is_empty()).then(|| tabs_before[rng.gen_range(0..tabs_before.len())]);
            let step = match (roll, tab) {
                (85..=86, _) => Step::OpenTab {
                    key,
                    desk: rng.gen_bool(0.7).then(|| rng.gen_range(0..3)),
                },
                (87..=93, Some(tab)) => Step::AddItem {
                    key,
                    tab,
                    product: rng.gen_range(0..PRODUCTS),
                    quantity: rng.gen_range(1..=3),
                },
                (94..=95, Some(tab)) => Step::Clock {
                    key,
                    tab,
                    pause: rng.gen_bool(0.5),
                },
                (96, Some(tab)) => Step::CloseTab { key, tab },
                (97..=98, Some(tab)) => Step::VoidTab { key, tab },
                _ => Step::Move {
                    key,
                    product: rng.gen_range(0..PRODUCTS),
                    delta: 0,
                },
            };
            let step = match (roll, pick(&mut rng)) {
                (85..=98, _) if !matches!(step, Step::Move { .. }) => step,
                (0..=5, _) => Step::Transfer {
                    key,
                    product: rng.gen_range(0..PRODUCTS),
                    quantity: rng.gen_range(2..=8),
                    back: rng.gen_bool(0.2),
                    in_transit: rng.gen_bool(0.4),
                },
                (6..=8, _) if !transfers_before.is_empty() => Step::Receive {
                    key,
                    transfer: transfers_before[rng.gen_range(0..transfers_before.len())],
                },
                // A recent order: older ones are mostly settled.
                (9..=12, Some(_)) => Step::HandOver {
                    key,
                    order: checkouts_before[checkouts_before.len()
                        - 1
                        - rng.gen_range(0..checkouts_before.len().min(6))],
                    back: rng.gen_bool(0.5),
                },
                (0..=37, _) | (_, None) => {
                    let n = rng.gen_range(1..=3);
                    Step::Checkout {
                        key,
                        lines: (0..n)
                            .map(|_| (rng.gen_range(0..PRODUCTS), rng.gen_range(1..=3)))
                            .collect(),
                        tip: if rng.gen_bool(0.2) { 500 } else { 0 },
                        north: rng.gen_bool(0.35),
                    }
                }
                (38..=45, _) if !keyed.is_empty() => Step::Again {
                    of: keyed[rng.gen_range(0..keyed.len())],
                    same_body: true,
                },
                (46..=48, _) if !keyed.is_empty() => Step::Again {
                    of: keyed[rng.gen_range(0..keyed.len())],
                    same_body: false,
                },
                (49..=65, Some(order)) => Step::Pay {
                    key,
                    order,
                    right_amount: rng.gen_bool(0.85),
                    provider: rng.gen_bool(0.4),
                },
                (66..=72, Some(order)) => Step::Cancel { key, order },
                (73..=78, Some(order)) => Step::Fulfill { key, order },
                (79..=84, Some(order)) => Step::Refund {
                    key,
                    order,
                    restock: rng.gen_bool(0.5),
                    at_provider: rng.gen_bool(0.3),
                },
                _ => Step::Move {
                    key,
                    product: rng.gen_range(0..PRODUCTS),
                    delta: [-4, -1, 1, 3, 8][rng.gen_range(0..5)],
                },
            };
            group.push(step.clone());
            all.push(step);
            keyed.push(key);
        }
        for (i, step) in group.iter().enumerate() {
            if matches!(step, Step::Checkout { .. }) {
                checkouts_before.push(first + i);
            }
            if matches!(step, Step::OpenTab { .. }) {
                tabs_before.push(first + i);
            }
            if matches!(step, Step::Transfer { .. }) {
                transfers_before.push(first + i);
            }
        }
        groups.push(group);
    }
    groups
}

/// One run's world: its store, writer and clock, and the ids and totals it has seen.
struct Run {
    store: Store,
    writer: Writer,
    clock: Arc<MovableClock>,
    key_id: KeyId,
    products: Vec<ProductId>,
    /// Step index of each checkout → its order id and total, once answered.
    orders: BTreeMap<usize, (OrderId, i64)>,
    /// Step index of each tab opened → its id, once answered.
    tabs: BTreeMap<usize, TabId>,
    /// Step index of each transfer sent → its id, once answered.
    transfers: BTreeMap<usize, TransferId>,
    /// The second location (the first is the main one).
    north: LocationId,
    _db: TestDb,
}

fn mxn() -> Currency {
    Currency::parse("currency", "MXN").unwrap()
}

impl Run {
    async fn new(backend: Backend, max_batch: usize) -> Self {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(MovableClock::default());
        let store = db.migrated_store(clock.clone()).await;
        let writer = Writer::start(
            store.clone(),
            WriterOptions {
                max_batch,
                policy: Policy {
                    order_ttl: chrono::Duration::minutes(TTL_MINUTES),
                    hold_ttl: chrono::Duration::minutes(TTL_MINUTES),
                },
                key_wait: Duration::from_secs(10),
            },
        );
        let mut run = Run {
            store,
            writer,
            clock,
            key_id: KeyId::generate(),
            products: Vec::new(),
            orders: BTreeMap::new(),
            tabs: BTreeMap::new(),
            transfers: BTreeMap::new(),
            north: LocationId::main(),
            _db: db,
        };
        let north = Command::CreateLocation(NewLocation {
            code: LocationCode::parse("north").unwrap(),
            name: "North".into(),
        });
        let body = answer_body(run.submit(None, north).await);
        run.north = LocationId::parse("id", body["id"].as_str().unwrap()).unwrap();
        for i in 0..PRODUCTS {
            let create = Command::CreateProduct(NewProduct {
                sku: Sku::parse(&format!("DIFF-{i}")).unwrap(),
                name: ProductName::parse("Differential").unwrap(),
                price: Money {
                    amount: 1250 * (i as i64 + 1),
                    currency: mxn(),
                },
                stock: Stock::parse(40).unwrap(),
                location: LocationId::main(),
            });
            let body = answer_body(run.submit(None, create).await);
            run.products
                .push(ProductId::parse("id", body["id"].as_str().unwrap()).unwrap());
        }
        run
    }

    async fn submit(&self, scope: Option<IdempotencyScope>, command: Command) -> Settled {
        self.writer
            .submit(Submission {
                scope,
                actor: None,
                request_id: "differential".into(),
                write: Write::Command(command),
            })
            .await
            .expect("the write commits")
    }

    fn order_of(&self, step: usize) -> OrderId {
        // A refused checkout has no order: name one that does not exist (404 in both runs).
        self.orders
            .get(&step)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| OrderId::parse("id", "ord_01J00000000000000000000000").unwrap())
    }

    fn tab_of(&self, step: usize) -> TabId {
        // A refused open has no tab: name one that does not exist (404 in both runs).
        self.tabs
            .get(&step)
            .cloned()
            .unwrap_or_else(|| TabId::parse("id", "tab_01J00000000000000000000000").unwrap())
    }

    /// The step's key, fingerprint and command in this run's ids.
    fn resolve(&self, steps: &[Step], index: usize) -> (IdempotencyScope, Command) {
        let (key, body, command) = match &steps[index] {
            Step::Again { of, same_body } => {
                let (scope, command) = self.resolve(steps, *of);
                if *same_body {
                    return (scope, command);
                }
                let other = IdempotencyScope {
                    fingerprint: Fingerprint::new("POST", "/other", format!("{index}").as_bytes()),
                    ..scope
                };
                return (other, self.move_command(0, 1));
            }
            Step::Checkout {
                key,
                lines,
                tip,
                north,
            } => (
                *key,
                format!("checkout {lines:?} {tip} {north}"),
                Command::Checkout(NewOrder {
                    lines: merged(lines)
                        .into_iter()
                        .map(|(p, quantity)| RequestedLine {
                            product_id: self.products[p].clone(),
                            quantity,
                        })
                        .collect(),
                    tip: Money {
                        amount: *tip,
                        currency: mxn(),
                    },
                    note: None,
                    customer: None,
                    location: self.place(*north),
                }),
            ),
            Step::Transfer {
                key,
                product,
                quantity,
                back,
                in_transit,
            } => (
                *key,
                format!("transfer {product} {quantity} {back} {in_transit}"),
                Command::Transfer(NewTransfer {
                    product_id: self.products[*product].clone(),
                    from: self.place(*back),
                    to: self.place(!*back),
                    quantity: *quantity,
                    note: None,
                    in_transit: *in_transit,
                }),
            ),
            Step::Receive { key, transfer } => (
                *key,
                format!("receive {transfer}"),
                Command::ReceiveTransfer {
                    // A refused transfer has none: name one that does not exist.
                    transfer: self.transfers.get(transfer).cloned().unwrap_or_else(|| {
                        TransferId::parse("id", "trf_01J00000000000000000000000").unwrap()
                    }),
                },
            ),
            Step::HandOver { key, order, back } => (
                *key,
                format!("hand over {order} {back}"),
                Command::HandOver {
                    order: self.order_of(*order),
                    to: self.place(!*back),
                },
            ),
            Step::Pay {
                key,
                order,
                right_amount,
                provider,
            } => {
                let total = self.orders.get(order).map_or(1, |(_, t)| *t);
                let amount = if *right_amount { total } else { total + 1 };
                let (method, reference) = if *provider {
                    (PaymentMethod::Provider, Some(format!("mp-{order}")))
                } else {
                    (PaymentMethod::Cash, None)
                };
                (
                    *key,
                    format!("pay {order} {right_amount} {provider}"),
                    Command::Pay {
                        order: self.order_of(*order),
                        method,
                        amount,
                        reference,
                    },
                )
            }
            Step::Cancel { key, order } => (
                *key,
                format!("cancel {order}"),
                Command::Cancel {
                    order: self.order_of(*order),
                },
            ),
            Step::Fulfill { key, order } => (
                *key,
                format!("fulfill {order}"),
                Command::Fulfill {
                    order: self.order_of(*order),
                },
            ),
            Step::Refund {
                key,
                order,
                at_provider: true,
                ..
            } => (
                *key,
                format!("refunded at provider {order}"),
                Command::RefundedAtProvider {
                    order: self.order_of(*order),
                    reference: format!("mp-{order}"),
                },
            ),
            Step::Refund {
                key,
                order,
                restock,
                at_provider: false,
            } => (
                *key,
                format!("refund {order} {restock}"),
                Command::Refund {
                    order: self.order_of(*order),
                    restock: *restock,
                },
            ),
            Step::Move {
                key,
                product,
                delta,
            } => (
                *key,
                format!("move {product} {delta}"),
                self.move_command(*product, *delta),
            ),
            Step::OpenTab { key, desk } => (
                *key,
                format!("open {desk:?}"),
                Command::OpenTab(NewTab {
                    label: "Differential".into(),
                    resource: desk.map(|d| format!("desk-{d}")),
                    rate_per_hour: 6000,
                    currency: mxn(),
                    // Hourly past a 5-minute grace: both runs bill the same hours although
                    // real time passes differently in each (the clock is moved in 20-minute
                    // steps, and a run takes far less than 5 minutes between them).
                    rounding: Rounding::parse(60, 0, 5).unwrap(),
                    customer: None,
                    note: None,
                    location: LocationId::main(),
                }),
            ),
            Step::AddItem {
                key,
                tab,
                product,
                quantity,
            } => (
                *key,
                format!("add {tab} {product} {quantity}"),
                Command::AddTabItem {
                    tab: self.tab_of(*tab),
                    product: self.products[*product].clone(),
                    quantity: *quantity,
                    note: None,
                    seller_bound: None,
                },
            ),
            Step::Clock { key, tab, pause } => (
                *key,
                format!("clock {tab} {pause}"),
                if *pause {
                    Command::PauseTab {
                        tab: self.tab_of(*tab),
                    }
                } else {
                    Command::ResumeTab {
                        tab: self.tab_of(*tab),
                    }
                },
            ),
            Step::CloseTab { key, tab } => (
                *key,
                format!("close {tab}"),
                Command::CloseTab {
                    tab: self.tab_of(*tab),
                    tip: Money {
                        amount: 0,
                        currency: mxn(),
                    },
                },
            ),
            Step::VoidTab { key, tab } => (
                *key,
                format!("void {tab}"),
                Command::VoidTab {
                    tab: self.tab_of(*tab),
                    reason: "differential".into(),
                },
            ),
            Step::Expire => unreachable!("expiries are not keyed"),
        };
        let scope = IdempotencyScope {
            key_id: self.key_id.clone(),
            key: IdempotencyKey::parse(&format!("step-{key}")).unwrap(),
            fingerprint: Fingerprint::new("POST", "/step", body.as_bytes()),
        };
        (scope, command)
    }

    /// The north location, or the main one.
    fn place(&self, north: bool) -> LocationId {
        if north {
            self.north.clone()
        } else {
            LocationId::main()
        }
    }

    fn move_command(&self, product: usize, delta: i64) -> Command {
        Command::MoveStock {
            product: self.products[product].clone(),
            location: LocationId::main(),
            delta,
            reason: if delta > 0 {
                Reason::Restock
            } else {
                Reason::Damage
            },
            note: None,
        }
    }

    /// Moves the clock past every deadline and expires what is due, as the sweeper does.
    async fn expire(&self) -> Vec<String> {
        self.clock
            .advance(chrono::Duration::minutes(TTL_MINUTES + 5));
        let due = self
            .store
            .due_orders(self.store.now(), 10_000)
            .await
            .expect("due orders");
        let expiries = due
            .into_iter()
            .map(|order| self.submit(None, Command::Expire { order }));
        futures_util::future::join_all(expiries)
            .await
            .into_iter()
            .map(|s| summary(&s))
            .collect()
    }

    /// Runs the script's groups; each group at once (batching) or one step at a time.
    async fn play(&mut self, groups: &[Vec<Step>], together: bool) -> Vec<String> {
        let steps: Vec<Step> = groups.iter().flatten().cloned().collect();
        let mut answers = Vec::with_capacity(steps.len());
        let mut first = 0;
        for group in groups {
            if matches!(group[..], [Step::Expire]) {
                let mut expired = self.expire().await;
                expired.sort();
                answers.push(format!("expired {expired:?}"));
                first += 1;
                continue;
            }
            let resolved: Vec<(IdempotencyScope, Command)> = (first..first + group.len())
                .map(|i| self.resolve(&steps, i))
                .collect();
            let settled: Vec<Settled> = if together {
                let all = resolved
                    .into_iter()
                    .map(|(scope, command)| self.submit(Some(scope), command));
                futures_util::future::join_all(all).await
            } else {
                let mut settled = Vec::new();
                for (scope, command) in resolved {
                    settled.push(self.submit(Some(scope), command).await);
                }
                settled
            };
            for (i, s) in settled.iter().enumerate() {
                let step = first + i;
                if let (Step::Checkout { .. }, Settled::Fresh { response, .. }) = (&steps[step], s)
                {
                    if response.status == 201 {
                        let body: Value = serde_json::from_str(&response.body).unwrap();
                        let id = OrderId::parse("id", body["id"].as_str().unwrap()).unwrap();
                        self.orders
                            .insert(step, (id, body["total"]["amount"].as_i64().unwrap()));
                    }
                }
                if let (Step::Transfer { .. }, Settled::Fresh { response, .. }) = (&steps[step], s)
                {
                    if response.status == 201 {
                        let body: Value = serde_json::from_str(&response.body).unwrap();
                        let id = TransferId::parse("id", body["id"].as_str().unwrap()).unwrap();
                        self.transfers.insert(step, id);
                    }
                }
                if let (Step::OpenTab { .. }, Settled::Fresh { response, .. }) = (&steps[step], s) {
                    if response.status == 201 {
                        let body: Value = serde_json::from_str(&response.body).unwrap();
                        let id = TabId::parse("id", body["id"].as_str().unwrap()).unwrap();
                        self.tabs.insert(step, id);
                    }
                }
                answers.push(summary(s));
            }
            first += group.len();
        }
        answers
    }

    /// Stock, ledger and feed, in terms both runs share.
    #[allow(clippy::type_complexity)]
    async fn books(
        &self,
    ) -> (
        Vec<(i64, i64, i64)>,
        Vec<Vec<(i64, String, bool, i64)>>,
        Vec<String>,
    ) {
        let mut stock = Vec::new();
        let mut ledgers = Vec::new();
        for id in &self.products {
            let p = self.store.product(id).await.unwrap();
            stock.push((
                p.stock.value(),
                p.locations.at(&LocationId::main()),
                p.locations.at(&self.north),
            ));
            let mut ledger = Vec::new();
            let mut after = None;
            loop {
                let page = self
                    .store
                    .list_movements(id, after, PageLimit::parse(Some(200)).unwrap())
                    .await
                    .unwrap();
                ledger.extend(page.items.iter().map(|m| {
                    (
                        m.delta,
                        m.reason.to_string(),
                        m.location_id.is_main(),
                        m.stock_after,
                    )
                }));
                match page.next_cursor {
                    Some(c) => after = Some(c.parse().unwrap()),
                    None => break,
                }
            }
            ledgers.push(ledger);
        }
        let feed = self
            .store
            .changes_after(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.kind)
            .collect();
        (stock, ledgers, feed)
    }
}

impl Run {
    /// Every tab in opening order: status, live items, and the order it became (its
    /// total), in terms both runs share.
    async fn tabs(&self) -> Vec<(String, usize, Option<i64>)> {
        let mut out = Vec::new();
        let mut after: Option<TabId> = None;
        loop {
            let page = self
                .store
                .list_tabs(
                    None,
                    None,
                    after.as_ref(),
                    PageLimit::parse(Some(200)).unwrap(),
                )
                .await
                .unwrap();
            for t in &page.items {
                let total = match &t.order_id {
                    Some(o) => Some(self.store.order(o).await.unwrap().total),
                    None => None,
                };
                out.push((t.status.to_string(), t.live_items().count(), total));
            }
            match page.next_cursor {
                Some(c) => after = Some(TabId::parse("after", &c).unwrap()),
                None => return out,
            }
        }
    }
}

fn merged(lines: &[(usize, i64)]) -> BTreeMap<usize, i64> {
    let mut merged = BTreeMap::new();
    for (p, q) in lines {
        *merged.entry(*p).or_default() += q;
    }
    merged
}

fn answer_body(settled: Settled) -> Value {
    match settled {
        Settled::Fresh { response, .. } => serde_json::from_str(&response.body).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// What a client could tell of an answer: status, problem type, an order's number, status
/// and total, a tab's status and item count, or a movement's stock.
fn summary(settled: &Settled) -> String {
    let (response, replayed) = match settled {
        Settled::Fresh { response, .. } => (response, false),
        Settled::Replay { response, .. } => (response, true),
        Settled::Mismatch => return "mismatch".into(),
        Settled::InFlight => return "in flight".into(),
    };
    let body: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    format!(
        "{} replay={replayed} type={} number={} status={} total={} stock_after={} items={} due={}",
        response.status,
        body["type"],
        body["number"],
        body["status"],
        body["total"]["amount"],
        body["stock_after"],
        body["items"].as_array().map_or(0, Vec::len),
        body["due"]["subtotal"]["amount"]
    )
}

async fn batches_of_one_and_batching_decide_a_random_script_alike(backend: Backend) {
    for seed in [7, 2026] {
        let groups = script(seed);
        let mut alone = Run::new(backend, 1).await;
        let mut batched = Run::new(backend, 64).await;
        let one_by_one = alone.play(&groups, false).await;
        let together = batched.play(&groups, true).await;
        assert_eq!(one_by_one.len(), together.len());
        for (i, (a, b)) in one_by_one.iter().zip(&together).enumerate() {
            assert_eq!(a, b, "seed {seed}, answer {i}");
        }
        let (stock_a, ledger_a, feed_a) = alone.books().await;
        let (stock_b, ledger_b, feed_b) = batched.books().await;
        assert_eq!(stock_a, stock_b, "seed {seed}: stock");
        assert_eq!(ledger_a, ledger_b, "seed {seed}: ledger");
        assert_eq!(feed_a, feed_b, "seed {seed}: feed event types in order");
        assert_eq!(
            alone.tabs().await,
            batched.tabs().await,
            "seed {seed}: tabs"
        );
        // The script exercised what it is meant to.
        let created = one_by_one.iter().filter(|a| a.starts_with("201")).count();
        let refused = one_by_one.iter().filter(|a| a.starts_with("409")).count();
        let replays = one_by_one
            .iter()
            .filter(|a| a.contains("replay=true"))
            .count();
        let expired = feed_a.iter().filter(|k| *k == "order.expired").count();
        assert!(
            created > 100 && refused > 20 && replays > 20 && expired > 0,
            "seed {seed}: {created} created, {refused} refused, {replays} replays, {expired} expired"
        );
        let events = |kind: &str| feed_a.iter().filter(|k| *k == kind).count();
        assert!(
            events("transfer.created") > 10
                && events("transfer.received") > 1
                && events("order.transferred") > 0,
            "seed {seed}: the script exercised locations: {} transfers, {} received, {} hand-overs",
            events("transfer.created"),
            events("transfer.received"),
            events("order.transferred"),
        );
        let violations = alone.store.check().await.unwrap().1;
        assert!(violations.is_empty(), "seed {seed}: {violations:?}");
        let tab_events = |kind: &str| feed_a.iter().filter(|k| *k == kind).count();
        assert!(
            tab_events("tab.opened") > 5
                && tab_events("tab.item_added") > 5
                && tab_events("tab.closed") > 1
                && tab_events("tab.voided") > 0,
            "seed {seed}: the script exercised tabs: {} opened, {} items, {} closed, {} voided",
            tab_events("tab.opened"),
            tab_events("tab.item_added"),
            tab_events("tab.closed"),
            tab_events("tab.voided")
        );
        assert!(
            tab_events("order.paid") > 5
                && tab_events("order.refunded") > 0
                && tab_events("order.needs_refund") > 0,
            "seed {seed}: the script exercised payments, refunds and late provider payments"
        );
        for run in [&alone, &batched] {
            let (_, violations) = run.store.check().await.unwrap();
            assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        }
    }
}

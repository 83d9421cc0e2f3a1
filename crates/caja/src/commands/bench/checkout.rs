//! `caja bench checkout`: concurrent buyers on P products, each order a fresh key, a
//! fraction of deliberate retries; then the books are checked against what was answered.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::cpu;
use super::report::{self, Pace, Tally};
use super::Common;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Products to sell (1 = everyone on one hot product).
    #[arg(long, default_value_t = 1)]
    pub products: usize,
    /// Units each product starts with.
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// Lines per order (distinct products, one unit each).
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Fraction of requests that deliberately retry an earlier key (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// The server's PostgreSQL database, on this machine: also report the CPU its backends
    /// serving caja spent per created order.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// What a fresh key was answered, to hold retries to it.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    order_id: Option<String>,
}

#[derive(Default)]
struct Ledger {
    /// Fresh keys and their first answer.
    answers: HashMap<String, (Value, Answer)>,
    /// Keys that may be retried.
    retryable: Vec<String>,
    /// Retries whose answer differed from the first.
    mismatched_retries: u64,
    retries: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    anyhow::ensure!(
        args.products >= 1 && args.products <= 100_000,
        "--products must be 1–100000"
    );
    anyhow::ensure!(
        args.lines >= 1 && args.lines <= args.products.min(100),
        "--lines must be 1–min(products, 100)"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.duplicate_rate),
        "--duplicate-rate must be 0–1"
    );
    anyhow::ensure!(
        args.stock >= 0 && args.stock <= 1_000_000_000,
        "--stock must be 0–10^9"
    );
    let client = c.client()?;
    let run_id = ulid::Ulid::new().to_string().to_lowercase();

    let mut products = Vec::with_capacity(args.products);
    for i in 0..args.products {
        let sku = format!("bench-{run_id}-{i}");
        products.push(c.create_product(&client, &sku, args.stock).await?);
    }
    let products = Arc::new(products);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let pace = Pace::new(c.budget()?, c.json);
    let server_pid = c.server_pid();
    let cpu_before = server_pid.and_then(cpu::seconds);
    let backends_before = match &args.database_url {
        Some(url) => Some(cpu::backends(url).await?),
        None => None,
    };

    let mut workers = Vec::new();
    for w in 0..c.concurrency {
        let (client, pace, products, ledger) = (
            client.clone(),
            pace.clone(),
            products.clone(),
            ledger.clone(),
        );
        let (url, key, run_id) = (
            format!("{}/v1/orders", c.url),
            c.key.clone(),
            run_id.clone(),
        );
        let (lines, duplicate_rate) = (args.lines, args.duplicate_rate);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut n = 0u64;
            while pace.next() {
                // A deliberate retry of an earlier key, or a fresh order.
                let retry = {
                    let mut rng = rand::thread_rng();
                    let l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                    (rng.gen::<f64>() < duplicate_rate && !l.retryable.is_empty())
                        .then(|| l.retryable[rng.gen_range(0..l.retryable.len())].clone())
                        .and_then(|k| l.answers.get(&k).map(|(body, _)| (k, body.clone())))
                };
                let (idem, body, is_retry) = match retry {
                    Some((k, body)) => (k, body, true),
                    None => {
                        n += 1;
                        let chosen: Vec<&String> = products
                            .choose_multiple(&mut rand::thread_rng(), lines)
                            .collect();
                        let lines: Vec<Value> = chosen
                            .iter()
                            .map(|p| json!({"product_id": p, "quantity": 1}))
                            .collect();
                        (
                            format!("bench-{run_id}-{w}-{n}"),
                            json!({ "lines": lines }),
                            false,
                        )
                    }
                };
                let started = Instant::now();
                let sent = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("idempotency-key", &idem)
                    .json(&body)
                    .send()
                    .await;
                let (status, reply) = match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.json::<Value>().await.unwrap_or(Value::Null))
                    }
                    Err(_) => {
                        tally.transport_errors += 1;
                        pace.finished_one();
                        continue;
                    }
                };
                let problem =
                    (status >= 400).then(|| reply["type"].as_str().unwrap_or("?").to_owned());
                tally.record(started.elapsed(), status, problem);
                let answer = Answer {
                    status,
                    order_id: reply["id"].as_str().map(str::to_owned),
                };
                let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                if is_retry {
                    l.retries += 1;
                    if l.answers.get(&idem).map(|(_, a)| a) != Some(&answer) {
                        l.mismatched_retries += 1;
                    }
                } else if status < 500 {
                    l.answers.insert(idem.clone(), (body, answer));
                    if l.retryable.len() < 10_000 {
                        l.retryable.push(idem);
                    }
                }
                drop(l);
                pace.finished_one();
            }
            tally
        }));
    }
    let mut tally = Tally::new();
    for w in workers {
        tally.merge(w.await?);
    }
    let elapsed = pace.finish();
    // The CPU the checkouts cost, read before the checks below add a read per product.
    let cpu_after = server_pid.and_then(cpu::seconds);
    let backends_after = match &args.database_url {
        Some(url) => Some(cpu::backends(url).await?),
        None => None,
    };

    // The books: what was answered must be what was taken.
    let mut taken = 0i64;
    let mut negative = 0;
    for id in products.iter() {
        let p: Value = client
            .get(format!("{}/v1/products/{id}", c.url))
            .bearer_auth(&c.key)
            .send()
            .await?
            .json()
            .await?;
        let stock = p["stock"].as_i64().unwrap_or(i64::MIN);
        if stock < 0 {
            negative += 1;
        }
        taken += args.stock - stock;
    }
    let (checks, ok, mut out) = {
        let l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let created: Vec<&Answer> = l
            .answers
            .values()
            .map(|(_, a)| a)
            .filter(|a| a.status == 201)
            .collect();
        let distinct_orders: std::collections::HashSet<&String> =
            created.iter().filter_map(|a| a.order_id.as_ref()).collect();
        let units = created.len() as i64 * args.lines as i64;
        let server_errors: u64 = tally
            .by_status
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum();
        let checks = json!({
            "units_sold_equal_201s": {"ok": units == taken, "detail": format!("201 orders × lines = {units}, stock taken = {taken}")},
            "never_below_zero": {"ok": negative == 0, "detail": format!("{negative} products below zero")},
            "one_order_per_key": {"ok": distinct_orders.len() == created.len() && l.mismatched_retries == 0,
                "detail": format!("{} keys created {} distinct orders; {} of {} retries answered differently", created.len(), distinct_orders.len(), l.mismatched_retries, l.retries)},
            "no_server_errors": {"ok": server_errors == 0 && tally.transport_errors == 0, "detail": format!("{server_errors} 5xx, {} transport errors", tally.transport_errors)},
        });
        let ok = checks
            .as_object()
            .is_some_and(|m| m.values().all(|c| c["ok"] == true));
        let mut out = report::summary(&tally, elapsed);
        out["benchmark"] = json!("checkout");
        out["concurrency"] = json!(c.concurrency);
        out["products"] = json!(args.products);
        out["lines"] = json!(args.lines);
        out["retries"] = json!(l.retries);
        out["orders_created"] = json!(created.len());
        (checks, ok, out)
    };
    out["checks"] = checks;
    let created = out["orders_created"].as_u64().unwrap_or(0).max(1) as f64;
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        out["server_cpu_s"] = json!(((after - before) * 1000.0).round() / 1000.0);
        out["server_cpu_us_per_order"] = json!(((after - before) * 1e6 / created).round());
    }
    if let (Some(before), Some(after)) = (&backends_before, &backends_after) {
        let spent = cpu::backends_spent(before, after);
        out["db_cpu_s"] = json!((spent * 1000.0).round() / 1000.0);
        out["db_cpu_us_per_order"] = json!((spent * 1e6 / created).round());
    }
    if let Some((now, peak)) = report::server_rss(&client, &c.url).await {
        out["server_rss_mb"] = json!(now);
        out["server_rss_peak_mb"] = json!(peak);
    }
    report::print(&out, c.json);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

//! `caja bench box-office`: a concert sell-out. Buyers join the waiting room before it
//! opens, wait to be admitted, hold one seat each with their admission, and buy what they
//! held; then the run checks that every seat was sold once and nobody got two.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::report::{self, Tally};
use super::Common;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Buyers joining the waiting room.
    #[arg(long, default_value_t = 20_000)]
    pub buyers: usize,
    /// Numbered seats on sale.
    #[arg(long, default_value_t = 500)]
    pub seats: usize,
    /// The room's admission rate.
    #[arg(long, default_value_t = 1_000_000)]
    pub admit_per_minute: i64,
}

fn bar(len: usize, quiet: bool, what: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>6} [{bar:40}] {pos}/{len} {per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what);
    bar
}

/// What one buyer did.
#[derive(Default)]
struct Buyer {
    seat: Option<String>,
    bought: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.buyers) && (1..=10_000).contains(&args.seats),
        "--buyers must be 1–1000000 and --seats 1–10000"
    );
    let client = c.client()?;
    let labels: Vec<String> = (0..args.seats).map(|n| format!("S{}", n + 1)).collect();
    let now = chrono::Utc::now();
    let opens = now + chrono::Duration::seconds(3);
    let fmt = caja_core::time::format;
    let created: Value = client
        .post(format!("{}/v1/events", c.url))
        .bearer_auth(&c.key)
        .header("idempotency-key", format!("bench-{}", ulid::Ulid::new()))
        .json(&json!({
            "name": "caja bench box-office",
            "starts_at": fmt(&(now + chrono::Duration::days(30))),
            "sale_starts_at": fmt(&(now - chrono::Duration::minutes(1))),
            "max_per_order": 1,
            "sections": [{"name": "Hall", "price": {"amount": 50000, "currency": "MXN"}, "seats": labels}],
            "waiting_room": {"admit_per_minute": args.admit_per_minute, "max_queue": args.buyers as i64 + 1,
                             "admission_ttl": 600, "opens_at": fmt(&opens)},
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let event = created["id"].as_str().unwrap_or_default().to_owned();

    // Everyone joins before the room opens.
    let joins = Arc::new(std::sync::Mutex::new(Vec::with_capacity(args.buyers)));
    let progress = bar(args.buyers, c.json, "join");
    let started = Instant::now();
    let tally = run_workers(c.concurrency, args.buyers, {
        let (client, url, key, event, joins, progress) = (
            client.clone(),
            c.url.clone(),
            c.key.clone(),
            event.clone(),
            joins.clone(),
            progress.clone(),
        );
        move |i| {
            let (client, url, key, event, joins, progress) = (
                client.clone(),
                url.clone(),
                key.clone(),
                event.clone(),
                joins.clone(),
                progress.clone(),
            );
            async move {
                let at = Instant::now();
                let r = client
                    .post(format!("{url}/v1/events/{event}/queue"))
                    .bearer_auth(&key)
                    .json(&json!({"client_ref": format!("buyer-{i}")}))
                    .send()
                    .await;
                progress.inc(1);
                match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        if let Some(t) = body["id"].as_str() {
                            joins
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((i, t.to_owned()));
                        }
                        Some((
                            at.elapsed(),
                            status,
                            body["type"].as_str().map(str::to_owned),
                        ))
                    }
                    Err(_) => None,
                }
            }
        }
    })
    .await;
    let join_elapsed = started.elapsed();
    progress.finish_and_clear();
    let tickets = std::mem::take(&mut *joins.lock().unwrap_or_else(|p| p.into_inner()));

    // The room opens; each buyer waits for its admission, then holds one seat.
    if let Ok(wait) = (opens - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let buyers = Arc::new(std::sync::Mutex::new(Vec::<Buyer>::new()));
    // The window in which holds were sent and answered: the sell-out itself, without the
    // wait for admission before it or the purchases after.
    let window = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    let progress = bar(tickets.len(), c.json, "hold");
    let tickets = Arc::new(tickets);
    let started = Instant::now();
    let holds = run_workers(c.concurrency, tickets.len(), {
        let (client, url, key, event, tickets, buyers, progress, window) = (
            client.clone(),
            c.url.clone(),
            c.key.clone(),
            event.clone(),
            tickets.clone(),
            buyers.clone(),
            progress.clone(),
            window.clone(),
        );
        move |n| {
            let (client, url, key, event, tickets, buyers, progress, window) = (
                client.clone(),
                url.clone(),
                key.clone(),
                event.clone(),
                tickets.clone(),
                buyers.clone(),
                progress.clone(),
                window.clone(),
            );
            async move {
                let (i, ticket) = &tickets[n];
                let token = loop {
                    let t: Value = client
                        .get(format!("{url}/v1/events/{event}/queue/{ticket}"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    match t["status"].as_str() {
                        Some("admitted") => break t["admission"].as_str()?.to_owned(),
                        Some("waiting" | "drawing") => {
                            let wait = t["estimated_wait_seconds"].as_u64().unwrap_or(1);
                            tokio::time::sleep(Duration::from_millis(
                                (wait * 1000).clamp(50, 2000),
                            ))
                            .await;
                        }
                        _ => return None,
                    }
                };
                let at = Instant::now();
                let r = client
                    .post(format!("{url}/v1/events/{event}/holds"))
                    .bearer_auth(&key)
                    .header("idempotency-key", format!("hold-{event}-{i}"))
                    .json(
                        &json!({"section": "Hall", "quantity": 1, "admission": token,
                                  "client_ref": format!("buyer-{i}")}),
                    )
                    .send()
                    .await
                    .ok()?;
                let elapsed = at.elapsed();
                {
                    let done = Instant::now();
                    let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
                    *w = Some(match *w {
                        None => (at, done),
                        Some((first, last)) => (first.min(at), last.max(done)),
                    });
                }
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                progress.inc(1);
                let mut buyer = Buyer::default();
                if status == 201 {
                    buyer.seat = body["seats"][0].as_str().map(str::to_owned);
                    let order = client
                        .post(format!("{url}/v1/orders"))
                        .bearer_auth(&key)
                        .header("idempotency-key", format!("order-{event}-{i}"))
                        .json(&json!({"hold_id": body["id"]}))
                        .send()
                        .await
                        .ok()?;
                    let order: Value = order.json().await.ok()?;
                    let paid = client
                        .post(format!(
                            "{url}/v1/orders/{}/payments",
                            order["id"].as_str()?
                        ))
                        .bearer_auth(&key)
                        .header("idempotency-key", format!("pay-{event}-{i}"))
                        .json(&json!({"method": "card", "amount": order["total"]}))
                        .send()
                        .await
                        .ok()?;
                    buyer.bought = paid.status().as_u16() == 200;
                }
                buyers.lock().unwrap_or_else(|p| p.into_inner()).push(buyer);
                Some((elapsed, status, body["type"].as_str().map(str::to_owned)))
            }
        }
    })
    .await;
    let hold_elapsed = started.elapsed();
    progress.finish_and_clear();

    let buyers = std::mem::take(&mut *buyers.lock().unwrap_or_else(|p| p.into_inner()));
    let seats: Vec<&String> = buyers.iter().filter_map(|b| b.seat.as_ref()).collect();
    let unique: HashSet<&&String> = seats.iter().collect();
    let bought = buyers.iter().filter(|b| b.bought).count();
    let availability: Value = client
        .get(format!("{}/v1/events/{event}/availability", c.url))
        .bearer_auth(&c.key)
        .send()
        .await?
        .json()
        .await?;
    let hall = &availability["sections"][0];
    let expected = args.seats.min(args.buyers);
    let check = |ok: bool, detail: String| json!({"ok": ok, "detail": detail});
    let checks = json!({
        "every seat held once": check(
            unique.len() == seats.len() && seats.len() == expected,
            format!("{} holds, {} distinct seats, {expected} expected", seats.len(), unique.len())),
        "every hold bought": check(bought == seats.len(), format!("{bought} of {} paid", seats.len())),
        "the hall is sold out": check(
            hall["free"] == json!(args.seats - expected) && hall["sold"] == json!(expected),
            format!("free {}, held {}, sold {}", hall["free"], hall["held"], hall["sold"])),
        "every buyer joined": check(tickets.len() == args.buyers,
            format!("{} of {} tickets", tickets.len(), args.buyers)),
    });
    let hold_window = window
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|(first, last)| last.duration_since(first).as_secs_f64())
        .unwrap_or(0.0);
    let attempts: u64 = holds.by_status.values().sum();
    let mut out = json!({
        "benchmark": "box-office",
        "hold_window_s": (hold_window * 1000.0).round() / 1000.0,
        "hold_attempts_per_s_in_window": if hold_window > 0.0 { (attempts as f64 / hold_window).round() } else { 0.0 },
        "buyers": args.buyers,
        "seats": args.seats,
        "concurrency": c.concurrency,
        "join": report::summary(&tally, join_elapsed),
        "hold": report::summary(&holds, hold_elapsed),
        "checks": checks,
    });
    if let Some((now, peak)) = report::server_rss(&client, &c.url).await {
        out["server_rss_mb"] = json!(now);
        out["server_rss_peak_mb"] = json!(peak);
    }
    if c.json {
        println!("{out}");
    } else {
        for phase in ["join", "hold"] {
            let p = &out[phase];
            println!(
                "{phase:<5} {} requests in {} s: {} /s, p50 {} ms, p99 {} ms, status {}",
                p["requests"],
                p["elapsed_s"],
                p["throughput_per_s"],
                p["latency_ms"]["p50"],
                p["latency_ms"]["p99"],
                p["status"]
            );
        }
        println!(
            "holds were sent and answered within {} s: {} attempts/s",
            out["hold_window_s"], out["hold_attempts_per_s_in_window"]
        );
        report::print_checks(&out);
    }
    Ok(if report::all_ok(&out["checks"]) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `work(0..count)` on `concurrency` workers and tallies what each returned.
async fn run_workers<F, Fut>(concurrency: usize, count: usize, work: F) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<(Duration, u16, Option<String>)>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, work) = (next.clone(), work.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return tally;
                }
                match work(i).await {
                    Some((elapsed, status, problem)) => tally.record(elapsed, status, problem),
                    None => tally.transport_errors += 1,
                }
            }
        }));
    }
    let mut tally = Tally::new();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    tally
}

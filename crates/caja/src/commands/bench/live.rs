//! `caja bench live`: M WebSocket subscribers and a writer committing changes at a fixed
//! rate. Prints commit-to-receive latency (the event's `at`, stamped just before its
//! commit, to its arrival; client and server share a clock on one machine) and checks that
//! every subscriber got every event once, in order, against `GET /v1/changes`.
//! `--idle N` also holds N idle subscriptions open, to measure what they cost the server.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::cpu;
use super::report;
use super::{Budget, Common};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Each subscriber's read buffer.
const READ_BUFFER: usize = 8 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Live subscribers (each its own WebSocket, all on the `products` topic).
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Changes committed per second by the writer.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Idle subscriptions held open besides (on a topic that gets no events).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
}

/// The two fields a subscriber needs from each event.
#[derive(Deserialize)]
struct Seen {
    seq: i64,
    at: String,
}

struct Subscriber {
    seqs: Vec<i64>,
    latency: Histogram<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    anyhow::ensure!(
        (1..=20_000).contains(&args.subscribers),
        "--subscribers must be 1–20000"
    );
    anyhow::ensure!(
        (1..=100_000).contains(&args.rate),
        "--rate must be 1–100000"
    );
    anyhow::ensure!(args.idle <= 50_000, "--idle must be at most 50000");
    let duration = match c.budget()? {
        Budget::Time(d) => d,
        Budget::Requests(n) => Duration::from_secs_f64(n as f64 / args.rate as f64),
    };
    let client = c.client()?;
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let product_id = c
        .create_product(&client, &format!("bench-live-{run_id}"), 0)
        .await?;
    let start = head(&client, c).await?;
    let ws_url = format!("{}/v1/stream", c.url.replacen("http", "ws", 1));

    // Idle subscriptions: watch one order id that never changes.
    let mut idle = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        idle.push(subscribe(&ws_url, &c.key, &["order:ord_idle"], start).await?);
    }
    let idle_rss = if args.idle > 0 {
        report::server_rss(&client, &c.url).await
    } else {
        None
    };

    // Where every subscriber must get to, once the writer is done; `Stop` if it never will.
    let (target_tx, target) = tokio::sync::watch::channel(Target::Open);
    let mut readers = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        let ws = subscribe(&ws_url, &c.key, &["products"], start).await?;
        readers.push(tokio::spawn(follow(ws, target.clone())));
    }
    // CPU from the first write to the last delivery: the server's (its writes and its
    // fan-out) and this client's own, both from /proc.
    let server_pid = c.server_pid();
    let server_cpu_before = server_pid.and_then(cpu::seconds);
    let client_cpu_before = cpu::seconds(std::process::id());

    // The writer: one restock per tick, each its own request and commit.
    let written = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        n += 1;
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, url, key) = (
            client.clone(),
            format!("{}/v1/products/{product_id}/stock-movements", c.url),
            c.key.clone(),
        );
        let (written, failed, idem) = (
            written.clone(),
            failed.clone(),
            format!("bench-live-{run_id}-{n}"),
        );
        tokio::spawn(async move {
            let ok = client
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", idem)
                .json(&json!({"delta": 1, "reason": "restock"}))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201);
            if ok {
                written.fetch_add(1, Ordering::Relaxed);
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(256).await?;
    let elapsed = started.elapsed();

    // What the feed holds for the topic is what every subscriber must have seen.
    let expected = topic_seqs(&client, c, start).await?;
    // Each subscriber stops once it has the last event; a lagging one is stopped after 10 s.
    let _ = target_tx.send(Target::Seq(expected.last().copied().unwrap_or(start)));
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    let mut results = Vec::with_capacity(readers.len());
    for r in readers {
        tokio::select! {
            s = r => results.push(s?),
            _ = &mut deadline => {
                let _ = target_tx.send(Target::Stop);
                anyhow::bail!("subscribers did not receive every event within 10 s of the last write");
            }
        }
    }
    let server_cpu = server_cpu_before
        .zip(server_pid.and_then(cpu::seconds))
        .map(|(before, after)| after - before);
    let client_cpu = client_cpu_before
        .zip(cpu::seconds(std::process::id()))
        .map(|(before, after)| after - before);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut complete = 0usize;
    let mut in_order = 0usize;
    for s in results {
        let _ = latency.add(&s.latency);
        if s.seqs == expected {
            complete += 1;
        }
        if s.seqs.windows(2).all(|w| w[0] < w[1]) {
            in_order += 1;
        }
    }
    drop(idle);
    let ms = |v: u64| v as f64 / 1000.0;
    let writes = written.load(Ordering::Relaxed);
    let checks = json!({
        "every_subscriber_got_every_event_once": {"ok": complete == args.subscribers,
            "detail": format!("{complete} of {} subscribers received exactly the {} events the feed holds", args.subscribers, expected.len())},
        "in_order": {"ok": in_order == args.subscribers, "detail": format!("{in_order} of {} in seq order", args.subscribers)},
        "writes_succeeded": {"ok": failed.load(Ordering::Relaxed) == 0, "detail": format!("{writes} committed, {} failed", failed.load(Ordering::Relaxed))},
    });
    let ok = report::all_ok(&checks);
    let mut out = json!({
        "benchmark": "live",
        "subscribers": args.subscribers,
        "idle": args.idle,
        "rate_per_s": args.rate,
        "events": expected.len(),
        "achieved_rate_per_s": (writes as f64 / elapsed.as_secs_f64()).round(),
        "deliveries": latency.len(),
        "commit_to_receive_ms": {
            "p50": ms(latency.value_at_quantile(0.5)),
            "p99": ms(latency.value_at_quantile(0.99)),
            "max": ms(latency.max()),
        },
        "checks": checks,
    });
    let deliveries = latency.len().max(1) as f64;
    if let Some(spent) = server_cpu {
        out["server_cpu_s"] = json!((spent * 1000.0).round() / 1000.0);
        out["server_cpu_us_per_delivery"] = json!((spent * 1e7 / deliveries).round() / 10.0);
    }
    if let Some(spent) = client_cpu {
        out["client_cpu_s"] = json!((spent * 1000.0).round() / 1000.0);
    }
    if let Some((now, _)) = idle_rss {
        out["server_rss_with_idle_mb"] = json!(now);
    }
    if let Some((now, peak)) = report::server_rss(&client, &c.url).await {
        out["server_rss_mb"] = json!(now);
        out["server_rss_peak_mb"] = json!(peak);
    }
    if c.json {
        println!("{out}");
    } else {
        print_human(&out);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_human(out: &Value) {
    let l = &out["commit_to_receive_ms"];
    println!(
        "subscribers   {} live, {} idle",
        out["subscribers"], out["idle"]
    );
    println!(
        "events        {} at {} /s ({} deliveries)",
        out["events"], out["achieved_rate_per_s"], out["deliveries"]
    );
    println!(
        "commit→receive ms  p50 {}  p99 {}  max {}",
        l["p50"], l["p99"], l["max"]
    );
    if let Some(us) = out.get("server_cpu_us_per_delivery") {
        println!(
            "server CPU    {} s, {us} µs per delivery (this client: {} s)",
            out["server_cpu_s"], out["client_cpu_s"]
        );
    }
    if let Some(rss) = out.get("server_rss_with_idle_mb") {
        println!("server RSS with the idle subscriptions  {rss} MB");
    }
    if let Some(rss) = out.get("server_rss_peak_mb") {
        println!("server RSS peak  {rss} MB");
    }
    report::print_checks(out);
}

/// How long one subscribe may take before the bench gives up on the server.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);

/// Opens a subscriber, or says why not within [`SUBSCRIBE_WITHIN`]: a server at its
/// `max_connections` leaves a new connection waiting in its backlog, which would otherwise
/// hang the bench.
async fn subscribe(url: &str, key: &str, topics: &[&str], after: i64) -> anyhow::Result<Ws> {
    tokio::time::timeout(SUBSCRIBE_WITHIN, open(url, key, topics, after))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "a subscribe was not answered within {} s: is the server at its max_connections \
                 (subscribers + idle + this bench's own connections)?",
                SUBSCRIBE_WITHIN.as_secs()
            )
        })?
}

async fn open(url: &str, key: &str, topics: &[&str], after: i64) -> anyhow::Result<Ws> {
    // A small read buffer: tungstenite zero-fills the whole free buffer before every read,
    // and at its 128 KiB default that memset was the client's largest cost, on the cores
    // the server being measured shares. Events are a few hundred bytes.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    let hello = json!({"type": "subscribe", "key": key, "topics": topics, "after": after});
    ws.send(Message::text(hello.to_string())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.as_str().contains("\"subscribed\"") => Ok(ws),
        other => anyhow::bail!("subscribe refused: {other:?}"),
    }
}

/// How far the subscribers must read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// The writer is still writing.
    Open,
    /// Up to and including this seq.
    Seq(i64),
    /// Give up now.
    Stop,
}

impl Target {
    fn reached(self, last: Option<i64>) -> bool {
        match self {
            Target::Open => false,
            Target::Seq(seq) => last.is_some_and(|l| l >= seq),
            Target::Stop => true,
        }
    }
}

/// Reads events until it has the target (or is told to stop), noting each seq and its
/// commit-to-receive latency. It waits on the socket and the target together, with no
/// timer per frame: the client shares the cores with the server it measures.
async fn follow(mut ws: Ws, mut target: tokio::sync::watch::Receiver<Target>) -> Subscriber {
    let mut s = Subscriber {
        seqs: Vec::new(),
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| unreachable!("valid bounds")),
    };
    loop {
        if target.borrow().reached(s.seqs.last().copied()) {
            break;
        }
        let next = tokio::select! {
            next = ws.next() => next,
            changed = target.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
        };
        let Some(Ok(Message::Text(t))) = next else {
            if next.is_none() {
                break;
            }
            continue;
        };
        let Ok(e) = serde_json::from_str::<Seen>(t.as_str()) else {
            continue; // a heartbeat or another control message
        };
        let now = caja_core::time::now();
        if let Ok(at) = caja_core::time::parse("at", &e.at) {
            let micros = (now - at).num_microseconds().unwrap_or(0);
            let _ = s.latency.record(micros.max(1) as u64);
        }
        s.seqs.push(e.seq);
    }
    s
}

/// The newest seq in the feed.
async fn head(client: &reqwest::Client, c: &Common) -> anyhow::Result<i64> {
    Ok(page_through(client, c, 0, "").await?.1)
}

/// The seqs of every `products` event after `after`.
async fn topic_seqs(client: &reqwest::Client, c: &Common, after: i64) -> anyhow::Result<Vec<i64>> {
    Ok(page_through(client, c, after, "products").await?.0)
}

/// Pages through `GET /v1/changes` after `after`: the seqs of the events of `topics` (all
/// when empty), and the cursor it ended at.
async fn page_through(
    client: &reqwest::Client,
    c: &Common,
    after: i64,
    topics: &str,
) -> anyhow::Result<(Vec<i64>, i64)> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let page: Value = client
            .get(format!(
                "{}/v1/changes?after={cursor}&limit=1000&topics={topics}",
                c.url
            ))
            .bearer_auth(&c.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let next: i64 = page["next_cursor"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cursor);
        if next == cursor {
            return Ok((out, cursor));
        }
        if let Some(events) = page["data"].as_array() {
            out.extend(events.iter().filter_map(|e| e["seq"].as_i64()));
        }
        cursor = next;
    }
}

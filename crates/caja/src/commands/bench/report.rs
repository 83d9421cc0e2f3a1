//! Collecting and printing what a benchmark saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::Budget;

/// One worker's tally; merged at the end so workers never contend.
pub struct Tally {
    pub latency: Histogram<u64>,
    /// The same, per status: a refusal and a success may take very different paths.
    pub latency_by_status: BTreeMap<u16, Histogram<u64>>,
    pub by_status: BTreeMap<u16, u64>,
    pub by_problem: BTreeMap<String, u64>,
    pub transport_errors: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency: histogram(),
            latency_by_status: BTreeMap::new(),
            by_status: BTreeMap::new(),
            by_problem: BTreeMap::new(),
            transport_errors: 0,
        }
    }

    pub fn record(&mut self, elapsed: Duration, status: u16, problem: Option<String>) {
        let micros = (elapsed.as_micros() as u64).max(1);
        let _ = self.latency.record(micros);
        let _ = self
            .latency_by_status
            .entry(status)
            .or_insert_with(histogram)
            .record(micros);
        *self.by_status.entry(status).or_default() += 1;
        if let Some(p) = problem {
            *self.by_problem.entry(p).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (k, h) in other.latency_by_status {
            let _ = self
                .latency_by_status
                .entry(k)
                .or_insert_with(histogram)
                .add(&h);
        }
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        for (k, v) in other.by_problem {
            *self.by_problem.entry(k).or_default() += v;
        }
        self.transport_errors += other.transport_errors;
    }
}

/// Hands out work until the budget runs out, and shows progress.
pub struct Pace {
    started: Instant,
    budget: Budget,
    issued: AtomicU64,
    done: AtomicU64,
    bar: ProgressBar,
}

impl Pace {
    pub fn new(budget: Budget, quiet: bool) -> Arc<Self> {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            match budget {
                Budget::Requests(n) => ProgressBar::new(n),
                Budget::Time(d) => ProgressBar::new(d.as_secs().max(1)),
            }
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Arc::new(Self {
            started: Instant::now(),
            budget,
            issued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            bar,
        })
    }

    /// True while another request may start.
    pub fn next(&self) -> bool {
        match self.budget {
            Budget::Requests(n) => self.issued.fetch_add(1, Ordering::Relaxed) < n,
            Budget::Time(d) => self.started.elapsed() < d,
        }
    }

    pub fn finished_one(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match self.budget {
            Budget::Requests(_) => self.bar.set_position(done),
            Budget::Time(_) => {
                if done.is_multiple_of(256) {
                    self.bar.set_position(self.started.elapsed().as_secs());
                    self.bar.set_message(format!("{done} requests"));
                }
            }
        }
    }

    pub fn finish(&self) -> Duration {
        self.bar.finish_and_clear();
        self.started.elapsed()
    }
}

/// The common part of every report, as JSON.
pub fn summary(tally: &Tally, elapsed: Duration) -> Value {
    let h = &tally.latency;
    let total: u64 = tally.by_status.values().sum();
    // Recorded in microseconds; shown in milliseconds.
    let ms = |v: u64| v as f64 / 1000.0;
    json!({
        "requests": total,
        "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "throughput_per_s": (total as f64 / elapsed.as_secs_f64()).round(),
        "latency_ms": {
            "p50": ms(h.value_at_quantile(0.50)),
            "p95": ms(h.value_at_quantile(0.95)),
            "p99": ms(h.value_at_quantile(0.99)),
            "max": ms(h.max()),
        },
        "status": tally.by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "latency_ms_by_status": tally.latency_by_status.iter().map(|(k, h)| (k.to_string(), json!({
            "p50": ms(h.value_at_quantile(0.50)),
            "p99": ms(h.value_at_quantile(0.99)),
            "max": ms(h.max()),
        }))).collect::<serde_json::Map<_, _>>(),
        "problems": tally.by_problem,
        "transport_errors": tally.transport_errors,
    })
}

/// Prints a report as text (or as JSON when asked).
pub fn print(report: &Value, json: bool) {
    if json {
        println!("{report}");
        return;
    }
    let l = &report["latency_ms"];
    println!(
        "requests      {} in {} s",
        report["requests"], report["elapsed_s"]
    );
    println!("throughput    {} /s", report["throughput_per_s"]);
    println!(
        "latency ms    p50 {}  p95 {}  p99 {}  max {}",
        l["p50"], l["p95"], l["p99"], l["max"]
    );
    println!("status        {}", report["status"]);
    if report["problems"]
        .as_object()
        .is_some_and(|p| !p.is_empty())
    {
        println!("problems      {}", report["problems"]);
    }
    if report["transport_errors"] != 0 {
        println!("transport errors {}", report["transport_errors"]);
    }
    if let Some(cpu) = report.get("db_cpu_s") {
        println!(
            "database CPU  {cpu} s ({} µs per created order, PostgreSQL backends)",
            report["db_cpu_us_per_order"]
        );
    }
    if let Some(cpu) = report.get("server_cpu_s") {
        println!(
            "server CPU    {cpu} s ({} µs per created order)",
            report["server_cpu_us_per_order"]
        );
    }
    if let Some(rss) = report.get("server_rss_mb") {
        println!(
            "server RSS    {rss} MB (peak {} MB)",
            report["server_rss_peak_mb"]
        );
    }
    print_checks(report);
}

/// One line per check of a report: its name, ok or FAIL, and what was found.
pub fn print_checks(report: &Value) {
    let Some(checks) = report.get("checks").and_then(Value::as_object) else {
        return;
    };
    let width = checks.keys().map(String::len).max().unwrap_or(0);
    for (name, c) in checks {
        let ok = c["ok"].as_bool().unwrap_or(false);
        println!(
            "check {name:<width$} {} {}",
            if ok { "ok  " } else { "FAIL" },
            c["detail"].as_str().unwrap_or("")
        );
    }
}

/// Did every check pass?
pub fn all_ok(checks: &Value) -> bool {
    checks
        .as_object()
        .is_some_and(|m| m.values().all(|c| c["ok"] == true))
}

/// The server's resident memory, from its /metrics (MB, now and peak).
pub async fn server_rss(client: &reqwest::Client, url: &str) -> Option<(f64, f64)> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let read = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let mb = |b: f64| (b / 1024.0 / 1024.0 * 10.0).round() / 10.0;
    Some((
        mb(read("caja_process_resident_memory_bytes")?),
        mb(read("caja_process_resident_memory_peak_bytes")?),
    ))
}

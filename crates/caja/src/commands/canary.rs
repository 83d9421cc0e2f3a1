//! `caja canary --url URL --for 5m --max-error-rate 1% --max-p99 500ms --min-requests 100`:
//! watches a freshly deployed instance's `/metrics` for a while and says whether to keep
//! it. Each interval gets a verdict; the process exits 0 (pass), 1 (fail: roll back) or 2
//! (inconclusive: too little traffic to judge, which is never a pass).
//!
//! It reads the server's own counters, so it judges real traffic: requests and 5xx from
//! `caja_http_requests_total`, latency from the `caja_http_request_duration_seconds`
//! histogram's buckets (the p99 is the bucket bound at or above the 99th percentile). The
//! probes' own routes (`/health`, `/ready`, `/metrics`) are left out.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The instance's base URL.
    #[arg(long, env = "CAJA_URL")]
    pub url: String,
    /// How long to watch: `300`, `90s`, `5m`.
    #[arg(long = "for", value_parser = parse_duration, default_value = "5m")]
    pub window: Duration,
    /// How often to judge: `30s`.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub interval: Duration,
    /// Most 5xx per request allowed: `1%` or `0.01`.
    #[arg(long, value_parser = parse_rate, default_value = "1%")]
    pub max_error_rate: f64,
    /// Highest p99 latency allowed: `500ms`, `1s`.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub max_p99: Duration,
    /// Fewer requests than this over the window is inconclusive (exit 2), never a pass.
    #[arg(long, default_value_t = 100)]
    pub min_requests: u64,
}

/// What one scrape of `/metrics` says, cumulative since the server started.
#[derive(Debug, Clone, Default, PartialEq)]
struct Sample {
    requests: f64,
    errors: f64,
    /// Latency histogram: bucket upper bound (seconds) → cumulative count.
    buckets: BTreeMap<u64, f64>,
}

/// The change between two samples.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    requests: f64,
    errors: f64,
    p99: Option<f64>,
}

enum Verdict {
    Pass,
    Fail(String),
    Inconclusive,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = args.url.trim_end_matches('/').to_owned();
    let first = scrape(&client, &base).await?;
    let mut last = first.clone();
    let mut elapsed = Duration::ZERO;
    let interval = args
        .interval
        .min(args.window)
        .max(Duration::from_millis(100));
    println!(
        "watching {base} for {:?}: error rate ≤ {:.2}%, p99 ≤ {:?}, at least {} requests",
        args.window,
        args.max_error_rate * 100.0,
        args.max_p99,
        args.min_requests
    );
    while elapsed < args.window {
        let step = interval.min(args.window - elapsed);
        tokio::time::sleep(step).await;
        elapsed += step;
        let now = scrape(&client, &base).await?;
        let w = between(&last, &now);
        let verdict = judge(&w, &args, 1);
        print_line(&format!("{:>6.0?}", elapsed), &w, &verdict);
        if let Verdict::Fail(_) = verdict {
            println!("FAIL: roll back");
            return Ok(ExitCode::from(1));
        }
        last = now;
    }
    let total = between(&first, &last);
    let verdict = judge(&total, &args, args.min_requests);
    print_line("window", &total, &verdict);
    Ok(match verdict {
        Verdict::Pass => {
            println!("PASS");
            ExitCode::SUCCESS
        }
        Verdict::Fail(_) => {
            println!("FAIL: roll back");
            ExitCode::from(1)
        }
        Verdict::Inconclusive => {
            println!("INCONCLUSIVE: too little traffic to judge");
            ExitCode::from(2)
        }
    })
}

fn print_line(when: &str, w: &Window, verdict: &Verdict) {
    let rate = if w.requests > 0.0 {
        w.errors / w.requests * 100.0
    } else {
        0.0
    };
    let p99 = w
        .p99
        .map(|s| format!("{:.0} ms", s * 1000.0))
        .unwrap_or_else(|| "-".into());
    let says = match verdict {
        Verdict::Pass => "ok".to_owned(),
        Verdict::Fail(why) => format!("FAIL ({why})"),
        Verdict::Inconclusive => "too little traffic".to_owned(),
    };
    println!(
        "{when:>8}  {:>7} requests  {:>6} 5xx ({rate:.2}%)  p99 {p99:>8}  {says}",
        w.requests, w.errors
    );
}

fn judge(w: &Window, args: &Args, min_requests: u64) -> Verdict {
    if w.requests > 0.0 && w.errors / w.requests > args.max_error_rate {
        return Verdict::Fail(format!(
            "error rate {:.2}% over {:.2}%",
            w.errors / w.requests * 100.0,
            args.max_error_rate * 100.0
        ));
    }
    if let Some(p99) = w.p99 {
        if p99 > args.max_p99.as_secs_f64() {
            return Verdict::Fail(format!(
                "p99 {:.0} ms over {:?}",
                p99 * 1000.0,
                args.max_p99
            ));
        }
    }
    if w.requests < min_requests as f64 || w.requests == 0.0 {
        return Verdict::Inconclusive;
    }
    Verdict::Pass
}

async fn scrape(client: &reqwest::Client, base: &str) -> anyhow::Result<Sample> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}/metrics"))?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse(&text))
}

const PROBES: [&str; 3] = ["/health", "/ready", "/metrics"];

/// Reads the two series the canary needs from Prometheus text.
fn parse(text: &str) -> Sample {
    let mut s = Sample::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |key: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_owned())
            })
        };
        if label("route").is_some_and(|r| PROBES.contains(&r.as_str())) {
            continue;
        }
        match name {
            "caja_http_requests_total" => {
                s.requests += value;
                if label("status").is_some_and(|st| st.starts_with('5')) {
                    s.errors += value;
                }
            }
            "caja_http_request_duration_seconds_bucket" => {
                let le = label("le").unwrap_or_default();
                let bound = if le == "+Inf" {
                    u64::MAX
                } else {
                    match le.parse::<f64>() {
                        Ok(b) => (b * 1e6) as u64,
                        Err(_) => continue,
                    }
                };
                *s.buckets.entry(bound).or_default() += value;
            }
            _ => {}
        }
    }
    s
}

fn between(before: &Sample, after: &Sample) -> Window {
    let requests = (after.requests - before.requests).max(0.0);
    let errors = (after.errors - before.errors).max(0.0);
    let deltas: Vec<(u64, f64)> = after
        .buckets
        .iter()
        .map(|(bound, n)| {
            (
                *bound,
                n - before.buckets.get(bound).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let count = deltas.last().map(|(_, n)| *n).unwrap_or(0.0);
    let p99 = (count > 0.0)
        .then(|| {
            deltas
                .iter()
                .find(|(_, n)| *n >= 0.99 * count)
                .map(|(bound, _)| {
                    if *bound == u64::MAX {
                        f64::INFINITY
                    } else {
                        *bound as f64 / 1e6
                    }
                })
        })
        .flatten();
    Window {
        requests,
        errors,
        p99,
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 5m or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: use ms, s, m or h")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` must be between 0 and 24 hours"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let rate = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a rate like 1% or 0.01"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("`{s}` must be between 0% and 100%"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE caja_http_requests_total counter
caja_http_requests_total{method="GET",route="/v1/products",status="200"} 90
caja_http_requests_total{method="POST",route="/v1/orders",status="503"} 10
caja_http_requests_total{method="GET",route="/health",status="200"} 1000
caja_http_request_duration_seconds_bucket{method="GET",route="/v1/products",le="0.1"} 95
caja_http_request_duration_seconds_bucket{method="GET",route="/v1/products",le="0.5"} 99
caja_http_request_duration_seconds_bucket{method="GET",route="/v1/products",le="1"} 100
caja_http_request_duration_seconds_bucket{method="GET",route="/v1/products",le="+Inf"} 100
"#;

    #[test]
    fn a_scrape_counts_requests_errors_and_latency_without_the_probes() {
        let s = parse(TEXT);
        assert_eq!((s.requests, s.errors), (100.0, 10.0));
        let w = between(&Sample::default(), &s);
        assert_eq!(w.p99, Some(0.5));
    }

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_rate("1%").unwrap(), 0.01);
        assert_eq!(parse_rate("0.05").unwrap(), 0.05);
        assert!(parse_rate("150%").is_err());
    }
}

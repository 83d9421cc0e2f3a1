//! Prometheus metrics. The recorder is process-wide (the `metrics` facade has one global
//! recorder), installed on first use so several apps in one test process share it.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY: &str = "caja_http_request_duration_seconds";
/// Exported as histograms (buckets) rather than summaries, so replicas can be aggregated.
const TIMINGS: [&str; 2] = [LATENCY, "caja_checkout_duration_seconds"];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The handle that renders the exposition text, or `None` if another recorder was
/// installed first (then `/metrics` says so instead of failing the process).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let mut builder = PrometheusBuilder::new();
            for name in TIMINGS {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_owned()), &buckets)
                    .ok()?;
            }
            builder.install_recorder().ok()
        })
        .as_ref()
}

/// Counts a request and records its latency, under its method, matched route and status.
pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let (requests, latency) = request_handles(method, route, status);
    requests.increment(1);
    latency.record(elapsed.as_secs_f64());
}

/// Per matched route, the request counters by method and status and the latency histograms
/// by method. Finding a labelled metric in the registry builds its key (three label strings)
/// and hashes it: 3.3k instructions a request, 1% of a checkout's, by callgrind. A route's
/// handles are found by its name and a short scan instead.
#[derive(Default)]
struct RouteMetrics {
    requests: Vec<(String, u16, Counter)>,
    latency: Vec<(String, Histogram)>,
}

/// Most handles kept per route: methods are the client's text, and an unmatched route sees
/// whatever a scanner sends. Past it, handles are looked up in the registry each time.
const KEPT_PER_ROUTE: usize = 64;

static ROUTES: LazyLock<RwLock<HashMap<String, RouteMetrics>>> = LazyLock::new(Default::default);

fn request_handles(method: &str, route: &str, status: u16) -> (Counter, Histogram) {
    let kept = |m: &RouteMetrics| {
        let requests = m
            .requests
            .iter()
            .find(|(mm, s, _)| mm == method && *s == status)?;
        let latency = m.latency.iter().find(|(mm, _)| mm == method)?;
        Some((requests.2.clone(), latency.1.clone()))
    };
    if let Some(found) = ROUTES
        .read()
        .ok()
        .and_then(|routes| routes.get(route).and_then(kept))
    {
        return found;
    }
    // Handles made before the recorder is installed would record nowhere.
    let _ = handle();
    let requests = metrics::counter!(
        "caja_http_requests_total",
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    );
    let latency =
        metrics::histogram!(LATENCY, "method" => method.to_owned(), "route" => route.to_owned());
    if let Ok(mut routes) = ROUTES.write() {
        let m = routes.entry(route.to_owned()).or_default();
        if m.requests.len() < KEPT_PER_ROUTE
            && !m
                .requests
                .iter()
                .any(|(mm, s, _)| mm == method && *s == status)
        {
            m.requests
                .push((method.to_owned(), status, requests.clone()));
        }
        if m.latency.len() < KEPT_PER_ROUTE && !m.latency.iter().any(|(mm, _)| mm == method) {
            m.latency.push((method.to_owned(), latency.clone()));
        }
    }
    (requests, latency)
}

pub fn record_pool(size: u32, idle: u32) {
    metrics::gauge!("caja_db_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("caja_db_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
}

/// The process's resident memory now and at its peak, from /proc (Linux); zero elsewhere.
pub fn record_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    metrics::gauge!("caja_process_resident_memory_bytes").set(kib("VmRSS:") * 1024.0);
    metrics::gauge!("caja_process_resident_memory_peak_bytes").set(kib("VmHWM:") * 1024.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_handles_count_into_the_same_series_as_the_registry() {
        let Some(exposition) = handle() else {
            panic!("another recorder was installed in this test process");
        };
        let route = "/test/kept-handles";
        for status in [200, 200, 200, 404] {
            record_request("GET", route, status, Duration::from_millis(3));
        }
        record_request("POST", route, 201, Duration::from_millis(3));
        let text = exposition.render();
        let count = |labels: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("caja_http_requests_total{{{labels}}}")))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(
            count(&format!("method=\"GET\",route=\"{route}\",status=\"200\"")).as_deref(),
            Some("3"),
            "{text}"
        );
        assert_eq!(
            count(&format!("method=\"GET\",route=\"{route}\",status=\"404\"")).as_deref(),
            Some("1")
        );
        assert_eq!(
            count(&format!("method=\"POST\",route=\"{route}\",status=\"201\"")).as_deref(),
            Some("1")
        );
        let latency = format!(
            "caja_http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\"}} 4"
        );
        assert!(text.lines().any(|l| l == latency), "{text}");
    }
}

//! Prometheus metrics. The recorder is process-wide (the `metrics` facade has one global
//! recorder), installed on first use so several apps in one test process share it.

use std::sync::OnceLock;
use std::time::Duration;

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

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("caja_http_requests_total", &labels).increment(1);
    metrics::histogram!(LATENCY, "method" => method.to_owned(), "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
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

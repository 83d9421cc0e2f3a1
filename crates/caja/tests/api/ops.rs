//! /health, /ready, /metrics, /openapi.json and CORS.

use std::time::Duration;

use axum::http::HeaderValue;
use caja_server::ServerConfig;
use caja_store::migrate::Migrator;

use crate::helpers::{send, spawn_app, spawn_app_with, Backend};

on_both_engines!(
    health_is_200_while_the_process_runs,
    ready_reports_the_database_and_fails_with_pending_migrations,
    metrics_show_requests_latency_and_the_pool,
    the_openapi_document_covers_every_route,
    cors_is_off_by_default_and_on_for_configured_origins,
);

async fn health_is_200_while_the_process_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(app.client.get(app.url("/health"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/health+json"));
    assert_eq!(r.body["status"], "pass");
}

async fn ready_reports_the_database_and_fails_with_pending_migrations(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(app.client.get(app.url("/ready"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/health+json"));
    assert_eq!(r.body["status"], "pass");
    let db = &r.body["checks"]["database:responseTime"][0];
    assert_eq!(db["status"], "pass");
    assert_eq!(db["observedUnit"], "ms");
    assert!(db["observedValue"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        r.body["checks"]["migrations:pending"][0]["observedValue"],
        0
    );
    assert!(r.body["version"].is_string());
    assert!(r.body["checks"]["process:uptime"][0]["observedValue"].is_u64());

    Migrator::new(&app.store, Duration::from_secs(5), Duration::from_secs(5))
        .down(1, &mut |_| {})
        .await
        .unwrap();
    let r = send(app.client.get(app.url("/ready"))).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["status"], "fail");
    assert_eq!(
        r.body["checks"]["migrations:pending"][0]["observedValue"],
        1
    );

    app.store.close().await;
    let r = send(app.client.get(app.url("/ready"))).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body["checks"]["database:responseTime"][0]["status"],
        "fail"
    );
}

async fn metrics_show_requests_latency_and_the_pool(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(send(app.get("/v1/products")).await.status, 200);
    let text = app.metrics().await;
    assert!(text.contains("caja_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/v1/products\""), "{text}");
    assert!(text.contains("status=\"200\""));
    assert!(text.contains("caja_http_request_duration_seconds_bucket{"));
    assert!(text.contains("caja_db_connections{state=\"idle\"}"));
    assert!(text.contains("caja_db_connections{state=\"in_use\"}"));
}

/// Every route the router serves, by method and path.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/products"),
    ("get", "/v1/products"),
    ("get", "/v1/products/{id}"),
    ("patch", "/v1/products/{id}"),
    ("delete", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/stock-movements"),
    ("get", "/v1/products/{id}/stock-movements"),
    ("post", "/v1/orders"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("post", "/v1/orders/{id}/payments"),
    ("post", "/v1/orders/{id}/checkout"),
    ("post", "/v1/orders/{id}/cancel"),
    ("post", "/v1/orders/{id}/fulfill"),
    ("post", "/v1/orders/{id}/refund"),
    ("post", "/v1/tabs"),
    ("get", "/v1/tabs"),
    ("get", "/v1/tabs/{id}"),
    ("post", "/v1/tabs/{id}/items"),
    ("delete", "/v1/tabs/{id}/items/{item_id}"),
    ("post", "/v1/tabs/{id}/pause"),
    ("post", "/v1/tabs/{id}/resume"),
    ("post", "/v1/tabs/{id}/close"),
    ("post", "/v1/tabs/{id}/void"),
    ("get", "/v1/changes"),
    ("get", "/v1/stream"),
    ("get", "/v1/maintenance"),
    ("put", "/v1/maintenance"),
    ("get", "/v1/audit"),
    ("get", "/v1/payments/events"),
    ("post", "/v1/webhooks/mercadopago"),
    ("post", "/v1/events"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("patch", "/v1/events/{id}"),
    ("post", "/v1/events/{id}/cancel"),
    ("get", "/v1/events/{id}/availability"),
    ("post", "/v1/events/{id}/holds"),
    ("get", "/v1/holds/{id}"),
    ("post", "/v1/events/{id}/queue"),
    ("get", "/v1/events/{id}/queue/{ticket}"),
    ("post", "/v1/webhook-subscriptions"),
    ("get", "/v1/webhook-subscriptions"),
    ("get", "/v1/webhook-subscriptions/{id}"),
    ("delete", "/v1/webhook-subscriptions/{id}"),
    ("post", "/v1/webhook-subscriptions/{id}/enable"),
    ("post", "/v1/webhook-subscriptions/{id}/disable"),
    ("post", "/v1/webhook-subscriptions/{id}/replay"),
    ("get", "/v1/webhook-subscriptions/{id}/deliveries"),
    ("get", "/v1/products/{id}/stock"),
    ("post", "/v1/orders/{id}/transfer"),
    ("post", "/v1/locations"),
    ("get", "/v1/locations"),
    ("get", "/v1/locations/{id}"),
    ("patch", "/v1/locations/{id}"),
    ("post", "/v1/transfers"),
    ("get", "/v1/transfers"),
    ("get", "/v1/transfers/{id}"),
    ("post", "/v1/transfers/{id}/receive"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

async fn the_openapi_document_covers_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = r.body["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} missing"
        );
        // And the route really is served (not 404).
        let url = app.url(&path.replace("{id}", "prod_01J00000000000000000000000"));
        let url = if path.starts_with("/v1/orders/") {
            url.replace("prod_", "ord_")
        } else {
            url
        };
        let req = app
            .client
            .request(method.to_uppercase().parse().unwrap(), url)
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .body("{}");
        let status = req.send().await.unwrap().status();
        assert!(
            status != 405,
            "{method} {path} is documented but not routed"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "every documented route is listed here"
    );
}

async fn cors_is_off_by_default_and_on_for_configured_origins(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(
        app.get("/v1/products")
            .header("origin", "https://shop.example"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());

    let config = ServerConfig {
        cors_origins: vec![HeaderValue::from_static("https://shop.example")],
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    let r = send(
        app.get("/v1/products")
            .header("origin", "https://shop.example"),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let r = send(
        app.get("/v1/products")
            .header("origin", "https://evil.example"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());
    let preflight = send(
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/products"))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,idempotency-key",
            ),
    )
    .await;
    assert!(preflight.status < 300);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
}

/// Schemathesis, with every check, against the server's own OpenAPI document on both
/// engines (bounded examples per operation, a fixed seed). Needs `st`
/// (`pip install schemathesis`), which `.ci/run` installs.
#[test]
fn the_openapi_document_holds_up_to_schemathesis_on_both_engines() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/schemathesis");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_caja"))
        .arg("15")
        .env(
            "CAJA_TEST_POSTGRES_URL",
            crate::helpers::postgres_admin_url(),
        )
        .output()
        .expect("run scripts/schemathesis (is `st` installed? pip install schemathesis)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `caja health`: 0 against a ready server, with every check printed; 1 when it cannot be
/// reached, or is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caja_health_passes_a_ready_server_and_fails_an_absent_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let ok = tokio::task::spawn_blocking({
        let base = app.base.clone();
        move || crate::migrate::caja(&["health", "--url", &base])
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains("/ready") && out.contains("database:responseTime"),
        "{out}"
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let down = crate::migrate::caja(&["health", "--url", &closed, "--timeout", "2"]);
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stdout).contains("unreachable"));
}

/// `caja canary` against a separate server process (its own metrics): healthy traffic
/// passes (0), 503s fail (1), no traffic is inconclusive (2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caja_canary_passes_fails_or_cannot_tell() {
    use crate::cli::{wait_ready, Server, REPLICA_KEY};
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[], &[("CAJA_ADMIN_KEY", REPLICA_KEY)]);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let canary = |base: String| {
        tokio::task::spawn_blocking(move || {
            crate::migrate::caja(&[
                "canary",
                "--url",
                &base,
                "--for",
                "2s",
                "--interval",
                "1s",
                "--min-requests",
                "50",
                "--max-error-rate",
                "1%",
                "--max-p99",
                "2s",
            ])
        })
    };
    // Idle: nothing to judge.
    let idle = canary(server.base.clone()).await.unwrap();
    assert_eq!(
        idle.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&idle.stdout)
    );

    // Traffic while the canary watches.
    let load = |path: &'static str, post: bool| {
        let (client, base) = (client.clone(), server.base.clone());
        tokio::spawn(async move {
            for i in 0..400 {
                let url = format!("{base}{path}");
                let req = if post {
                    client
                        .post(url)
                        .header("idempotency-key", format!("canary-{i}"))
                        .json(&serde_json::json!({"lines": [{"product_id": "prod_01J00000000000000000000000", "quantity": 1}]}))
                } else {
                    client.get(url)
                };
                let _ = req.bearer_auth(REPLICA_KEY).send().await;
                tokio::time::sleep(std::time::Duration::from_millis(4)).await;
            }
        })
    };
    let traffic = load("/v1/products", false);
    let healthy = canary(server.base.clone()).await.unwrap();
    traffic.abort();
    let out = String::from_utf8_lossy(&healthy.stdout);
    assert_eq!(healthy.status.code(), Some(0), "{out}");
    assert!(out.contains("PASS"), "{out}");

    // Injected errors: in maintenance mode every write is a 503.
    let on = client
        .put(format!("{}/v1/maintenance", server.base))
        .bearer_auth(REPLICA_KEY)
        .json(&serde_json::json!({"on": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 200);
    let traffic = load("/v1/orders", true);
    let failing = canary(server.base.clone()).await.unwrap();
    traffic.abort();
    let out = String::from_utf8_lossy(&failing.stdout);
    assert_eq!(failing.status.code(), Some(1), "{out}");
    assert!(out.contains("error rate"), "{out}");
}

/// The shipped alert rules are valid Prometheus rules. Needs `promtool` (Debian's
/// `prometheus` package), which `.ci/run` installs.
#[test]
fn the_shipped_alert_rules_pass_promtool() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alerts.yml");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("run promtool (apt-get install prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `caja bench checkout` against a server process: its promises hold, and with
/// `--server-pid` it reports the server's CPU time per created order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caja_bench_checkout_checks_its_promises_and_reports_cpu_per_order() {
    use crate::cli::{wait_ready, Server, REPLICA_KEY};
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[], &[("CAJA_ADMIN_KEY", REPLICA_KEY)]);
    wait_ready(&reqwest::Client::new(), &server.base).await;
    let (base, pid) = (server.base.clone(), server.pid().to_string());
    let out = tokio::task::spawn_blocking(move || {
        crate::migrate::caja(&[
            "bench",
            "checkout",
            "--url",
            &base,
            "--key",
            REPLICA_KEY,
            "--concurrency",
            "4",
            "--requests",
            "60",
            "--stock",
            "50",
            "--json",
            "--server-pid",
            &pid,
        ])
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON report");
    assert_eq!(report["orders_created"], 50, "{report}");
    assert!(
        report["checks"]
            .as_object()
            .unwrap()
            .values()
            .all(|c| c["ok"] == true),
        "{report}"
    );
    assert!(
        report["server_cpu_us_per_order"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

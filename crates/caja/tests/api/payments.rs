//! Payments through a provider, against `caja-dev-provider` (MercadoPago's HTTP on
//! loopback): webhooks racing the buyer's return, redeliveries, refunds out of order, bad
//! signatures, late payments, and a provider that hangs.

use std::collections::HashMap;
use std::time::Duration;

use caja_core::payments::backoff::RetryPolicy;
use caja_core::payments::breaker::BreakerConfig;
use caja_server::payments::{CallPolicy, MercadoPagoConfig, Secret};
use caja_server::ServerConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{send, spawn_app_with, Backend, Reply, TestApp};

on_both_engines!(
    a_buyer_pays_its_own_ticket_through_the_provider,
    a_checkout_paid_at_the_provider_pays_the_order,
    the_webhook_and_the_buyers_return_racing_pay_once,
    a_webhook_delivered_ten_times_and_a_refund_out_of_order_end_right,
    bad_and_stale_signatures_are_refused_and_unknown_orders_logged,
    a_late_payment_takes_the_stock_again_or_needs_a_refund,
    a_hanging_provider_opens_the_breaker_and_recovers,
);

const SECRET: &str = "test webhook secret";

/// The app with MercadoPago pointed at a simulator, and the simulator.
struct Shop {
    app: TestApp,
    sim: String,
    _stop: StopOnDrop,
}

struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn shop(backend: Backend, calls: CallPolicy, timeout: Duration) -> Shop {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        mercadopago: Some(MercadoPagoConfig {
            api_url: sim.clone(),
            access_token: Secret::new("TEST-access-token"),
            webhook_secret: Secret::new(SECRET),
            webhook_tolerance: Duration::from_secs(300),
            public_url: None,
            timeout,
            calls,
        }),
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    let stop = CancellationToken::new();
    tokio::spawn(caja_dev_provider::serve(
        listener,
        caja_dev_provider::Options {
            webhook_secret: SECRET.into(),
            notify_url: Some(app.url("/v1/webhooks/mercadopago")),
            clock: app.clock.clone(),
        },
        stop.clone(),
    ));
    Shop {
        app,
        sim,
        _stop: StopOnDrop(stop),
    }
}

async fn default_shop(backend: Backend) -> Shop {
    shop(backend, CallPolicy::default(), Duration::from_secs(5)).await
}

impl Shop {
    async fn sim(&self, path: &str, body: Value) -> Value {
        let r = send(
            self.app
                .client
                .post(format!("{}{path}", self.sim))
                .json(&body),
        )
        .await;
        assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
        r.body
    }

    /// A payment made at the provider for `order` (not yet notified); its id.
    async fn paid_at_provider(&self, order: &str, amount: f64) -> String {
        let p = self
            .sim(
                "/_sim/payments",
                json!({"external_reference": order, "amount": amount, "currency": "MXN"}),
            )
            .await;
        p["id"].as_u64().unwrap().to_string()
    }

    /// Sends the payment's notification as the provider would; the delivery statuses.
    async fn notify(&self, payment: &str, options: Value) -> Vec<u64> {
        let r = self
            .sim(&format!("/_sim/payments/{payment}/notify"), options)
            .await;
        r["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect()
    }

    async fn order(&self, key: &str, product: &str, quantity: i64) -> Value {
        let r = self.app.order(key, &[(product, quantity)]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    async fn status(&self, order: &str) -> String {
        send(self.app.get(&format!("/v1/orders/{order}")))
            .await
            .body["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every event on the feed, in order.
    async fn feed(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0i64;
        loop {
            let page = send(
                self.app
                    .get(&format!("/v1/changes?after={after}&limit=1000")),
            )
            .await;
            let data = page.body["data"].as_array().unwrap().clone();
            if data.is_empty() {
                return events;
            }
            after = data.last().unwrap()["seq"].as_i64().unwrap();
            events.extend(data);
        }
    }

    async fn events(&self) -> Vec<Value> {
        send(self.app.get("/v1/payments/events?limit=200"))
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// How many events of `kind` the feed holds per resource id.
fn count_by_resource(feed: &[Value], kind: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in feed.iter().filter(|e| e["type"] == kind) {
        *counts
            .entry(e["data"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

async fn a_buyer_pays_its_own_ticket_through_the_provider(backend: Backend) {
    let shop = default_shop(backend).await;
    let app = &shop.app;
    let now = app.store.now();
    let at = |d: chrono::Duration| caja_core::time::format(&(now + d));
    let ev = send(app.post_idem(
        "/v1/events",
        "event",
        &json!({
            "name": "Gig", "starts_at": at(chrono::Duration::days(9)),
            "sale_starts_at": at(chrono::Duration::minutes(-1)), "max_per_order": 2,
            "sections": [{"name": "Hall", "price": {"amount": 25000, "currency": "MXN"}, "seats": ["A1", "A2"]}],
        }),
    ))
    .await;
    assert_eq!(ev.status, 201, "{}", ev.body);
    let event = ev.body["id"].as_str().unwrap();
    let public = app.key(caja_core::auth::Role::Public).await;
    let buyer = |r: reqwest::RequestBuilder| r.bearer_auth(&public);
    let hold = send(
        buyer(
            app.client
                .post(app.url(&format!("/v1/events/{event}/holds"))),
        )
        .header("idempotency-key", "hold")
        .json(&json!({"seats": ["A1"], "client_ref": "me"})),
    )
    .await;
    assert_eq!(hold.status, 201, "{}", hold.body);
    let order = send(
        buyer(app.client.post(app.url("/v1/orders")))
            .header("idempotency-key", "order")
            .json(&json!({"hold_id": hold.body["id"], "client_ref": "me"})),
    )
    .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let id = order.body["id"].as_str().unwrap().to_owned();
    let checkout = |client_ref: &str, key: &str| {
        buyer(
            app.client
                .post(app.url(&format!("/v1/orders/{id}/checkout?client_ref={client_ref}"))),
        )
        .header("idempotency-key", key.to_owned())
    };
    send(checkout("someone-else", "c0"))
        .await
        .assert_problem(404, "not-found");
    let link = send(checkout("me", "c1")).await;
    assert_eq!(link.status, 201, "{}", link.body);
    let preference = link.body["checkout_id"].as_str().unwrap().to_owned();
    shop.sim(&format!("/_sim/preferences/{preference}/pay"), json!({}))
        .await;
    let mut paid = false;
    for _ in 0..200 {
        if shop.status(&id).await == "paid" {
            paid = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(paid, "the provider's webhook paid the ticket");
    let a = send(app.get(&format!("/v1/events/{event}/availability"))).await;
    assert_eq!(a.body["sections"][0]["sold"], 1);
    app.assert_books_balance().await;
}

async fn a_checkout_paid_at_the_provider_pays_the_order(backend: Backend) {
    let shop = default_shop(backend).await;
    let product = shop.app.product("CHECKOUT", 3).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = shop.order("checkout", &product, 2).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let checkout = send(shop.app.post_idem(
        &format!("/v1/orders/{id}/checkout"),
        "checkout-1",
        &json!({}),
    ))
    .await;
    assert_eq!(checkout.status, 201, "{}", checkout.body);
    assert_eq!(checkout.body["provider"], "mercadopago");
    let preference = checkout.body["checkout_id"].as_str().unwrap().to_owned();
    // The buyer pays on the provider's page; its webhook comes a little later.
    shop.sim(
        &format!("/_sim/preferences/{preference}/pay"),
        json!({"delay_ms": 100}),
    )
    .await;
    let mut paid = false;
    for _ in 0..200 {
        if shop.status(&id).await == "paid" {
            paid = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(paid, "the provider's webhook paid the order");
    // The notification's outcome is logged just after the payment it applied commits.
    let mut events = shop.events().await;
    for _ in 0..200 {
        if events.first().is_some_and(|e| !e["outcome"].is_null()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        events = shop.events().await;
    }
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outcome"], "order paid");
    assert_eq!(events[0]["order_id"], id.as_str());
    // A paid order has no checkout to create any more.
    let again = send(shop.app.post_idem(
        &format!("/v1/orders/{id}/checkout"),
        "checkout-2",
        &json!({}),
    ))
    .await;
    again.assert_problem(409, "invalid-transition");
    shop.app.assert_books_balance().await;
}

async fn the_webhook_and_the_buyers_return_racing_pay_once(backend: Backend) {
    let shop = default_shop(backend).await;
    let product = shop.app.product("RACE", 1000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut orders = Vec::new();
    for round in 0..100 {
        let order = shop.order(&format!("race-{round}"), &product, 1).await;
        let id = order["id"].as_str().unwrap().to_owned();
        let payment = shop.paid_at_provider(&id, 45.5).await;
        let hook = shop.notify(&payment, json!({}));
        let buyer = send(shop.app.post_idem(
            &format!("/v1/orders/{id}/payments"),
            &format!("return-{round}"),
            &json!({"method": "provider", "amount": {"amount": 4550, "currency": "MXN"}, "reference": payment}),
        ));
        let (hook, buyer) = tokio::join!(hook, buyer);
        assert_eq!(hook, vec![200], "round {round}");
        assert_eq!(buyer.status, 200, "round {round}: {}", buyer.body);
        assert_eq!(buyer.body["status"], "paid");
        orders.push(id);
    }
    let feed = shop.feed().await;
    let paid = count_by_resource(&feed, "order.paid");
    for id in &orders {
        assert_eq!(shop.status(id).await, "paid");
        assert_eq!(paid.get(id), Some(&1), "one order.paid for {id}");
    }
    // One payment per order, equal to its total, and the books balance.
    shop.app.assert_books_balance().await;
    assert_eq!(shop.app.stock(&product).await, 900);
}

async fn a_webhook_delivered_ten_times_and_a_refund_out_of_order_end_right(backend: Backend) {
    let shop = default_shop(backend).await;
    let product = shop.app.product("DUP", 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = shop.order("dup", &product, 2).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let payment = shop.paid_at_provider(&id, 91.0).await;
    // The same notification (one event id) delivered ten times at once.
    let deliveries = futures_util::future::join_all(
        (0..10).map(|_| shop.notify(&payment, json!({"event_id": 777}))),
    )
    .await;
    assert!(deliveries.iter().all(|d| d == &vec![200]), "{deliveries:?}");
    assert_eq!(shop.status(&id).await, "paid");
    let feed = shop.feed().await;
    assert_eq!(count_by_resource(&feed, "order.paid").get(&id), Some(&1));
    let events = shop.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_id"], "777");
    assert_eq!(events[0]["deliveries"], 10);
    assert_eq!(events[0]["status"], "applied");
    assert_eq!(shop.app.stock(&product).await, 8);

    // Refunded at the provider; its own notification is lost, and an older one about the
    // payment ("payment.created", a new event id) arrives late: the status fetched is the
    // refund, so the order ends refunded, with its stock back.
    shop.sim(
        &format!("/_sim/payments/{payment}/refund"),
        json!({"notify": false}),
    )
    .await;
    assert_eq!(
        shop.notify(&payment, json!({"action": "payment.created"}))
            .await,
        vec![200]
    );
    assert_eq!(shop.status(&id).await, "refunded");
    assert_eq!(shop.app.stock(&product).await, 10);
    // The refund's own notification, late: nothing more changes.
    assert_eq!(
        shop.notify(&payment, json!({"action": "payment.updated", "times": 3}))
            .await,
        vec![200, 200, 200]
    );
    assert_eq!(shop.status(&id).await, "refunded");
    assert_eq!(shop.app.stock(&product).await, 10);
    let feed = shop.feed().await;
    assert_eq!(
        count_by_resource(&feed, "order.refunded").get(&id),
        Some(&1)
    );
    shop.app.assert_books_balance().await;
}

async fn bad_and_stale_signatures_are_refused_and_unknown_orders_logged(backend: Backend) {
    let shop = default_shop(backend).await;
    let product = shop.app.product("SIG", 5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = shop.order("sig", &product, 1).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let payment = shop.paid_at_provider(&id, 45.5).await;
    assert_eq!(
        shop.notify(&payment, json!({"signature": "bad"})).await,
        vec![401]
    );
    assert_eq!(
        shop.notify(&payment, json!({"signature": "stale"})).await,
        vec![401]
    );
    // No signature at all.
    let unsigned = send(
        shop.app
            .client
            .post(shop.app.url(&format!(
                "/v1/webhooks/mercadopago?data.id={payment}&type=payment"
            )))
            .json(&json!({"id": 1, "type": "payment", "data": {"id": payment}})),
    )
    .await;
    unsigned.assert_problem(401, "invalid-signature");
    assert!(shop.events().await.is_empty(), "nothing stored");
    assert_eq!(shop.status(&id).await, "pending_payment");

    // A payment for an order caja does not have: accepted, logged, nothing changed.
    for reference in ["ord_01J00000000000000000000000", "not an order"] {
        let stranger = shop.paid_at_provider(reference, 45.5).await;
        assert_eq!(shop.notify(&stranger, json!({})).await, vec![200]);
    }
    let events = shop.events().await;
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e["status"] == "ignored" && e["outcome"] == "unknown-order"));
    assert_eq!(shop.status(&id).await, "pending_payment");
    assert_eq!(shop.app.stock(&product).await, 4);
    shop.app.assert_books_balance().await;
}

async fn a_late_payment_takes_the_stock_again_or_needs_a_refund(backend: Backend) {
    let shop = default_shop(backend).await;
    let plenty = shop.app.product("PLENTY", 2).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let scarce = shop.app.product("SCARCE", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = shop.order("kept", &plenty, 2).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lost = shop.order("lost", &scarce, 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Both expire unpaid, and the sweeper gives their stock back.
    shop.app.clock.advance(chrono::Duration::minutes(16));
    for id in [&kept, &lost] {
        let mut expired = false;
        for _ in 0..200 {
            if shop.status(id).await == "expired" {
                expired = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(expired, "the sweeper expires {id}");
    }
    // Someone else buys the scarce unit.
    shop.order("other", &scarce, 1).await;

    // The buyers' payments arrive late.
    let p1 = shop.paid_at_provider(&kept, 91.0).await;
    assert_eq!(shop.notify(&p1, json!({})).await, vec![200]);
    assert_eq!(
        shop.status(&kept).await,
        "paid",
        "its stock was still there"
    );
    assert_eq!(shop.app.stock(&plenty).await, 0);

    let p2 = shop.paid_at_provider(&lost, 45.5).await;
    assert_eq!(shop.notify(&p2, json!({})).await, vec![200]);
    assert_eq!(shop.status(&lost).await, "needs_refund");
    assert_eq!(shop.app.stock(&scarce).await, 0, "the other buyer keeps it");
    let owed = send(shop.app.get("/v1/orders?status=needs_refund")).await;
    let owed: Vec<&str> = owed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(owed, vec![lost.as_str()]);
    // The gauge is process-wide and other tests' scrapes set it too: ask until this
    // app's own scrape is the one rendered.
    let mut seen = false;
    for _ in 0..20 {
        if shop
            .app
            .metrics()
            .await
            .contains("caja_orders_needing_refund 1")
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "caja_orders_needing_refund counts it");
    let feed = shop.feed().await;
    assert_eq!(
        count_by_resource(&feed, "order.needs_refund").get(&lost),
        Some(&1)
    );
    shop.app.assert_books_balance().await;
    // `caja check` passes, and names the money owed back.
    let check = crate::migrate::caja(&["check", "--database-url", &shop.app.db.url]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("NOTICE") && stdout.contains(lost.as_str()),
        "{stdout}"
    );

    // The merchant refunds it: no stock moves, the books still balance.
    let refunded = send(shop.app.post_idem(
        &format!("/v1/orders/{lost}/refund"),
        "refund-lost",
        &json!({"restock": true}),
    ))
    .await;
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    assert_eq!(refunded.body["status"], "refunded");
    assert_eq!(shop.app.stock(&scarce).await, 0);
    // The money went back through the provider.
    let at_provider = send(
        shop.app
            .client
            .get(format!("{}/v1/payments/{p2}", shop.sim))
            .bearer_auth("TEST-access-token"),
    )
    .await;
    assert_eq!(at_provider.body["status"], "refunded");
    // The provider's notification of that refund changes nothing more.
    assert_eq!(
        shop.notify(&p2, json!({"action": "payment.updated"})).await,
        vec![200]
    );
    assert_eq!(shop.status(&lost).await, "refunded");
    shop.app.assert_books_balance().await;
}

async fn a_hanging_provider_opens_the_breaker_and_recovers(backend: Backend) {
    let calls = CallPolicy {
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            budget: Duration::from_secs(5),
        },
        breaker: BreakerConfig {
            window: chrono::Duration::seconds(60),
            min_calls: 3,
            failure_rate: 0.5,
            open_for: chrono::Duration::seconds(30),
            probes: 1,
        },
    };
    let shop = shop(backend, calls, Duration::from_millis(300)).await;
    let product = shop.app.product("HANG", 5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = shop.order("hang", &product, 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let checkout = |key: &str| {
        send(
            shop.app
                .post_idem(&format!("/v1/orders/{id}/checkout"), key, &json!({})),
        )
    };
    shop.sim("/_sim/mode", json!({"mode": "hang"})).await;
    // Each checkout times out (twice: one retry) until the breaker has seen enough.
    let mut opened = false;
    for attempt in 0..4 {
        let r: Reply = checkout(&format!("c{attempt}")).await;
        r.assert_problem(503, "provider-unavailable");
        assert!(r.header("retry-after").is_some());
        let ready = send(shop.app.client.get(shop.app.url("/ready"))).await;
        assert_eq!(
            ready.status, 200,
            "a provider down is not a reason to stop selling"
        );
        if ready.body["checks"]["provider:mercadopago"][0]["observedValue"] == "open" {
            assert_eq!(
                ready.body["checks"]["provider:mercadopago"][0]["status"],
                "warn"
            );
            opened = true;
            break;
        }
    }
    assert!(opened, "the breaker opened");
    // Open: refused at once, without calling the provider.
    let started = std::time::Instant::now();
    let fast = checkout("fast").await;
    fast.assert_problem(503, "provider-unavailable");
    let wait: u64 = fast.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "failed fast, not after a timeout"
    );
    let metrics = shop.app.metrics().await;
    // The gauge is process-wide (other tests' apps set it too): its presence is checked
    // here, this app's breaker state by /ready above.
    assert!(metrics.contains("caja_provider_breaker_state{provider=\"mercadopago\"}"));
    assert!(metrics.contains("outcome=\"rejected\""));

    // The provider comes back; once the breaker's time is up, a probe closes it.
    shop.sim("/_sim/mode", json!({"mode": "ok"})).await;
    shop.app.clock.advance(chrono::Duration::seconds(31));
    let ok = checkout("after").await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert!(ok.body["url"].as_str().unwrap().starts_with(&shop.sim));
    assert_eq!(ok.body["order_id"], id.as_str());
    let again = checkout("after").await;
    assert_eq!(
        again.body["checkout_id"], ok.body["checkout_id"],
        "the same key, the same checkout"
    );
    let ready = send(shop.app.client.get(shop.app.url("/ready"))).await;
    assert_eq!(
        ready.body["checks"]["provider:mercadopago"][0]["observedValue"],
        "closed"
    );
    assert_eq!(
        ready.body["checks"]["provider:mercadopago"][0]["status"],
        "pass"
    );
}

/// The binary with MercadoPago configured from the environment: a half configuration stops
/// start-up with one line, and neither credential ever reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_credentials_never_reach_the_log() {
    use crate::cli::{wait_ready, Server};
    use crate::helpers::TestDb;

    const KEY: &str = "payments-log-test-admin-key-0123456789";
    const TOKEN: &str = "APP_USR-4242424242-token-never-logged";
    let db = TestDb::new(Backend::Sqlite).await;
    let half = crate::migrate::caja(&[
        "serve",
        "--database-url",
        &db.url,
        "--mercadopago-access-token",
        TOKEN,
    ]);
    assert_eq!(half.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&half.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("mercadopago_webhook_secret") && !stderr.contains(TOKEN));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let _stop = StopOnDrop(stop.clone());
    tokio::spawn(caja_dev_provider::serve(
        listener,
        caja_dev_provider::Options {
            webhook_secret: SECRET.into(),
            notify_url: None,
            clock: std::sync::Arc::new(caja_core::time::SystemClock),
        },
        stop,
    ));
    let env = [
        ("CAJA_ADMIN_KEY", KEY),
        ("CAJA_MERCADOPAGO_ACCESS_TOKEN", TOKEN),
        ("CAJA_MERCADOPAGO_WEBHOOK_SECRET", SECRET),
        ("CAJA_MERCADOPAGO_API_URL", sim.as_str()),
    ];
    let server = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let product = send(
        client
            .post(format!("{}/v1/products", server.base))
            .bearer_auth(KEY)
            .json(&json!({"sku": "LOG", "name": "Log", "price": {"amount": 100, "currency": "MXN"}, "stock": 5})),
    )
    .await;
    let order = send(
        client
            .post(format!("{}/v1/orders", server.base))
            .bearer_auth(KEY)
            .header("idempotency-key", "log-order")
            .json(&json!({"lines": [{"product_id": product.body["id"], "quantity": 1}]})),
    )
    .await;
    let id = order.body["id"].as_str().unwrap();
    let checkout = send(
        client
            .post(format!("{}/v1/orders/{id}/checkout", server.base))
            .bearer_auth(KEY)
            .header("idempotency-key", "log-checkout"),
    )
    .await;
    assert_eq!(checkout.status, 201, "{}", checkout.body);
    let forged = send(
        client
            .post(format!(
                "{}/v1/webhooks/mercadopago?data.id=1&type=payment",
                server.base
            ))
            .header("x-signature", "ts=1,v1=00")
            .json(&json!({"id": 1, "type": "payment"})),
    )
    .await;
    forged.assert_problem(401, "invalid-signature");
    let log = server.log();
    assert!(log.contains("\"status\":201"), "{log}");
    assert!(!log.contains(TOKEN), "the access token reached the log");
    assert!(!log.contains(SECRET), "the webhook secret reached the log");
}

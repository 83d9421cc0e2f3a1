//! Webhooks to merchants: every event delivered, in order, signed, through failures,
//! 410s, replays and a `kill -9` mid-delivery.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use caja_core::time::SharedClock;
use caja_core::webhooks;
use caja_server::dispatch::DispatchConfig;
use caja_server::ServerConfig;
use serde_json::{json, Value};

use crate::cli::{wait_ready, Server};
use crate::helpers::{send, spawn_app_with, Backend, TestApp, TestDb};

on_both_engines!(
    a_failing_endpoint_gets_every_event_in_order_once_it_recovers,
    repeated_410s_disable_and_a_replay_delivers_again,
    a_kill_9_mid_delivery_loses_no_event,
);

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: Bytes,
    answered: u16,
}

/// A merchant's endpoint: answers the planned statuses first, then `then`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
    then: Arc<Mutex<u16>>,
    delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        *receiver.then.lock().unwrap() = 200;
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The seqs of the events answered 2xx, deduplicated by delivery id, in arrival order.
    fn delivered(&self) -> Vec<i64> {
        let mut seen = std::collections::HashSet::new();
        self.got()
            .iter()
            .filter(|g| g.answered < 300 && seen.insert(g.id.clone()))
            .map(|g| {
                serde_json::from_slice::<Value>(&g.body).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = *r.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answered = r
        .plan
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*r.then.lock().unwrap());
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got.lock().unwrap().push(Got {
        id: header(webhooks::ID_HEADER),
        timestamp: header(webhooks::TIMESTAMP_HEADER),
        signature: header(webhooks::SIGNATURE_HEADER),
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

fn fast() -> ServerConfig {
    ServerConfig {
        webhooks: DispatchConfig {
            poll: Duration::from_millis(50),
            ..DispatchConfig::default()
        },
        ..ServerConfig::default()
    }
}

async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> Value {
    let r = send(app.post(
        "/v1/webhook-subscriptions",
        &json!({"url": url, "event_types": types, "description": "test"}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    r.body
}

/// The seqs of the feed's events of these types after `after`.
async fn wanted(app: &TestApp, after: i64, types: &[&str]) -> Vec<i64> {
    let page = send(app.get(&format!("/v1/changes?after={after}&limit=1000"))).await;
    page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| types.contains(&e["type"].as_str().unwrap()))
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

/// Waits (moving the clock past each back-off) until `done`.
async fn until(clock: Option<&SharedClockMover>, mut done: impl FnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if done() {
            return;
        }
        if let Some(c) = clock {
            c.advance();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Moves a test app's clock an hour at a time: past any back-off, far from 3 days.
struct SharedClockMover(Arc<caja_core::time::MovableClock>);

impl SharedClockMover {
    fn advance(&self) {
        self.0.advance(chrono::Duration::minutes(61));
    }
}

fn verify_all(got: &[Got], secret: &str, clock: &SharedClock) {
    for g in got {
        assert!(
            webhooks::verify(
                secret.as_bytes(),
                &g.id,
                &g.timestamp,
                &g.body,
                &g.signature,
                clock.now(),
                chrono::Duration::days(365),
            ),
            "signature of {}",
            g.id
        );
    }
}

async fn some_sales(app: &TestApp, n: usize) {
    let p = app
        .product(&format!("HOOK{}", ulid::Ulid::new()), 100)
        .await;
    let pid = p["id"].as_str().unwrap();
    for i in 0..n {
        let key = format!("hook-{}-{i}", ulid::Ulid::new());
        let order = app.order(&key, &[(pid, 1)]).await;
        assert_eq!(order.status, 201);
        let id = order.body["id"].as_str().unwrap();
        let paid = send(app.post_idem(
            &format!("/v1/orders/{id}/payments"),
            &format!("{key}-pay"),
            &json!({"method": "cash", "amount": {"amount": 4550, "currency": "MXN"}}),
        ))
        .await;
        assert_eq!(paid.status, 200);
    }
}

const TYPES: &[&str] = &["product.created", "order.created", "order.paid"];

async fn a_failing_endpoint_gets_every_event_in_order_once_it_recovers(backend: Backend) {
    let app = spawn_app_with(backend, fast()).await;
    let (receiver, url) = Receiver::start().await;
    receiver.plan.lock().unwrap().extend([500, 503, 500]);
    let sub = subscribe(&app, &url, &["product.created", "order.*"]).await;
    let secret = sub["secret"].as_str().unwrap().to_owned();
    let start = sub["after_seq"].as_i64().unwrap();
    some_sales(&app, 5).await;
    let expected = wanted(&app, start, TYPES).await;
    assert_eq!(expected.len(), 11);
    let mover = SharedClockMover(app.clock.clone());
    until(
        Some(&mover),
        || receiver.delivered().len() >= expected.len(),
        "every event",
    )
    .await;
    assert_eq!(receiver.delivered(), expected, "every event, in seq order");
    let got = receiver.got();
    assert_eq!(got.iter().filter(|g| g.answered >= 500).count(), 3);
    assert!(
        got.iter().take(4).all(|g| g.id == got[0].id),
        "the first event was retried"
    );
    let clock: SharedClock = app.clock.clone();
    verify_all(&got, &secret, &clock);

    let id = sub["id"].as_str().unwrap();
    // The worker records a delivery after the endpoint has answered it: the last one may
    // reach the receiver a moment before its record is written.
    let mut log = Vec::new();
    for _ in 0..400 {
        let page = send(app.get(&format!(
            "/v1/webhook-subscriptions/{id}/deliveries?limit=200"
        )))
        .await;
        log = page.body["data"].as_array().unwrap().clone();
        if log.len() >= expected.len() && log.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(log.len(), expected.len());
    assert!(log.iter().all(|d| d["status"] == "delivered"));
    let first = log.last().unwrap();
    assert_eq!(first["attempts"], 4);
    assert_eq!(first["seq"], expected[0]);
    let now = send(app.get(&format!("/v1/webhook-subscriptions/{id}"))).await;
    assert_eq!(now.body["status"], "active");
    assert_eq!(now.body["failing_attempts"], 0);
    assert!(now.body.get("secret").is_none(), "the secret is shown once");
}

async fn repeated_410s_disable_and_a_replay_delivers_again(backend: Backend) {
    let app = spawn_app_with(backend, fast()).await;
    let (receiver, url) = Receiver::start().await;
    *receiver.then.lock().unwrap() = 410;
    let sub = subscribe(&app, &url, &["order.*"]).await;
    let id = sub["id"].as_str().unwrap().to_owned();
    let start = sub["after_seq"].as_i64().unwrap();
    some_sales(&app, 2).await;
    let mover = SharedClockMover(app.clock.clone());
    let status = || async {
        send(app.get(&format!("/v1/webhook-subscriptions/{id}")))
            .await
            .body
    };
    for _ in 0..400 {
        if status().await["status"] == "disabled" {
            break;
        }
        mover.advance();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let disabled = status().await;
    assert_eq!(disabled["status"], "disabled", "{disabled}");
    assert!(disabled["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    assert_eq!(receiver.got().len(), 3, "three 410s, then nothing more");
    let log = send(app.get(&format!("/v1/webhook-subscriptions/{id}/deliveries"))).await;
    assert_eq!(log.body["data"][0]["status"], "abandoned");

    // The merchant fixes the endpoint and asks for everything again.
    *receiver.then.lock().unwrap() = 200;
    let replayed = send(app.post(
        &format!("/v1/webhook-subscriptions/{id}/replay"),
        &json!({"after": start}),
    ))
    .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.body["status"], "active");
    let expected = wanted(&app, start, &["order.created", "order.paid"]).await;
    until(
        None,
        || receiver.delivered().len() >= expected.len(),
        "the replay",
    )
    .await;
    assert_eq!(receiver.delivered(), expected);
    // The replayed first event kept its delivery id.
    assert_eq!(receiver.got()[0].id, receiver.got()[3].id);

    let bad = send(app.post(
        &format!("/v1/webhook-subscriptions/{id}/replay"),
        &json!({"after": -1}),
    ))
    .await;
    bad.assert_problem(422, "invalid-field");
    let unknown = send(app.post(
        "/v1/webhook-subscriptions",
        &json!({"url": "ftp://x", "event_types": ["order.*"]}),
    ))
    .await;
    unknown.assert_problem(422, "invalid-field");
    let removed = send(app.delete(&format!("/v1/webhook-subscriptions/{id}"))).await;
    assert_eq!(removed.status, 204);
    let gone = send(app.get(&format!("/v1/webhook-subscriptions/{id}"))).await;
    gone.assert_problem(404, "not-found");
}

const KEY: &str = "webhook-crash-test-admin-key-0123456789";

async fn a_kill_9_mid_delivery_loses_no_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = [("CAJA_ADMIN_KEY", KEY)];
    let args = ["--webhook-lease", "1"];
    let mut server = Server::start(&db, &args, &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let (receiver, url) = Receiver::start().await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(150);
    let sub = send(
        client
            .post(format!("{}/v1/webhook-subscriptions", server.base))
            .bearer_auth(KEY)
            .json(&json!({"url": url, "event_types": ["product.*"]})),
    )
    .await;
    assert_eq!(sub.status, 201, "{}", sub.body);
    let secret = sub.body["secret"].as_str().unwrap().to_owned();
    let start = sub.body["after_seq"].as_i64().unwrap();
    for i in 0..20 {
        let r = send(
            client
                .post(format!("{}/v1/products", server.base))
                .bearer_auth(KEY)
                .json(&json!({"sku": format!("K{i}"), "name": "K", "price": {"amount": 100, "currency": "MXN"}, "stock": 0})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    // Kill it while deliveries are under way.
    for _ in 0..400 {
        if receiver.got().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(receiver.got().len() >= 5, "deliveries began");
    server.signal("KILL");
    server.wait(Duration::from_secs(10));
    let before = receiver.delivered().len();
    assert!(before < 20, "killed mid-way ({before} delivered)");

    let restarted = Server::start(&db, &args, &env);
    wait_ready(&client, &restarted.base).await;
    let page = send(
        client
            .get(format!(
                "{}/v1/changes?after={start}&limit=1000",
                restarted.base
            ))
            .bearer_auth(KEY),
    )
    .await;
    let expected: Vec<i64> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(expected.len(), 20);
    until(
        None,
        || receiver.delivered().len() >= 20,
        "every event after the restart",
    )
    .await;
    assert_eq!(receiver.delivered(), expected, "none lost, in order");
    let clock: SharedClock = Arc::new(caja_core::time::SystemClock);
    verify_all(&receiver.got(), &secret, &clock);
    drop(restarted);
}

/// Two replicas on one PostgreSQL: the lease lets one of them work the subscription, so
/// without a crash every event arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_deliver_each_event_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("CAJA_ADMIN_KEY", KEY)];
    let a = Server::start(&db, &[], &env);
    let b = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    let (receiver, url) = Receiver::start().await;
    let sub = send(
        client
            .post(format!("{}/v1/webhook-subscriptions", a.base))
            .bearer_auth(KEY)
            .json(&json!({"url": url, "event_types": ["product.created"]})),
    )
    .await;
    assert_eq!(sub.status, 201, "{}", sub.body);
    let start = sub.body["after_seq"].as_i64().unwrap();
    for i in 0..30 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let r = send(
            client
                .post(format!("{base}/v1/products"))
                .bearer_auth(KEY)
                .json(&json!({"sku": format!("R{i}"), "name": "R", "price": {"amount": 100, "currency": "MXN"}, "stock": 0})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let page = send(
        client
            .get(format!("{}/v1/changes?after={start}&limit=1000", a.base))
            .bearer_auth(KEY),
    )
    .await;
    let expected: Vec<i64> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(expected.len(), 30);
    until(None, || receiver.delivered().len() >= 30, "every event").await;
    assert_eq!(receiver.delivered(), expected);
    assert_eq!(receiver.got().len(), 30, "no event twice");
}

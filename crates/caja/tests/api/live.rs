//! The change feed: polling, long polling, WebSocket and SSE, resume, ordering under
//! concurrent writers, authorization, slow consumers, and replicas.

use std::time::{Duration, Instant};

use caja_core::auth::Role;
use caja_server::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::cli::{two_replicas, REPLICA_KEY};
use crate::helpers::{send, spawn_app, spawn_app_with, Backend, TestApp};

on_both_engines!(
    polling_returns_every_change_in_commit_order,
    a_long_poll_answers_as_soon_as_an_event_commits,
    a_websocket_subscriber_resumes_with_exactly_what_it_missed,
    unauthorized_or_forbidden_subscribers_are_refused,
    sse_resumes_after_last_event_id,
    concurrent_orders_reach_every_subscriber_in_one_gap_free_order,
    a_slow_consumer_is_cut_off_and_others_are_not,
    a_subscriber_behind_retention_is_told_to_reload,
    pruning_takes_the_old_events_in_seq_order_a_page_at_a_time,
    a_stream_ends_when_its_key_is_revoked,
    screens_on_different_topics_each_get_exactly_their_events,
    a_ping_is_answered_in_order_and_a_broken_frame_closes_the_stream,
);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// All events after `after` (of `topics`, or all), paged through `GET /v1/changes`, and
/// the cursor the paging ended at.
pub(crate) async fn page_through(app: &TestApp, after: i64, topics: &str) -> (Vec<Value>, i64) {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let r = send(app.get(&format!(
            "/v1/changes?after={cursor}&limit=1000&topics={topics}"
        )))
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        let next: i64 = r.body["next_cursor"].as_str().unwrap().parse().unwrap();
        if next == cursor {
            return (out, cursor);
        }
        out.extend(data);
        cursor = next;
    }
}

async fn all_changes(app: &TestApp, after: i64, topics: &str) -> Vec<Value> {
    page_through(app, after, topics).await.0
}

/// The newest seq in the feed.
pub(crate) async fn head(app: &TestApp) -> i64 {
    page_through(app, 0, "").await.1
}

async fn connect(base: &str) -> Ws {
    let url = format!("{}/v1/stream", base.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.expect("ws").0
}

/// Opens a WebSocket and subscribes; returns it after the `subscribed` reply.
pub(crate) async fn subscribe(base: &str, key: &str, topics: &[&str], after: i64) -> Ws {
    let mut ws = connect(base).await;
    let hello = json!({"type": "subscribe", "key": key, "topics": topics, "after": after});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let first = next_message(&mut ws).await.expect("a reply");
    assert_eq!(first["type"], "subscribed", "{first}");
    ws
}

/// Subscribes over a socket with a tiny receive buffer, so that not reading it soon
/// pushes back on the server instead of filling megabytes of kernel buffers.
async fn subscribe_slowly(base: &str, key: &str, after: i64) -> Ws {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("{}/v1/stream", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    let hello = json!({"type": "subscribe", "key": key, "topics": [], "after": after});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    assert_eq!(next_message(&mut ws).await.unwrap()["type"], "subscribed");
    ws
}

/// The next JSON message, skipping heartbeats; `None` once the server closed.
pub(crate) async fn next_message(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")?;
        match msg.ok()? {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] != "heartbeat" {
                    return Some(v);
                }
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Events until one with `seq >= until`.
pub(crate) async fn events_until(ws: &mut Ws, until: i64) -> Vec<Value> {
    let mut out = Vec::new();
    while out
        .last()
        .is_none_or(|e: &Value| e["seq"].as_i64().unwrap() < until)
    {
        let e = next_message(ws).await.expect("stream open");
        assert!(e["seq"].is_i64(), "{e}");
        out.push(e);
    }
    out
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

async fn polling_returns_every_change_in_commit_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("FEED", 5).await;
    let pid = p["id"].as_str().unwrap();
    let order = app.order("feed-1", &[(pid, 2)]).await;
    let oid = order.body["id"].as_str().unwrap();
    let total = order.body["total"].clone();
    let paid = send(app.post_idem(
        &format!("/v1/orders/{oid}/payments"),
        "feed-1-pay",
        &json!({"method": "cash", "amount": total}),
    ))
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);

    let events = all_changes(&app, 0, "").await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "product.created",
            "order.created",
            "product.stock_changed",
            "order.paid"
        ]
    );
    let s = seqs(&events);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "gap-free: {s:?}");
    assert_eq!(
        events[2]["data"]["stock"], 3,
        "the product as it is after the sale"
    );
    assert_eq!(events[3]["data"]["status"], "paid");
    assert_eq!(events[3]["id"], oid);

    let orders = all_changes(&app, 0, "orders").await;
    assert_eq!(orders.len(), 2);
    let one = all_changes(&app, 0, &format!("product:{pid}")).await;
    assert_eq!(one.len(), 2);

    let clerk = app.key(Role::Clerk).await;
    send(
        app.client
            .get(app.url("/v1/changes?topics=stock"))
            .bearer_auth(&clerk),
    )
    .await
    .assert_problem(403, "forbidden");
    send(app.get("/v1/changes?topics=tables"))
        .await
        .assert_problem(422, "invalid-field");
    send(app.client.get(app.url("/v1/changes")))
        .await
        .assert_problem(401, "unauthorized");
}

async fn a_long_poll_answers_as_soon_as_an_event_commits(backend: Backend) {
    let app = spawn_app(backend).await;
    let after = head(&app).await;
    let poll = app.get(&format!("/v1/changes?after={after}&wait=20"));
    let started = Instant::now();
    let waiting = tokio::spawn(send(poll));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the poll waits while nothing commits"
    );
    app.product("LONG-POLL", 1).await;
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"][0]["type"], "product.created");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered by the commit, not by the 20 s deadline"
    );
}

async fn a_websocket_subscriber_resumes_with_exactly_what_it_missed(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("RESUME", 0).await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let mut ws = subscribe(&app.base, &app.admin_key, &["products"], 0).await;
    let created = next_message(&mut ws).await.unwrap();
    assert_eq!(created["type"], "product.created");
    let last = created["seq"].as_i64().unwrap();
    drop(ws);

    for i in 0..100 {
        let r = send(app.post_idem(
            &format!("/v1/products/{pid}/stock-movements"),
            &format!("restock-{i}"),
            &json!({"delta": 1, "reason": "restock"}),
        ))
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut ws = subscribe(&app.base, &app.admin_key, &["products"], last).await;
    let missed = events_until(&mut ws, head(&app).await - 1).await;
    assert_eq!(missed.len(), 100, "exactly the missed product events");
    assert!(missed.iter().all(|e| e["type"] == "product.stock_changed"));
    let stocks: Vec<i64> = missed
        .iter()
        .map(|e| e["data"]["stock"].as_i64().unwrap())
        .collect();
    assert_eq!(stocks, (1..=100).collect::<Vec<_>>(), "in commit order");

    // Then live ones.
    app.product("LIVE-AFTER", 1).await;
    let live = next_message(&mut ws).await.unwrap();
    assert_eq!(live["type"], "product.created");
    assert!(live["seq"].as_i64().unwrap() > missed.last().unwrap()["seq"].as_i64().unwrap());
}

async fn unauthorized_or_forbidden_subscribers_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = connect(&app.base).await;
    let hello = json!({"type": "subscribe", "key": "caja_wrong", "topics": [], "after": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let refused = next_message(&mut ws).await.unwrap();
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(next_message(&mut ws).await.is_none(), "then closed");

    let clerk = app.key(Role::Clerk).await;
    let mut ws = connect(&app.base).await;
    let hello = json!({"type": "subscribe", "key": clerk, "topics": ["stock"], "after": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let refused = next_message(&mut ws).await.unwrap();
    assert_eq!(refused["status"], 403, "{refused}");

    // A clerk with no topic filter gets what it may see, never the admin's stock topic.
    let mut ws = connect(&app.base).await;
    let hello = json!({"type": "subscribe", "key": clerk, "after": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let ok = next_message(&mut ws).await.unwrap();
    assert_eq!(
        ok["topics"],
        json!(["products", "orders", "tabs", "events", "locations"])
    );

    let sse = send(
        app.client
            .get(app.url("/v1/stream"))
            .header("accept", "text/event-stream"),
    )
    .await;
    sse.assert_problem(401, "unauthorized");
}

async fn sse_resumes_after_last_event_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = head(&app).await;
    for sku in ["SSE-1", "SSE-2", "SSE-3"] {
        app.product(sku, 1).await;
    }
    let mut r = app
        .client
        .get(app.url("/v1/stream?topics=products"))
        .bearer_auth(&app.admin_key)
        .header("accept", "text/event-stream")
        .header("last-event-id", (start + 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while text.matches("\nid: ").count() + usize::from(text.starts_with("id: ")) < 2 {
        assert!(Instant::now() < deadline, "two events within 20 s: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(20), r.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ids: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(ids, [start + 2, start + 3], "{text}");
    assert!(text.contains("event: product.created"));
    assert!(text.contains("\"sku\":\"SSE-2\""));
}

async fn concurrent_orders_reach_every_subscriber_in_one_gap_free_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("RACE-A", 1000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.product("RACE-B", 1000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = head(&app).await;
    let mut first = subscribe(&app.base, &app.admin_key, &[], start).await;
    let mut second = subscribe(&app.base, &app.admin_key, &[], start).await;

    let mut tasks = Vec::new();
    for i in 0..300 {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/v1/orders"),
            app.admin_key.clone(),
        );
        let lines = if i % 3 == 0 {
            json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}])
        } else {
            json!([{"product_id": if i % 2 == 0 { &a } else { &b }, "quantity": 1}])
        };
        tasks.push(tokio::spawn(async move {
            send(
                client
                    .post(url)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("live-race-{i}"))
                    .json(&json!({ "lines": lines })),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let end = head(&app).await;
    let polled = all_changes(&app, start, "").await;
    assert_eq!(
        seqs(&polled),
        (start + 1..=end).collect::<Vec<_>>(),
        "gap-free"
    );
    assert_eq!(
        polled
            .iter()
            .filter(|e| e["type"] == "order.created")
            .count(),
        300
    );
    let one = events_until(&mut first, end).await;
    let two = events_until(&mut second, end).await;
    assert_eq!(seqs(&one), seqs(&polled));
    assert_eq!(seqs(&two), seqs(&polled));
    assert_eq!(one, polled, "the same events, byte for byte");
}

async fn a_slow_consumer_is_cut_off_and_others_are_not(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ServerConfig {
            stream_buffer: 2000,
            ..ServerConfig::default()
        },
    )
    .await;
    let p = app.product("SLOW", 100_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = head(&app).await;
    let mut slow = subscribe_slowly(&app.base, &app.admin_key, start).await;
    let mut fast = subscribe(&app.base, &app.admin_key, &[], start).await;
    // Enough traffic (with long notes) to fill the slow reader's socket buffers.
    let note = "n".repeat(900);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(e) = next_message(&mut fast).await {
            seen.push(e["seq"].as_i64().unwrap());
            if seen.len() >= 6000 {
                break;
            }
        }
        seen
    });
    for chunk in 0..30 {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let req = app.post_idem(
                &format!("/v1/products/{p}/stock-movements"),
                &format!("slow-{chunk}-{i}"),
                &json!({"delta": 1, "reason": "restock", "note": note}),
            );
            tasks.push(tokio::spawn(send(req)));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().status, 201);
        }
    }
    let seen = reader.await.unwrap();

    assert_eq!(
        seen,
        (start + 1..=start + 6000).collect::<Vec<_>>(),
        "the fast subscriber got every event, in order"
    );
    // The slow one, read at last: some events, then the reason and its last seq, then close.
    let mut last_event = start;
    let notice = loop {
        let m = next_message(&mut slow)
            .await
            .expect("a slow-consumer notice");
        if m["type"] == "error" {
            break m;
        }
        last_event = m["seq"].as_i64().unwrap();
    };
    assert_eq!(notice["error"], "slow-consumer", "{notice}");
    assert_eq!(notice["last_seq"].as_i64().unwrap(), last_event);
    assert!(last_event < start + 6000, "it was cut off before the end");
    assert!(next_message(&mut slow).await.is_none(), "then closed");
}

async fn pruning_takes_the_old_events_in_seq_order_a_page_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = head(&app).await + 1;
    // 12,000 events from a day ago (more than two pages), then the feed as it goes on.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db.url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 11999) \
         INSERT INTO changes (seq, type, resource_id, data, at) \
         SELECT $1 + i, 'product.updated', 'prd_old', '{}', '2026-01-01T00:00:00.000000Z' FROM n",
    )
    .bind(first)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE counters SET value = $1 WHERE name = 'change_seq'")
        .bind(first + 11_999)
        .execute(&pool)
        .await
        .unwrap();
    app.product("NEW-1", 1).await;
    app.product("NEW-2", 1).await;
    let pruned = app
        .store
        .prune_changes(caja_core::time::parse("t", "2026-01-02T00:00:00Z").unwrap())
        .await
        .unwrap();
    assert_eq!(
        pruned,
        first as u64 - 1 + 12_000,
        "everything older, nothing newer"
    );
    let horizon = app.store.change_horizon().await.unwrap();
    assert_eq!(horizon.pruned_through, first + 11_999);
    let (kept, _) = page_through(&app, horizon.pruned_through, "").await;
    let kept: Vec<&str> = kept
        .iter()
        .map(|e| e["data"]["sku"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["NEW-1", "NEW-2"]);
    assert_eq!(
        app.store
            .prune_changes(caja_core::time::parse("t", "2026-01-02T00:00:00Z").unwrap())
            .await
            .unwrap(),
        0,
        "nothing more to take"
    );
}

async fn a_subscriber_behind_retention_is_told_to_reload(backend: Backend) {
    let app = spawn_app(backend).await;
    app.product("OLD-1", 1).await;
    app.product("OLD-2", 1).await;
    let kept_until = head(&app).await;
    let pruned = app
        .store
        .prune_changes(caja_core::time::now() + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(pruned, 2);

    let r = send(app.get("/v1/changes?after=0")).await;
    r.assert_problem(410, "changes-pruned");
    assert_eq!(r.body["resume_from"], kept_until);
    // Resuming from where it says works, and gets what commits next.
    app.product("NEW", 1).await;
    let next = all_changes(&app, kept_until, "").await;
    assert_eq!(next.len(), 1);

    let mut ws = connect(&app.base).await;
    let hello = json!({"type": "subscribe", "key": app.admin_key, "after": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    assert_eq!(next_message(&mut ws).await.unwrap()["type"], "subscribed");
    let reset = next_message(&mut ws).await.unwrap();
    assert_eq!(reset["type"], "reset", "{reset}");
    let resume = reset["resume_from"].as_i64().unwrap();
    assert_eq!(resume, kept_until + 1);
    app.product("AFTER-RESET", 1).await;
    let live = next_message(&mut ws).await.unwrap();
    assert_eq!(live["seq"].as_i64().unwrap(), resume + 1);
}

async fn a_stream_ends_when_its_key_is_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let clerk = app.key(Role::Clerk).await;
    let mut ws = subscribe(&app.base, &clerk, &["products"], head(&app).await).await;
    app.product("BEFORE-REVOKE", 1).await;
    assert_eq!(
        next_message(&mut ws).await.unwrap()["type"],
        "product.created"
    );
    app.revoke_first(Role::Clerk).await;
    app.product("AFTER-REVOKE", 1).await;
    let refused = next_message(&mut ws).await.unwrap();
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(next_message(&mut ws).await.is_none(), "then closed");
}

/// Creates a product through the replica at `base`.
async fn create_on(client: &reqwest::Client, base: &str, sku: &str) {
    let body = json!({"sku": sku, "name": sku, "price": {"amount": 100, "currency": "MXN"}});
    let r = send(
        client
            .post(format!("{base}/v1/products"))
            .bearer_auth(REPLICA_KEY)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listener_connection_dies_still_delivers_every_event() {
    const KEY: &str = REPLICA_KEY;
    let (db, a, b, client) = two_replicas().await;
    let mut ws = subscribe(&b.base, KEY, &["products"], 0).await;
    // Kill every LISTEN connection on this database: both replicas lose their listener.
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the replicas listen");
    for i in 0..20 {
        create_on(&client, &a.base, &format!("AFTER-KILL-{i}")).await;
    }
    let got = events_until(&mut ws, 20).await;
    let skus: Vec<String> = got
        .iter()
        .map(|e| e["data"]["sku"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        skus,
        (0..20)
            .map(|i| format!("AFTER-KILL-{i}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_replica_reach_a_websocket_subscriber_on_another() {
    const KEY: &str = REPLICA_KEY;
    let (_db, a, b, client) = two_replicas().await;
    let mut ws = subscribe(&b.base, KEY, &["products"], 0).await;
    for sku in ["REPLICA-1", "REPLICA-2"] {
        create_on(&client, &a.base, sku).await;
        let e = next_message(&mut ws).await.unwrap();
        assert_eq!(e["type"], "product.created");
        assert_eq!(e["data"]["sku"], sku);
    }
}

/// The fan-out shares one buffer of frames between screens at the same place on the same
/// topics: screens on different topics, and two on the same, each get exactly what the
/// feed holds for their topics, in order.
async fn screens_on_different_topics_each_get_exactly_their_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let watched = app.product("WATCHED", 1_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.product("OTHER", 1_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = head(&app).await;
    let product_topic = format!("product:{watched}");
    let topic_lists: Vec<Vec<&str>> = vec![
        vec!["products"],
        vec!["products"],
        vec!["orders"],
        vec![product_topic.as_str()],
        vec!["orders", product_topic.as_str()],
        vec![],
    ];
    let mut screens = Vec::new();
    for topics in &topic_lists {
        screens.push(subscribe(&app.base, &app.admin_key, topics, start).await);
    }
    // Orders and stock movements on both products, from several writers at once.
    let mut writes = Vec::new();
    for i in 0..20 {
        let (pid, key) = if i % 2 == 0 {
            (&watched, format!("mix-{i}"))
        } else {
            (&other, format!("mix-{i}"))
        };
        writes.push(tokio::spawn(send(app.post_idem(
            &format!("/v1/products/{pid}/stock-movements"),
            &key,
            &json!({"delta": 1, "reason": "restock"}),
        ))));
        writes.push(tokio::spawn(send(app.post_idem(
            "/v1/orders",
            &format!("{key}-order"),
            &json!({"lines": [{"product_id": pid, "quantity": 1}]}),
        ))));
    }
    for w in writes {
        assert_eq!(w.await.unwrap().status, 201);
    }
    let end = head(&app).await;
    for (topics, ws) in topic_lists.iter().zip(screens.iter_mut()) {
        let expected = seqs(&all_changes(&app, start, &topics.join(",")).await);
        assert!(!expected.is_empty(), "{topics:?} has events");
        // Every screen hears of the last event only if it wants it; a marker every
        // topic list sees is not at hand, so read exactly as many as expected.
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let e = next_message(ws).await.expect("stream open");
            got.push(e["seq"].as_i64().unwrap());
        }
        assert_eq!(got, expected, "{topics:?}: exactly its events, in order");
        assert!(*got.last().unwrap() <= end);
    }
    // And nothing more: a product event every list but "orders" wants arrives next.
    app.product("AFTER", 1).await;
    for (topics, ws) in topic_lists.iter().zip(screens.iter_mut()) {
        if topics == &vec!["products"] || topics.is_empty() {
            let e = next_message(ws).await.unwrap();
            assert_eq!(e["type"], "product.created", "{topics:?}: {e}");
        }
    }
}

/// The next frame that is not an event or a heartbeat.
async fn next_control(ws: &mut Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("stream open")
            .expect("a frame");
        if !matches!(msg, Message::Text(_)) {
            return msg;
        }
    }
}

async fn a_ping_is_answered_in_order_and_a_broken_frame_closes_the_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    // Subscribed at the head, the screen is the fan-out's at once: the pong goes out
    // through it, after the events already on their way.
    let mut ws = subscribe(&app.base, &app.admin_key, &["products"], head(&app).await).await;
    app.product("PING-1", 1).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    match next_control(&mut ws).await {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    app.product("PING-2", 1).await;
    let e = next_message(&mut ws).await.unwrap();
    assert!(e["type"] == "product.created", "{e}");

    // A client's frames must be masked: an unmasked one is a protocol error (1002).
    let addr = app.base.trim_start_matches("http://");
    let mut raw = TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head_bytes = format!(
        "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    raw.write_all(head_bytes.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = raw.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed during the handshake");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(
        text.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
    // A subscribe message, masked with a zero key (so its bytes read as they are).
    let after = head(&app).await;
    let hello =
        json!({"type": "subscribe", "key": app.admin_key, "topics": ["products"], "after": after});
    let hello = hello.to_string();
    let mut masked = vec![0x81, 0x80 | 126];
    masked.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    masked.extend_from_slice(&[0, 0, 0, 0]);
    masked.extend_from_slice(hello.as_bytes());
    raw.write_all(&masked).await.unwrap();
    let mut subscribed = [0u8; 2];
    raw.read_exact(&mut subscribed).await.unwrap();
    assert_eq!(subscribed[0], 0x81, "the subscribed message");
    let mut reply = vec![0u8; usize::from(subscribed[1])];
    raw.read_exact(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("subscribed"));
    // Then an unmasked frame.
    raw.write_all(b"\x81\x02hi").await.unwrap();
    let mut frame = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(20), raw.read_exact(&mut frame))
        .await
        .expect("a close frame in time")
        .unwrap();
    assert_eq!(frame[0], 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1002);
}

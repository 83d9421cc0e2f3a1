//! The box office: events, holds on a general-admission floor and on numbered seats, a
//! sell-out under thousands of concurrent holds, expiry, and holds becoming orders.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, Backend, TestApp};

on_both_engines!(
    two_thousand_holds_for_five_hundred_places_hold_each_once,
    a_hold_becomes_an_order_and_a_cancel_frees_its_seats,
    an_expired_hold_gives_its_places_back_and_cannot_be_ordered,
    the_sale_window_and_the_rules_of_sections_are_kept,
    a_public_key_buys_its_own_hold_and_nothing_else,
    an_event_is_edited_with_if_match_and_a_cancel_stops_its_sale,
);

/// An event on sale now: a floor of `floor` places and a balcony of `seats` seats.
async fn event(app: &TestApp, floor: i64, seats: usize, key: &str) -> Value {
    let labels: Vec<String> = (0..seats)
        .map(|n| format!("{}{}", (b'A' + (n / 25) as u8) as char, n % 25 + 1))
        .collect();
    let now = app.store.now();
    let r = send(app.post_idem(
        "/v1/events",
        key,
        &json!({
            "name": "Concert",
            "starts_at": caja_core::time::format(&(now + chrono::Duration::days(30))),
            "sale_starts_at": caja_core::time::format(&(now - chrono::Duration::minutes(1))),
            "sale_ends_at": caja_core::time::format(&(now + chrono::Duration::days(29))),
            "max_per_order": 4,
            "sections": [
                {"name": "Floor", "price": {"amount": 50000, "currency": "MXN"}, "capacity": floor},
                {"name": "Balcony", "price": {"amount": 80000, "currency": "MXN"}, "seats": labels},
            ],
        }),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn hold(app: &TestApp, event: &str, key: &str, body: Value) -> (u16, Value) {
    let r = send(app.post_idem(&format!("/v1/events/{event}/holds"), key, &body)).await;
    (r.status, r.body)
}

async fn availability(app: &TestApp, event: &str) -> Value {
    let r = send(app.get(&format!("/v1/events/{event}/availability"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn two_thousand_holds_for_five_hundred_places_hold_each_once(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let ev = event(&app, 250, 250, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let labels: Vec<String> = availability(&app, &id).await["sections"][1]["free_seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels.len(), 250);
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..2000usize {
        let (app, id, permits) = (app.clone(), id.clone(), permits.clone());
        // Mixed: by quantity on the floor or the balcony, or named seats (1 or 2 together).
        let body = match i % 4 {
            0 => json!({"section": "Floor", "quantity": 1 + i % 2}),
            1 => json!({"section": "balcony", "quantity": 1 + (i / 4) % 2}),
            _ => {
                let a = (i * 7919) % labels.len();
                if i % 3 == 0 {
                    json!({"seats": [labels[a]]})
                } else {
                    let b = (a + 1) % labels.len();
                    json!({"seats": [labels[a], labels[b]]})
                }
            }
        };
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            hold(&app, &id, &format!("h{i}"), body).await
        }));
    }
    let mut floor = 0;
    let mut seats = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => {
                let q = body["quantity"].as_i64().unwrap();
                if body["section"] == "Floor" {
                    floor += q;
                } else {
                    let held: Vec<String> = body["seats"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect();
                    assert_eq!(held.len() as i64, q);
                    seats.extend(held);
                }
            }
            409 => {
                assert_eq!(body["type"], "not-available", "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(floor, 250, "exactly the floor's capacity held");
    let unique: HashSet<&String> = seats.iter().collect();
    assert_eq!(unique.len(), seats.len(), "no seat held twice");
    assert_eq!(seats.len(), 250, "every seat held once");
    assert!(refused > 1000);
    let now = availability(&app, &id).await;
    for s in now["sections"].as_array().unwrap() {
        assert_eq!(s["free"], 0, "{s}");
        assert_eq!(s["held"], 250, "{s}");
        assert_eq!(s["sold"], 0, "{s}");
    }
    assert_eq!(now["sections"][1]["free_seats"], json!([]));
    app.assert_books_balance().await;
}

async fn a_hold_becomes_an_order_and_a_cancel_frees_its_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, 10, 50, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let (status, h) = hold(&app, &id, "hold-1", json!({"seats": ["B4", "B5"]})).await;
    assert_eq!(status, 201, "{h}");
    assert_eq!(h["status"], "active");
    assert_eq!(h["total"]["amount"], 160000);
    // The same seats again: refused, naming what is taken.
    let (status, taken) = hold(&app, &id, "hold-2", json!({"seats": ["B5", "B6"]})).await;
    assert_eq!(status, 409);
    assert_eq!(taken["type"], "not-available");
    assert_eq!(taken["taken_seats"], json!(["B5"]));
    // A retry of the first hold is its answer again.
    let (status, again) = hold(&app, &id, "hold-1", json!({"seats": ["B4", "B5"]})).await;
    assert_eq!((status, &again["id"]), (201, &h["id"]));

    let order = send(app.post_idem(
        "/v1/orders",
        "order-1",
        &json!({"hold_id": h["id"], "customer": {"name": "Ana", "email": "ana@example.com"}}),
    ))
    .await;
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(order.body["total"]["amount"], 160000);
    assert_eq!(order.body["hold_id"], h["id"]);
    assert!(order.body["lines"][0]["name"]
        .as_str()
        .unwrap()
        .contains("B4, B5"));
    let again = send(app.post_idem("/v1/orders", "order-2", &json!({"hold_id": h["id"]}))).await;
    again.assert_problem(409, "invalid-transition");
    let held = send(app.get(&format!("/v1/holds/{}", h["id"].as_str().unwrap()))).await;
    assert_eq!(held.body["status"], "ordered");
    assert_eq!(held.body["order_id"], order.body["id"]);
    let a = availability(&app, &id).await;
    assert_eq!(
        (
            a["sections"][1]["sold"].as_i64(),
            a["sections"][1]["held"].as_i64()
        ),
        (Some(2), Some(0))
    );

    // Cancelled: the places and the seats come back.
    let oid = order.body["id"].as_str().unwrap();
    let cancel =
        send(app.post_idem(&format!("/v1/orders/{oid}/cancel"), "cancel-1", &json!({}))).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let a = availability(&app, &id).await;
    assert_eq!(a["sections"][1]["free"], 50);
    let free: Vec<&str> = a["sections"][1]["free_seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(free.contains(&"B4") && free.contains(&"B5"));
    let (status, _) = hold(&app, &id, "hold-3", json!({"seats": ["B5", "B6"]})).await;
    assert_eq!(status, 201);
    // A floor hold by quantity, ordered and paid.
    let (status, f) = hold(
        &app,
        &id,
        "hold-4",
        json!({"section": "Floor", "quantity": 3}),
    )
    .await;
    assert_eq!(status, 201, "{f}");
    let order = send(app.post_idem("/v1/orders", "order-3", &json!({"hold_id": f["id"]}))).await;
    let oid = order.body["id"].as_str().unwrap();
    let paid = send(app.post_idem(
        &format!("/v1/orders/{oid}/payments"),
        "pay-3",
        &json!({"method": "card", "amount": {"amount": 150000, "currency": "MXN"}}),
    ))
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let a = availability(&app, &id).await;
    assert_eq!(a["sections"][0]["sold"], 3);
    assert_eq!(a["sections"][0]["free"], 7);
    app.assert_books_balance().await;
}

async fn an_expired_hold_gives_its_places_back_and_cannot_be_ordered(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, 5, 25, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let (_, floor) = hold(
        &app,
        &id,
        "hold-1",
        json!({"section": "Floor", "quantity": 4}),
    )
    .await;
    let (_, seats) = hold(&app, &id, "hold-2", json!({"seats": ["A1", "A2"]})).await;
    app.clock.advance(chrono::Duration::minutes(11));
    // The sweeper gives them back.
    for h in [&floor, &seats] {
        let path = format!("/v1/holds/{}", h["id"].as_str().unwrap());
        let mut expired = false;
        for _ in 0..200 {
            if send(app.get(&path)).await.body["status"] == "expired" {
                expired = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(expired, "{path} expired");
    }
    let a = availability(&app, &id).await;
    assert_eq!(a["sections"][0]["free"], 5);
    assert_eq!(a["sections"][1]["free"], 25);
    let late = send(app.post_idem("/v1/orders", "order-1", &json!({"hold_id": floor["id"]}))).await;
    late.assert_problem(409, "hold-expired");
    // The seats are anyone's again.
    let (status, _) = hold(&app, &id, "hold-3", json!({"seats": ["A2", "A3"]})).await;
    assert_eq!(status, 201);
    app.assert_books_balance().await;
}

async fn the_sale_window_and_the_rules_of_sections_are_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = app.store.now();
    let at = |d: chrono::Duration| caja_core::time::format(&(now + d));
    let later = send(app.post_idem(
        "/v1/events",
        "later",
        &json!({
            "name": "Later", "starts_at": at(chrono::Duration::days(9)),
            "sale_starts_at": at(chrono::Duration::days(1)), "max_per_order": 2,
            "sections": [{"name": "Floor", "price": {"amount": 100, "currency": "MXN"}, "capacity": 5}],
        }),
    ))
    .await;
    assert_eq!(later.status, 201, "{}", later.body);
    let lid = later.body["id"].as_str().unwrap();
    let (status, early) = hold(
        &app,
        lid,
        "early",
        json!({"section": "Floor", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (status, early["type"].as_str()),
        (409, Some("sale-not-open"))
    );
    assert!(early["opens_at"].is_string());
    let (status, greedy) = hold(
        &app,
        lid,
        "greedy",
        json!({"section": "Floor", "quantity": 3}),
    )
    .await;
    assert_eq!(status, 409, "the window is checked first: {greedy}");
    app.clock.advance(chrono::Duration::days(10));
    let (status, closed) = hold(
        &app,
        lid,
        "closed",
        json!({"section": "Floor", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (status, closed["type"].as_str()),
        (409, Some("sale-closed")),
        "without sale_ends_at, the sale ends when the event starts: {closed}"
    );

    let ev = event(&app, 5, 25, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let (status, greedy) = hold(
        &app,
        &id,
        "greedy-2",
        json!({"section": "Floor", "quantity": 5}),
    )
    .await;
    assert_eq!(
        (status, greedy["type"].as_str()),
        (422, Some("too-many-tickets"))
    );
    let (status, unknown) = hold(&app, &id, "unknown", json!({"seats": ["Z99"]})).await;
    assert_eq!(
        (status, unknown["type"].as_str()),
        (422, Some("unknown-seats"))
    );
    // A section is not sold through a plain checkout, nor restocked by hand.
    let section = ev["sections"][0]["product_id"].as_str().unwrap();
    let direct = app.order("direct", &[(section, 1)]).await;
    direct.assert_problem(422, "tickets-need-a-hold");
    let restock = send(app.post_idem(
        &format!("/v1/products/{section}/stock-movements"),
        "restock",
        &json!({"delta": 10, "reason": "restock"}),
    ))
    .await;
    restock.assert_problem(409, "event-section");
    let bad = send(app.post_idem(
        "/v1/events",
        "bad",
        &json!({
            "name": "Bad", "starts_at": at(chrono::Duration::days(9)),
            "sale_starts_at": at(chrono::Duration::days(1)), "max_per_order": 2,
            "sections": [{"name": "Floor", "price": {"amount": 100, "currency": "MXN"}, "capacity": 5, "seats": ["A1"]}],
        }),
    ))
    .await;
    bad.assert_problem(422, "invalid-field");
    app.assert_books_balance().await;
}

/// The same sell-out over two replicas on one PostgreSQL: every place held once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_hold_each_place_once() {
    use crate::cli::{wait_ready, Server};
    use crate::helpers::TestDb;

    const KEY: &str = "box-office-replicas-admin-key-0123456789";
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("CAJA_ADMIN_KEY", KEY)];
    let a = Server::start(&db, &[], &env);
    let b = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    let labels: Vec<String> = (0..100).map(|n| format!("S{n}")).collect();
    let now = chrono::Utc::now();
    let ev = send(
        client
            .post(format!("{}/v1/events", a.base))
            .bearer_auth(KEY)
            .header("idempotency-key", "event")
            .json(&json!({
                "name": "Two replicas",
                "starts_at": caja_core::time::format(&(now + chrono::Duration::days(30))),
                "sale_starts_at": caja_core::time::format(&(now - chrono::Duration::minutes(1))),
                "max_per_order": 2,
                "sections": [
                    {"name": "Floor", "price": {"amount": 100, "currency": "MXN"}, "capacity": 100},
                    {"name": "Seats", "price": {"amount": 200, "currency": "MXN"}, "seats": labels},
                ],
            })),
    )
    .await;
    assert_eq!(ev.status, 201, "{}", ev.body);
    let id = ev.body["id"].as_str().unwrap().to_owned();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..800usize {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (client, id, permits) = (client.clone(), id.clone(), permits.clone());
        let body = match i % 3 {
            0 => json!({"section": "Floor", "quantity": 1}),
            1 => json!({"section": "Seats", "quantity": 1}),
            _ => json!({"seats": [format!("S{}", (i * 37) % 100)]}),
        };
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let r = send(
                client
                    .post(format!("{base}/v1/events/{id}/holds"))
                    .bearer_auth(KEY)
                    .header("idempotency-key", format!("h{i}"))
                    .json(&body),
            )
            .await;
            (r.status, r.body)
        }));
    }
    let (mut floor, mut seats) = (0, Vec::new());
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 if body["section"] == "Floor" => floor += body["quantity"].as_i64().unwrap(),
            201 => seats.extend(
                body["seats"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned()),
            ),
            409 => assert_eq!(body["type"], "not-available", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(floor, 100);
    let unique: HashSet<&String> = seats.iter().collect();
    assert_eq!(
        (unique.len(), seats.len()),
        (100, 100),
        "every seat held once"
    );
    let check = crate::migrate::caja(&["check", "--database-url", &db.url]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// `caja bench box-office` against a server process: a small sell-out, its checks pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caja_bench_box_office_sells_out_and_checks_it() {
    use crate::cli::{wait_ready, Server, REPLICA_KEY};
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[], &[("CAJA_ADMIN_KEY", REPLICA_KEY)]);
    wait_ready(&reqwest::Client::new(), &server.base).await;
    let base = server.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        crate::migrate::caja(&[
            "bench",
            "box-office",
            "--url",
            &base,
            "--key",
            REPLICA_KEY,
            "--concurrency",
            "8",
            "--buyers",
            "120",
            "--seats",
            "40",
            "--json",
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
    let report: Value = serde_json::from_str(text.trim()).expect("one JSON report");
    assert_eq!(report["join"]["requests"], 120, "{report}");
    assert_eq!(report["hold"]["status"]["201"], 40, "{report}");
    assert_eq!(report["hold"]["status"]["409"], 80, "{report}");
}

async fn a_public_key_buys_its_own_hold_and_nothing_else(backend: Backend) {
    use caja_core::auth::Role;
    let app = spawn_app(backend).await;
    let ev = event(&app, 10, 25, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let public = app.key(Role::Public).await;
    let as_buyer = |r: reqwest::RequestBuilder| r.bearer_auth(&public);
    let get = |path: &str| as_buyer(app.client.get(app.url(path)));
    let post = |path: &str, key: &str, body: Value| {
        as_buyer(app.client.post(app.url(path)))
            .header("idempotency-key", key)
            .json(&body)
    };
    assert_eq!(send(get("/v1/events")).await.status, 200);
    assert_eq!(
        send(get(&format!("/v1/events/{id}/availability")))
            .await
            .status,
        200
    );
    for path in ["/v1/products", "/v1/orders", "/v1/tabs", "/v1/audit"] {
        send(get(path)).await.assert_problem(403, "forbidden");
    }
    let product = send(post(
        "/v1/products",
        "p",
        json!({"sku": "X", "name": "X", "price": {"amount": 1, "currency": "MXN"}, "stock": 1}),
    ))
    .await;
    product.assert_problem(403, "forbidden");

    // A buyer's hold names the buyer.
    let anonymous = send(post(
        &format!("/v1/events/{id}/holds"),
        "h0",
        json!({"section": "Floor", "quantity": 1}),
    ))
    .await;
    anonymous.assert_problem(422, "invalid-field");
    let mine = send(post(
        &format!("/v1/events/{id}/holds"),
        "h1",
        json!({"seats": ["A1"], "client_ref": "me"}),
    ))
    .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let theirs = send(post(
        &format!("/v1/events/{id}/holds"),
        "h2",
        json!({"seats": ["A2"], "client_ref": "someone-else"}),
    ))
    .await;
    assert_eq!(theirs.status, 201);
    // Its own hold becomes an order; another's is not found; lines are not for it.
    let stolen = send(post(
        "/v1/orders",
        "o1",
        json!({"hold_id": theirs.body["id"], "client_ref": "me"}),
    ))
    .await;
    stolen.assert_problem(404, "not-found");
    let order = send(post(
        "/v1/orders",
        "o2",
        json!({"hold_id": mine.body["id"], "client_ref": "me"}),
    ))
    .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let lines = send(post(
        "/v1/orders",
        "o3",
        json!({"lines": [{"product_id": ev["sections"][0]["product_id"], "quantity": 1}]}),
    ))
    .await;
    lines.assert_problem(403, "forbidden");
    // Staff may order any hold.
    let staff =
        send(app.post_idem("/v1/orders", "o4", &json!({"hold_id": theirs.body["id"]}))).await;
    assert_eq!(staff.status, 201, "{}", staff.body);
    app.assert_books_balance().await;
}

async fn an_event_is_edited_with_if_match_and_a_cancel_stops_its_sale(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, 10, 25, "event").await;
    let id = ev["id"].as_str().unwrap().to_owned();
    let read = send(app.get(&format!("/v1/events/{id}"))).await;
    let etag = read.header("etag").unwrap().to_owned();
    let patch = |tag: &str, body: Value| {
        app.patch(&format!("/v1/events/{id}"), &body)
            .header("if-match", tag.to_owned())
    };
    send(app.patch(&format!("/v1/events/{id}"), &json!({"name": "x"})))
        .await
        .assert_problem(428, "precondition-required");
    let renamed = send(patch(
        &etag,
        json!({"name": "Concert (late show)", "max_per_order": 2}),
    ))
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Concert (late show)");
    assert_ne!(renamed.header("etag"), Some(etag.as_str()));
    send(patch(&etag, json!({"name": "stale"})))
        .await
        .assert_problem(412, "precondition-failed");
    let fresh = renamed.header("etag").unwrap().to_owned();
    let backwards = send(patch(
        &fresh,
        json!({"sale_ends_at": "2000-01-01T00:00:00Z"}),
    ))
    .await;
    backwards.assert_problem(422, "invalid-field");
    let (status, _) = hold(
        &app,
        &id,
        "greedy",
        json!({"section": "Floor", "quantity": 3}),
    )
    .await;
    assert_eq!(status, 422, "max_per_order is 2 now");

    let (status, h) = hold(&app, &id, "hold-1", json!({"seats": ["A1", "A2"]})).await;
    assert_eq!(status, 201, "{h}");
    let cancelled =
        send(app.post_idem(&format!("/v1/events/{id}/cancel"), "cancel", &json!({}))).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let held = send(app.get(&format!("/v1/holds/{}", h["id"].as_str().unwrap()))).await;
    assert_eq!(held.body["status"], "expired", "its places went back");
    let a = availability(&app, &id).await;
    assert_eq!(
        (
            a["sections"][1]["free"].as_i64(),
            a["sections"][1]["held"].as_i64()
        ),
        (Some(25), Some(0))
    );
    let (status, refused) = hold(&app, &id, "hold-2", json!({"seats": ["A3"]})).await;
    assert_eq!(
        (status, refused["type"].as_str()),
        (409, Some("event-cancelled"))
    );
    let late = send(app.post_idem("/v1/orders", "order", &json!({"hold_id": h["id"]}))).await;
    late.assert_problem(409, "hold-expired");
    let again = send(patch(
        cancelled.header("etag").unwrap(),
        json!({"name": "back"}),
    ))
    .await;
    again.assert_problem(409, "event-cancelled");
    app.assert_books_balance().await;
}

/// A public key is shared by every buyer: each address keeps the anonymous rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_keeps_the_per_address_limit() {
    use caja_core::auth::Role;
    use caja_core::rate::RateLimit;
    let config = caja_server::ServerConfig {
        anonymous_rate_limit: RateLimit {
            per_second: 1,
            burst: 3,
        },
        ..caja_server::ServerConfig::default()
    };
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, config).await;
    let public = app.key(Role::Public).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = send(app.client.get(app.url("/v1/events")).bearer_auth(&public)).await;
        statuses.push(r.status);
    }
    assert!(statuses.iter().take(3).all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // Staff keys are not held to it.
    for _ in 0..6 {
        assert_eq!(send(app.get("/v1/events")).await.status, 200);
    }
}

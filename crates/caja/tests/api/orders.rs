//! Orders: checkout, replays, the lifecycle and expiry.

use std::time::Duration;

use caja_core::auth::Role;
use caja_server::ServerConfig;
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, spawn_app_with, Backend};

on_both_engines!(
    a_checkout_reserves_stock_and_snapshots_its_lines,
    a_short_line_refuses_the_whole_order_and_lists_every_shortage,
    a_retry_with_the_same_key_replays_byte_for_byte,
    a_key_reused_for_another_body_is_refused,
    writes_without_a_valid_idempotency_key_are_refused,
    the_lifecycle_moves_money_and_stock_as_it_should,
    every_illegal_transition_is_409_and_changes_nothing,
    a_payment_must_be_for_the_total,
    an_unpaid_order_expires_and_gives_its_stock_back,
    a_payment_after_the_deadline_expires_the_order_even_before_the_sweeper,
    orders_are_listed_by_status,
    clerks_sell_but_do_not_refund,
    checkouts_are_counted_by_outcome,
    a_refused_body_binds_its_key_like_any_answer,
);

async fn a_refused_body_binds_its_key_like_any_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("BOUND", 5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A body that does not validate is answered, and the answer is stored under its key.
    let first = app.order("bound-1", &[(&p, 0)]).await;
    first.assert_problem(422, "invalid-field");
    let again = app.order("bound-1", &[(&p, 0)]).await;
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the same answer, byte for byte");
    // The key cannot be reused for another request, even a valid one.
    app.order("bound-1", &[(&p, 1)])
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(app.stock(&p).await, 5);

    // The same for a payment that does not parse and a movement with a bad reason.
    let order = app.order("bound-2", &[(&p, 1)]).await;
    let pay = format!("/v1/orders/{}/payments", order.body["id"].as_str().unwrap());
    let bad = json!({"method": "barter", "amount": order.body["total"]});
    let good = json!({"method": "cash", "amount": order.body["total"]});
    send(app.post_idem(&pay, "bound-pay", &bad))
        .await
        .assert_problem(422, "invalid-field");
    send(app.post_idem(&pay, "bound-pay", &good))
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    let moves = format!("/v1/products/{p}/stock-movements");
    send(app.post_idem(
        &moves,
        "bound-move",
        &json!({"delta": 1, "reason": "theft"}),
    ))
    .await
    .assert_problem(422, "invalid-field");
    send(app.post_idem(
        &moves,
        "bound-move",
        &json!({"delta": 1, "reason": "restock"}),
    ))
    .await
    .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(app.stock(&p).await, 4);
    app.assert_books_balance().await;
}

/// The value of one metric line (name with labels), 0 if absent.
async fn metric(app: &crate::helpers::TestApp, line: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find(|l| l.starts_with(line) && l[line.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn checkouts_are_counted_by_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("COUNTED", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The recorder is shared by every test in this process: compare before and after.
    let created = "caja_orders_created_total";
    let short = "caja_orders_refused_total{reason=\"out-of-stock\"}";
    let invalid = "caja_orders_refused_total{reason=\"invalid-field\"}";
    let replays = "caja_idempotent_replays_total";
    let before = [
        metric(&app, created).await,
        metric(&app, short).await,
        metric(&app, invalid).await,
        metric(&app, replays).await,
    ];
    assert_eq!(app.order("count-1", &[(&p, 1)]).await.status, 201);
    assert_eq!(app.order("count-1", &[(&p, 1)]).await.status, 201);
    assert_eq!(app.order("count-2", &[(&p, 1)]).await.status, 409);
    assert_eq!(app.order("count-3", &[(&p, 0)]).await.status, 422);
    let after = [
        metric(&app, created).await,
        metric(&app, short).await,
        metric(&app, invalid).await,
        metric(&app, replays).await,
    ];
    // Other tests run alongside in this process, so each counter grew by at least one.
    assert!(after[0] - before[0] >= 1.0, "{before:?} {after:?}");
    assert!(after[1] - before[1] >= 1.0, "{before:?} {after:?}");
    assert!(after[2] - before[2] >= 1.0, "{before:?} {after:?}");
    assert!(after[3] - before[3] >= 1.0, "{before:?} {after:?}");
    assert!(
        app.metrics()
            .await
            .contains("caja_checkout_duration_seconds_bucket{"),
        "checkout latency is a histogram"
    );
}

async fn a_checkout_reserves_stock_and_snapshots_its_lines(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.product("B", 3).await["id"].as_str().unwrap().to_owned();
    let body = json!({
        "lines": [{"product_id": b, "quantity": 1}, {"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1}],
        "tip": {"amount": 500, "currency": "MXN"},
        "note": "mesa 4",
        "customer": {"name": "Ana", "email": "ana@example.com"}
    });
    let r = send(app.post_idem("/v1/orders", "checkout-1", &body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = &r.body;
    assert!(o["id"].as_str().unwrap().starts_with("ord_"));
    assert_eq!(o["number"], 1);
    assert_eq!(o["status"], "pending_payment");
    assert_eq!(
        o["lines"].as_array().unwrap().len(),
        2,
        "the same product twice is merged"
    );
    let line_b = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == b.as_str())
        .unwrap();
    assert_eq!(line_b["quantity"], 2);
    assert_eq!(line_b["sku"], "B");
    assert_eq!(
        line_b["unit_price"],
        json!({"amount": 4550, "currency": "MXN"})
    );
    assert_eq!(line_b["line_total"]["amount"], 9100);
    assert_eq!(o["subtotal"]["amount"], 4 * 4550);
    assert_eq!(o["tip"]["amount"], 500);
    assert_eq!(o["total"]["amount"], 4 * 4550 + 500);
    assert_eq!(o["customer"]["email"], "ana@example.com");
    assert!(o["expires_at"].as_str().unwrap() > o["created_at"].as_str().unwrap());
    assert_eq!(app.stock(&a).await, 8);
    assert_eq!(app.stock(&b).await, 1);
    let read = send(app.get(&format!("/v1/orders/{}", o["id"].as_str().unwrap()))).await;
    assert_eq!(&read.body, o);
    // A price change later does not touch the order's snapshot.
    send(
        app.patch(
            &format!("/v1/products/{b}"),
            &json!({"price": {"amount": 1, "currency": "MXN"}}),
        )
        .header("if-match", "\"2\""),
    )
    .await;
    let again = send(app.get(&format!("/v1/orders/{}", o["id"].as_str().unwrap()))).await;
    assert_eq!(&again.body, o);
    let second = app.order("checkout-2", &[(&a, 1)]).await;
    assert_eq!(second.body["number"], 2);
    app.assert_books_balance().await;
}

async fn a_short_line_refuses_the_whole_order_and_lists_every_shortage(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.product("B", 1).await["id"].as_str().unwrap().to_owned();
    let c = app.product("C", 0).await["id"].as_str().unwrap().to_owned();
    let r = app.order("short", &[(&a, 2), (&b, 2), (&c, 1)]).await;
    r.assert_problem(409, "out-of-stock");
    let mut lines = r.body["lines"].as_array().unwrap().clone();
    lines.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    // Each names the location the stock was asked of: the default one here.
    let main = "loc_00000000000000000000000000";
    let mut expected = vec![
        json!({"product_id": b, "location_id": main, "requested": 2, "available": 1}),
        json!({"product_id": c, "location_id": main, "requested": 1, "available": 0}),
    ];
    expected.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    assert_eq!(lines, expected);
    assert_eq!(app.stock(&a).await, 10, "nothing was reserved");
    assert_eq!(send(app.get("/v1/orders")).await.body["data"], json!([]));
    let unknown = app
        .order(
            "unknown",
            &[(&a, 1), ("prod_01J00000000000000000000000", 1)],
        )
        .await;
    unknown.assert_problem(422, "unknown-product");
    assert_eq!(app.stock(&a).await, 10);
    app.assert_books_balance().await;
}

async fn a_retry_with_the_same_key_replays_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 1).await["id"].as_str().unwrap().to_owned();
    let body = json!({"lines": [{"product_id": a, "quantity": 1}]});
    let first = app
        .post_idem("/v1/orders", "k", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();
    // The same JSON with its keys in another order and other whitespace is the same request.
    let reordered = format!("{{ \"lines\" : [ {{ \"quantity\": 1, \"product_id\": \"{a}\" }} ] }}");
    let again = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "k")
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.bytes().await.unwrap(), first_body);
    assert_eq!(
        send(app.get("/v1/orders")).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A refusal is stored too: its replay is the same 409 even after stock comes back.
    let refused = app.order("k2", &[(&a, 1)]).await;
    refused.assert_problem(409, "out-of-stock");
    send(app.post_idem(
        &format!("/v1/products/{a}/stock-movements"),
        "restock",
        &json!({"delta": 5, "reason": "restock"}),
    ))
    .await;
    let replay = app.order("k2", &[(&a, 1)]).await;
    assert_eq!(replay.status, 409);
    assert_eq!(replay.body, refused.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // Keys are scoped to the API key that sent them.
    let other = app.key(Role::Clerk).await;
    let r = send(
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&other)
            .header("idempotency-key", "k2")
            .json(&json!({"lines": [{"product_id": a, "quantity": 1}]})),
    )
    .await;
    assert_eq!(r.status, 201);
    app.assert_books_balance().await;
}

async fn a_key_reused_for_another_body_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.order("k", &[(&a, 1)]).await.status, 201);
    app.order("k", &[(&a, 2)])
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(app.stock(&a).await, 4, "nothing written by the mismatch");
    let o = send(app.get("/v1/orders")).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same key on another route is another request too.
    send(app.post_idem(&format!("/v1/orders/{o}/cancel"), "k", &json!({})))
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(
        send(app.get(&format!("/v1/orders/{o}"))).await.body["status"],
        "pending_payment"
    );
}

async fn writes_without_a_valid_idempotency_key_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let body = json!({"lines": [{"product_id": a, "quantity": 1}]});
    send(app.post("/v1/orders", &body))
        .await
        .assert_problem(400, "idempotency-key-missing");
    send(
        app.post("/v1/orders", &body)
            .header("idempotency-key", "has space"),
    )
    .await
    .assert_problem(400, "idempotency-key-invalid");
    send(
        app.post("/v1/orders", &body)
            .header("idempotency-key", "x".repeat(256)),
    )
    .await
    .assert_problem(400, "idempotency-key-invalid");
    send(app.post(
        &format!("/v1/products/{a}/stock-movements"),
        &json!({"delta": 1, "reason": "restock"}),
    ))
    .await
    .assert_problem(400, "idempotency-key-missing");
    assert_eq!(app.stock(&a).await, 5);
    for (i, (lines, field)) in [
        (json!([]), "lines"),
        (json!([{"product_id": a, "quantity": 0}]), "quantity"),
        (json!([{"product_id": a, "quantity": 1001}]), "quantity"),
    ]
    .into_iter()
    .enumerate()
    {
        // Each refusal binds its key, so each gets a key of its own.
        let key = format!("v-{i}");
        let r = send(app.post_idem("/v1/orders", &key, &json!({"lines": lines}))).await;
        r.assert_problem(422, "invalid-field");
        assert_eq!(r.body["field"], field);
    }
}

async fn pay(app: &crate::helpers::TestApp, order: &Value, key: &str) -> crate::helpers::Reply {
    let id = order["id"].as_str().unwrap();
    send(app.post_idem(
        &format!("/v1/orders/{id}/payments"),
        key,
        &json!({"method": "card", "amount": order["total"], "reference": "auth-123"}),
    ))
    .await
}

async fn the_lifecycle_moves_money_and_stock_as_it_should(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |path: String, key: &'static str, body: Value| {
        let app = &app;
        async move { send(app.post_idem(&path, key, &body)).await }
    };

    let o1 = app.order("o1", &[(&a, 3)]).await.body;
    let id1 = o1["id"].as_str().unwrap().to_owned();
    let paid = pay(&app, &o1, "pay-1").await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    let fulfilled = post(format!("/v1/orders/{id1}/fulfill"), "ful-1", json!({})).await;
    assert_eq!(fulfilled.body["status"], "fulfilled");
    let refunded = post(
        format!("/v1/orders/{id1}/refund"),
        "ref-1",
        json!({"restock": true}),
    )
    .await;
    assert_eq!(refunded.body["status"], "refunded");
    assert_eq!(
        app.stock(&a).await,
        10,
        "a refund with restock puts the units back"
    );

    let o2 = app.order("o2", &[(&a, 4)]).await.body;
    let id2 = o2["id"].as_str().unwrap().to_owned();
    assert_eq!(app.stock(&a).await, 6);
    let cancelled = post(format!("/v1/orders/{id2}/cancel"), "can-2", json!({})).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(app.stock(&a).await, 10, "cancel releases the stock");
    let replay = post(format!("/v1/orders/{id2}/cancel"), "can-2", json!({})).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        app.stock(&a).await,
        10,
        "a replayed cancel releases nothing twice"
    );

    let o3 = app.order("o3", &[(&a, 2)]).await.body;
    let id3 = o3["id"].as_str().unwrap().to_owned();
    pay(&app, &o3, "pay-3").await;
    let refunded = post(
        format!("/v1/orders/{id3}/refund"),
        "ref-3",
        json!({"restock": false}),
    )
    .await;
    assert_eq!(refunded.body["status"], "refunded");
    assert_eq!(
        app.stock(&a).await,
        8,
        "a refund without restock keeps the units out"
    );

    let ledger = send(app.get(&format!("/v1/products/{a}/stock-movements"))).await;
    let reasons: Vec<&str> = ledger.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "initial",
            "sale",
            "refund_restock",
            "sale",
            "release",
            "sale"
        ]
    );
    app.assert_books_balance().await;
}

async fn every_illegal_transition_is_409_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // One order in each reachable status.
    let mut orders = Vec::new();
    for (i, steps) in [
        vec![],
        vec!["pay"],
        vec!["pay", "fulfill"],
        vec!["cancel"],
        vec!["pay", "refund"],
    ]
    .into_iter()
    .enumerate()
    {
        let o = app.order(&format!("setup-{i}"), &[(&a, 1)]).await.body;
        let id = o["id"].as_str().unwrap().to_owned();
        for (j, step) in steps.iter().enumerate() {
            let key = format!("setup-{i}-{j}");
            let r = match *step {
                "pay" => pay(&app, &o, &key).await,
                other => {
                    send(app.post_idem(&format!("/v1/orders/{id}/{other}"), &key, &json!({}))).await
                }
            };
            assert_eq!(r.status, 200, "{step}: {}", r.body);
        }
        orders.push((send(app.get(&format!("/v1/orders/{id}"))).await.body, id));
    }
    let allowed = [
        ("pending_payment", "pay"),
        ("pending_payment", "cancel"),
        ("paid", "fulfill"),
        ("paid", "refund"),
        ("fulfilled", "refund"),
    ];
    for (before, id) in &orders {
        let status = before["status"].as_str().unwrap();
        for action in ["pay", "cancel", "fulfill", "refund"] {
            if allowed.contains(&(status, action)) {
                continue;
            }
            let stock = app.stock(&a).await;
            let key = format!("illegal-{id}-{action}");
            let r = match action {
                "pay" => pay(&app, before, &key).await,
                other => {
                    send(app.post_idem(&format!("/v1/orders/{id}/{other}"), &key, &json!({}))).await
                }
            };
            r.assert_problem(409, "invalid-transition");
            assert_eq!(r.body["current_status"], status);
            assert_eq!(
                &send(app.get(&format!("/v1/orders/{id}"))).await.body,
                before,
                "{action} on {status} changed the order"
            );
            assert_eq!(app.stock(&a).await, stock);
        }
    }
    send(app.post_idem(
        "/v1/orders/ord_01J00000000000000000000000/cancel",
        "nf",
        &json!({}),
    ))
    .await
    .assert_problem(404, "not-found");
    app.assert_books_balance().await;
}

async fn a_payment_must_be_for_the_total(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let o = app.order("o", &[(&a, 1)]).await.body;
    let id = o["id"].as_str().unwrap();
    let r = send(app.post_idem(
        &format!("/v1/orders/{id}/payments"),
        "p1",
        &json!({"method": "cash", "amount": {"amount": 1, "currency": "MXN"}}),
    ))
    .await;
    r.assert_problem(422, "amount-mismatch");
    assert_eq!(r.body["total"], 4550);
    let r = send(app.post_idem(
        &format!("/v1/orders/{id}/payments"),
        "p2",
        &json!({"method": "cheque", "amount": o["total"]}),
    ))
    .await;
    r.assert_problem(422, "invalid-field");
    assert_eq!(
        send(app.get(&format!("/v1/orders/{id}"))).await.body["status"],
        "pending_payment"
    );
    assert_eq!(pay(&app, &o, "p3").await.status, 200);
    pay(&app, &o, "p4")
        .await
        .assert_problem(409, "invalid-transition");
    app.assert_books_balance().await;
}

async fn an_unpaid_order_expires_and_gives_its_stock_back(backend: Backend) {
    let config = ServerConfig {
        order_ttl: Duration::from_secs(15 * 60),
        sweep_interval: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let o = app.order("o", &[(&a, 2)]).await.body;
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(app.stock(&a).await, 3);
    let head = send(app.get("/v1/changes?limit=1000")).await.body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not due yet: the sweeper leaves it alone however often it looks.
    app.clock.advance(chrono::Duration::minutes(14));
    let quiet = send(app.get(&format!("/v1/changes?after={head}&topics=order:{id}"))).await;
    assert_eq!(quiet.body["data"], json!([]));
    // Past its time: the next sweep expires it, and the feed says so.
    app.clock.advance(chrono::Duration::minutes(2));
    let expired = send(app.get(&format!(
        "/v1/changes?after={head}&topics=order:{id}&wait=10"
    )))
    .await;
    assert_eq!(
        expired.body["data"][0]["type"], "order.expired",
        "{}",
        expired.body
    );
    assert_eq!(
        send(app.get(&format!("/v1/orders/{id}"))).await.body["status"],
        "expired"
    );
    assert_eq!(app.stock(&a).await, 5);
    let late = pay(&app, &o, "late").await;
    late.assert_problem(409, "invalid-transition");
    assert_eq!(late.body["current_status"], "expired");
    app.assert_books_balance().await;
}

async fn a_payment_after_the_deadline_expires_the_order_even_before_the_sweeper(backend: Backend) {
    let config = ServerConfig {
        sweep_interval: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let o = app.order("o", &[(&a, 2)]).await.body;
    app.clock
        .advance(chrono::Duration::from_std(ServerConfig::default().order_ttl).unwrap());
    let late = pay(&app, &o, "late").await;
    late.assert_problem(409, "invalid-transition");
    assert_eq!(late.body["current_status"], "expired");
    assert_eq!(app.stock(&a).await, 5, "the expiry gave the stock back");
    let again = pay(&app, &o, "late").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, late.body);
    app.assert_books_balance().await;
}

async fn orders_are_listed_by_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 50).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..5 {
        let o = app.order(&format!("o{i}"), &[(&a, 1)]).await.body;
        if i % 2 == 0 {
            pay(&app, &o, &format!("p{i}")).await;
        }
        ids.push(o["id"].as_str().unwrap().to_owned());
    }
    let paid = send(app.get("/v1/orders?status=paid")).await;
    let paid: Vec<_> = paid.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paid, vec![ids[0].clone(), ids[2].clone(), ids[4].clone()]);
    let page = send(app.get("/v1/orders?limit=2")).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = send(app.get(&format!("/v1/orders?after={next}"))).await;
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 3);
    send(app.get("/v1/orders?status=lost"))
        .await
        .assert_problem(400, "invalid-query");
}

async fn clerks_sell_but_do_not_refund(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let clerk = app.key(Role::Clerk).await;
    let as_clerk = |path: &str, key: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(&clerk)
            .header("idempotency-key", key)
            .json(&body)
    };
    let o = send(as_clerk(
        "/v1/orders",
        "c1",
        json!({"lines": [{"product_id": a, "quantity": 1}]}),
    ))
    .await;
    assert_eq!(o.status, 201);
    let id = o.body["id"].as_str().unwrap();
    let paid = send(as_clerk(
        &format!("/v1/orders/{id}/payments"),
        "c2",
        json!({"method": "cash", "amount": o.body["total"]}),
    ))
    .await;
    assert_eq!(paid.status, 200);
    send(as_clerk(
        &format!("/v1/orders/{id}/refund"),
        "c3",
        json!({}),
    ))
    .await
    .assert_problem(403, "forbidden");
    send(as_clerk(
        &format!("/v1/products/{a}/stock-movements"),
        "c4",
        json!({"delta": 1, "reason": "restock"}),
    ))
    .await
    .assert_problem(403, "forbidden");
}

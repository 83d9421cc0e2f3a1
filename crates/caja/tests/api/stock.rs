//! The stock ledger over HTTP.

use serde_json::json;

use crate::helpers::{send, spawn_app, Backend};

on_both_engines!(
    movements_change_stock_and_each_is_one_ledger_row,
    a_movement_below_zero_is_refused_and_writes_nothing,
    stock_above_the_limit_and_control_characters_are_refused,
);

async fn movements_change_stock_and_each_is_one_ledger_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("A", 5).await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/v1/products/{id}/stock-movements");
    let r = send(app.post_idem(
        &path,
        "m1",
        &json!({"delta": 10, "reason": "restock", "note": "supplier delivery"}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["stock_after"], 15);
    assert_eq!(r.body["reason"], "restock");
    let r = send(app.post_idem(&path, "m2", &json!({"delta": -2, "reason": "damage"}))).await;
    assert_eq!(r.body["stock_after"], 13);
    let product = send(app.get(&format!("/v1/products/{id}"))).await;
    assert_eq!(product.body["stock"], 13);
    assert_eq!(
        product.header("etag"),
        Some("\"3\""),
        "a stock change is a new version"
    );
    let replay = send(app.post_idem(
        &path,
        "m1",
        &json!({"delta": 10, "reason": "restock", "note": "supplier delivery"}),
    ))
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.stock(id).await, 13);
    let page = send(app.get(&format!("{path}?limit=2"))).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    let rest = send(app.get(&format!(
        "{path}?after={}",
        page.body["next_cursor"].as_str().unwrap()
    )))
    .await;
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], serde_json::Value::Null);
    for bad in [
        json!({"delta": 0, "reason": "restock"}),
        json!({"delta": 1, "reason": "sale"}),
        json!({"delta": 1}),
    ] {
        let r = send(app.post_idem(&path, &format!("bad-{bad}"), &bad)).await;
        r.assert_problem(422, "invalid-field");
    }
    app.assert_books_balance().await;
}

async fn stock_above_the_limit_and_control_characters_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.product("HUGE", 999_999_999).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/products/{id}/stock-movements");
    let r = send(app.post_idem(&path, "big", &json!({"delta": 2, "reason": "restock"}))).await;
    r.assert_problem(422, "stock-limit");
    assert_eq!(app.stock(&id).await, 999_999_999);
    // A NUL would be refused by PostgreSQL itself: it must be a 422 on both engines.
    let r = send(app.post_idem(
        &path,
        "nul",
        &json!({"delta": 1, "reason": "restock", "note": "a\u{0}b"}),
    ))
    .await;
    r.assert_problem(422, "invalid-field");
    let r = app
        .post_idem(
            "/v1/orders",
            "nul-order",
            &json!({"lines": [{"product_id": id, "quantity": 1}], "customer": {"name": "x\u{0}"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    app.assert_books_balance().await;
}

async fn a_movement_below_zero_is_refused_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.product("A", 2).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/products/{id}/stock-movements");
    let r = send(app.post_idem(&path, "m", &json!({"delta": -3, "reason": "correction"}))).await;
    r.assert_problem(409, "out-of-stock");
    assert_eq!(r.body["available"], 2);
    assert_eq!(app.stock(&id).await, 2);
    assert_eq!(
        send(app.get(&path)).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    send(app.post_idem(
        "/v1/products/prod_01J00000000000000000000000/stock-movements",
        "nf",
        &json!({"delta": 1, "reason": "restock"}),
    ))
    .await
    .assert_problem(404, "not-found");
    app.assert_books_balance().await;
}

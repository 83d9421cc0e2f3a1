//! The promises under races: never oversell, exactly once.

use std::collections::HashSet;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use caja_server::ServerConfig;

use crate::helpers::{send, spawn_app, spawn_app_with, Backend};

on_both_engines!(
    four_hundred_buyers_for_fifty_units_sell_exactly_fifty,
    multi_line_orders_in_random_line_order_never_deadlock,
    fifty_concurrent_copies_of_one_key_make_one_order,
    without_batching_the_same_races_hold,
    batched_and_unbatched_answers_are_alike,
);

/// The per-request-transaction baseline (`write_batching = false`) keeps every promise too.
async fn without_batching_the_same_races_hold(backend: Backend) {
    let config = ServerConfig {
        write_batching: false,
        ..ServerConfig::default()
    };
    let app = Arc::new(spawn_app_with(backend, config).await);
    let id = app.product("HOT", 50).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        let id = id.clone();
        // Every key twice: the copies race each other.
        tasks.push(tokio::spawn(async move {
            app.order(&format!("buyer-{}", i / 2), &[(&id, 1)]).await
        }));
    }
    let mut created = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => {
                created.insert(r.body["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(r.body["type"], "out-of-stock"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(created.len(), 50);
    assert_eq!(app.stock(&id).await, 0);
    app.assert_books_balance().await;
}

/// The batched path and the per-request path render the same answers.
async fn batched_and_unbatched_answers_are_alike(backend: Backend) {
    let mut shapes = Vec::new();
    for batching in [true, false] {
        let config = ServerConfig {
            write_batching: batching,
            ..ServerConfig::default()
        };
        let app = spawn_app_with(backend, config).await;
        let id = app.product("A", 1).await["id"].as_str().unwrap().to_owned();
        let ok = app.order("k1", &[(&id, 1)]).await;
        let short = app.order("k2", &[(&id, 1)]).await;
        assert_eq!(
            ok.header("location"),
            Some(format!("/v1/orders/{}", ok.body["id"].as_str().unwrap()).as_str())
        );
        let mut ok_body = ok.body.clone();
        for k in ["id", "created_at", "updated_at", "expires_at"] {
            ok_body[k] = Value::Null;
        }
        ok_body["lines"][0]["product_id"] = Value::Null;
        let mut short_body = short.body.clone();
        short_body["request_id"] = Value::Null;
        short_body["lines"][0]["product_id"] = Value::Null;
        shapes.push((
            ok.status,
            ok_body,
            short.status,
            short_body,
            short.header("content-type").map(str::to_owned),
        ));
    }
    assert_eq!(shapes[0], shapes[1]);
}

async fn four_hundred_buyers_for_fifty_units_sell_exactly_fifty(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let id = app.product("HOT", 50).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let app = app.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            app.order(&format!("buyer-{i}"), &[(&id, 1)]).await
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => created += 1,
            409 => {
                assert_eq!(r.body["type"], "out-of-stock");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!((created, refused), (50, 350));
    assert_eq!(app.stock(&id).await, 0);
    app.assert_books_balance().await;
}

async fn multi_line_orders_in_random_line_order_never_deadlock(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.product(&format!("P{i}"), 120).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..300 {
        let app = app.clone();
        let mut lines: Vec<(String, i64)> = {
            let mut rng = rand::thread_rng();
            let mut chosen = ids.clone();
            chosen.shuffle(&mut rng);
            let n = rng.gen_range(1..=5);
            chosen
                .into_iter()
                .take(n)
                .map(|p| (p, rng.gen_range(1..=3)))
                .collect()
        };
        lines.shuffle(&mut rand::thread_rng());
        tasks.push(tokio::spawn(async move {
            let lines: Vec<(&str, i64)> = lines.iter().map(|(p, q)| (p.as_str(), *q)).collect();
            app.order(&format!("multi-{i}"), &lines).await
        }));
    }
    let mut sold: i64 = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => {
                sold += r.body["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["quantity"].as_i64().unwrap())
                    .sum::<i64>()
            }
            409 => assert_eq!(r.body["type"], "out-of-stock"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    let mut left = 0;
    for id in &ids {
        let s = app.stock(id).await;
        assert!(s >= 0);
        left += s;
    }
    assert_eq!(
        sold + left,
        5 * 120,
        "what was sold plus what is left is what was received"
    );
    app.assert_books_balance().await;
}

async fn fifty_concurrent_copies_of_one_key_make_one_order(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let id = app.product("ONE", 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = app.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let r = app
                .post_idem(
                    "/v1/orders",
                    "the-same-key",
                    &json!({"lines": [{"product_id": id, "quantity": 2}]}),
                )
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }));
    }
    let mut bodies = HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        bodies.insert(body);
    }
    assert_eq!(bodies.len(), 1, "every copy got the same bytes");
    let orders = send(app.get("/v1/orders")).await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.stock(&id).await, 98);
    let _: Value = serde_json::from_slice(bodies.iter().next().unwrap()).unwrap();
    app.assert_books_balance().await;
}

//! Branches: locations, stock per location, transfers between them, orders handed from one
//! to another, and keys bound to a location.

use std::sync::Arc;
use std::time::Duration;

use caja_core::auth::{ApiKeySecret, Role};
use caja_core::ids::{LocationId, OrderId, ProductId, TabId, TabItemId};
use caja_store::migrate::{embedded, Migrator};
use caja_store::NewApiKey;
use rand::Rng;
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, spawn_app_on, Backend, TestApp, TestDb};

on_both_engines!(
    locations_are_created_listed_and_renamed_with_if_match,
    each_location_sells_its_own_stock_and_a_shortage_names_it,
    stock_in_transit_is_sellable_nowhere_until_received,
    concurrent_transfers_and_sales_between_three_locations_conserve_stock,
    an_order_handed_over_twice_at_once_moves_once,
    a_key_bound_to_a_location_sells_there_only,
    an_upgraded_single_location_database_keeps_every_figure,
);

const MAIN: &str = "loc_00000000000000000000000000";

async fn location(app: &TestApp, code: &str) -> String {
    let r = send(app.post("/v1/locations", &json!({"code": code, "name": code}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The product's stock at each location, from `GET /v1/products/{id}/stock`.
async fn stock_at(app: &TestApp, product: &str) -> (i64, i64, Vec<(String, i64, i64)>) {
    let r = send(app.get(&format!("/v1/products/{product}/stock"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let places = r.body["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location"]["code"].as_str().unwrap().to_owned(),
                l["stock"].as_i64().unwrap(),
                l["incoming"].as_i64().unwrap(),
            )
        })
        .collect();
    (
        r.body["stock"].as_i64().unwrap(),
        r.body["in_transit"].as_i64().unwrap(),
        places,
    )
}

async fn transfer(app: &TestApp, key: &str, body: Value) -> crate::helpers::Reply {
    send(app.post_idem("/v1/transfers", key, &body)).await
}

async fn locations_are_created_listed_and_renamed_with_if_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let north = location(&app, "north").await;
    let list = send(app.get("/v1/locations")).await;
    let codes: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["main", "north"], "the default location first");
    assert_eq!(list.body["data"][0]["default"], true);
    assert_eq!(list.body["data"][0]["id"], MAIN);

    send(app.post("/v1/locations", &json!({"code": "north", "name": "Again"})))
        .await
        .assert_problem(409, "duplicate-code");
    send(app.post("/v1/locations", &json!({"code": "no spaces", "name": "x"})))
        .await
        .assert_problem(422, "invalid-field");

    let read = send(app.get(&format!("/v1/locations/{north}"))).await;
    assert_eq!(read.header("etag"), Some("\"1\""));
    let rename = |etag: &str| {
        app.patch(
            &format!("/v1/locations/{north}"),
            &json!({"code": "norte", "name": "Sucursal Norte"}),
        )
        .header("if-match", etag.to_owned())
    };
    let renamed = send(rename("\"1\"")).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["code"], "norte");
    send(rename("\"1\""))
        .await
        .assert_problem(412, "precondition-failed");
    send(
        app.patch(&format!("/v1/locations/{MAIN}"), &json!({"code": "norte"}))
            .header("if-match", "\"1\""),
    )
    .await
    .assert_problem(409, "duplicate-code");
    send(app.get("/v1/locations/loc_01J00000000000000000000000"))
        .await
        .assert_problem(404, "not-found");
    // A clerk reads locations but does not make them.
    let clerk = app.key(Role::Clerk).await;
    let r = send(
        app.client
            .post(app.url("/v1/locations"))
            .bearer_auth(&clerk)
            .json(&json!({"code": "south", "name": "South"})),
    )
    .await;
    r.assert_problem(403, "forbidden");
    let changes = app.store.changes_after(0, 100).await.unwrap();
    let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["location.created", "location.updated"]);
}

async fn each_location_sells_its_own_stock_and_a_shortage_names_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let north = location(&app, "north").await;
    let created = send(app.post(
        "/v1/products",
        &json!({"sku": "PART", "name": "Screen", "price": {"amount": 100, "currency": "MXN"},
                "stock": 4, "location": "north"}),
    ))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["locations"],
        json!([{"location_id": north, "stock": 4}])
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    // Restock at the main location by naming it; the ledger row says where.
    let moved = send(app.post_idem(
        &format!("/v1/products/{id}/stock-movements"),
        "restock-main",
        &json!({"delta": 3, "reason": "restock", "location": "main"}),
    ))
    .await;
    assert_eq!(moved.status, 201, "{}", moved.body);
    assert_eq!(moved.body["location_id"], MAIN);
    assert_eq!(moved.body["stock_after"], 7);
    send(app.post_idem(
        &format!("/v1/products/{id}/stock-movements"),
        "damage-main",
        &json!({"delta": -4, "reason": "damage", "location": MAIN}),
    ))
    .await
    .assert_problem(409, "out-of-stock");

    // An order takes from the main location unless it names another.
    let short = app.order("at-main", &[(&id, 4)]).await;
    short.assert_problem(409, "out-of-stock");
    assert_eq!(short.body["lines"][0]["location_id"], MAIN);
    assert_eq!(short.body["lines"][0]["available"], 3);
    let there = send(app.post_idem(
        "/v1/orders",
        "at-north",
        &json!({"lines": [{"product_id": id, "quantity": 4}], "location": "north"}),
    ))
    .await;
    assert_eq!(there.status, 201, "{}", there.body);
    assert_eq!(there.body["location_id"], north);
    let (total, transit, places) = stock_at(&app, &id).await;
    assert_eq!((total, transit), (3, 0));
    assert_eq!(
        places,
        [("main".to_owned(), 3, 0), ("north".to_owned(), 0, 0)]
    );
    send(app.post_idem(
        "/v1/orders",
        "nowhere",
        &json!({"lines": [{"product_id": id, "quantity": 1}], "location": "atlantis"}),
    ))
    .await
    .assert_problem(422, "unknown-location");
    // A cancel gives the stock back where the order took it.
    let order = there.body["id"].as_str().unwrap();
    let cancelled =
        send(app.post_idem(&format!("/v1/orders/{order}/cancel"), "cancel", &json!({}))).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let (_, _, places) = stock_at(&app, &id).await;
    assert_eq!(places[1], ("north".to_owned(), 4, 0));
    // A tab takes its items' stock from its location.
    let tab = send(app.post_idem(
        "/v1/tabs",
        "tab",
        &json!({"label": "Bench 2", "location": "north"}),
    ))
    .await;
    assert_eq!(tab.body["location_id"], north);
    let tab = tab.body["id"].as_str().unwrap();
    let item = send(app.post_idem(
        &format!("/v1/tabs/{tab}/items"),
        "item",
        &json!({"product_id": id, "quantity": 4}),
    ))
    .await;
    assert_eq!(item.status, 201, "{}", item.body);
    let (total, _, places) = stock_at(&app, &id).await;
    assert_eq!((total, places[1].1), (3, 0));
    app.assert_books_balance().await;
}

async fn stock_in_transit_is_sellable_nowhere_until_received(backend: Backend) {
    let app = spawn_app(backend).await;
    let north = location(&app, "north").await;
    let id = app.product("PART", 5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"product_id": id, "from": "main", "to": "north", "quantity": 5,
                      "in_transit": true, "note": "van 3"});
    let sent = transfer(&app, "send", body.clone()).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["status"], "in_transit");
    assert_eq!(sent.body["to"], north);
    // The retry replays; the key cannot be reused for another transfer.
    let again = transfer(&app, "send", body).await;
    assert_eq!(again.body, sent.body);
    transfer(
        &app,
        "send",
        json!({"product_id": id, "from": "main", "to": "north", "quantity": 1}),
    )
    .await
    .assert_problem(422, "idempotency-key-mismatch");

    let (total, transit, places) = stock_at(&app, &id).await;
    assert_eq!((total, transit), (0, 5));
    assert_eq!(
        places,
        [("main".to_owned(), 0, 0), ("north".to_owned(), 0, 5)]
    );
    for (key, at) in [("sell-main", "main"), ("sell-north", "north")] {
        send(app.post_idem(
            "/v1/orders",
            key,
            &json!({"lines": [{"product_id": id, "quantity": 1}], "location": at}),
        ))
        .await
        .assert_problem(409, "out-of-stock");
    }
    let transfer_id = sent.body["id"].as_str().unwrap();
    let listed = send(app.get("/v1/transfers?status=in_transit")).await;
    assert_eq!(listed.body["data"][0]["id"], transfer_id);
    let received = send(app.post_idem(
        &format!("/v1/transfers/{transfer_id}/receive"),
        "receive",
        &json!({}),
    ))
    .await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert_eq!(received.body["status"], "received");
    send(app.post_idem(
        &format!("/v1/transfers/{transfer_id}/receive"),
        "receive-again",
        &json!({}),
    ))
    .await
    .assert_problem(409, "invalid-transition");
    let (total, transit, places) = stock_at(&app, &id).await;
    assert_eq!((total, transit), (5, 0));
    assert_eq!(places[1], ("north".to_owned(), 5, 0));
    let sold = send(app.post_idem(
        "/v1/orders",
        "sell-north-now",
        &json!({"lines": [{"product_id": id, "quantity": 5}], "location": "north"}),
    ))
    .await;
    assert_eq!(sold.status, 201, "{}", sold.body);
    // Never below zero at the source; never to the same place; a ticket section never.
    transfer(
        &app,
        "too-many",
        json!({"product_id": id, "from": "main", "to": "north", "quantity": 1}),
    )
    .await
    .assert_problem(409, "out-of-stock");
    transfer(
        &app,
        "same",
        json!({"product_id": id, "from": "north", "to": north, "quantity": 1}),
    )
    .await
    .assert_problem(422, "invalid-field");
    // The feed tells every till: the transfer, and each product's stock per location.
    let changes = app.store.changes_after(0, 1000).await.unwrap();
    let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
    assert!(kinds.contains(&"transfer.created") && kinds.contains(&"transfer.received"));
    let last_stock = changes
        .iter()
        .rev()
        .find(|c| c.kind == "product.stock_changed")
        .unwrap();
    let data: Value = serde_json::from_str(&last_stock.data).unwrap();
    assert_eq!(data["locations"], json!([]), "all sold");
    let movements = send(app.get(&format!("/v1/products/{id}/stock-movements"))).await;
    let rows: Vec<(String, String, i64)> = movements.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["reason"].as_str().unwrap().to_owned(),
                m["location_id"].as_str().unwrap().to_owned(),
                m["delta"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows[1..3],
        [
            ("transfer_out".to_owned(), MAIN.to_owned(), -5),
            ("transfer_in".to_owned(), north.clone(), 5)
        ]
    );
    app.assert_books_balance().await;
}

/// 200 transfers and sales at once between three locations: every unit is accounted for,
/// no location goes below zero, and the books balance.
async fn concurrent_transfers_and_sales_between_three_locations_conserve_stock(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let places = ["main", "north", "south"];
    for p in &places[1..] {
        location(&app, p).await;
    }
    let id = app.product("PART", 150).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (i, to) in places[1..].iter().enumerate() {
        let r = transfer(
            &app,
            &format!("seed-{i}"),
            json!({"product_id": id, "from": "main", "to": to, "quantity": 50}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        let id = id.clone();
        let (a, b, quantity, sale, in_transit) = {
            let mut rng = rand::thread_rng();
            let a = rng.gen_range(0..3);
            let b = (a + rng.gen_range(1..3)) % 3;
            (
                places[a],
                places[b],
                rng.gen_range(1..=6),
                rng.gen_bool(0.3),
                rng.gen_bool(0.3),
            )
        };
        tasks.push(tokio::spawn(async move {
            let key = format!("op-{i}");
            let r = if sale {
                send(app.post_idem(
                    "/v1/orders",
                    &key,
                    &json!({"lines": [{"product_id": id, "quantity": quantity}], "location": a}),
                ))
                .await
            } else {
                transfer(
                    &app,
                    &key,
                    json!({"product_id": id, "from": a, "to": b, "quantity": quantity,
                           "in_transit": in_transit}),
                )
                .await
            };
            match r.status {
                201 => (sale, quantity),
                409 => {
                    assert_eq!(r.body["type"], "out-of-stock", "{}", r.body);
                    (sale, 0)
                }
                other => panic!("{other}: {}", r.body),
            }
        }));
    }
    let mut sold = 0;
    let mut moved = 0;
    for t in tasks {
        let (sale, n) = t.await.unwrap();
        if sale {
            sold += n;
        } else {
            moved += n;
        }
    }
    assert!(
        sold > 0 && moved > 0,
        "both kinds happened: {sold} sold, {moved} moved"
    );
    let (total, transit, at) = stock_at(&app, &id).await;
    assert_eq!(total + transit + sold, 150, "every unit is somewhere");
    assert!(at.iter().all(|(_, n, _)| *n >= 0), "{at:?}");
    assert_eq!(at.iter().map(|(_, n, _)| n).sum::<i64>(), total);
    app.assert_books_balance().await;
}

async fn an_order_handed_over_twice_at_once_moves_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let north = location(&app, "north").await;
    let id = app.product("PART", 4).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = transfer(
        &app,
        "stock-north",
        json!({"product_id": id, "from": "main", "to": "north", "quantity": 2}),
    )
    .await;
    assert_eq!(r.status, 201);
    let order = app.order("repair-17", &[(&id, 2)]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order = order.body["id"].as_str().unwrap().to_owned();
    let hand_over = |key: &'static str, to: &str| {
        send(app.post_idem(
            &format!("/v1/orders/{order}/transfer"),
            key,
            &json!({ "to": to }),
        ))
    };
    let (a, b) = tokio::join!(hand_over("front-desk", "north"), hand_over("phone", &north));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
    let (moved, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    refused.assert_problem(409, "already-there");
    assert_eq!(moved.body["location_id"], north);
    assert_eq!(moved.body["handovers"].as_array().unwrap().len(), 1);
    assert_eq!(moved.body["handovers"][0]["from"], MAIN);
    let (total, _, places) = stock_at(&app, &id).await;
    assert_eq!(total, 2);
    assert_eq!(
        places,
        [("main".to_owned(), 2, 0), ("north".to_owned(), 0, 0)]
    );
    // Nothing left at the main location for it to come back to: refused, all or nothing.
    let sold = app.order("walk-in", &[(&id, 2)]).await;
    assert_eq!(sold.status, 201);
    let back = hand_over("back", "main").await;
    back.assert_problem(409, "out-of-stock");
    assert_eq!(back.body["lines"][0]["location_id"], MAIN);
    // Paid orders move too; fulfilled ones do not.
    let paid = send(app.post_idem(
        &format!("/v1/orders/{order}/payments"),
        "pay",
        &json!({"method": "cash", "amount": {"amount": 9100, "currency": "MXN"}}),
    ))
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    send(app.post_idem(&format!("/v1/orders/{order}/fulfill"), "give", &json!({}))).await;
    hand_over("late", "main")
        .await
        .assert_problem(409, "invalid-transition");
    let read = send(app.get(&format!("/v1/orders/{order}"))).await;
    assert_eq!(read.body["handovers"].as_array().unwrap().len(), 1);
    let kinds: Vec<String> = app
        .store
        .changes_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "order.transferred").count(),
        1
    );
    app.assert_books_balance().await;
}

async fn key_at(app: &TestApp, role: Role, location: &str) -> String {
    let secret = ApiKeySecret::generate();
    app.store
        .create_key(
            &NewApiKey {
                name: format!("till at {location}"),
                role,
                rate_limit: None,
                location: Some(LocationId::parse("location", location).unwrap()),
            },
            &secret,
        )
        .await
        .unwrap();
    secret.reveal().to_owned()
}

async fn a_key_bound_to_a_location_sells_there_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let north = location(&app, "north").await;
    let id = app.product("PART", 5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    transfer(
        &app,
        "stock-north",
        json!({"product_id": id, "from": "main", "to": "north", "quantity": 2}),
    )
    .await;
    let till = key_at(&app, Role::Clerk, &north).await;
    let sell = |key: &'static str, body: Value| {
        send(
            app.client
                .post(app.url("/v1/orders"))
                .bearer_auth(&till)
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let here = sell(
        "here",
        json!({"lines": [{"product_id": id, "quantity": 1}]}),
    )
    .await;
    assert_eq!(here.status, 201, "{}", here.body);
    assert_eq!(here.body["location_id"], north, "its key's location");
    sell(
        "there",
        json!({"lines": [{"product_id": id, "quantity": 1}], "location": "main"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let named = sell(
        "named",
        json!({"lines": [{"product_id": id, "quantity": 1}], "location": "north"}),
    )
    .await;
    assert_eq!(named.status, 201);
    sell(
        "more",
        json!({"lines": [{"product_id": id, "quantity": 1}]}),
    )
    .await
    .assert_problem(409, "out-of-stock");
    // Its tabs are at its location; a tab of another location is not its to fill.
    let till_post = |path: String, key: &'static str, body: Value| {
        send(
            app.client
                .post(app.url(&path))
                .bearer_auth(&till)
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let own = till_post("/v1/tabs".into(), "own-tab", json!({"label": "Bench 1"})).await;
    assert_eq!(own.body["location_id"], north, "{}", own.body);
    let main_tab = send(app.post_idem("/v1/tabs", "main-tab", &json!({"label": "Front"}))).await;
    let main_tab = main_tab.body["id"].as_str().unwrap();
    till_post(
        format!("/v1/tabs/{main_tab}/items"),
        "elsewhere",
        json!({"product_id": id, "quantity": 1}),
    )
    .await
    .assert_problem(403, "forbidden");
    // It sees its own location's stock.
    let seen = send(
        app.client
            .get(app.url(&format!("/v1/products/{id}/stock")))
            .bearer_auth(&till),
    )
    .await;
    let codes: Vec<&str> = seen.body["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["location"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["north"]);
    // An admin's key bound to a location sells there by default, anywhere when it says so.
    let office = key_at(&app, Role::Admin, &north).await;
    let anywhere = send(
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&office)
            .header("idempotency-key", "office")
            .json(&json!({"lines": [{"product_id": id, "quantity": 1}], "location": "main"})),
    )
    .await;
    assert_eq!(anywhere.status, 201, "{}", anywhere.body);
    assert_eq!(anywhere.body["location_id"], MAIN);
}

/// A database written by the previous version (one stock figure per product) upgrades with
/// every figure where it was: all of it at the default location.
async fn an_upgraded_single_location_database_keeps_every_figure(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let migrator = Migrator::new(&store, Duration::from_secs(30), Duration::from_secs(5));
    migrator.up(&mut |_| {}).await.unwrap();
    // Back to the schema before locations: every migration from 0015_locations on.
    let newer = embedded(store.engine())
        .iter()
        .filter(|m| m.version >= 15)
        .count();
    let back = migrator.down(newer, &mut |_| {}).await.unwrap();
    assert_eq!(
        back.last().map(|m| m.label.as_str()),
        Some("0015_locations"),
        "the previous version's schema"
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let (product, order) = (ProductId::generate(), OrderId::generate());
    let (tab, item) = (TabId::generate(), TabItemId::generate());
    let at = "2026-11-29T10:00:00.000000Z";
    let later = "2099-01-01T00:00:00.000000Z";
    let statements = [
        format!(
            "INSERT INTO products (id, sku, name, price_amount, currency, stock, version, \
             created_at, updated_at) VALUES ('{product}', 'OLD-1', 'Old part', 500, 'MXN', 5, 4, \
             '{at}', '{at}')"
        ),
        format!(
            "INSERT INTO orders (id, number, status, subtotal, tip, total, currency, created_at, \
             updated_at, expires_at) VALUES ('{order}', 1, 'pending_payment', 1500, 0, 1500, \
             'MXN', '{at}', '{at}', '{later}')"
        ),
        format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, \
             unit_price, line_total) VALUES ('{order}', 1, '{product}', 'OLD-1', 'Old part', 3, \
             500, 1500)"
        ),
        "UPDATE counters SET value = 1 WHERE name = 'order_number'".to_owned(),
        format!(
            "INSERT INTO tabs (id, label, status, rate, currency, unit_minutes, minimum_minutes, \
             grace_minutes, periods, version, opened_at, updated_at) VALUES ('{tab}', 'Bench', \
             'open', 0, 'MXN', 1, 0, 0, '[{{\"started_at\": \"{at}\", \"ended_at\": null}}]', 2, \
             '{at}', '{at}')"
        ),
        format!(
            "INSERT INTO tab_items (id, tab_id, product_id, sku, name, quantity, unit_price, \
             added_at) VALUES ('{item}', '{tab}', '{product}', 'OLD-1', 'Old part', 2, 500, '{at}')"
        ),
        format!(
            "INSERT INTO stock_movements (product_id, delta, reason, stock_after, created_at) \
             VALUES ('{product}', 10, 'initial', 10, '{at}')"
        ),
        format!(
            "INSERT INTO stock_movements (product_id, delta, reason, order_id, stock_after, \
             created_at) VALUES ('{product}', -3, 'sale', '{order}', 7, '{at}')"
        ),
        format!(
            "INSERT INTO stock_movements (product_id, delta, reason, tab_id, stock_after, \
             created_at) VALUES ('{product}', -2, 'tab', '{tab}', 5, '{at}')"
        ),
    ];
    for sql in &statements {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    pool.close().await;
    drop(store);

    let app = spawn_app_on(db, caja_server::ServerConfig::default()).await;
    app.assert_books_balance().await;
    let p = send(app.get(&format!("/v1/products/{product}"))).await;
    assert_eq!(
        (p.body["stock"].as_i64(), p.body["version"].as_i64()),
        (Some(5), Some(4))
    );
    assert_eq!(
        p.body["locations"],
        json!([{"location_id": MAIN, "stock": 5}])
    );
    let (total, transit, places) = stock_at(&app, &product.to_string()).await;
    assert_eq!(
        (total, transit, places),
        (5, 0, vec![("main".to_owned(), 5, 0)])
    );
    let o = send(app.get(&format!("/v1/orders/{order}"))).await;
    assert_eq!(o.body["location_id"], MAIN);
    assert_eq!(o.body["handovers"], json!([]));
    let t = send(app.get(&format!("/v1/tabs/{tab}"))).await;
    assert_eq!(t.body["location_id"], MAIN);
    let ledger = send(app.get(&format!("/v1/products/{product}/stock-movements"))).await;
    assert!(ledger.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["location_id"] == MAIN));
    // And the old rows live on: the order's cancel and the tab's void give the stock back
    // at the default location.
    let cancelled =
        send(app.post_idem(&format!("/v1/orders/{order}/cancel"), "c", &json!({}))).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let voided = send(app.post_idem(
        &format!("/v1/tabs/{tab}/void"),
        "v",
        &json!({"reason": "upgrade test"}),
    ))
    .await;
    assert_eq!(voided.status, 200, "{}", voided.body);
    assert_eq!(app.stock(&product.to_string()).await, 10);
    app.assert_books_balance().await;
    let next = app
        .order("after-upgrade", &[(&product.to_string(), 1)])
        .await;
    assert_eq!(next.body["number"], 2, "order numbers go on");
}

/// Transfers, sales and hand-overs over two replicas on one PostgreSQL: the lock order
/// holds across processes (no deadlock, no error), every unit is accounted for, and
/// `caja check` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_move_and_sell_stock_between_branches() {
    use crate::cli::{wait_ready, Server};

    const KEY: &str = "branches-replicas-admin-key-0123456789";
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("CAJA_ADMIN_KEY", KEY)];
    let a = Server::start(&db, &[], &env);
    let b = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    let post = |base: &str, path: &str, key: String, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(KEY)
            .header("idempotency-key", key)
            .json(&body)
    };
    for code in ["north", "south"] {
        let r = send(post(
            &a.base,
            "/v1/locations",
            code.into(),
            json!({"code": code, "name": code}),
        ))
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let product = send(post(
        &b.base,
        "/v1/products",
        "p".into(),
        // Enough at main for the orders, every transfer and every sale from it (10, at most
        // 120 and 20 units), so that each kind of write goes through whatever order they
        // commit in; north and south have nothing to sell until a transfer is received,
        // which none is.
        json!({"sku": "PART", "name": "Part", "price": {"amount": 100, "currency": "MXN"}, "stock": 200}),
    ))
    .await;
    let id = product.body["id"].as_str().unwrap().to_owned();
    // Orders to hand over while stock moves under them.
    let mut orders = Vec::new();
    for i in 0..10 {
        let r = send(post(
            &a.base,
            "/v1/orders",
            format!("o{i}"),
            json!({"lines": [{"product_id": id, "quantity": 1}]}),
        ))
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        orders.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let places = ["main", "north", "south"];
    let mut tasks = Vec::new();
    for i in 0..240usize {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (from, to) = (places[i % 3], places[(i / 3 + 1 + i) % 3]);
        let request = match i % 4 {
            0 | 1 if from != to => post(
                &base,
                "/v1/transfers",
                format!("t{i}"),
                json!({"product_id": id, "from": from, "to": to, "quantity": 1 + i % 3}),
            ),
            2 => post(
                &base,
                "/v1/orders",
                format!("s{i}"),
                json!({"lines": [{"product_id": id, "quantity": 1}], "location": from}),
            ),
            _ => post(
                &base,
                &format!("/v1/orders/{}/transfer", orders[i % orders.len()]),
                format!("h{i}"),
                json!({ "to": to }),
            ),
        };
        let kind = if from == to && i % 4 < 2 { 3 } else { i % 4 };
        tasks.push(tokio::spawn(async move { (kind, send(request).await) }));
    }
    let mut done = [0; 4];
    for t in tasks {
        let (kind, r) = t.await.unwrap();
        match r.status {
            200 | 201 => done[kind] += 1,
            409 => assert!(
                ["out-of-stock", "already-there"].contains(&r.body["type"].as_str().unwrap()),
                "{}",
                r.body
            ),
            other => panic!("{other}: {}", r.body),
        }
    }
    // Transfers (kinds 0 and 1), sales (2) and hand-overs (3) each went through somewhere.
    assert!(
        done[0] + done[1] > 0 && done[2] > 0 && done[3] > 0,
        "{done:?}"
    );
    let view = send(
        client
            .get(format!("{}/v1/products/{id}/stock", a.base))
            .bearer_auth(KEY),
    )
    .await;
    let shares: i64 = view.body["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stock"].as_i64().unwrap())
        .sum();
    assert_eq!(shares, view.body["stock"].as_i64().unwrap());
    let check = crate::migrate::caja(&["check", "--database-url", &db.url]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

//! The catalog over HTTP: create, read, list, patch with If-Match, archive.

use serde_json::json;

use crate::helpers::{send, spawn_app, Backend};

on_both_engines!(
    a_product_is_created_and_read_back_with_its_etag,
    listing_pages_through_live_products_in_a_stable_order,
    patch_requires_if_match_and_a_stale_version_writes_nothing,
    delete_archives_and_keeps_the_product_readable,
    a_duplicate_sku_is_a_conflict,
    a_price_in_another_currency_is_refused,
    stock_cannot_be_patched,
    an_unknown_product_is_not_found,
);

async fn a_product_is_created_and_read_back_with_its_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = send(app.post(
        "/v1/products",
        &json!({"sku": "CAFE-1", "name": "Café americano", "price": {"amount": 4550, "currency": "MXN"}, "stock": 12}),
    ))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prod_"));
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/products/{id}").as_str())
    );
    assert_eq!(created.body["sku"], "CAFE-1");
    assert_eq!(created.body["name"], "Café americano");
    assert_eq!(
        created.body["price"],
        json!({"amount": 4550, "currency": "MXN"})
    );
    assert_eq!(created.body["stock"], 12);
    assert_eq!(created.body["version"], 1);
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    let read = send(app.get(&format!("/v1/products/{id}"))).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);
    assert_eq!(read.header("etag"), Some("\"1\""));

    let without_stock = send(app.post(
        "/v1/products",
        &json!({"sku": "CAFE-2", "name": "Latte", "price": {"amount": 5000, "currency": "MXN"}}),
    ))
    .await;
    assert_eq!(without_stock.body["stock"], 0);
}

async fn listing_pages_through_live_products_in_a_stable_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.product(&format!("SKU-{i}"), i).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/products?limit=2&after={c}"),
            None => "/v1/products?limit=2".into(),
        };
        let page = send(app.get(&path)).await;
        assert_eq!(page.status, 200);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let archived = send(
        app.delete(&format!("/v1/products/{}", ids[1]))
            .header("if-match", "\"1\""),
    )
    .await;
    assert_eq!(archived.status, 200);
    let all = send(app.get("/v1/products")).await;
    let listed: Vec<_> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 4);
    assert!(!listed.contains(&ids[1]));
    assert!(all.body["next_cursor"].is_null());
}

async fn patch_requires_if_match_and_a_stale_version_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("TEA", 3).await;
    let path = format!("/v1/products/{}", p["id"].as_str().unwrap());

    send(app.patch(&path, &json!({"name": "Green tea"})))
        .await
        .assert_problem(428, "precondition-required");
    let stale = send(
        app.patch(&path, &json!({"name": "Green tea"}))
            .header("if-match", "\"7\""),
    )
    .await;
    stale.assert_problem(412, "precondition-failed");
    assert_eq!(stale.body["current_etag"], "\"1\"");
    let unchanged = send(app.get(&path)).await;
    assert_eq!(unchanged.body, p, "a refused patch writes nothing");

    let ok = send(
        app.patch(
            &path,
            &json!({"name": "Green tea", "price": {"amount": 3000, "currency": "MXN"}}),
        )
        .header("if-match", "\"1\""),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("etag"), Some("\"2\""));
    assert_eq!(ok.body["name"], "Green tea");
    assert_eq!(ok.body["price"]["amount"], 3000);
    assert_eq!(ok.body["sku"], "TEA");
    assert_eq!(ok.body["stock"], 3);
    assert_eq!(send(app.get(&path)).await.body, ok.body);

    // The old tag is now stale: a lost update is refused.
    send(
        app.patch(&path, &json!({"name": "Black tea"}))
            .header("if-match", "\"1\""),
    )
    .await
    .assert_problem(412, "precondition-failed");
    send(app.patch(&path, &json!({})).header("if-match", "\"2\""))
        .await
        .assert_problem(422, "invalid-field");
}

async fn delete_archives_and_keeps_the_product_readable(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("MUG", 1).await;
    let path = format!("/v1/products/{}", p["id"].as_str().unwrap());
    send(app.delete(&path))
        .await
        .assert_problem(428, "precondition-required");
    send(app.delete(&path).header("if-match", "\"9\""))
        .await
        .assert_problem(412, "precondition-failed");
    let gone = send(app.delete(&path).header("if-match", "\"1\"")).await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.body["archived"], true);
    assert_eq!(gone.header("etag"), Some("\"2\""));
    let read = send(app.get(&path)).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["archived"], true);
    send(
        app.patch(&path, &json!({"name": "x"}))
            .header("if-match", "\"2\""),
    )
    .await
    .assert_problem(409, "archived");
    // An archived product frees its sku.
    app.product("MUG", 5).await;
}

async fn a_duplicate_sku_is_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    app.product("DUP", 1).await;
    let again = send(app.post(
        "/v1/products",
        &json!({"sku": "DUP", "name": "Other", "price": {"amount": 1, "currency": "MXN"}}),
    ))
    .await;
    again.assert_problem(409, "duplicate-sku");
    let other = app.product("OTHER", 1).await;
    let path = format!("/v1/products/{}", other["id"].as_str().unwrap());
    send(
        app.patch(&path, &json!({"sku": "DUP"}))
            .header("if-match", "\"1\""),
    )
    .await
    .assert_problem(409, "duplicate-sku");
}

async fn a_price_in_another_currency_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(app.post(
        "/v1/products",
        &json!({"sku": "X", "name": "X", "price": {"amount": 100, "currency": "USD"}}),
    ))
    .await;
    r.assert_problem(422, "currency-mismatch");
    assert_eq!(r.body["expected"], "MXN");
    let r = send(app.post(
        "/v1/products",
        &json!({"sku": "X", "name": "X", "price": {"amount": -5, "currency": "MXN"}}),
    ))
    .await;
    r.assert_problem(422, "invalid-field");
    assert_eq!(r.body["field"], "price");
    let list = send(app.get("/v1/products")).await;
    assert_eq!(list.body["data"], json!([]), "refusals write nothing");
}

async fn stock_cannot_be_patched(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("BAG", 2).await;
    let path = format!("/v1/products/{}", p["id"].as_str().unwrap());
    let r = send(
        app.patch(&path, &json!({"stock": 100}))
            .header("if-match", "\"1\""),
    )
    .await;
    r.assert_problem(422, "invalid-field");
    assert_eq!(r.body["field"], "stock");
    assert_eq!(send(app.get(&path)).await.body["stock"], 2);
}

async fn an_unknown_product_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    send(app.get("/v1/products/prod_01J00000000000000000000000"))
        .await
        .assert_problem(404, "not-found");
    send(app.get("/v1/products/not-an-id"))
        .await
        .assert_problem(404, "not-found");
    send(
        app.delete("/v1/products/prod_01J00000000000000000000000")
            .header("if-match", "\"1\""),
    )
    .await
    .assert_problem(404, "not-found");
}

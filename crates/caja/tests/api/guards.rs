//! The writer's guards: a multi-row update that does not match every row it loaded fails
//! its whole batch, and nothing of the batch is written, not even the ledger rows that were
//! already inserted.

use serde_json::json;
use sqlx::any::AnyPoolOptions;

use crate::helpers::{send, spawn_app, Backend};

on_both_engines!(a_batch_whose_stock_guard_does_not_match_fails_whole_and_writes_nothing);

/// A trigger that changes a product's version behind the writer's back whenever a ledger
/// row is written for it: the stand-in for a row changed by anything but the writer.
const TAMPER_SQLITE: &str = "CREATE TRIGGER tamper AFTER INSERT ON stock_movements BEGIN \
     UPDATE products SET version = version + 1000 WHERE id = NEW.product_id; END";
const TAMPER_POSTGRES: &str = "CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN UPDATE products SET version = version + 1000 WHERE id = NEW.product_id; RETURN NEW; END $$; \
     CREATE TRIGGER tamper AFTER INSERT ON stock_movements FOR EACH ROW EXECUTE FUNCTION tamper()";

async fn a_batch_whose_stock_guard_does_not_match_fails_whole_and_writes_nothing(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let a = app.product("GUARD", 50).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let head = send(app.get("/v1/changes?limit=1000")).await.body["next_cursor"].clone();
    sqlx::any::install_default_drivers();
    let raw = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&app.db.url)
        .await
        .unwrap();
    let tamper = match backend {
        Backend::Sqlite => TAMPER_SQLITE,
        Backend::Postgres => TAMPER_POSTGRES,
    };
    sqlx::raw_sql(tamper).execute(&raw).await.unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            let a = a.clone();
            tokio::spawn(async move { app.order(&format!("guard-{i}"), &[(&a, 1)]).await })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .assert_problem(503, "temporarily-unavailable");
    }
    let orders = send(app.get("/v1/orders")).await;
    assert_eq!(orders.body["data"], json!([]), "no order was written");
    let ledger = send(app.get(&format!("/v1/products/{a}/stock-movements"))).await;
    assert_eq!(
        ledger.body["data"].as_array().unwrap().len(),
        1,
        "only the initial row: {}",
        ledger.body
    );
    let product = send(app.get(&format!("/v1/products/{a}"))).await.body;
    assert_eq!(
        (product["stock"].clone(), product["version"].clone()),
        (json!(50), json!(1))
    );
    let feed = send(app.get(&format!("/v1/changes?after={}", head.as_str().unwrap()))).await;
    assert_eq!(feed.body["data"], json!([]), "no event was appended");

    // Nothing was stored under the keys either: once the tampering stops, a retry sells.
    let untamper = match backend {
        Backend::Sqlite => "DROP TRIGGER tamper",
        Backend::Postgres => "DROP TRIGGER tamper ON stock_movements",
    };
    sqlx::raw_sql(untamper).execute(&raw).await.unwrap();
    let retry = app.order("guard-0", &[(&a, 1)]).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), None);
    app.assert_books_balance().await;
}

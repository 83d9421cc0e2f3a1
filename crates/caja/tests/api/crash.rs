//! The promises across processes: two replicas on one PostgreSQL database, `kill -9` in the
//! middle of a stream of orders, and `caja check` on the result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::{two_replicas, wait_ready, Server, REPLICA_KEY};
use crate::helpers::{send, spawn_app_with, Backend, TestDb};
use crate::migrate::caja;

const KEY: &str = REPLICA_KEY;

on_both_engines!(
    acknowledged_orders_survive_kill_9,
    caja_check_finds_a_ledger_that_does_not_balance,
);

async fn create_product(client: &reqwest::Client, base: &str, stock: i64) -> String {
    let r = send(client.post(format!("{base}/v1/products")).bearer_auth(KEY).json(&json!({
        "sku": "HOT", "name": "Hot", "price": {"amount": 100, "currency": "MXN"}, "stock": stock
    })))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn order(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    product: &str,
) -> Option<(u16, Value)> {
    let r = client
        .post(format!("{base}/v1/orders"))
        .bearer_auth(KEY)
        .header("idempotency-key", key)
        .json(&json!({"lines": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let body = r.json().await.ok()?;
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_sell_once_per_key_and_never_oversell() {
    let (db, a, b, client) = two_replicas().await;
    let product = create_product(&client, &a.base, 50).await;

    // 100 keys, each sent once to each replica, all at once.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let client = client.clone();
        let product = product.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("key-{}", i / 2);
            let reply = order(&client, &base, &key, &product)
                .await
                .expect("answered");
            (key, reply)
        }));
    }
    let mut by_key: HashMap<String, Vec<(u16, Value)>> = HashMap::new();
    for t in tasks {
        let (key, reply) = t.await.unwrap();
        by_key.entry(key).or_default().push(reply);
    }
    let mut created = 0;
    for (key, replies) in &by_key {
        assert_eq!(replies.len(), 2);
        assert_eq!(
            replies[0], replies[1],
            "{key}: both replicas answered the same"
        );
        match replies[0].0 {
            201 => created += 1,
            409 => assert_eq!(replies[0].1["type"], "out-of-stock"),
            other => panic!("{key}: {other} {}", replies[0].1),
        }
    }
    assert_eq!(created, 50, "one order per key, and exactly the stock sold");
    let stock = send(
        client
            .get(format!("{}/v1/products/{product}", b.base))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(stock.body["stock"], 0);
    let check = caja(&["check", "--database-url", &db.url]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

async fn acknowledged_orders_survive_kill_9(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = [("CAJA_ADMIN_KEY", KEY)];
    let mut server = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let product = create_product(&client, &server.base, 100_000).await;

    let acknowledged: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, base, product, acked) = (
            client.clone(),
            server.base.clone(),
            product.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let key = format!("w{w}-{i}");
                match order(&client, &base, &key, &product).await {
                    Some((201, body)) => acked.lock().unwrap().push((key, body)),
                    Some((status, body)) => panic!("{status} {body}"),
                    None => return,
                }
            }
        }));
    }
    // Let orders flow, then kill the process without warning.
    for _ in 0..400 {
        if acknowledged.lock().unwrap().len() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    server.wait(Duration::from_secs(10));
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 100,
        "only {} orders before the kill",
        acknowledged.len()
    );

    let check = caja(&["check", "--database-url", &db.url]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let restarted = Server::start(&db, &[], &env);
    wait_ready(&client, &restarted.base).await;
    for (key, body) in &acknowledged {
        let id = body["id"].as_str().unwrap();
        let read = send(
            client
                .get(format!("{}/v1/orders/{id}", restarted.base))
                .bearer_auth(KEY),
        )
        .await;
        assert_eq!(read.status, 200, "acknowledged order {id} is lost");
        assert_eq!(&read.body, body);
        let (status, replay) = order(&client, &restarted.base, key, &product)
            .await
            .unwrap();
        assert_eq!(
            (status, &replay),
            (201, body),
            "a retry after the crash replays the order"
        );
    }
    let orders = send(
        client
            .get(format!("{}/v1/products/{product}", restarted.base))
            .bearer_auth(KEY),
    )
    .await;
    let sold = 100_000 - orders.body["stock"].as_i64().unwrap();
    assert!(
        sold >= acknowledged.len() as i64,
        "every acknowledged order holds its unit"
    );
}

async fn caja_check_finds_a_ledger_that_does_not_balance(backend: Backend) {
    let app = spawn_app_with(backend, caja_server::ServerConfig::default()).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.order("o1", &[(&a, 2)]).await.status, 201);
    let url = match &app.store.database() {
        caja_store::DatabaseLocation::Sqlite(p) => format!("sqlite://{}", p.display()),
        caja_store::DatabaseLocation::Postgres(u) => u.clone(),
    };
    let clean = caja(&["check", "--database-url", &url]);
    let stdout = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(clean.status.success(), "{stdout}");
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("ok: "));

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE products SET stock = stock + 1")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM stock_movements WHERE reason = 'sale'")
        .execute(&pool)
        .await
        .unwrap();
    // An event lost from the middle of the feed, as a non-transactional outbox could lose it.
    sqlx::query("DELETE FROM changes WHERE type = 'order.created'")
        .execute(&pool)
        .await
        .unwrap();
    let dirty = caja(&["check", "--database-url", &url]);
    assert_eq!(dirty.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&dirty.stdout);
    assert!(
        stdout.contains("VIOLATION stock equals the sum of its ledger"),
        "{stdout}"
    );
    assert!(
        stdout.contains("VIOLATION each order line was reserved at least once"),
        "{stdout}"
    );
    assert!(
        stdout.contains("VIOLATION the change feed holds every seq"),
        "{stdout}"
    );
    assert!(
        stdout.contains("VIOLATION every order created while the feed kept events"),
        "{stdout}"
    );
}

const HALF_A_SECOND: Duration = Duration::from_millis(500);

/// An app on PostgreSQL with product A (5 in stock), and a pool on its database that stands
/// for another replica's connections.
struct Replicas {
    app: crate::helpers::TestApp,
    product: String,
    url: String,
    pool: sqlx::AnyPool,
}

async fn beside_another_replica(idempotency_wait: Duration) -> Replicas {
    let config = caja_server::ServerConfig {
        idempotency_wait,
        ..caja_server::ServerConfig::default()
    };
    let app = spawn_app_with(Backend::Postgres, config).await;
    let product = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let url = match app.store.database() {
        caja_store::DatabaseLocation::Postgres(u) => u.clone(),
        other => panic!("{other}"),
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    Replicas {
        app,
        product,
        url,
        pool,
    }
}

/// The other replica's transaction, holding `key` (of the app's admin key) with an answer
/// for the request `fingerprint`, not committed.
async fn answering(
    pool: &sqlx::AnyPool,
    app: &crate::helpers::TestApp,
    key: &str,
    fingerprint: &str,
) -> sqlx::Transaction<'static, sqlx::Any> {
    let key_id = app.store.list_keys().await.unwrap()[0].id.to_string();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (key_id, key, fingerprint, status, headers, body, \
         created_at) VALUES ($1, $2, $3, 201, '', '{}', '2026-01-01T00:00:00.000000Z')",
    )
    .bind(&key_id)
    .bind(key)
    .bind(fingerprint)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_waiting_too_long_for_the_first_gets_409_in_flight() {
    let Replicas {
        app,
        product: a,
        pool,
        ..
    } = beside_another_replica(HALF_A_SECOND).await;
    // Another replica's request with this key is mid-transaction.
    let first = answering(&pool, &app, "busy", "x").await;
    let r = app.order("busy", &[(&a, 1)]).await;
    r.assert_problem(409, "idempotency-key-in-flight");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        app.metrics()
            .await
            .contains("caja_idempotency_wait_timeouts_total "),
        "the wait that ran out is counted"
    );
    first.rollback().await.unwrap();
    assert_eq!(
        app.order("busy", &[(&a, 1)]).await.status,
        201,
        "once the first gave up, the retry runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_held_too_long_by_another_replica_is_a_503_to_retry_not_a_hang() {
    let Replicas {
        app,
        product: a,
        pool,
        ..
    } = beside_another_replica(HALF_A_SECOND).await;
    // Another replica's transaction holds the product's row and does not finish.
    let mut first = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
        .bind(&a)
        .fetch_one(&mut *first)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = app.order("held", &[(&a, 1)]).await;
    r.assert_problem(503, "temporarily-unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the wait setting: {:?}",
        started.elapsed()
    );
    first.rollback().await.unwrap();
    assert_eq!(
        app.order("held", &[(&a, 1)]).await.status,
        201,
        "nothing was stored under the key: the retry runs"
    );
    assert_eq!(app.stock(&a).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_answered_by_another_replica_while_waiting_settles_to_that_answer() {
    let default_wait = caja_server::ServerConfig::default().idempotency_wait;
    let Replicas {
        app,
        product: a,
        url,
        pool,
    } = beside_another_replica(default_wait).await;
    // Another replica is answering this key (for another request) and has not committed.
    let first = answering(&pool, &app, "raced", "another request").await;
    // This request reads the key as new, decides, and waits on that row to store its
    // answer; then the other replica commits.
    let other = async {
        let mut waiting = 0;
        for _ in 0..1000 {
            waiting = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO idempotency_keys%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(waiting, 1, "the request waits on the other replica's key");
        first.commit().await.unwrap();
    };
    let lines = [(a.as_str(), 1)];
    let (r, ()) = tokio::join!(app.order("raced", &lines), other);
    r.assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(
        app.stock(&a).await,
        5,
        "the batch that lost the key wrote nothing"
    );
    let check = caja(&["check", "--database-url", &url]);
    let stdout = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "{stdout}");
}

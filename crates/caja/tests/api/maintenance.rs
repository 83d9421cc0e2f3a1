//! Maintenance mode: writes answer 503 on every replica within a second, reads keep
//! working, and the switch survives a restart.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{two_replicas, wait_ready, Server, REPLICA_KEY};
use crate::helpers::{send, spawn_app, Backend};
use crate::migrate::caja;

on_both_engines!(maintenance_refuses_writes_keeps_reads_and_survives_a_restart);

async fn maintenance_refuses_writes_keeps_reads_and_survives_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("M", 5).await["id"].as_str().unwrap().to_owned();
    let on = send(
        app.client
            .put(app.url("/v1/maintenance"))
            .bearer_auth(&app.admin_key)
            .json(&json!({"on": true, "message": "upgrading; back at 22:00"})),
    )
    .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.body["on"], true);
    let refused = app.order("m-1", &[(&a, 1)]).await;
    refused.assert_problem(503, "maintenance");
    assert_eq!(refused.body["detail"], "upgrading; back at 22:00");
    assert!(refused.header("retry-after").is_some());
    send(app.post(
        "/v1/products",
        &json!({"sku": "N", "name": "N",
        "price": {"amount": 1, "currency": "MXN"}}),
    ))
    .await
    .assert_problem(503, "maintenance");
    assert_eq!(
        send(app.get(&format!("/v1/products/{a}"))).await.status,
        200
    );
    assert_eq!(send(app.get("/v1/changes")).await.status, 200);
    let ready = send(app.client.get(app.url("/ready"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body["checks"]["process:maintenance"][0]["status"],
        "warn"
    );
    // A clerk may not flip it.
    let clerk = app.key(caja_core::auth::Role::Clerk).await;
    send(
        app.client
            .put(app.url("/v1/maintenance"))
            .bearer_auth(&clerk)
            .json(&json!({"on": false})),
    )
    .await
    .assert_problem(403, "forbidden");
    // The command line sees it (it reads the database), and turns it off.
    let status = caja(&["maintenance", "status", "--database-url", &app.db.url]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("is on"));
    let off = caja(&["maintenance", "off", "--database-url", &app.db.url]);
    assert!(off.status.success());
    // Another process's change reaches this server through the feed.
    let started = Instant::now();
    loop {
        if app.order("m-2", &[(&a, 1)]).await.status == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not seen within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.stock(&a).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_one_replica_is_seen_by_the_other_within_a_second_and_after_restart() {
    let (db, a, b, client) = two_replicas().await;
    let set = |base: &str, on: bool| {
        client
            .put(format!("{base}/v1/maintenance"))
            .bearer_auth(REPLICA_KEY)
            .json(&json!({"on": on}))
    };
    let product = |base: &str, sku: &str| {
        client
            .post(format!("{base}/v1/products"))
            .bearer_auth(REPLICA_KEY)
            .json(&json!({"sku": sku, "name": sku, "price": {"amount": 1, "currency": "MXN"}}))
    };
    assert_eq!(send(set(&a.base, true)).await.status, 200);
    let started = Instant::now();
    loop {
        let r = send(product(&b.base, "B1")).await;
        if r.status == 503 {
            r.assert_problem(503, "maintenance");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica B never saw it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read = send(
        client
            .get(format!("{}/v1/products", b.base))
            .bearer_auth(REPLICA_KEY),
    )
    .await;
    assert_eq!(read.status, 200);
    // A replica started now reads the switch from the database.
    let env = [("CAJA_ADMIN_KEY", REPLICA_KEY)];
    let c = Server::start(&db, &[], &env);
    wait_ready(&client, &c.base).await;
    send(product(&c.base, "C1"))
        .await
        .assert_problem(503, "maintenance");
    assert_eq!(send(set(&b.base, false)).await.status, 200);
    let started = Instant::now();
    loop {
        if send(product(&a.base, "A1")).await.status == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica A never saw it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

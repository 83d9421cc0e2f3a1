//! `caja backup` and `caja restore`: an online backup while clients place orders, restored
//! into the other engine, with every order acknowledged before the backup started, books
//! that balance, and a change feed that carries on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::cli::{wait_ready, Server, REPLICA_KEY};
use crate::helpers::{send, Backend, TestDb};
use crate::migrate::caja;

on_both_engines!(
    a_backup_taken_under_load_restores_into_the_other_engine,
    a_migration_that_fails_after_its_backup_leaves_the_previous_version_and_the_archive_restores_it,
);

async fn a_backup_taken_under_load_restores_into_the_other_engine(backend: Backend) {
    let source = TestDb::new(backend).await;
    let env = [("CAJA_ADMIN_KEY", REPLICA_KEY)];
    let server = Server::start(&source, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let base = server.base.clone();
    let product = send(
        client
            .post(format!("{base}/v1/products"))
            .bearer_auth(REPLICA_KEY)
            .json(&serde_json::json!({"sku": "BAK", "name": "Backed up",
                "price": {"amount": 100, "currency": "MXN"}, "stock": 1_000_000})),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Tabs cross the archive too: one closed into an order with a time line, one still
    // open and holding stock.
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(REPLICA_KEY)
            .header("idempotency-key", key)
            .json(&body)
    };
    let rate = serde_json::json!({"amount": 6000, "currency": "MXN"});
    let tab = send(post(
        "/v1/tabs",
        "bak-tab-1",
        serde_json::json!({"label": "Desk 1", "resource": "desk-1", "rate": rate}),
    ))
    .await
    .body;
    let tab = tab["id"].as_str().unwrap().to_owned();
    let item = serde_json::json!({"product_id": product, "quantity": 2});
    send(post(
        &format!("/v1/tabs/{tab}/items"),
        "bak-item-1",
        item.clone(),
    ))
    .await;
    let tab_order = send(post(
        &format!("/v1/tabs/{tab}/close"),
        "bak-close-1",
        serde_json::json!({}),
    ))
    .await;
    assert_eq!(tab_order.status, 201, "{}", tab_order.body);
    let open_tab = send(post(
        "/v1/tabs",
        "bak-tab-2",
        serde_json::json!({"label": "Desk 2", "resource": "desk-2"}),
    ))
    .await
    .body;
    let open_tab = open_tab["id"].as_str().unwrap().to_owned();
    let held = send(post(
        &format!("/v1/tabs/{open_tab}/items"),
        "bak-item-2",
        item,
    ))
    .await;
    assert_eq!(held.status, 201, "{}", held.body);
    // And branches: a second location, stock sent there at once and some still in transit.
    let north = send(
        client
            .post(format!("{base}/v1/locations"))
            .bearer_auth(REPLICA_KEY)
            .json(&serde_json::json!({"code": "north", "name": "North"})),
    )
    .await;
    assert_eq!(north.status, 201, "{}", north.body);
    let mut transfers = Vec::new();
    for (key, in_transit) in [("bak-trf-1", false), ("bak-trf-2", true)] {
        let sent = send(post(
            "/v1/transfers",
            key,
            serde_json::json!({"product_id": product, "from": "main", "to": "north",
                               "quantity": 5, "in_transit": in_transit}),
        ))
        .await;
        assert_eq!(sent.status, 201, "{}", sent.body);
        transfers.push(sent.body);
    }

    // 50 clients order until told to stop; every acknowledged order is recorded.
    let acknowledged: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..50 {
        let (client, base, product) = (client.clone(), base.clone(), product.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 200 {
                let key = format!("bak-{c}-{i}");
                let r = send(
                    client
                        .post(format!("{base}/v1/orders"))
                        .bearer_auth(REPLICA_KEY)
                        .header("idempotency-key", &key)
                        .json(
                            &serde_json::json!({"lines": [{"product_id": product, "quantity": 1}]}),
                        ),
                )
                .await;
                if r.status == 201 {
                    acknowledged.lock().unwrap().push((key, r.body));
                }
                i += 1;
            }
        }));
    }
    // Let some orders land, then back up while the rest keep coming.
    while acknowledged.lock().unwrap().len() < 100 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before_backup: Vec<(String, Value)> = acknowledged.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("caja.cajabak");
    let archive_arg = archive.to_str().unwrap().to_owned();
    let backup = tokio::task::spawn_blocking({
        let url = source.url.clone();
        let out = archive_arg.clone();
        move || caja(&["backup", "--database-url", &url, "--out", &out])
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let out = String::from_utf8_lossy(&backup.stdout);
    assert!(
        backup.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(out.contains("orders"), "{out}");

    let verified = caja(&["backup", "--verify", &archive_arg]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // A damaged archive is refused by --verify and by restore.
    let damaged = dir.path().join("damaged.cajabak");
    let text = std::fs::read_to_string(&archive).unwrap();
    std::fs::write(&damaged, text.replacen("\"BAK\"", "\"BAD\"", 1)).unwrap();
    let refused = caja(&["backup", "--verify", damaged.to_str().unwrap()]);
    assert!(!refused.status.success());

    // Restore into the other engine, then serve from it.
    let other = match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    let target = TestDb::new(other).await;
    let restored = caja(&["restore", &archive_arg, "--database-url", &target.url]);
    let out = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(out.contains("invariants hold"), "{out}");
    // Restoring twice is refused: the target is no longer empty.
    let again = caja(&["restore", &archive_arg, "--database-url", &target.url]);
    assert!(!again.status.success());

    let restored_server = Server::start(&target, &[], &env);
    wait_ready(&client, &restored_server.base).await;
    let rbase = restored_server.base.clone();
    for (_, order) in &before_backup {
        let id = order["id"].as_str().unwrap();
        let read = send(
            client
                .get(format!("{rbase}/v1/orders/{id}"))
                .bearer_auth(REPLICA_KEY),
        )
        .await;
        assert_eq!(
            read.status, 200,
            "order {id}, acknowledged before the backup, is lost"
        );
        assert_eq!(&read.body, order);
    }
    let read = |path: String| {
        client
            .get(format!("{rbase}{path}"))
            .bearer_auth(REPLICA_KEY)
    };
    for sent in &transfers {
        let id = sent["id"].as_str().unwrap();
        let restored = send(read(format!("/v1/transfers/{id}"))).await;
        assert_eq!(&restored.body, sent, "the transfer crossed the archive");
    }
    let restored_north = send(read(format!(
        "/v1/locations/{}",
        north.body["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(restored_north.body, north.body);
    let per_location = send(read(format!("/v1/products/{product}/stock"))).await;
    assert_eq!(per_location.body["in_transit"], 5);
    assert_eq!(
        per_location.body["locations"][1]["stock"], 5,
        "north kept its 5"
    );
    let order_id = tab_order.body["id"].as_str().unwrap();
    let restored_order = send(read(format!("/v1/orders/{order_id}"))).await;
    assert_eq!(
        restored_order.body, tab_order.body,
        "a tab's order and time line"
    );
    let restored_tab = send(read(format!("/v1/tabs/{open_tab}"))).await;
    assert_eq!(restored_tab.body["items"], held.body["items"]);
    assert_eq!(restored_tab.body["periods"], held.body["periods"]);
    let busy = send(
        client
            .post(format!("{rbase}/v1/tabs"))
            .bearer_auth(REPLICA_KEY)
            .header("idempotency-key", "after-restore-tab")
            .json(&serde_json::json!({"label": "Again", "resource": "desk-2"})),
    )
    .await;
    busy.assert_problem(409, "resource-busy");

    // The feed carries on from where the archive left it: no reset, the next seq follows.
    let feed = send(
        client
            .get(format!("{rbase}/v1/changes?after=0&limit=1000"))
            .bearer_auth(REPLICA_KEY),
    )
    .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let head: i64 = {
        let mut after = 0i64;
        loop {
            let page = send(
                client
                    .get(format!("{rbase}/v1/changes?after={after}&limit=1000"))
                    .bearer_auth(REPLICA_KEY),
            )
            .await;
            let next: i64 = page.body["next_cursor"].as_str().unwrap().parse().unwrap();
            if next == after {
                break after;
            }
            after = next;
        }
    };
    let fresh = send(
        client
            .post(format!("{rbase}/v1/orders"))
            .bearer_auth(REPLICA_KEY)
            .header("idempotency-key", "after-restore")
            .json(&serde_json::json!({"lines": [{"product_id": product, "quantity": 1}]})),
    )
    .await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    let next = send(
        client
            .get(format!("{rbase}/v1/changes?after={head}"))
            .bearer_auth(REPLICA_KEY),
    )
    .await;
    assert_eq!(next.body["data"][0]["seq"], head + 1, "{}", next.body);
    assert_eq!(next.body["data"][0]["type"], "order.created");
    // A key retried after the restore replays its stored answer.
    let (key, first) = &before_backup[0];
    let replay = send(
        client
            .post(format!("{rbase}/v1/orders"))
            .bearer_auth(REPLICA_KEY)
            .header("idempotency-key", key)
            .json(&serde_json::json!({"lines": [{"product_id": product, "quantity": 1}]})),
    )
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(&replay.body, first);
    let check = caja(&["check", "--database-url", &target.url]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

async fn a_migration_that_fails_after_its_backup_leaves_the_previous_version_and_the_archive_restores_it(
    backend: Backend,
) {
    use std::io::BufReader;
    use std::time::Duration;

    use caja_store::migrate::{embedded, Migration, Migrator};

    let app = crate::helpers::spawn_app(backend).await;
    let a = app.product("KEEP", 7).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.order("keep-1", &[(&a, 2)]).await.status, 201);
    let shipped = embedded(app.store.engine());
    let version = shipped.last().unwrap().version;
    // The backup a `migrate up` takes first.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("before.cajabak");
    let file = std::fs::File::create(&path).unwrap();
    let (summary, _) = app
        .store
        .backup(std::io::BufWriter::new(file), version, &mut |_, _| {})
        .await
        .unwrap();
    // A release whose new migration fails half-way.
    let mut next: Vec<Migration> = shipped.to_vec();
    next.push(Migration {
        version: version + 1,
        name: "breaks_half_way",
        up: "CREATE TABLE half_way (x BIGINT); INSERT INTO no_such_table VALUES (1)",
        down: "DROP TABLE half_way",
        verify: "SELECT x FROM half_way",
        expand: true,
    });
    let failing = Migrator::with_migrations(
        &app.store,
        &next,
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    assert!(failing.up(&mut |_| {}).await.is_err());
    let current = Migrator::new(&app.store, Duration::from_secs(5), Duration::from_secs(5));
    assert!(
        current.pending_checked().await.unwrap().is_empty(),
        "still at the previous version"
    );
    assert_eq!(
        failing.pending().await.unwrap().len(),
        1,
        "the failed migration left nothing"
    );
    // The archive from before restores the same rows into a fresh database.
    let target = TestDb::new(backend).await;
    let restored_store = target.store().await;
    Migrator::new(
        &restored_store,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .up(&mut |_| {})
    .await
    .unwrap();
    let restored = restored_store
        .restore(
            BufReader::new(std::fs::File::open(&path).unwrap()),
            version,
            &mut |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(restored.tables, summary.tables);
    // The same rows; the audit log also holds the target's own migrations and the restore.
    let books = |rows: Vec<(&'static str, u64)>| -> Vec<(&'static str, u64)> {
        rows.into_iter().filter(|(t, _)| *t != "audit").collect()
    };
    assert_eq!(
        books(restored_store.table_rows(version).await.unwrap()),
        books(app.store.table_rows(version).await.unwrap())
    );
    let log = restored_store
        .list_audit(
            &caja_store::audit::AuditFilter {
                action: Some("backup.restored".into()),
                ..Default::default()
            },
            None,
            caja_core::page::PageLimit::parse(None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(log.items.len(), 1);
    let before = app
        .store
        .product(&caja_core::ids::ProductId::parse("id", &a).unwrap())
        .await
        .unwrap();
    let after = restored_store
        .product(&caja_core::ids::ProductId::parse("id", &a).unwrap())
        .await
        .unwrap();
    assert_eq!(before, after);
    let (_, violations) = restored_store.check().await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}

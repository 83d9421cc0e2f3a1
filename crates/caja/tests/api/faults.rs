//! Faults and hostile input: every fault answers 503 with `Retry-After` and heals by itself,
//! money never overflows, and refusals of the body are stored under the key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use caja_server::ServerConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{send, spawn_app, spawn_app_on, spawn_app_with, Backend, TestApp, TestDb};

on_both_engines!(
    an_order_past_the_largest_total_is_422_and_never_wraps,
    a_body_of_the_wrong_shape_is_stored_under_its_key,
    out_of_range_stream_and_poll_cursors_are_422,
    a_declared_body_over_the_limit_is_413_at_once,
    heads_hyper_would_refuse_get_problem_json_too,
);

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(
            ok.success(),
            "the full-disk test mounts a tmpfs and must run as root"
        );
        Self(dir.path().to_owned(), dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a file until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

async fn ready(app: &TestApp) -> (u16, serde_json::Value) {
    let r = send(app.client.get(app.url("/ready"))).await;
    (r.status, r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_heals_by_itself() {
    let disk = Tmpfs::mount("3m");
    let db = TestDb::sqlite_at(disk.path().join("caja.db"));
    let app = spawn_app_on(db, ServerConfig::default()).await;
    let a = app.product("DISK", 1_000_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let filler = disk.path().join("filler");
    fill(&filler);

    // Orders until the writes need space there is not (the WAL grows with each).
    let mut refused = None;
    let mut acknowledged = 0;
    for i in 0..5000 {
        let r = app.order(&format!("disk-{i}"), &[(&a, 1)]).await;
        match r.status {
            201 => acknowledged += 1,
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses writes");
    refused.assert_problem(503, "storage-full");
    assert!(refused.header("retry-after").is_some());
    let again = app.order("disk-more", &[(&a, 1)]).await;
    again.assert_problem(503, "storage-full");
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database:writes"][0]["status"], "fail");
    // Reads still work.
    assert_eq!(
        send(app.get(&format!("/v1/products/{a}"))).await.status,
        200
    );

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    loop {
        if ready(&app).await.0 == 200 {
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "/ready never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let healed = app.order("disk-after", &[(&a, 1)]).await;
    assert_eq!(healed.status, 201, "{}", healed.body);
    assert!(
        freed.elapsed() < Duration::from_secs(1),
        "healed within a second of space returning: {:?}",
        freed.elapsed()
    );
    let sold = 1_000_000 - app.stock(&a).await;
    assert_eq!(
        sold,
        acknowledged + 1,
        "every acknowledged order, and no other"
    );
    app.assert_books_balance().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_connections_answers_503_and_heals() {
    let app = spawn_app(Backend::Postgres).await;
    let a = app.product("PG", 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = app.db.pg_name.clone().unwrap();
    let admin = sqlx::PgPool::connect(&crate::helpers::postgres_admin_url())
        .await
        .unwrap();
    let refuse = |allow: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}");
    sqlx::query(&refuse(false)).execute(&admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();

    for _ in 0..3 {
        let read = send(app.get(&format!("/v1/products/{a}"))).await;
        read.assert_problem(503, "database-unavailable");
        assert!(read.header("retry-after").is_some());
        let write = app.order("pg-down", &[(&a, 1)]).await;
        write.assert_problem(503, "database-unavailable");
        assert!(write.header("retry-after").is_some());
    }
    assert_eq!(ready(&app).await.0, 503);

    sqlx::query(&refuse(true)).execute(&admin).await.unwrap();
    let back = Instant::now();
    loop {
        if app.order("pg-down", &[(&a, 1)]).await.status == 201 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "never healed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready(&app).await.0, 200);
    assert_eq!(
        app.stock(&a).await,
        99,
        "the refused attempts wrote nothing"
    );
    app.assert_books_balance().await;
}

async fn an_order_past_the_largest_total_is_422_and_never_wraps(backend: Backend) {
    let config = ServerConfig {
        order_limits: caja_core::order::OrderLimits::CEILING,
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    let r = send(app.post(
        "/v1/products",
        &json!({"sku": "GOLD", "name": "Gold", "stock": 1_000_000,
                "price": {"amount": 1_000_000_000_000i64, "currency": "MXN"}}),
    ))
    .await;
    let a = r.body["id"].as_str().unwrap().to_owned();
    let line = json!([{"product_id": a, "quantity": 1_000_000}]);
    let plain = send(app.post_idem("/v1/orders", "big", &json!({"lines": line}))).await;
    plain.assert_problem(422, "amount-too-large");
    let tipped = send(app.post_idem(
        "/v1/orders",
        "big-tip",
        &json!({"lines": line, "tip": {"amount": 1_000_000_000_000i64, "currency": "MXN"}}),
    ))
    .await;
    tipped.assert_problem(422, "amount-too-large");
    // The largest order that fits is sold, and the books still add up.
    let fits = app.order("fits", &[(&a, 1000)]).await;
    assert_eq!(fits.status, 201, "{}", fits.body);
    assert_eq!(fits.body["total"]["amount"], 1_000_000_000_000_000i64);
    let r = send(app.post_idem(
        &format!("/v1/products/{a}/stock-movements"),
        "min",
        &json!({"delta": i64::MIN, "reason": "damage"}),
    ))
    .await;
    r.assert_problem(422, "invalid-field");
    app.assert_books_balance().await;
}

async fn a_body_of_the_wrong_shape_is_stored_under_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.product("A", 5).await["id"].as_str().unwrap().to_owned();
    let good = json!({"lines": [{"product_id": a, "quantity": 1}]});
    for (key, bad) in [
        (
            "unknown-field",
            json!({"lines": [{"product_id": a, "quantity": 1}], "coupon": "X"}),
        ),
        (
            "float",
            json!({"lines": [{"product_id": a, "quantity": 1.5}]}),
        ),
    ] {
        let first = send(app.post_idem("/v1/orders", key, &bad)).await;
        first.assert_problem(422, "invalid-field");
        let retry = send(app.post_idem("/v1/orders", key, &bad)).await;
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(retry.body, first.body);
        send(app.post_idem("/v1/orders", key, &good))
            .await
            .assert_problem(422, "idempotency-key-mismatch");
    }
    assert_eq!(app.stock(&a).await, 5, "no order was made");
}

async fn out_of_range_stream_and_poll_cursors_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let sse = |after: &str, last: Option<&str>| {
        let mut r = app
            .get(&format!("/v1/stream{after}"))
            .header("accept", "text/event-stream");
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        r
    };
    send(sse("?after=-1", None))
        .await
        .assert_problem(422, "invalid-field");
    send(sse("", Some("-5")))
        .await
        .assert_problem(422, "invalid-field");
    send(app.get("/v1/changes?wait=-1"))
        .await
        .assert_problem(422, "invalid-field");
    let trailing = send(
        app.post("/v1/products", &json!(null))
            .header("content-type", "application/json")
            .body(r#"{"a":1} x"#),
    )
    .await;
    trailing.assert_problem(400, "malformed-json");
}

async fn a_declared_body_over_the_limit_is_413_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: caja\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: big\r\nContent-Type: application/json\r\n\
         Content-Length: 2000000\r\n\r\n",
        app.admin_key
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload-too-large"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Sends raw bytes on a fresh connection and returns what came back.
async fn raw(app: &TestApp, bytes: &[u8]) -> String {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn heads_hyper_would_refuse_get_problem_json_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"\x16\x03\x01garbage\r\n\r\n".to_vec(),
            "400",
            "malformed-request",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n".to_vec(),
            "400",
            "malformed-request",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)).into_bytes(),
            "414",
            "uri-too-long",
        ),
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            "431",
            "header-fields-too-large",
        ),
    ];
    for (bytes, status, kind) in cases {
        let answer = raw(&app, &bytes).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(
            answer.contains("content-type: application/problem+json"),
            "{answer}"
        );
        assert!(answer.contains(&format!("\"type\":\"{kind}\"")), "{answer}");
        assert!(answer.contains("x-request-id: req_"), "{answer}");
    }
    // A good first head is served as ever, and the connection kept alive.
    let ok = raw(
        &app,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// Renders like the server's presenter, but panics on the answer to request `boom`.
struct PanickingPresenter(std::sync::Arc<dyn caja_store::Presenter>);

impl caja_store::Presenter for PanickingPresenter {
    fn answer(
        &self,
        request_id: &str,
        outcome: &caja_core::command::Outcome,
    ) -> caja_store::StoredResponse {
        assert_ne!(request_id, "boom", "a bug while rendering an answer");
        self.0.answer(request_id, outcome)
    }

    fn event(&self, event: &caja_core::command::Event) -> String {
        self.0.event(event)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_panics_refuses_its_writes_and_the_writer_goes_on() {
    use caja_core::command::{Command, Policy};
    use caja_core::location::{LocationCode, NewLocation};
    use caja_store::writer::{Settled, Submission, Write, Writer, WriterOptions};

    let db = TestDb::new(Backend::Sqlite).await;
    let presenter = std::sync::Arc::new(PanickingPresenter(caja_server::presenter()));
    let store = caja_store::Store::connect(
        &db.location,
        &caja_store::StoreOptions::default(),
        presenter,
    )
    .await
    .unwrap();
    caja_store::migrate::Migrator::new(&store, Duration::from_secs(30), Duration::from_secs(5))
        .up(&mut |_| {})
        .await
        .unwrap();
    let writer = Writer::start(
        store.clone(),
        WriterOptions {
            max_batch: 1,
            policy: Policy {
                order_ttl: chrono::Duration::minutes(15),
                hold_ttl: chrono::Duration::minutes(10),
            },
            key_wait: Duration::from_secs(10),
        },
    );
    let location = |code: &str, request_id: &str| Submission {
        scope: None,
        actor: None,
        request_id: request_id.into(),
        write: Write::Command(Command::CreateLocation(NewLocation {
            code: LocationCode::parse(code).unwrap(),
            name: code.into(),
        })),
    };
    let refused = writer.submit(location("north", "boom")).await;
    assert!(
        matches!(refused, Err(caja_store::StoreError::ShuttingDown)),
        "{refused:?}"
    );
    // The refusal reaches the caller as the panic unwinds, just before the writer notes it.
    let noted = tokio::time::timeout(Duration::from_secs(5), async {
        while !store.write_panicked() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(noted.is_ok(), "the panic is reported (/ready)");
    let next = writer.submit(location("south", "fine")).await.unwrap();
    assert!(matches!(next, Settled::Fresh { .. }), "{next:?}");
    assert!(!store.write_panicked(), "a committed write clears it");
    let codes: Vec<String> = store
        .list_locations(None, caja_core::page::PageLimit::parse(Some(100)).unwrap())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| l.code.as_str().to_owned())
        .collect();
    assert!(codes.contains(&"south".to_owned()), "{codes:?}");
    assert!(
        !codes.contains(&"north".to_owned()),
        "the panicked batch wrote nothing"
    );
}

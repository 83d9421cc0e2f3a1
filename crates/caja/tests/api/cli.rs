//! The binary as an operator meets it: first start, keys, settings, help, shutdown, logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{send, Backend, TestDb};
use crate::migrate::caja;

on_both_engines!(
    the_first_start_creates_one_admin_key_and_prints_it_once,
    a_provided_admin_key_becomes_the_first_key_and_never_reaches_the_log,
    keys_are_created_listed_and_revoked_from_the_command_line,
    sigterm_drains_and_exits_zero,
    sigterm_ends_open_streams_and_exits_at_once,
);

/// A `caja serve` process on a free port, its stderr collected line by line.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Collects stderr until the process closes it; joined once the process has exited,
    /// so that its last lines are in [`Server::log`] by then.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(db: &TestDb, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_limited(db, extra, env, None)
    }

    /// `caja serve`, with the process's open-file limit lowered to `nofile` if given.
    pub fn start_limited(
        db: &TestDb,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u32>,
    ) -> Self {
        let mut cmd = match nofile {
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(env!("CARGO_BIN_EXE_caja"));
                sh
            }
            None => Command::new(env!("CARGO_BIN_EXE_caja")),
        };
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--database-url",
            &db.url,
        ])
        .args(extra)
        .env_remove("CAJA_ADMIN_KEY")
        .env_remove("CAJA_DATABASE_URL")
        .env("CAJA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn caja serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let address = loop {
            let found = stderr.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "caja is serving")
                    .then(|| v["address"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(a) = found {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "caja serve exited with {status}: {:?}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "caja serve never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            base: format!("http://{address}"),
            stderr,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait(&mut self, bound: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the stderr reader");
                }
                return status;
            }
            assert!(
                started.elapsed() < bound,
                "caja serve did not exit within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The key the replicas of [`two_replicas`] are provisioned with.
pub const REPLICA_KEY: &str = "provisioned-admin-key-0123456789-abcdefghij";

/// Two `caja serve` processes on one fresh PostgreSQL database, both ready.
pub async fn two_replicas() -> (TestDb, Server, Server, reqwest::Client) {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("CAJA_ADMIN_KEY", REPLICA_KEY)];
    let a = Server::start(&db, &[], &env);
    let b = Server::start(&db, &[], &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    (db, a, b, client)
}

pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never ready");
}

fn printed_keys(log: &str) -> Vec<String> {
    log.split_whitespace()
        .filter(|w| w.starts_with("caja_") && w.len() == 48)
        .map(str::to_owned)
        .collect()
}

async fn the_first_start_creates_one_admin_key_and_prints_it_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let client = reqwest::Client::new();
    let mut first = Server::start(&db, &[], &[]);
    wait_ready(&client, &first.base).await;
    let keys = printed_keys(&first.log());
    assert_eq!(keys.len(), 1, "{}", first.log());
    assert!(first.log().contains("Authorization: Bearer"));
    let ok = send(
        client
            .get(format!("{}/v1/products", first.base))
            .bearer_auth(&keys[0]),
    )
    .await;
    assert_eq!(ok.status, 200);
    first.signal("TERM");
    assert!(first.wait(Duration::from_secs(15)).success());

    let second = Server::start(&db, &[], &[]);
    wait_ready(&client, &second.base).await;
    assert!(
        printed_keys(&second.log()).is_empty(),
        "the key is printed only on the first start"
    );
    let store = db.store().await;
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
}

async fn a_provided_admin_key_becomes_the_first_key_and_never_reaches_the_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let short = caja(&[
        "serve",
        "--database-url",
        &db.url,
        "--admin-key",
        "too-short",
    ]);
    assert_eq!(short.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("admin_key"), "{stderr}");

    let key = "provisioned-admin-key-0123456789-abcdefghij";
    let client = reqwest::Client::new();
    let server = Server::start(&db, &[], &[("CAJA_ADMIN_KEY", key)]);
    wait_ready(&client, &server.base).await;
    for _ in 0..3 {
        let r = send(
            client
                .get(format!("{}/v1/products", server.base))
                .bearer_auth(key),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let r = send(
        client
            .get(format!("{}/v1/products", server.base))
            .bearer_auth("caja_wrong-key-123"),
    )
    .await;
    assert_eq!(r.status, 401);
    let log = server.log();
    assert!(log.contains("\"status\":200"), "{log}");
    assert!(!log.contains(key), "the key reached the log: {log}");
    assert!(
        !log.contains("caja_wrong-key-123"),
        "a presented key reached the log"
    );
}

async fn keys_are_created_listed_and_revoked_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bad = caja(&[
        "keys",
        "create",
        "--role",
        "owner",
        "--database-url",
        &db.url,
    ]);
    assert!(!bad.status.success());
    let created = caja(&[
        "keys",
        "create",
        "--role",
        "clerk",
        "--name",
        "till 2",
        "--rate-limit",
        "5/s",
        "--database-url",
        &db.url,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("caja_") && key.len() == 48, "{stdout}");

    let list = caja(&["keys", "list", "--database-url", &db.url]);
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listing.contains("till 2") && listing.contains("clerk"),
        "{listing}"
    );
    assert!(!listing.contains(&key), "list never shows a key");
    // A till bound to a branch: by the location's code; an unknown one is refused.
    let bound = caja(&[
        "keys",
        "create",
        "--role",
        "clerk",
        "--name",
        "till 3",
        "--location",
        "main",
        "--database-url",
        &db.url,
    ]);
    assert!(
        bound.status.success(),
        "{}",
        String::from_utf8_lossy(&bound.stderr)
    );
    let nowhere = caja(&[
        "keys",
        "create",
        "--role",
        "clerk",
        "--location",
        "atlantis",
        "--database-url",
        &db.url,
    ]);
    assert!(!nowhere.status.success());
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("atlantis"));
    let listing =
        String::from_utf8_lossy(&caja(&["keys", "list", "--database-url", &db.url]).stdout)
            .into_owned();
    assert!(
        listing
            .lines()
            .any(|l| l.contains("till 3") && l.contains("loc_00000000000000000000000000")),
        "{listing}"
    );
    let id = listing
        .lines()
        .find(|l| l.contains("till 2"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let client = reqwest::Client::new();
    let server = Server::start(&db, &[], &[]);
    wait_ready(&client, &server.base).await;
    let url = format!("{}/v1/products", server.base);
    assert_eq!(send(client.get(&url).bearer_auth(&key)).await.status, 200);
    let revoked = caja(&["keys", "revoke", &id, "--database-url", &db.url]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // The running server learns of it through the change feed: within a moment, not at
    // the next restart.
    let revoked_at = std::time::Instant::now();
    while send(client.get(&url).bearer_auth(&key)).await.status != 401 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(3),
            "a key revoked from the command line is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = caja(&[
        "keys",
        "revoke",
        "key_01J00000000000000000000000",
        "--database-url",
        &db.url,
    ]);
    assert!(!missing.status.success());
}

async fn sigterm_drains_and_exits_zero(backend: Backend) {
    let db = TestDb::new(backend).await;
    let client = reqwest::Client::new();
    let key = "provisioned-admin-key-0123456789-abcdefghij";
    let mut server = Server::start(
        &db,
        &["--shutdown-timeout", "5"],
        &[("CAJA_ADMIN_KEY", key)],
    );
    wait_ready(&client, &server.base).await;
    // Keep requests flowing while the signal lands: each either completes or is refused
    // a connection, never cut off half-way with a 5xx.
    let base = server.base.clone();
    let load = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..200 {
            match client
                .get(format!("{base}/v1/products"))
                .bearer_auth(key)
                .send()
                .await
            {
                Ok(r) => statuses.push(r.status().as_u16()),
                Err(_) => break,
            }
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    let statuses = load.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let log = server.log();
    assert!(
        log.contains("SIGTERM") && log.contains("\"stopped\""),
        "{log}"
    );
}

/// On SQLite the writer has a connection of its own (its own thread's): a server stopped
/// by SIGTERM closes it with the others, so the last to close checkpoints the WAL and the
/// database file alone holds every write, as an operator copying it expects.
#[tokio::test]
async fn a_stopped_server_leaves_its_sqlite_file_whole() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    let key = "provisioned-admin-key-0123456789-abcdefghij";
    let mut server = Server::start(&db, &[], &[("CAJA_ADMIN_KEY", key)]);
    wait_ready(&client, &server.base).await;
    let created = send(
        client
            .post(format!("{}/v1/products", server.base))
            .bearer_auth(key)
            .json(&serde_json::json!({
                "sku": "WAL", "name": "Checkpointed",
                "price": {"amount": 100, "currency": "MXN"}, "stock": 3
            })),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    let caja_store::DatabaseLocation::Sqlite(path) = &db.location else {
        unreachable!("an SQLite test database")
    };
    let wal = path.with_file_name("caja.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "{} is left with writes in it",
        wal.display()
    );
    // The file alone, copied elsewhere, has the product.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(path, copy.path().join("caja.db")).unwrap();
    let alone = TestDb::sqlite_at(copy.path().join("caja.db"));
    let store = alone
        .store_with(std::sync::Arc::new(caja_core::time::SystemClock))
        .await;
    let products = store
        .list_products(None, caja_core::page::PageLimit::parse(None).unwrap())
        .await
        .unwrap();
    assert_eq!(products.items.len(), 1, "{:?}", products.items);
    store.close().await;
}

/// A WebSocket, an SSE stream and a long poll are open when SIGTERM lands: the WebSocket
/// gets close code 1001, the SSE response ends, the long poll is answered, and the process
/// exits well within its 30 s shutdown bound.
async fn sigterm_ends_open_streams_and_exits_at_once(backend: Backend) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let db = TestDb::new(backend).await;
    let client = reqwest::Client::new();
    let key = REPLICA_KEY;
    let mut server = Server::start(
        &db,
        &["--shutdown-timeout", "30"],
        &[("CAJA_ADMIN_KEY", key)],
    );
    wait_ready(&client, &server.base).await;
    let ws_url = format!("{}/v1/stream", server.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let hello = serde_json::json!({"type": "subscribe", "key": key, "topics": [], "after": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Text(t))) => assert!(t.contains("subscribed"), "{t}"),
        other => panic!("{other:?}"),
    }
    let mut sse = client
        .get(format!("{}/v1/stream", server.base))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let poll = tokio::spawn(
        client
            .get(format!("{}/v1/changes?after=0&wait=25", server.base))
            .bearer_auth(key)
            .send(),
    );
    // The long poll is waiting once the server counts it.
    let started = Instant::now();
    loop {
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("caja_long_polls_waiting 1") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    server.signal("TERM");
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the WebSocket is closed promptly");
    assert_eq!(close, Some(1001));
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE response ends");
    let answered = poll.await.unwrap().expect("the long poll is answered");
    assert_eq!(answered.status(), 200);
    let status = server.wait(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["migrate", "up", "--help"],
        vec!["migrate", "down", "--help"],
        vec!["migrate", "status", "--help"],
        vec!["migrate", "verify", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
    ] {
        let out = caja(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let serve = String::from_utf8_lossy(&caja(&["serve", "--help"]).stdout).into_owned();
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--config",
        "--no-migrate",
        "CAJA_LISTEN",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, name) in [
        (vec!["serve", "--listen", "nowhere"], "listen"),
        (vec!["serve", "--currency", "pesos"], "currency"),
        (
            vec!["serve", "--database-url", "mysql://x/y"],
            "database_url",
        ),
        (
            vec!["serve", "--anonymous-rate-limit", "lots"],
            "anonymous_rate_limit",
        ),
        (vec!["serve", "--request-timeout", "0"], "request_timeout"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_caja"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("CAJA_DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(name), "{args:?}: {stderr}");
    }
    assert!(
        !dir.path().join("caja-data").exists(),
        "nothing is created before settings are good"
    );
}

#[test]
fn serve_with_no_settings_uses_the_embedded_default_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("caja.toml"),
        "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_caja"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("CAJA_DATABASE_URL")
        .env_remove("CAJA_DATA_DIR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let mut serving = false;
    for line in reader.lines().map_while(Result::ok) {
        if line.contains("caja is serving") {
            assert!(line.contains("sqlite://caja-data/caja.db"), "{line}");
            serving = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(serving);
    assert!(dir.path().join("caja-data/caja.db").is_file());
}

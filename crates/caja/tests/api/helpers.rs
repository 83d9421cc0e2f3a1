//! `spawn_app()` and the fresh-database plumbing behind it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caja_core::auth::{ApiKeySecret, Role};
use caja_core::time::{MovableClock, SharedClock, SystemClock};
use caja_server::{AppState, ServerConfig};
use caja_store::migrate::Migrator;
use caja_store::{DatabaseLocation, NewApiKey, Store, StoreOptions};
use serde_json::Value;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// Generates `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(backend)`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("CAJA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test: a temp SQLite file, or a new PostgreSQL database
/// dropped when this value is.
pub struct TestDb {
    pub location: DatabaseLocation,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pub pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let path: PathBuf = dir.path().join("caja.db");
                let url = format!("sqlite://{}", path.display());
                Self {
                    location: DatabaseLocation::Sqlite(path),
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("caja_test_{}", ulid::Ulid::new().to_string().to_lowercase());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required for these tests (CAJA_TEST_POSTGRES_URL={admin}): {e}")
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = match admin.rfind('/') {
                    Some(i) => format!("{}/{name}", &admin[..i]),
                    None => panic!("CAJA_TEST_POSTGRES_URL must end in /DATABASE"),
                };
                Self {
                    location: DatabaseLocation::parse(&url).expect("postgres url"),
                    url,
                    _dir: Some(dir),
                    pg_name: Some(name),
                }
            }
        }
    }

    /// An SQLite database at `path`, in a directory the caller owns.
    pub fn sqlite_at(path: PathBuf) -> Self {
        Self {
            url: format!("sqlite://{}", path.display()),
            location: DatabaseLocation::Sqlite(path),
            _dir: None,
            pg_name: None,
        }
    }

    pub async fn store(&self) -> Store {
        self.store_with(Arc::new(SystemClock)).await
    }

    /// A store whose "now" is `clock`'s, with every migration applied.
    pub async fn migrated_store(&self, clock: SharedClock) -> Store {
        let store = self.store_with(clock).await;
        Migrator::new(&store, Duration::from_secs(30), Duration::from_secs(5))
            .up(&mut |_| {})
            .await
            .expect("migrate");
        store
    }

    /// A store whose "now" is `clock`'s.
    pub async fn store_with(&self, clock: SharedClock) -> Store {
        let options = StoreOptions {
            clock,
            ..StoreOptions::default()
        };
        Store::connect(&self.location, &options, caja_server::presenter())
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any runtime we may block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub admin_key: String,
    pub store: Store,
    /// The app's clock: move it to pass a deadline instead of sleeping.
    pub clock: Arc<MovableClock>,
    /// Kept so the database lives as long as the app.
    pub db: TestDb,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, ServerConfig::default()).await
}

pub async fn spawn_app_with(backend: Backend, config: ServerConfig) -> TestApp {
    spawn_app_on(TestDb::new(backend).await, config).await
}

/// The app on a database made by the caller.
pub async fn spawn_app_on(db: TestDb, config: ServerConfig) -> TestApp {
    let clock = Arc::new(MovableClock::default());
    let store = db.migrated_store(clock.clone()).await;
    let secret = ApiKeySecret::generate();
    store
        .create_key(
            &NewApiKey {
                name: "test admin".into(),
                role: Role::Admin,
                rate_limit: None,
                location: None,
            },
            &secret,
        )
        .await
        .expect("admin key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let state = AppState::new(store.clone(), config);
    tokio::spawn(caja_server::serve(listener, state, shutdown.clone()));
    let app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        admin_key: secret.reveal().to_owned(),
        store,
        clock,
        db,
        shutdown,
    };
    app.wait_ready().await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/ready` until it passes; never a fixed sleep.
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the app never became ready");
    }

    pub async fn key(&self, role: Role) -> String {
        self.key_with(role, None).await
    }

    pub async fn key_with(&self, role: Role, rate_limit: Option<&str>) -> String {
        let secret = ApiKeySecret::generate();
        self.store
            .create_key(
                &NewApiKey {
                    name: format!("test {role}"),
                    role,
                    rate_limit: rate_limit.map(|r| r.parse().expect("rate")),
                    location: None,
                },
                &secret,
            )
            .await
            .expect("create key");
        secret.reveal().to_owned()
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.admin_key)
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.admin_key)
            .json(body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .patch(self.url(path))
            .bearer_auth(&self.admin_key)
            .json(body)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(self.url(path))
            .bearer_auth(&self.admin_key)
    }

    /// Creates a product and returns its body.
    pub async fn product(&self, sku: &str, stock: i64) -> Value {
        let r = self
            .post(
                "/v1/products",
                &serde_json::json!({
                    "sku": sku, "name": format!("Product {sku}"),
                    "price": {"amount": 4550, "currency": "MXN"}, "stock": stock
                }),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201, "creating {sku}");
        r.json().await.expect("json")
    }
}

/// A response's status, headers and JSON body, read once.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let r = request.send().await.expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json of this status and type, and that it carries the request id.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "status {status}"
        );
        assert_eq!(self.body["type"], kind, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        assert_eq!(
            self.body["request_id"].as_str(),
            self.header("x-request-id"),
            "problem request_id matches the header"
        );
    }
}

impl TestApp {
    /// A write with an `Idempotency-Key`.
    pub fn post_idem(&self, path: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
        self.post(path, body).header("idempotency-key", key)
    }

    /// Places an order for `(product_id, quantity)` lines under `key`.
    pub async fn order(&self, key: &str, lines: &[(&str, i64)]) -> Reply {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(p, q)| serde_json::json!({"product_id": p, "quantity": q}))
            .collect();
        send(self.post_idem("/v1/orders", key, &serde_json::json!({ "lines": lines }))).await
    }

    pub async fn stock(&self, product_id: &str) -> i64 {
        send(self.get(&format!("/v1/products/{product_id}")))
            .await
            .body["stock"]
            .as_i64()
            .expect("stock")
    }

    /// Revokes the first key of `role`, as `caja keys revoke` would.
    pub async fn revoke_first(&self, role: Role) {
        let keys = self.store.list_keys().await.expect("keys");
        let key = keys
            .iter()
            .find(|k| k.role == role)
            .expect("a key of that role");
        self.store.revoke_key(&key.id).await.expect("revoke");
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Asserts that `caja check` finds the books balanced.
    pub async fn assert_books_balance(&self) {
        let (_, violations) = self.store.check().await.expect("check");
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

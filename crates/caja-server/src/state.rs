//! Shared application state: the store, the settings, the limiters and the background
//! tasks, behind one `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caja_core::ids::KeyId;
use caja_store::batch::{BatchOptions, Batcher, Render};
use caja_store::Store;
use tokio_util::task::TaskTracker;

use crate::key_cache::KeyCache;
use crate::limits::Limiters;
use crate::live::Hub;
use crate::ServerConfig;

/// How often a key's `last_used_at` is written at most: it is a write, and a busy till
/// must not turn every read into one.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    keys: KeyCache,
    hub: Arc<Hub>,
    batcher: Option<Batcher>,
    config: ServerConfig,
    limiters: Limiters,
    started: Instant,
    shutting_down: AtomicBool,
    tasks: TaskTracker,
    touched: Mutex<HashMap<KeyId, Instant>>,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        // Install the metrics recorder before the first request is counted.
        let _ = crate::metrics::handle();
        let store = store.with_public_json(Arc::new(crate::public_json::ApiJson));
        let ttl =
            chrono::Duration::from_std(config.order_ttl).unwrap_or(chrono::Duration::minutes(15));
        let batcher = config.write_batching.then(|| {
            let render: Render = Arc::new(crate::routes::orders::render_checkout);
            Batcher::start(
                store.clone(),
                render,
                BatchOptions {
                    max_batch: config.max_batch.max(1),
                    order_ttl: ttl,
                    key_wait: config.idempotency_wait,
                },
            )
        });
        Self(Arc::new(Inner {
            hub: Hub::new(config.stream_buffer),
            keys: KeyCache::default(),
            batcher,
            store,
            config,
            limiters: Limiters::default(),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            touched: Mutex::new(HashMap::new()),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Valid keys, remembered between requests.
    pub(crate) fn keys(&self) -> &KeyCache {
        &self.0.keys
    }

    /// This process's live fan-out of the change feed.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The group-commit path for checkouts, unless batching is off.
    pub(crate) fn batcher(&self) -> Option<&Batcher> {
        self.0.batcher.as_ref()
    }

    /// How long an unpaid order holds its stock.
    pub(crate) fn order_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.0.config.order_ttl).unwrap_or(chrono::Duration::minutes(15))
    }

    pub(crate) fn limiters(&self) -> &Limiters {
        &self.0.limiters
    }

    pub fn uptime(&self) -> Duration {
        self.0.started.elapsed()
    }

    /// From now on `/ready` fails, so a load balancer stops sending new work.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    /// Stops taking background work and waits, at most `bound`, for what is running.
    /// Returns false if the bound ran out.
    pub async fn finish_background_tasks(&self, bound: Duration) -> bool {
        self.0.tasks.close();
        tokio::time::timeout(bound, self.0.tasks.wait())
            .await
            .is_ok()
    }

    /// Runs a background task that shutdown waits for.
    pub(crate) fn spawn_task<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.0.tasks.spawn(task);
    }

    /// Records a key's use in the background, at most once per [`TOUCH_EVERY`].
    pub(crate) fn note_key_used(&self, id: &KeyId) {
        let now = Instant::now();
        {
            let mut touched = self.0.touched.lock().unwrap_or_else(|p| p.into_inner());
            match touched.get(id) {
                Some(at) if now.duration_since(*at) < TOUCH_EVERY => return,
                _ => {
                    touched.insert(id.clone(), now);
                }
            }
        }
        if self.0.tasks.is_closed() {
            return;
        }
        let store = self.0.store.clone();
        let id = id.clone();
        self.0.tasks.spawn(async move {
            if let Err(e) = store.touch_key(&id, caja_core::time::now()).await {
                tracing::warn!(key_id = %id, error = %e, "could not record key use");
            }
        });
    }
}

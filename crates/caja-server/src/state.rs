//! Shared application state: the store, the settings, the limiters and the background
//! tasks, behind one `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caja_core::command::Policy;
use caja_core::ids::KeyId;
use caja_store::writer::{Writer, WriterOptions};
use caja_store::Store;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::fanout::Fanout;
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
    maintenance: crate::maintenance::MaintenanceCache,
    hub: Arc<Hub>,
    fanout: Arc<Fanout>,
    writer: Writer,
    config: ServerConfig,
    limiters: Limiters,
    started: Instant,
    shutting_down: AtomicBool,
    tasks: TaskTracker,
    touched: Mutex<HashMap<KeyId, Instant>>,
    payments: Option<crate::payments::Payments>,
    admission_keys: Vec<Vec<u8>>,
}

impl AppState {
    /// The app's state over `store`, which must have been opened with
    /// [`crate::presenter()`]. Starts the one writer; call it inside a Tokio runtime.
    pub fn new(store: Store, config: ServerConfig) -> Self {
        // Install the metrics recorder before the first request is counted.
        let _ = crate::metrics::handle();
        let writer = Writer::start(
            store.clone(),
            WriterOptions {
                // Batching off is batches of one through the same code: the baseline.
                max_batch: if config.write_batching {
                    config.max_batch.max(1)
                } else {
                    1
                },
                policy: Policy {
                    order_ttl: chrono::Duration::from_std(config.order_ttl)
                        .unwrap_or(chrono::Duration::minutes(15)),
                    hold_ttl: chrono::Duration::from_std(config.hold_ttl)
                        .unwrap_or(chrono::Duration::minutes(10)),
                },
                key_wait: config.idempotency_wait,
            },
        );
        let payments = config
            .mercadopago
            .clone()
            .map(|mp| crate::payments::Payments::mercadopago(mp, config.currency, store.clock()));
        let admission_keys = if config.admission_keys.is_empty() {
            tracing::debug!("no admission_keys set: waiting-room admissions are signed with a key of this process only");
            vec![rand::random::<[u8; 32]>().to_vec()]
        } else {
            config
                .admission_keys
                .iter()
                .map(|k| k.expose().as_bytes().to_vec())
                .collect()
        };
        let hub = Hub::new(config.stream_buffer);
        let fanout = Fanout::new(hub.clone(), store.clone(), config.stream_buffer);
        Self(Arc::new(Inner {
            admission_keys,
            payments,
            hub,
            fanout,
            keys: KeyCache::default(),
            maintenance: Default::default(),
            writer,
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

    /// Maintenance mode, remembered until a flag changes.
    pub(crate) fn maintenance(&self) -> &crate::maintenance::MaintenanceCache {
        &self.0.maintenance
    }

    /// This process's live fan-out of the change feed.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    /// This process's WebSocket screens that keep up, written to by one task.
    pub(crate) fn fanout(&self) -> &Arc<Fanout> {
        &self.0.fanout
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The keys of waiting-room admissions: the first signs, all verify.
    pub(crate) fn admission_keys(&self) -> &[Vec<u8>] {
        &self.0.admission_keys
    }

    /// The payment provider, if one is configured.
    pub(crate) fn payments(&self) -> Option<&crate::payments::Payments> {
        self.0.payments.as_ref()
    }

    /// The one writer every command goes through.
    pub(crate) fn writer(&self) -> &Writer {
        &self.0.writer
    }

    pub(crate) fn limiters(&self) -> &Limiters {
        &self.0.limiters
    }

    pub fn uptime(&self) -> Duration {
        self.0.started.elapsed()
    }

    /// From now on `/ready` fails, so a load balancer stops sending new work, and every
    /// live stream and long poll ends, so nothing open holds the shutdown up.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
        self.0.hub.stop();
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

    /// Holds shutdown's wait for background work until dropped: for tasks the app does not
    /// spawn itself (an upgraded WebSocket), so they can say goodbye before the process ends.
    pub(crate) fn task_token(&self) -> TaskTrackerToken {
        self.0.tasks.token()
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
            let now = store.now();
            if let Err(e) = store.touch_key(&id, now).await {
                tracing::warn!(key_id = %id, error = %e, "could not record key use");
            }
        });
    }
}

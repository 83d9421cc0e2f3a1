//! The [`Store`]: connection pools and the one way to open a write transaction.
//!
//! SQLite gets a small pool of readers that WAL lets run beside the writer, and two
//! writing connections: the write batches' own, driven directly on the writer's thread
//! ([`crate::direct`]), and one through sqlx for the rare writes outside the writer (keys,
//! flags, purges, webhooks, restores). In this process the two take turns on one lock
//! ([`Store::write_turn`]); SQLite's write lock orders them against other processes.
//! PostgreSQL gets one pool for everything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caja_core::time::{SharedClock, SystemClock, Timestamp};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};

use tokio::sync::Notify;

use crate::changes::NewChange;
use crate::database_url::{DatabaseLocation, Engine};
use crate::dialect::Dialect;
use crate::presenter::Presenter;
use crate::StoreError;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The one source of "now" for everything the store decides by time.
    pub clock: SharedClock,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// How long a request may wait for a connection before the database counts as down.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process before giving up.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    dialect: Dialect,
    clock: SharedClock,
    pub(crate) location: DatabaseLocation,
    reader: AnyPool,
    writer: AnyPool,
    /// The SQLite writer's own connection, driven directly by the writer's thread
    /// ([`crate::direct`]); `None` on PostgreSQL.
    pub(crate) direct: Option<Arc<tokio::sync::Mutex<crate::direct::Direct>>>,
    /// One connection of its own for the change-feed tailer, opened on first use, so
    /// live delivery never queues behind a burst of requests for the shared pool.
    feed: AnyPool,
    /// How answers and events are rendered: as the API shows them.
    pub(crate) presenter: Arc<dyn Presenter>,
    /// Woken after each local commit that appended changes.
    pub(crate) signal: Arc<Notify>,
    /// What those commits appended, for this process's tailer.
    pub(crate) recent: Arc<crate::changes::Recent>,
    /// Names this store's commits in their PostgreSQL notifications, so that its own
    /// tailer, which has them from memory already, does not read them back from the table.
    pub(crate) instance: Arc<str>,
    /// Bumped whenever a key may have changed, here or (through the feed) elsewhere, so
    /// caches of keys know to look again.
    keys_generation: Arc<AtomicU64>,
    /// The same for the deployment's flags (maintenance mode).
    pub(crate) flags_generation: Arc<AtomicU64>,
    /// Why the last write failed, while writes cannot commit (the disk is full, the
    /// database is down); `None` once one commits again.
    write_fault: Arc<Mutex<Option<String>>>,
    /// Set when a write batch panicked, until a write commits again: a bug, not an outage,
    /// so no probe can clear it.
    write_panicked: Arc<AtomicBool>,
}

/// Connection counts for the metrics endpoint.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

impl Store {
    /// Opens the database (creating an SQLite file if needed) without touching its schema.
    /// `presenter` renders every answer and event this store writes, so every process that
    /// writes (server, command line, tests) writes the same bytes.
    pub async fn connect(
        location: &DatabaseLocation,
        options: &StoreOptions,
        presenter: Arc<dyn Presenter>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = location.connect_url();
        let (reader, writer, feed, direct) = match location {
            DatabaseLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("creating {}: {e}", dir.display()),
                        )))
                    })?;
                }
                // A connection whose transaction did not end (a COMMIT or ROLLBACK that
                // failed on a full disk) is discarded, never handed to the next write. A
                // committed transaction has ended by the time its connection is released; one
                // dropped on an error still has its rollback queued, and that connection is
                // reopened too: errors are rare, and a fresh connection is always sound.
                let writer = sqlite_pool(1, options)
                    .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                    .connect(&url)
                    .await?;
                let reader = sqlite_pool(options.max_connections.clamp(1, 4), options)
                    .connect(&url)
                    .await?;
                let feed = sqlite_pool(1, options).connect_lazy(&url)?;
                let direct = crate::direct::Direct::new(path.clone(), options.busy_timeout);
                (
                    reader,
                    writer,
                    feed,
                    Some(Arc::new(tokio::sync::Mutex::new(direct))),
                )
            }
            DatabaseLocation::Postgres(_) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect(&url)
                    .await?;
                let feed = AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_lazy(&url)?;
                (pool.clone(), pool, feed, None)
            }
        };
        Ok(Self {
            dialect: Dialect::of(location.engine()),
            clock: options.clock.clone(),
            location: location.clone(),
            reader,
            writer,
            direct,
            feed,
            presenter,
            signal: Arc::new(Notify::new()),
            recent: Arc::default(),
            instance: ulid::Ulid::new().to_string().to_lowercase().into(),
            keys_generation: Arc::new(AtomicU64::new(0)),
            flags_generation: Arc::new(AtomicU64::new(0)),
            write_fault: Arc::new(Mutex::new(None)),
            write_panicked: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Changes whenever a key was revoked (by this process, or by another one as read from
    /// the change feed): a key cached under an older generation must be looked up again.
    pub fn keys_generation(&self) -> u64 {
        self.keys_generation.load(Ordering::SeqCst)
    }

    /// Records that some key changed.
    pub fn keys_changed(&self) {
        self.keys_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store's clock, for anything else that must agree with it on "now".
    pub fn clock(&self) -> caja_core::time::SharedClock {
        self.clock.clone()
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn presenter(&self) -> &dyn Presenter {
        &*self.presenter
    }

    /// Appends `changes` to the feed as the transaction's last statement, commits, and
    /// wakes local subscribers.
    pub(crate) async fn commit_with(
        &self,
        mut tx: impl crate::sql::WriteTx,
        changes: Vec<NewChange>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let first =
            crate::changes::append(&mut tx, self.dialect, &self.instance, &changes, at).await?;
        tx.commit().await?;
        if let Some(first) = first {
            self.recent.push(first, changes, at);
            self.signal.notify_one();
        }
        Ok(())
    }

    /// Which engine, for what a person reads (logs, `caja health`); code that needs to
    /// differ per engine asks the dialect instead.
    pub fn engine(&self) -> Engine {
        self.location.engine()
    }

    /// Where the database is.
    pub fn database(&self) -> &DatabaseLocation {
        &self.location
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub(crate) fn feed(&self) -> &AnyPool {
        &self.feed
    }

    /// Opens a write transaction on the writer connection, with the writer's turn (keep
    /// it until the transaction ends).
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(Transaction<'static, Any>, Option<Turn>), StoreError> {
        let turn = self.write_turn().await;
        Ok((self.dialect.begin_write(&self.writer, None).await?, turn))
    }

    /// On SQLite, the turn of the writer's own connection, for a write outside the
    /// writer (keys, flags, purges, webhooks, restores) made on sqlx's writer connection:
    /// while it is held no batch begins. In this process the two writers then queue in
    /// order on one lock, as they did on one pooled connection, instead of meeting at
    /// SQLite's file lock, whose busy handler has the loser sleep and retry. `None` on
    /// PostgreSQL, whose writers lock rows, not the database.
    pub(crate) async fn write_turn(&self) -> Option<Turn> {
        match &self.direct {
            Some(direct) => Some(direct.clone().lock_owned().await),
            None => None,
        }
    }

    /// Opens a write batch's transaction on the writer connection: no wait on a row lock
    /// (another replica's key or row) lasts longer than `lock_wait`.
    pub(crate) async fn begin_batch(
        &self,
        lock_wait: Duration,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        self.dialect
            .begin_write(&self.writer, Some(lock_wait))
            .await
    }

    /// Records how a write went: an outage is logged once, when it begins, with its cause,
    /// and once more when writes commit again.
    pub(crate) fn note_write(&self, result: Result<(), &StoreError>) {
        let mut fault = self.write_fault.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                self.write_panicked.store(false, Ordering::SeqCst);
                if fault.take().is_some() {
                    metrics::gauge!("caja_writes_failing").set(0.0);
                    tracing::info!("writes commit again");
                }
            }
            Err(e) if e.is_outage() => {
                if fault.is_none() {
                    metrics::gauge!("caja_writes_failing").set(1.0);
                    tracing::error!(error = %error_chain(e), "writes cannot commit; they are refused with 503 until they can");
                }
                *fault = Some(e.to_string());
            }
            Err(_) => {}
        }
    }

    /// Records that a write batch panicked (its requests were refused with 503).
    pub(crate) fn note_write_panic(&self) {
        self.write_panicked.store(true, Ordering::SeqCst);
    }

    /// Whether the last write batch panicked and none has committed since.
    pub fn write_panicked(&self) -> bool {
        self.write_panicked.load(Ordering::SeqCst)
    }

    /// Why writes cannot commit right now, if they cannot.
    pub fn write_fault(&self) -> Option<String> {
        self.write_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Commits a write that changes nothing, to learn whether writes commit (after an
    /// outage, before any client tries). Clears the fault when it does, and (on SQLite)
    /// when the disk has [`WRITE_HEADROOM`] free again: a one-page probe fits in the last
    /// crumbs of a full disk where a batch of orders does not.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        if self
            .location
            .free_space()
            .is_some_and(|free| free < WRITE_HEADROOM)
        {
            return Err(StoreError::StorageFull(sqlx::Error::Io(
                std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "less than {} KiB free beside the database",
                        WRITE_HEADROOM / 1024
                    ),
                ),
            )));
        }
        let probe = async {
            let (mut tx, _turn) = self.begin_write().await?;
            sqlx::query("UPDATE counters SET value = value WHERE name = 'order_number'")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        };
        let result: Result<(), StoreError> = probe.await;
        self.note_write(result.as_ref().map(|_| ()));
        result
    }

    /// Round-trips to the database; returns how long it took.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let _: AnyRow = sqlx::query("SELECT 1").fetch_one(&self.reader).await?;
        Ok(started.elapsed())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            size: self.reader.size(),
            idle: self.reader.num_idle() as u32,
        };
        if self.dialect.writers_are_serialized() {
            stats.size += self.writer.size();
            stats.idle += self.writer.num_idle() as u32;
        }
        stats
    }

    /// Closes every connection, waiting for those in use to be returned. On SQLite this
    /// also checkpoints the WAL, so the file alone is a complete copy afterwards.
    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.lock().await.close();
        }
        self.reader.close().await;
        self.writer.close().await;
        self.feed.close().await;
    }
}

/// The writer's turn on SQLite ([`Store::write_turn`]).
pub(crate) type Turn = tokio::sync::OwnedMutexGuard<crate::direct::Direct>;

/// Free disk space a probe asks for before it says writes commit again.
const WRITE_HEADROOM: u64 = 512 * 1024;

/// An error and its causes, for the one log line an outage gets.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn sqlite_pool(max: u32, options: &StoreOptions) -> AnyPoolOptions {
    let busy_ms = options.busy_timeout.as_millis();
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // busy_timeout first: switching to WAL itself may wait on another process.
                conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                    .await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
}

//! Storage errors, translated from the driver so callers never see SQL: a unique violation
//! is a conflict, a missing row is not found, a lost connection is unavailability.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("a live product already has this sku")]
    DuplicateSku,
    #[error("a request with this idempotency key is still running")]
    KeyInFlight,
    /// A wait on another transaction's row lock ran past the writer's bound
    /// (`idempotency_wait`; PostgreSQL's `lock_timeout`): the transaction was rolled back
    /// whole, and may be tried again.
    #[error("a row lock was not granted in time")]
    LockTimeout(#[source] sqlx::Error),
    /// Another writer stored an answer under one of a batch's keys after the batch read
    /// them: the batch was rolled back whole, and running its writes again replays that
    /// answer.
    #[error("an idempotency key was answered by another writer meanwhile")]
    KeyAnswered,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A write that failed for a reason worth retrying, told to a second party (e.g. the
    /// duplicate of a request whose first copy failed).
    #[error("the write failed and may be retried: {0}")]
    Retry(String),
    /// A guarded update found a row other than the one its batch loaded: the batch was
    /// rolled back whole.
    #[error("a write's guard did not match: {0}")]
    GuardMismatch(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The disk under the database is full: nothing can be written until space returns.
    #[error("the database's disk is full")]
    StorageFull(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored row does not parse: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            // SQLite's write lock held by another process past busy_timeout: the database is
            // momentarily unavailable, not broken.
            sqlx::Error::Database(db)
                if db.code().as_deref() == Some("5")
                    || db.message().contains("database is locked") =>
            {
                StoreError::Unavailable(e)
            }
            // SQLite's SQLITE_FULL (13), and PostgreSQL's disk_full (53100).
            sqlx::Error::Database(db)
                if sqlite_primary(&**db) == Some(13) || db.code().as_deref() == Some("53100") =>
            {
                StoreError::StorageFull(e)
            }
            // SQLite's SQLITE_IOERR family (10); PostgreSQL going away or refusing us:
            // connection exceptions (08…), admin or crash shutdown and "cannot connect now"
            // (57P01–57P03), too many connections (53300), and a database that does not
            // allow connections (55000 at connect time).
            sqlx::Error::Database(db)
                if sqlite_primary(&**db) == Some(10)
                    || db.code().as_deref().is_some_and(|c| {
                        c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300")
                    })
                    || (db.code().as_deref() == Some("55000")
                        && db.message().contains("not currently accepting connections")) =>
            {
                StoreError::Unavailable(e)
            }
            // A deadlock or serialization failure on PostgreSQL: the transaction was rolled
            // back whole, so the client may safely try again. Writers take locks in one
            // order (rows by table and id, then keys), so this is a safety net.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                StoreError::Retry(db.message().to_owned())
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                StoreError::LockTimeout(e)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                if db.message().contains("sku") || db.constraint() == Some("products_live_sku") {
                    StoreError::DuplicateSku
                } else {
                    StoreError::Database(e)
                }
            }
            _ => StoreError::Database(e),
        }
    }
}

/// SQLite's primary result code from an extended one (`SQLITE_IOERR_WRITE` is 778, primary
/// 10); `None` for errors that are not SQLite's.
fn sqlite_primary(db: &dyn sqlx::error::DatabaseError) -> Option<i32> {
    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        || db
            .try_downcast_ref::<crate::direct::DirectError>()
            .is_some();
    if !sqlite {
        return None;
    }
    db.code()?.parse::<i32>().ok().map(|c| c & 0xff)
}

impl StoreError {
    /// Whether the database cannot take writes right now (down, or out of disk): the
    /// condition `/ready` reports and retries recover from.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::StorageFull(_)
        )
    }
}

impl From<caja_core::DomainError> for StoreError {
    fn from(e: caja_core::DomainError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl StoreError {
    /// A copy for another waiter on the same failure. Driver errors cannot be cloned, so
    /// they become [`StoreError::Retry`] carrying their text.
    pub fn shallow_clone(&self) -> StoreError {
        match self {
            StoreError::NotFound => StoreError::NotFound,
            StoreError::DuplicateSku => StoreError::DuplicateSku,
            StoreError::KeyInFlight => StoreError::KeyInFlight,
            StoreError::ShuttingDown => StoreError::ShuttingDown,
            StoreError::Unavailable(e) => StoreError::Retry(e.to_string()),
            other => StoreError::Retry(other.to_string()),
        }
    }
}

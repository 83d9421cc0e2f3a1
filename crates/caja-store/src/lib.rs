//! caja's persistence: one [`Store`] over SQLite (the embedded default) and PostgreSQL
//! (many replicas), the schema migrations embedded in the binary, and their runner.
//!
//! Both engines share one implementation through sqlx's `Any` driver: the SQL caja needs is
//! portable (`RETURNING`, `ON CONFLICT`, partial indexes, `$N` parameters), so each query
//! is written once. Only what truly differs — DDL, locking, how a write transaction
//! begins — is chosen per [`Engine`].

pub mod batch;
pub mod changes;
mod check;
mod error;
mod keys;
mod ledger;
pub mod location;
pub mod migrate;
mod orders;
mod params;
mod products;
mod rows;
mod store;
mod work;

pub use check::Violation;
pub use error::StoreError;
pub use keys::{ApiKeyRecord, NewApiKey};
pub use ledger::{MoveRefusal, Movement};
pub use location::{DatabaseLocation, Engine};
pub use orders::{ActionRefusal, ActionRequest, PaymentMethod};
pub use store::{PoolStats, Store, StoreOptions};
pub use work::{Claim, IdempotencyScope, StoredResponse, Work};

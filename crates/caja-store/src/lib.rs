//! caja's persistence: one [`Store`] over SQLite (the embedded default) and PostgreSQL
//! (many replicas), the schema migrations embedded in the binary, and their runner.
//!
//! Both engines share one implementation: the SQL caja needs is portable (`RETURNING`,
//! `ON CONFLICT`, `UPDATE … FROM (VALUES …)`), so each query is written once, through
//! sqlx's `Any` driver, and the writer's through [`sql`], which the SQLite writer's own
//! connection also implements ([`direct`]). What truly differs lives in one [`dialect`].
//!
//! Every write that moves money, stock or state is a command committed by the one
//! [`writer`]; the rest of this crate reads.

pub mod audit;
pub mod backup;
pub mod box_office;
pub mod changes;
mod check;
mod chunks;
mod database_url;
mod dialect;
mod direct;
mod error;
mod flags;
mod keys;
mod ledger;
mod locations;
pub mod migrate;
mod orders;
mod presenter;
mod products;
pub mod provider_events;
mod rows;
mod sql;
mod store;
mod tabs;
pub mod webhooks;
pub mod writer;

pub use check::Violation;
pub use database_url::{DatabaseLocation, Engine};
pub use error::StoreError;
pub use flags::Maintenance;
pub use keys::{ApiKeyRecord, NewApiKey};
pub use locations::{LocationStock, StockView};
pub use presenter::{Presenter, StoredResponse};
pub use store::{PoolStats, Store, StoreOptions};

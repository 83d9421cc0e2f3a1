//! caja's domain: the vocabulary every other crate speaks (money, ids, products, keys and
//! roles, rate limits) and the rules that hold whatever the storage or transport.
//!
//! Nothing here does I/O: values are parsed once at the edge (`parse`/`TryFrom`) and trusted
//! inside, and time is passed in rather than read, so every rule is unit tested without a
//! database or a clock.

pub mod auth;
pub mod box_office;
pub mod command;
pub mod error;
pub mod feed;
pub mod idempotency;
pub mod ids;
pub mod ledger;
pub mod location;
pub mod money;
pub mod order;
pub mod page;
pub mod payments;
pub mod product;
pub mod rate;
pub mod tab;
pub mod text;
pub mod time;
pub mod waiting_room;
pub mod webhooks;

pub use error::DomainError;

//! One module per resource, each with its own `router()`.

pub mod audit;
pub mod changes;
pub mod events;
pub mod locations;
pub mod maintenance;
pub mod ops;
pub mod orders;
pub mod products;
pub mod stock;
pub mod stream;
pub mod subscriptions;
pub mod tabs;
pub mod transfers;
pub mod webhooks;

//! caja's integration tests: one binary, one `spawn_app()` per test on its own fresh
//! database, and every API test run on SQLite and on PostgreSQL.
//!
//! PostgreSQL is found at `CAJA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); when it is unreachable the PostgreSQL
//! tests fail, they never skip.

#[macro_use]
mod helpers;

mod audit;
mod auth;
mod backup;
mod box_office;
mod branches;
mod cli;
mod connections;
mod crash;
mod differential;
mod errors;
mod faults;
mod guards;
mod live;
mod maintenance;
mod migrate;
mod ops;
mod orders;
mod payments;
mod products;
mod races;
mod stock;
mod tabs;
mod tls;
mod waiting_room;
mod web;
mod webhooks;

//! caja's own migration tool: the schema is a list of migrations embedded in the binary,
//! one folder per engine, each with `up`, `down` and `verify` SQL.
//!
//! sqlx's migrator was the starting point, but it has no verify step, no record of who ran
//! a migration or with which caja, no bounded lock on SQLite and no `down` by steps; so caja
//! keeps its own history table and runner, in the same spirit: each migration runs in its
//! own transaction together with its history row, under a lock that two migrators (or two
//! replicas starting together) cannot both hold.

mod history;
mod lock;
mod runner;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{Engine, StoreError};

pub(crate) use history::applied_by;
pub use history::Applied;
pub use runner::{Migrator, Report, Status, StatusRow, VerifyFailure};

/// One schema change, as embedded at build time.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub verify: &'static str,
    /// Declared in the migration's `kind` file.
    pub expand: bool,
}

/// Whether binaries that predate a migration keep working once it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Additive: older binaries read and write as before (new tables, new nullable
    /// columns, new indexes). A replica that predates it stays ready.
    Expand,
    /// Anything else (drops, renames, new constraints): older replicas must stop serving.
    Contract,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Expand => "expand",
            Kind::Contract => "contract",
        }
    }
}

impl Migration {
    /// Declared by the migration's `kind` file; contract without one, the safe default.
    pub fn kind(&self) -> Kind {
        if self.expand {
            Kind::Expand
        } else {
            Kind::Contract
        }
    }

    /// The tables this migration's `down` script drops: what reverting it destroys. A table
    /// rebuilt in place (dropped, then a copy renamed to its name, as SQLite changes a
    /// constraint) keeps its rows and is not listed.
    pub fn drops(&self) -> Vec<&'static str> {
        let down: &'static str = self.down;
        let rebuilt: Vec<&str> = down
            .split(';')
            .filter_map(|statement| {
                let words: Vec<&str> = statement
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .flat_map(str::split_whitespace)
                    .collect();
                match words.as_slice() {
                    [alter, table, _, rename, to, name]
                        if alter.eq_ignore_ascii_case("ALTER")
                            && table.eq_ignore_ascii_case("TABLE")
                            && rename.eq_ignore_ascii_case("RENAME")
                            && to.eq_ignore_ascii_case("TO") =>
                    {
                        Some(*name)
                    }
                    _ => None,
                }
            })
            .collect();
        down.split(';')
            .filter_map(|statement| {
                // Comment lines are not part of the statement (a script may explain itself).
                let words: Vec<&'static str> = statement
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .flat_map(str::split_whitespace)
                    .collect();
                match words.as_slice() {
                    [drop, table, if_, exists, name, ..]
                        if drop.eq_ignore_ascii_case("DROP")
                            && table.eq_ignore_ascii_case("TABLE")
                            && if_.eq_ignore_ascii_case("IF")
                            && exists.eq_ignore_ascii_case("EXISTS") =>
                    {
                        Some(*name)
                    }
                    [drop, table, name, ..]
                        if drop.eq_ignore_ascii_case("DROP")
                            && table.eq_ignore_ascii_case("TABLE") =>
                    {
                        Some(*name)
                    }
                    _ => None,
                }
            })
            .map(|name| name.trim_end_matches(';'))
            .filter(|name| !rebuilt.contains(name))
            .collect()
    }

    /// SHA-256 of the `up` script: what was applied must stay what the binary ships.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.up.as_bytes()))
    }

    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

mod embedded {
    use super::Migration;
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The migrations this binary ships for an engine, in version order.
pub fn embedded(engine: Engine) -> &'static [Migration] {
    match engine {
        Engine::Sqlite => embedded::SQLITE,
        Engine::Postgres => embedded::POSTGRES,
    }
}

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another migrator holds the migration lock; gave up after {0:?} (is another `caja migrate` or `caja serve` starting?)")]
    LockTimeout(std::time::Duration),
    /// Newer migrations that are contracts (or were recorded before kinds were): binaries
    /// that predate them must not serve. Newer expand migrations are no refusal.
    #[error("the database has contract migrations this caja does not know ({}): it was migrated by a newer caja; run that version, or roll back with it", .0.join(", "))]
    UnknownMigrations(Vec<String>),
    #[error("applied migrations differ from the ones this caja ships ({}): the schema was changed by hand or by another build", .0.join(", "))]
    ChecksumChanged(Vec<String>),
    #[error("migration {label} failed; the database is left at the last good migration: {source}")]
    Failed {
        label: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations are pending ({}): run `caja migrate up`, or start without --no-migrate", .0.join(", "))]
    Pending(Vec<String>),
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contract stops every older replica, so each one is a decision, named here; the
    /// rest keep rolling upgrades possible.
    #[test]
    fn every_shipped_migration_is_an_expand_but_the_named_contracts() {
        // PostgreSQL's text columns made bytewise: statements prepared before it fail after.
        let contracts = [(Engine::Postgres, 17)];
        for engine in [Engine::Sqlite, Engine::Postgres] {
            for m in embedded(engine) {
                let want = if contracts.contains(&(engine, m.version)) {
                    Kind::Contract
                } else {
                    Kind::Expand
                };
                assert_eq!(m.kind(), want, "{engine} {}", m.label());
            }
        }
    }

    #[test]
    fn a_down_script_names_the_tables_it_drops() {
        for engine in [Engine::Sqlite, Engine::Postgres] {
            let changes = embedded(engine).iter().find(|m| m.version == 4).unwrap();
            assert_eq!(changes.drops(), vec!["changes"]);
            let orders = embedded(engine).iter().find(|m| m.version == 3).unwrap();
            assert!(orders.drops().contains(&"orders"), "{:?}", orders.drops());
            // The ledger is rebuilt in place on SQLite, never lost.
            let tabs = embedded(engine).iter().find(|m| m.version == 7).unwrap();
            assert_eq!(tabs.drops(), vec!["tab_items", "tabs"], "{engine}");
            // Orders are rebuilt in place on SQLite to change their status CHECK.
            let payments = embedded(engine).iter().find(|m| m.version == 8).unwrap();
            assert_eq!(payments.drops(), vec!["provider_events"], "{engine}");
        }
    }

    #[test]
    fn both_engines_ship_the_same_versions_in_order() {
        let names = |e| {
            embedded(e)
                .iter()
                .map(|m| (m.version, m.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Engine::Sqlite), names(Engine::Postgres));
        let versions: Vec<_> = embedded(Engine::Sqlite).iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert!(!versions.is_empty());
    }

    #[test]
    fn every_migration_has_up_down_and_verify() {
        for engine in [Engine::Sqlite, Engine::Postgres] {
            for m in embedded(engine) {
                assert!(!m.up.trim().is_empty(), "{engine} {}", m.label());
                assert!(!m.down.trim().is_empty(), "{engine} {}", m.label());
                assert!(!m.verify.trim().is_empty(), "{engine} {}", m.label());
                assert_eq!(m.checksum().len(), 64);
            }
        }
    }
}

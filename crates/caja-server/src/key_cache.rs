//! Every live API key kept in memory, so a request does not pay a database round trip to
//! learn who is calling (on a flash sale that round trip is a fifth of a checkout), and a
//! guessed key costs the server no query at all: a key that is not in the table is
//! refused from memory.
//!
//! The table stays current: creating or revoking a key bumps the store's keys generation
//! in the process that did it, and a revocation appends a `key.revoked` event that every
//! replica's feed tailer turns into the same bump (at once with LISTEN/NOTIFY on
//! PostgreSQL, within a quarter second by polling otherwise), so a revoked key stops
//! working everywhere at once. A table from an older generation, or older than
//! [`TRUST_FOR`], is read again. A key created by another process (`caja keys create`,
//! another replica) is found by a miss, which re-reads the table at most once per
//! [`MISS_RELOAD_EVERY`]: within a second, whatever a guesser sends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use caja_core::auth::KeyHash;
use caja_store::{ApiKeyRecord, Store, StoreError};

/// Longest the table is trusted without a look at the database, whatever the feed says.
const TRUST_FOR: Duration = Duration::from_secs(60);
/// Most often an unknown key may make the table be read again.
const MISS_RELOAD_EVERY: Duration = Duration::from_secs(1);

struct Table {
    keys: HashMap<KeyHash, ApiKeyRecord>,
    generation: u64,
    loaded: Instant,
}

#[derive(Default)]
pub struct KeyCache {
    table: Mutex<Option<Table>>,
    /// How many times the table was read, for tests.
    loads: std::sync::atomic::AtomicU64,
    /// Serializes reloads, so a burst of requests after a change reads the table once.
    reloading: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// The key with this hash (revoked or not), or `None`.
    pub async fn find(
        &self,
        store: &Store,
        hash: &KeyHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.lookup(store, hash) {
            Lookup::Hit(key) => return Ok(Some(key)),
            Lookup::Miss => return Ok(None),
            Lookup::Stale | Lookup::MissMayReload => {}
        }
        let _one = self.reloading.lock().await;
        // Another request may have reloaded while this one waited.
        match self.lookup(store, hash) {
            Lookup::Hit(key) => return Ok(Some(key)),
            Lookup::Miss => return Ok(None),
            Lookup::Stale | Lookup::MissMayReload => {}
        }
        let generation = store.keys_generation();
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keys: HashMap<KeyHash, ApiKeyRecord> =
            store.keys_by_hash().await?.into_iter().collect();
        let found = keys.get(hash).cloned();
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = Some(Table {
            keys,
            generation,
            loaded: Instant::now(),
        });
        Ok(found)
    }

    fn lookup(&self, store: &Store, hash: &KeyHash) -> Lookup {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = table.as_ref() else {
            return Lookup::Stale;
        };
        if t.generation != store.keys_generation() || t.loaded.elapsed() >= TRUST_FOR {
            return Lookup::Stale;
        }
        match t.keys.get(hash) {
            Some(key) => Lookup::Hit(key.clone()),
            None if t.loaded.elapsed() >= MISS_RELOAD_EVERY => Lookup::MissMayReload,
            None => Lookup::Miss,
        }
    }
}

enum Lookup {
    Hit(ApiKeyRecord),
    Miss,
    MissMayReload,
    Stale,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use caja_core::auth::{ApiKeySecret, Role};
    use caja_store::migrate::Migrator;
    use caja_store::{DatabaseLocation, NewApiKey, StoreOptions};

    use super::*;

    #[tokio::test]
    async fn guessed_keys_are_refused_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let location = DatabaseLocation::Sqlite(dir.path().join("caja.db"));
        let store = Store::connect(&location, &StoreOptions::default(), crate::presenter())
            .await
            .unwrap();
        Migrator::new(&store, Duration::from_secs(5), Duration::from_secs(5))
            .up(&mut |_| {})
            .await
            .unwrap();
        let secret = ApiKeySecret::generate();
        let key = NewApiKey {
            name: "till".into(),
            role: Role::Clerk,
            rate_limit: None,
            location: None,
        };
        store.create_key(&key, &secret).await.unwrap();
        let cache = KeyCache::default();
        assert!(cache.find(&store, &secret.hash()).await.unwrap().is_some());
        let started = Instant::now();
        for i in 0..2000 {
            let guess = ApiKeySecret::presented(&format!("caja_guess_{i}")).hash();
            assert!(cache.find(&store, &guess).await.unwrap().is_none());
        }
        let loads = cache.loads.load(std::sync::atomic::Ordering::Relaxed);
        // One load for the first lookup, then at most one a second for misses.
        let bound = 1 + started.elapsed().as_secs() + 1;
        assert!(loads <= bound, "2000 guesses read the table {loads} times");
        assert!(cache.find(&store, &secret.hash()).await.unwrap().is_some());
    }
}

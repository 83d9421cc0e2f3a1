//! Valid API keys kept in memory, so a request does not pay a database round trip to
//! learn who is calling (on a flash sale that round trip is a fifth of a checkout).
//!
//! Revocation stays prompt: a revocation bumps the store's keys generation in the process
//! that made it, and appends a `key.revoked` event that every replica's feed tailer turns
//! into the same bump (at once with LISTEN/NOTIFY on PostgreSQL, within a quarter second by
//! polling otherwise). An entry from an older generation is looked up again. Unknown keys
//! are never cached, so a key created elsewhere works on its first request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use caja_core::auth::KeyHash;
use caja_store::{ApiKeyRecord, Store, StoreError};

/// Longest an entry is trusted without a look at the database, whatever the feed says.
const TRUST_FOR: Duration = Duration::from_secs(60);
/// Entries kept at most; past it the cache starts over.
const CAPACITY: usize = 10_000;

struct Entry {
    key: ApiKeyRecord,
    generation: u64,
    fetched: Instant,
}

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<KeyHash, Entry>>,
}

impl KeyCache {
    /// The key with this hash, from memory if still trusted, else from the store.
    pub async fn find(
        &self,
        store: &Store,
        hash: &KeyHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let generation = store.keys_generation();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(hash) {
                if e.generation == generation && e.fetched.elapsed() < TRUST_FOR {
                    return Ok(Some(e.key.clone()));
                }
            }
        }
        let found = store.find_key(hash).await?;
        if let Some(key) = found.as_ref().filter(|k| k.revoked_at.is_none()) {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(
                hash.clone(),
                Entry {
                    key: key.clone(),
                    generation,
                    fetched: Instant::now(),
                },
            );
        }
        Ok(found)
    }
}

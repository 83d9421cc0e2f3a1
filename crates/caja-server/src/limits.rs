//! Rate limiting state: one GCRA cell per client IP (for requests without a valid key) and
//! per key (when a rate is configured for it or for all keys).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use caja_core::ids::KeyId;
use caja_core::rate::{Gcra, RateLimit};

/// Cells past this count trigger a sweep of idle ones, bounding memory under a scan.
const SWEEP_AT: usize = 10_000;

pub struct Limiter<K> {
    origin: Instant,
    cells: Mutex<HashMap<K, Gcra>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a request from `key`, or returns how long to wait.
    pub fn check(&self, key: &K, limit: RateLimit) -> Result<(), Duration> {
        let now = self.origin.elapsed();
        // A poisoned lock only means another request panicked mid-update of a counter;
        // the map is still usable.
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if cells.len() >= SWEEP_AT && !cells.contains_key(key) {
            cells.retain(|_, g| !g.is_idle(now));
        }
        cells.entry(key.clone()).or_default().check(limit, now)
    }
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// How long `key` must wait before its next request is admitted, without spending
    /// one; `None` if it would be admitted now.
    pub fn waiting(&self, key: &K, limit: RateLimit) -> Option<Duration> {
        let now = self.origin.elapsed();
        let cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        cells.get(key)?.wait(limit, now)
    }
}

impl<K: Eq + Hash + Clone> Default for Limiter<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
pub struct Limiters {
    /// Requests without a valid key, per address.
    pub by_ip: Limiter<IpAddr>,
    pub by_key: Limiter<KeyId>,
    /// Requests with a public key, per address: a buyer's budget, apart from the one that
    /// guards against key guessing, so busy buyers never lock staff out of an address.
    pub public_by_ip: Limiter<IpAddr>,
}

/// `Retry-After` in whole seconds, rounded up.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

//! Every call out to a provider goes through here: the breaker first (open: fail fast with
//! the time to wait), then attempts bounded by the adapter's timeout, retried with full
//! jitter within the retry budget while the failure is transient. Only transient failures
//! count against the provider's health: a 404 for an unknown payment is an answer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use caja_core::payments::backoff::RetryPolicy;
use caja_core::payments::breaker::{Breaker, BreakerConfig, State};
use caja_core::time::SharedClock;

use super::provider::{Call, CallError, Provider};

/// How calls out behave.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallPolicy {
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
}

/// A provider behind its breaker and retry policy.
pub struct Guarded {
    provider: Arc<dyn Provider>,
    policy: CallPolicy,
    breaker: Mutex<Breaker>,
    clock: SharedClock,
}

impl Guarded {
    pub fn new(provider: Arc<dyn Provider>, policy: CallPolicy, clock: SharedClock) -> Self {
        let guarded = Self {
            provider,
            policy,
            breaker: Mutex::new(Breaker::new(policy.breaker)),
            clock,
        };
        guarded.publish(State::Closed);
        guarded
    }

    pub fn name(&self) -> &'static str {
        self.provider.name()
    }

    /// The breaker's state now.
    pub fn state(&self) -> State {
        self.lock().state()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // A panic while holding this lock leaves a breaker that is still consistent: every
        // method finishes its update before returning.
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `attempt` (one call to the provider) under the breaker, retrying what is
    /// transient. `call` names it in metrics.
    pub async fn call<'a, T>(
        &'a self,
        call: &'static str,
        attempt: impl Fn(&'a dyn Provider) -> Call<'a, T>,
    ) -> Result<T, CallError> {
        let started = Instant::now();
        let mut made = 0;
        loop {
            let permit = {
                let mut breaker = self.lock();
                let admitted = breaker.admit(self.clock.now());
                self.publish(breaker.state());
                admitted
            };
            let permit = match permit {
                Ok(p) => p,
                Err(rejected) => {
                    self.count(call, "rejected");
                    return Err(CallError::Unavailable {
                        retry_after: rejected.retry_after.to_std().unwrap_or_default(),
                    });
                }
            };
            made += 1;
            let result = attempt(self.provider.as_ref()).await;
            let transient = matches!(&result, Err(e) if e.is_transient());
            {
                let mut breaker = self.lock();
                breaker.record(permit, !transient, self.clock.now());
                self.publish(breaker.state());
            }
            match result {
                Ok(value) => {
                    self.count(call, "ok");
                    return Ok(value);
                }
                Err(e) if transient => {
                    self.count(
                        call,
                        if matches!(e, CallError::Timeout(_)) {
                            "timeout"
                        } else {
                            "error"
                        },
                    );
                    let random: f64 = rand::random();
                    match self.policy.retry.next(made, started.elapsed(), random) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(e),
                    }
                }
                Err(e) => {
                    self.count(call, "refused");
                    return Err(e);
                }
            }
        }
    }

    fn count(&self, call: &'static str, outcome: &'static str) {
        metrics::counter!("caja_provider_calls_total",
            "provider" => self.name(), "call" => call, "outcome" => outcome)
        .increment(1);
    }

    /// The breaker's state as a gauge: 0 closed, 1 half-open, 2 open.
    fn publish(&self, state: State) {
        let value = match state {
            State::Closed => 0.0,
            State::HalfOpen { .. } => 1.0,
            State::Open { .. } => 2.0,
        };
        metrics::gauge!("caja_provider_breaker_state", "provider" => self.name()).set(value);
    }
}

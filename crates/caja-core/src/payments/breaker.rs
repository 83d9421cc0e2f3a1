//! A circuit breaker per provider. Closed, it lets calls through and watches their
//! failure rate over a sliding window; past the threshold it opens and refuses calls at
//! once (the caller answers 503 `provider-unavailable` with `Retry-After`) instead of
//! letting every checkout wait on a provider that is down. After `open_for` it lets a
//! bounded number of probe calls through (half-open): all succeeding closes it, any
//! failing opens it again.

use std::collections::VecDeque;

use chrono::Duration;

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// How far back the failure rate looks.
    pub window: Duration,
    /// Fewer calls than this in the window never open the breaker.
    pub min_calls: usize,
    /// The share of failed calls (0–1) in the window that opens it.
    pub failure_rate: f64,
    /// How long it stays open before probing.
    pub open_for: Duration,
    /// Probe calls allowed at once while half-open, and successes needed to close.
    pub probes: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::seconds(30),
            min_calls: 5,
            failure_rate: 0.5,
            open_for: Duration::seconds(30),
            probes: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Timestamp },
    HalfOpen { in_flight: usize, successes: usize },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }
}

/// What a call was let through as; hand it back to [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Normal,
    Probe,
}

/// A call refused without being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// When to try again.
    pub retry_after: Duration,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    /// Outcomes of recent normal calls: when, and whether they failed.
    recent: VecDeque<(Timestamp, bool)>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed,
            recent: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may be made now.
    pub fn admit(&mut self, now: Timestamp) -> Result<Permit, Rejected> {
        if let State::Open { until } = self.state {
            if now < until {
                return Err(Rejected {
                    retry_after: until - now,
                });
            }
            self.state = State::HalfOpen {
                in_flight: 0,
                successes: 0,
            };
        }
        match &mut self.state {
            State::Closed => Ok(Permit::Normal),
            State::HalfOpen { in_flight, .. } if *in_flight < self.config.probes => {
                *in_flight += 1;
                Ok(Permit::Probe)
            }
            // Probes are out: the next answer comes soon.
            State::HalfOpen { .. } | State::Open { .. } => Err(Rejected {
                retry_after: Duration::seconds(1),
            }),
        }
    }

    /// Records how a call let through by `admit` ended.
    pub fn record(&mut self, permit: Permit, ok: bool, now: Timestamp) {
        match (permit, &mut self.state) {
            (
                Permit::Probe,
                State::HalfOpen {
                    in_flight,
                    successes,
                },
            ) => {
                *in_flight = in_flight.saturating_sub(1);
                if !ok {
                    self.open(now);
                } else {
                    *successes += 1;
                    if *successes >= self.config.probes {
                        self.state = State::Closed;
                        self.recent.clear();
                    }
                }
            }
            (Permit::Normal, State::Closed) => {
                self.recent.push_back((now, !ok));
                let since = now - self.config.window;
                while self.recent.front().is_some_and(|(at, _)| *at < since) {
                    self.recent.pop_front();
                }
                let calls = self.recent.len();
                let failed = self.recent.iter().filter(|(_, f)| *f).count();
                if calls >= self.config.min_calls
                    && failed as f64 >= self.config.failure_rate * calls as f64
                {
                    self.open(now);
                }
            }
            // A call that ended after the state moved on (opened by others meanwhile)
            // tells nothing new.
            _ => {}
        }
    }

    fn open(&mut self, now: Timestamp) {
        self.state = State::Open {
            until: now + self.config.open_for,
        };
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn t0() -> Timestamp {
        Utc.timestamp_opt(1_764_400_000, 0).unwrap()
    }

    fn secs(n: i64) -> Duration {
        Duration::seconds(n)
    }

    fn call(b: &mut Breaker, ok: bool, now: Timestamp) -> Result<(), Rejected> {
        let permit = b.admit(now)?;
        b.record(permit, ok, now);
        Ok(())
    }

    #[test]
    fn a_few_failures_among_successes_keep_it_closed() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..20 {
            call(&mut b, i % 3 != 0, t0() + secs(i)).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn too_few_calls_never_open_it() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..4 {
            call(&mut b, false, t0() + secs(i)).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_failing_provider_opens_it_and_calls_fail_fast_until_it_probes() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..5 {
            call(&mut b, false, t0() + secs(i)).unwrap();
        }
        assert_eq!(b.state().name(), "open");
        let refused = b.admit(t0() + secs(10)).unwrap_err();
        assert_eq!(refused.retry_after, secs(24));
        // Past open_for: two probes at once, no third.
        let later = t0() + secs(40);
        let p1 = b.admit(later).unwrap();
        let p2 = b.admit(later).unwrap();
        assert_eq!((p1, p2), (Permit::Probe, Permit::Probe));
        assert!(b.admit(later).is_err());
        b.record(p1, true, later);
        b.record(p2, true, later);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..5 {
            call(&mut b, false, t0() + secs(i)).unwrap();
        }
        let later = t0() + secs(40);
        let probe = b.admit(later).unwrap();
        b.record(probe, false, later);
        assert_eq!(
            b.state(),
            State::Open {
                until: later + secs(30)
            }
        );
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..4 {
            call(&mut b, false, t0() + secs(i)).unwrap();
        }
        // A minute later, four successes and one failure: 1 of 5, closed.
        for i in 0..4 {
            call(&mut b, true, t0() + secs(60 + i)).unwrap();
        }
        call(&mut b, false, t0() + secs(64)).unwrap();
        assert_eq!(b.state(), State::Closed);
    }
}

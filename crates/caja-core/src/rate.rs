//! Rate limits as the generic cell rate algorithm (GCRA): one timestamp of state per
//! client, exact burst semantics, and a precise `Retry-After`.
//!
//! Time is passed in as an offset from any fixed origin, so the rule is tested without a
//! clock.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::DomainError;

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// The interval between two requests at the sustained rate.
    fn emission_interval(self) -> Duration {
        Duration::from_secs(1) / self.per_second
    }

    /// How far ahead of real time the schedule may run: `burst - 1` intervals.
    fn tolerance(self) -> Duration {
        self.emission_interval() * (self.burst - 1)
    }
}

impl FromStr for RateLimit {
    type Err = DomainError;

    /// `N/s` (burst 2N) or `N/s:B` (burst B).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            DomainError::invalid(
                "rate_limit",
                "must look like `20/s` or `20/s:40` (rate per second, optional burst)",
            )
        };
        let (rate, burst) = match s.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let per_second: u32 = rate
            .strip_suffix("/s")
            .ok_or_else(bad)?
            .trim()
            .parse()
            .map_err(|_| bad())?;
        let burst: u32 = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => per_second.saturating_mul(2),
        };
        if per_second == 0 || burst == 0 || per_second > 1_000_000 {
            return Err(bad());
        }
        Ok(Self { per_second, burst })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s:{}", self.per_second, self.burst)
    }
}

/// One client's GCRA state: the theoretical arrival time of its next request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gcra {
    tat: Duration,
}

impl Gcra {
    /// Admits a request at `now`, or says how long until one would be admitted.
    pub fn check(&mut self, limit: RateLimit, now: Duration) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let allow_at = tat.saturating_sub(limit.tolerance());
        if now < allow_at {
            return Err(allow_at - now);
        }
        self.tat = tat + limit.emission_interval();
        Ok(())
    }

    /// How long until a request at `now` would be admitted, without admitting one:
    /// `None` when it would be admitted now.
    pub fn wait(&self, limit: RateLimit, now: Duration) -> Option<Duration> {
        let allow_at = self.tat.max(now).saturating_sub(limit.tolerance());
        (now < allow_at).then(|| allow_at - now)
    }

    /// True once the state has no effect any more and can be forgotten.
    pub fn is_idle(&self, now: Duration) -> bool {
        self.tat <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_told_without_spending_a_request() {
        let limit = RateLimit {
            per_second: 1,
            burst: 1,
        };
        let mut g = Gcra::default();
        assert_eq!(g.wait(limit, ms(0)), None);
        assert_eq!(g.wait(limit, ms(0)), None, "asking spends nothing");
        g.check(limit, ms(0)).unwrap();
        assert!(g.wait(limit, ms(10)).is_some());
        assert_eq!(g.wait(limit, ms(1000)), None);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn limits_parse_with_and_without_burst() {
        let l: RateLimit = "20/s".parse().unwrap();
        assert_eq!((l.per_second, l.burst), (20, 40));
        let l: RateLimit = "5/s:1".parse().unwrap();
        assert_eq!((l.per_second, l.burst), (5, 1));
        for bad in ["", "20", "0/s", "x/s", "20/s:", "20/m"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let limit = RateLimit {
            per_second: 10,
            burst: 3,
        };
        let mut g = Gcra::default();
        let t0 = ms(1000);
        for _ in 0..3 {
            assert!(g.check(limit, t0).is_ok());
        }
        let wait = g.check(limit, t0).unwrap_err();
        assert_eq!(wait, ms(100));
        assert!(g.check(limit, t0 + ms(99)).is_err());
        assert!(g.check(limit, t0 + ms(100)).is_ok());
    }

    #[test]
    fn a_refused_request_does_not_push_the_schedule() {
        let limit = RateLimit {
            per_second: 1,
            burst: 1,
        };
        let mut g = Gcra::default();
        assert!(g.check(limit, ms(0)).is_ok());
        for _ in 0..10 {
            assert!(g.check(limit, ms(500)).is_err());
        }
        assert!(g.check(limit, ms(1000)).is_ok());
    }

    #[test]
    fn state_goes_idle_after_the_schedule_catches_up() {
        let limit = RateLimit {
            per_second: 10,
            burst: 5,
        };
        let mut g = Gcra::default();
        g.check(limit, ms(0)).unwrap();
        assert!(!g.is_idle(ms(50)));
        assert!(g.is_idle(ms(100)));
    }
}

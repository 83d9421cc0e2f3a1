//! Retries of calls out: exponential back-off with full jitter (each wait uniform between
//! zero and the exponential bound, so clients that failed together do not retry together),
//! within a number of attempts and a total time budget, so a retry never outlives the
//! request that is waiting on it.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The bound of the first retry's wait; it doubles with each retry.
    pub base: Duration,
    /// No wait's bound is above this.
    pub cap: Duration,
    /// All attempts and waits together stay within this.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            budget: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 is the first retry), for a `random` draw in
    /// [0, 1).
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        let bound = self
            .base
            .saturating_mul(2_u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.cap);
        bound.mul_f64(random.clamp(0.0, 1.0))
    }

    /// The wait before the next attempt after `made` attempts that took `elapsed` so far,
    /// or `None` when there are no attempts or no budget left.
    pub fn next(&self, made: u32, elapsed: Duration, random: f64) -> Option<Duration> {
        if made >= self.max_attempts {
            return None;
        }
        let wait = self.delay(made, random);
        (elapsed + wait < self.budget).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_are_jittered_under_a_doubling_bound_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 0.0), ms(0));
        assert_eq!(p.delay(1, 0.5), ms(50));
        assert_eq!(p.delay(2, 0.5), ms(100));
        assert_eq!(p.delay(3, 0.5), ms(200));
        assert_eq!(p.delay(10, 0.5), ms(1000), "capped at 2 s");
        assert_eq!(p.delay(u32::MAX, 0.999_999), p.cap.mul_f64(0.999_999));
    }

    #[test]
    fn retries_stop_at_the_attempts_or_the_budget() {
        let p = RetryPolicy::default();
        assert_eq!(p.next(1, ms(10), 0.5), Some(ms(50)));
        assert_eq!(p.next(2, ms(10), 0.5), Some(ms(100)));
        assert_eq!(p.next(3, ms(10), 0.5), None, "three attempts in all");
        assert_eq!(
            p.next(1, ms(7_990), 0.5),
            None,
            "no budget left for the wait"
        );
    }
}

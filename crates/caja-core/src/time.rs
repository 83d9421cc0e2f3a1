//! Timestamps as caja stores and shows them: RFC 3339, UTC, microsecond precision, fixed
//! width. Fixed width makes the stored text sort in time order on both engines, so range
//! scans and comparisons need no engine-specific date type.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use crate::DomainError;

pub type Timestamp = DateTime<Utc>;

/// The one source of "now". Code that decides by time asks a clock it was given, so tests
/// move time forward instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now()
    }
}

/// The wall clock plus an offset that only grows: time keeps flowing (so timestamps
/// still order events), and a test jumps past a deadline with [`MovableClock::advance`].
#[derive(Debug, Default)]
pub struct MovableClock {
    offset_micros: AtomicI64,
}

impl MovableClock {
    pub fn advance(&self, by: chrono::Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX).max(0);
        self.offset_micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for MovableClock {
    fn now(&self) -> Timestamp {
        let offset = chrono::Duration::microseconds(self.offset_micros.load(Ordering::SeqCst));
        truncate(Utc::now())
            .checked_add_signed(offset)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The current time truncated to what storage keeps, so a value read back equals the value
/// written.
pub fn now() -> Timestamp {
    truncate(Utc::now())
}

pub fn truncate(t: Timestamp) -> Timestamp {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// `2026-01-01T00:00:00.000000Z`. Written digit by digit for years 0–9999 (every row of a
/// batch stamps a few of these, and chrono's general formatter cost 2.5% of a checkout's
/// instructions); chrono writes the rest.
pub fn format(t: &Timestamp) -> String {
    let date = t.date_naive();
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return t.to_rfc3339_opts(SecondsFormat::Micros, true);
    }
    let time = t.time();
    let micros = time.nanosecond() / 1_000;
    // A leap second (nanosecond ≥ 1e9) is shown as chrono shows it: second 60.
    let (second, micros) = if micros >= 1_000_000 {
        (60, micros - 1_000_000)
    } else {
        (time.second(), micros)
    };
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, value: u32, width: usize| {
        let mut value = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, date.month(), 2);
    put(8, date.day(), 2);
    put(11, time.hour(), 2);
    put(14, time.minute(), 2);
    put(17, second, 2);
    put(20, micros, 6);
    String::from_utf8(text.to_vec()).expect("digits and separators are ASCII")
}

pub fn parse(field: &'static str, s: &str) -> Result<Timestamp, DomainError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DomainError::invalid(field, format!("not an RFC 3339 timestamp: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_timestamps_round_trip_and_sort_as_text() {
        let a = now();
        let b = a + chrono::Duration::microseconds(1);
        assert_eq!(parse("t", &format(&a)).unwrap(), a);
        assert!(format(&a) < format(&b));
        assert_eq!(format(&a).len(), "2026-01-01T00:00:00.000000Z".len());
    }

    #[test]
    fn formatting_writes_what_chrono_writes() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut samples: Vec<Timestamp> = (0..10_000)
            .map(|_| {
                // Any microsecond from year 0 to 9999.
                let micros = (next() % 315_537_897_600_000_000) as i64 - 62_167_219_200_000_000;
                DateTime::from_timestamp_micros(micros).unwrap()
            })
            .collect();
        samples.push(DateTime::from_timestamp_micros(0).unwrap());
        samples.push(DateTime::from_timestamp(1_483_228_799, 1_999_999_000).unwrap());
        samples.push(DateTime::from_timestamp(253_402_300_800, 0).unwrap()); // year 10000
        for t in samples {
            assert_eq!(
                format(&t),
                t.to_rfc3339_opts(SecondsFormat::Micros, true),
                "{t:?}"
            );
        }
    }

    #[test]
    fn a_movable_clock_jumps_forward_and_keeps_flowing() {
        let clock = MovableClock::default();
        let before = clock.now();
        clock.advance(chrono::Duration::hours(1));
        let after = clock.now();
        assert!(after - before >= chrono::Duration::hours(1));
        assert!(after - before < chrono::Duration::hours(2));
    }

    #[test]
    fn a_bad_timestamp_names_its_field() {
        let err = parse("created_at", "yesterday").unwrap_err();
        assert!(matches!(
            err,
            DomainError::InvalidField {
                field: "created_at",
                ..
            }
        ));
    }
}

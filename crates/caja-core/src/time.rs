//! Timestamps as caja stores and shows them: RFC 3339, UTC, microsecond precision, fixed
//! width. Fixed width makes the stored text sort in time order on both engines, so range
//! scans and comparisons need no engine-specific date type.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::DomainError;

pub type Timestamp = DateTime<Utc>;

/// The current time truncated to what storage keeps, so a value read back equals the value
/// written.
pub fn now() -> Timestamp {
    truncate(Utc::now())
}

pub fn truncate(t: Timestamp) -> Timestamp {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

pub fn format(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
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

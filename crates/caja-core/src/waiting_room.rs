//! The waiting room of an event: a fair line in front of its holds.
//!
//! Everyone who joins before `opens_at` draws a uniformly random rank; at opening the line
//! is those ranks in order (a random permutation: arriving first gains nothing). Whoever
//! joins later stands at the end, first come first served. The line moves at
//! `admit_per_minute`: the ticket `i` places from the front is admitted at
//! `opens_at + i × interval`, and a later joiner at the later of now and one interval after
//! the one before. Admission is therefore a function of time, the same on every replica,
//! and never faster than the rate. An admitted ticket gets a signed token that lets its
//! client hold places until `admission_ttl` runs out.

use chrono::Duration;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{EventId, TicketId};
use crate::time::Timestamp;
use crate::DomainError;

type HmacSha256 = Hmac<Sha256>;

/// A waiting room's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomConfig {
    pub admit_per_minute: i64,
    /// Most tickets waiting at once; joins beyond are refused (503 `queue-full`).
    pub max_queue: i64,
    /// How long an admission lasts.
    pub admission_ttl: Duration,
    pub opens_at: Timestamp,
}

impl RoomConfig {
    pub fn check(self) -> Result<Self, DomainError> {
        if !(1..=1_000_000).contains(&self.admit_per_minute) {
            return Err(DomainError::invalid(
                "waiting_room.admit_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if !(1..=10_000_000).contains(&self.max_queue) {
            return Err(DomainError::invalid(
                "waiting_room.max_queue",
                "must be between 1 and 10000000",
            ));
        }
        let ttl = self.admission_ttl.num_seconds();
        if !(10..=24 * 3600).contains(&ttl) {
            return Err(DomainError::invalid(
                "waiting_room.admission_ttl",
                "must be between 10 and 86400 seconds",
            ));
        }
        Ok(self)
    }

    /// The time between two admissions.
    pub fn interval(&self) -> Duration {
        Duration::microseconds(60_000_000 / self.admit_per_minute.max(1))
    }
}

/// A room's state: its settings, how many joined before opening, and when the last ticket
/// joined after opening is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub event_id: EventId,
    pub config: RoomConfig,
    pub pre_open: i64,
    pub last_admit_at: Option<Timestamp>,
    /// Whether the pre-opening tickets have their places yet (done once, at opening).
    pub drawn: bool,
    pub version: crate::product::Version,
}

/// One client's place in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTicket {
    pub id: TicketId,
    pub event_id: EventId,
    /// The client's own reference: one ticket per reference.
    pub client_ref: String,
    /// The draw of a ticket that joined before opening.
    pub rank: Option<i64>,
    /// Its place in the line once the room is drawn (0 is first).
    pub place: Option<i64>,
    /// When it is admitted: set at joining after opening, and for a drawn ticket once
    /// the line is drawn (computed when read).
    pub admit_at: Option<Timestamp>,
    /// The hold its admission was used for.
    pub hold_id: Option<crate::ids::HoldId>,
    pub joined_at: Timestamp,
}

/// A client reference: 1–100 visible ASCII characters.
pub fn client_ref(raw: &str) -> Result<String, DomainError> {
    if raw.is_empty() || raw.len() > 100 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::invalid(
            "client_ref",
            "must be 1 to 100 visible ASCII characters",
        ));
    }
    Ok(raw.to_owned())
}

/// Where a new ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Joined before opening: its place is drawn by this rank.
    Drawn { rank: i64 },
    /// Joined after opening: admitted at this time.
    InLine { admit_at: Timestamp },
}

/// The line is full: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub retry_after: Duration,
}

impl Room {
    /// When the last pre-opening ticket is admitted, if any joined before opening.
    fn last_drawn(&self) -> Option<Timestamp> {
        (self.pre_open > 0)
            .then(|| self.config.opens_at + self.config.interval() * (self.pre_open - 1) as i32)
    }

    /// The admission time of the line's last ticket.
    fn tail(&self) -> Option<Timestamp> {
        match (self.last_admit_at, self.last_drawn()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// How many tickets are waiting at `now`.
    pub fn waiting(&self, now: Timestamp) -> i64 {
        if now < self.config.opens_at {
            return self.pre_open;
        }
        match self.tail() {
            Some(tail) if tail > now => intervals_until(&self.config, now, tail),
            _ => 0,
        }
    }

    /// Places a new ticket, or refuses it when the line is full. `random` is a uniform draw.
    pub fn join(&mut self, now: Timestamp, random: u64) -> Result<Placement, QueueFull> {
        if self.waiting(now) >= self.config.max_queue {
            // Room frees up as the line moves: one admission from now.
            let retry_after = if now < self.config.opens_at {
                (self.config.opens_at - now).max(self.config.interval())
            } else {
                self.config.interval()
            };
            return Err(QueueFull { retry_after });
        }
        // Once drawn, the pre-queue is closed: a late clock still joins at the end.
        if now < self.config.opens_at && !self.drawn {
            self.pre_open += 1;
            return Ok(Placement::Drawn {
                rank: (random >> 2) as i64,
            });
        }
        let admit_at = match self.tail() {
            Some(tail) => (tail + self.config.interval()).max(now),
            None => now,
        };
        self.last_admit_at = Some(admit_at);
        Ok(Placement::InLine { admit_at })
    }

    /// When the pre-opening ticket with `ahead` drawn tickets before it is admitted.
    pub fn drawn_admit_at(&self, ahead: i64) -> Timestamp {
        self.config.opens_at + self.config.interval() * ahead.clamp(0, i32::MAX as i64) as i32
    }
}

/// A ticket's standing at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Before opening: the line is not drawn yet.
    Drawing,
    Waiting {
        position: i64,
        admit_at: Timestamp,
    },
    Admitted {
        until: Timestamp,
    },
    Expired,
}

/// How many admissions, one interval apart and the last at `until`, fall after `now`: the
/// tickets waiting up to and including the one admitted at `until`.
fn intervals_until(config: &RoomConfig, now: Timestamp, until: Timestamp) -> i64 {
    let gap = (until - now).num_microseconds().unwrap_or(i64::MAX);
    let step = config.interval().num_microseconds().unwrap_or(1).max(1);
    gap.saturating_add(step - 1) / step
}

pub fn standing(config: &RoomConfig, admit_at: Option<Timestamp>, now: Timestamp) -> Standing {
    let Some(admit_at) = admit_at.filter(|_| now >= config.opens_at) else {
        return Standing::Drawing;
    };
    if now < admit_at {
        return Standing::Waiting {
            position: intervals_until(config, now, admit_at),
            admit_at,
        };
    }
    let until = admit_at + config.admission_ttl;
    if now < until {
        Standing::Admitted { until }
    } else {
        Standing::Expired
    }
}

fn mac(
    key: &[u8],
    event: &EventId,
    ticket: &TicketId,
    client_ref: &str,
    expires: i64,
) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(format!("caja-admission-v1|{event}|{ticket}|{client_ref}|{expires}").as_bytes());
    mac
}

/// The admission token of `ticket` for its client: `TICKET.EXPIRES.MAC`.
pub fn admission_token(
    key: &[u8],
    event: &EventId,
    ticket: &TicketId,
    client_ref: &str,
    expires: Timestamp,
) -> String {
    let at = expires.timestamp();
    let tag = mac(key, event, ticket, client_ref, at)
        .finalize()
        .into_bytes();
    format!("{ticket}.{at}.{}", hex::encode(tag))
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an admission token")]
    Malformed,
    #[error("the admission token is not valid for this event and client")]
    Forged,
    #[error("the admission expired")]
    Expired,
}

/// Checks a token for `event` and `client_ref` against any of `keys` (the current key and
/// those it replaced, so rotating does not void admissions in flight). Returns its ticket.
pub fn verify_admission(
    keys: &[Vec<u8>],
    event: &EventId,
    client_ref: &str,
    token: &str,
    now: Timestamp,
) -> Result<TicketId, TokenError> {
    let mut parts = token.split('.');
    let (Some(ticket), Some(expires), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let ticket = TicketId::parse("admission", ticket).map_err(|_| TokenError::Malformed)?;
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
    let genuine = keys.iter().any(|k| {
        mac(k, event, &ticket, client_ref, expires)
            .verify_slice(&tag)
            .is_ok()
    });
    if !genuine {
        return Err(TokenError::Forged);
    }
    if now.timestamp() >= expires {
        return Err(TokenError::Expired);
    }
    Ok(ticket)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::{Rng, SeedableRng};

    use super::*;

    fn t0() -> Timestamp {
        crate::time::parse("t", "2026-12-01T10:00:00Z").unwrap()
    }

    fn room(per_minute: i64, max_queue: i64) -> Room {
        Room {
            event_id: EventId::generate(),
            config: RoomConfig {
                admit_per_minute: per_minute,
                max_queue,
                admission_ttl: Duration::minutes(5),
                opens_at: t0(),
            }
            .check()
            .unwrap(),
            pre_open: 0,
            last_admit_at: None,
            drawn: false,
            version: crate::product::Version(1),
        }
    }

    #[test]
    fn the_draw_at_opening_is_a_permutation_and_later_joiners_queue_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
        for _ in 0..50 {
            let mut r = room(60, 10_000);
            let n = rng.gen_range(1..200);
            let mut ranks = Vec::new();
            for _ in 0..n {
                match r.join(t0() - Duration::minutes(5), rng.gen()).unwrap() {
                    Placement::Drawn { rank } => ranks.push(rank),
                    other => panic!("{other:?}"),
                }
            }
            // Each pre-queue ticket's place is how many drew lower: a permutation of 0..n.
            let places: BTreeSet<usize> = ranks
                .iter()
                .map(|mine| ranks.iter().filter(|r| *r < mine).count())
                .collect();
            assert_eq!(places, (0..n).collect::<BTreeSet<_>>());
            // After opening: first come, first served, one interval apart, after the draw.
            let mut last = r.drawn_admit_at(n as i64 - 1);
            for k in 0..20 {
                let now = t0() + Duration::seconds(k);
                match r.join(now, rng.gen()).unwrap() {
                    Placement::InLine { admit_at } => {
                        assert_eq!(admit_at, (last + Duration::seconds(1)).max(now));
                        last = admit_at;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn admission_never_outruns_the_rate() {
        let mut r = room(120, 1_000_000);
        let mut times = Vec::new();
        // Bursts and lulls after opening.
        for (offset, burst) in [(0, 300), (600, 0), (601, 50), (5_000, 10)] {
            for _ in 0..burst {
                match r.join(t0() + Duration::seconds(offset), 0).unwrap() {
                    Placement::InLine { admit_at } => times.push(admit_at),
                    other => panic!("{other:?}"),
                }
            }
        }
        for w in times.windows(121) {
            assert!(
                w[120] - w[0] >= Duration::minutes(1),
                "no 121 admissions in a minute"
            );
        }
    }

    #[test]
    fn a_full_line_refuses_and_says_when() {
        let mut r = room(60, 3);
        for _ in 0..3 {
            r.join(t0() - Duration::seconds(30), 1).unwrap();
        }
        let full = r.join(t0() - Duration::seconds(30), 1).unwrap_err();
        assert_eq!(full.retry_after, Duration::seconds(30));
        // Once the line moves, there is room again.
        assert_eq!(r.waiting(t0() + Duration::seconds(1)), 1);
        assert!(r.join(t0() + Duration::seconds(1), 1).is_ok());
    }

    #[test]
    fn standing_moves_from_waiting_to_admitted_to_expired() {
        let config = room(60, 10).config;
        let at = t0() + Duration::seconds(10);
        assert_eq!(
            standing(&config, Some(at), t0() - Duration::seconds(1)),
            Standing::Drawing
        );
        assert_eq!(
            standing(&config, Some(at), t0()),
            Standing::Waiting {
                position: 10,
                admit_at: at
            }
        );
        assert_eq!(
            standing(&config, Some(at), at),
            Standing::Admitted {
                until: at + Duration::minutes(5)
            }
        );
        assert_eq!(
            standing(&config, Some(at), at + Duration::minutes(5)),
            Standing::Expired
        );
    }

    #[test]
    fn tokens_hold_for_their_event_client_and_time_only() {
        let event = EventId::generate();
        let ticket = TicketId::generate();
        let keys = vec![b"new key".to_vec(), b"old key".to_vec()];
        let exp = t0() + Duration::minutes(5);
        let token = admission_token(b"old key", &event, &ticket, "client-1", exp);
        assert_eq!(
            verify_admission(&keys, &event, "client-1", &token, t0()),
            Ok(ticket.clone())
        );
        assert_eq!(
            verify_admission(&keys, &event, "client-2", &token, t0()),
            Err(TokenError::Forged),
            "another client"
        );
        assert_eq!(
            verify_admission(&keys, &EventId::generate(), "client-1", &token, t0()),
            Err(TokenError::Forged),
            "another event"
        );
        assert_eq!(
            verify_admission(&keys, &event, "client-1", &token, exp),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_admission(&[b"other".to_vec()], &event, "client-1", &token, t0()),
            Err(TokenError::Forged)
        );
        let tampered = token.replace(
            &format!(".{}.", exp.timestamp()),
            &format!(".{}.", exp.timestamp() + 3600),
        );
        assert_eq!(
            verify_admission(&keys, &event, "client-1", &tampered, t0()),
            Err(TokenError::Forged)
        );
        assert_eq!(
            verify_admission(&keys, &event, "client-1", "garbage", t0()),
            Err(TokenError::Malformed)
        );
    }
}

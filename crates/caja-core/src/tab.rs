//! Tabs: a coworking session or a table's check, open for hours, that collects items as it
//! goes and is closed into one order. The time charge is computed here, from the tab's
//! clock periods and its rounding rule, so every till and `caja check` bill the same minutes.
//!
//! Time is measured between instants (UTC), never on a wall clock: a session that crosses
//! midnight or a daylight-saving change is billed for the minutes that actually passed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::{OrderId, ProductId, TabId, TabItemId};
use crate::money::Currency;
use crate::order::{Customer, OrderLine, MAX_ORDER_TOTAL};
use crate::product::Version;
use crate::time::Timestamp;
use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TabStatus {
    Open,
    Closed,
    Void,
}

impl TabStatus {
    pub const ALL: [TabStatus; 3] = [TabStatus::Open, TabStatus::Closed, TabStatus::Void];

    pub fn as_str(self) -> &'static str {
        match self {
            TabStatus::Open => "open",
            TabStatus::Closed => "closed",
            TabStatus::Void => "void",
        }
    }
}

impl fmt::Display for TabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TabStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TabStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::invalid("status", "must be one of open, closed, void"))
    }
}

/// What can be done to a tab, for refusals that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabAction {
    AddItem,
    RemoveItem,
    Pause,
    Resume,
    Close,
    Void,
}

impl TabAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TabAction::AddItem => "add an item to",
            TabAction::RemoveItem => "remove an item from",
            TabAction::Pause => "pause",
            TabAction::Resume => "resume",
            TabAction::Close => "close",
            TabAction::Void => "void",
        }
    }
}

/// How the minutes of a session are billed.
///
/// A stay no longer than `grace_minutes` is free. Past that, the minutes beyond the grace
/// are rounded up to whole `unit_minutes`, and at least `minimum_minutes` are billed. So with
/// units of 15, a minimum of 60 and a grace of 5: 4 minutes bill 0, 30 bill 60, 64 bill 60
/// (59 past the grace, rounded up to 60), 66 bill 75.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    pub unit_minutes: i64,
    pub minimum_minutes: i64,
    pub grace_minutes: i64,
}

/// The most minutes any rounding setting may name: a week.
pub const MAX_ROUNDING_MINUTES: i64 = 7 * 24 * 60;

impl Rounding {
    pub fn parse(unit: i64, minimum: i64, grace: i64) -> Result<Self, DomainError> {
        if !(1..=MAX_ROUNDING_MINUTES).contains(&unit) {
            return Err(DomainError::invalid(
                "rounding.unit_minutes",
                format!("must be between 1 and {MAX_ROUNDING_MINUTES}"),
            ));
        }
        for (field, v) in [
            ("rounding.minimum_minutes", minimum),
            ("rounding.grace_minutes", grace),
        ] {
            if !(0..=MAX_ROUNDING_MINUTES).contains(&v) {
                return Err(DomainError::invalid(
                    field,
                    format!("must be between 0 and {MAX_ROUNDING_MINUTES}"),
                ));
            }
        }
        Ok(Self {
            unit_minutes: unit,
            minimum_minutes: minimum,
            grace_minutes: grace,
        })
    }

    /// Minutes billed for a stay of `seconds`.
    pub fn billed_minutes(self, seconds: i64) -> i64 {
        let seconds = seconds.max(0);
        let grace = self.grace_minutes * 60;
        if seconds <= grace {
            return 0;
        }
        let unit = self.unit_minutes * 60;
        let units = (seconds - grace + unit - 1) / unit;
        (units * self.unit_minutes).max(self.minimum_minutes)
    }
}

impl Default for Rounding {
    /// By the started minute, no minimum, no grace.
    fn default() -> Self {
        Self {
            unit_minutes: 1,
            minimum_minutes: 0,
            grace_minutes: 0,
        }
    }
}

/// The amount for `minutes` at `rate_per_hour`, to the minor unit, half rounded up; `None`
/// past [`MAX_ORDER_TOTAL`].
pub fn time_amount(rate_per_hour: i64, minutes: i64) -> Option<i64> {
    let tenfold = i128::from(rate_per_hour) * i128::from(minutes);
    let amount = (tenfold * 2 + 60) / 120;
    i64::try_from(amount).ok().filter(|a| *a <= MAX_ORDER_TOTAL)
}

/// A stretch of time the tab's clock ran: from opening or resuming until pausing or closing
/// (`None` while it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

impl Period {
    fn seconds(&self, now: Timestamp) -> i64 {
        let end = self.ended_at.unwrap_or(now);
        (end - self.started_at).num_seconds().max(0)
    }
}

/// One item on a tab, priced when it was added (the price the guest was told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabItem {
    pub id: TabItemId,
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub note: Option<String>,
    pub added_at: Timestamp,
    /// Set when the item was taken off the tab and its stock released.
    pub removed_at: Option<Timestamp>,
}

/// The most items a tab may hold at once.
pub const MAX_TAB_ITEMS: usize = 500;

/// The time line of a tab's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeCharge {
    pub minutes: i64,
    pub rate_per_hour: i64,
    pub amount: i64,
}

/// What a tab would cost if closed at a given moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The items, merged per product and price, sorted by product.
    pub lines: Vec<OrderLine>,
    pub time: Option<TimeCharge>,
    pub subtotal: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tab {
    pub id: TabId,
    pub label: String,
    /// The desk or table it occupies; unique among open tabs.
    pub resource: Option<String>,
    pub status: TabStatus,
    /// Per hour, in minor units of `currency`; 0 means no time line.
    pub rate_per_hour: i64,
    pub currency: Currency,
    pub rounding: Rounding,
    pub customer: Option<Customer>,
    pub note: Option<String>,
    pub periods: Vec<Period>,
    pub items: Vec<TabItem>,
    /// The location its items' stock is taken from, and its order's.
    pub location_id: crate::ids::LocationId,
    /// The order it was closed into.
    pub order_id: Option<OrderId>,
    pub void_reason: Option<String>,
    pub version: Version,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// A request to open a tab, parsed.
#[derive(Debug, Clone)]
pub struct NewTab {
    pub label: String,
    pub resource: Option<String>,
    pub rate_per_hour: i64,
    pub currency: Currency,
    pub rounding: Rounding,
    pub customer: Option<Customer>,
    pub note: Option<String>,
    pub location: crate::ids::LocationId,
}

impl Tab {
    pub fn open(new: &NewTab, now: Timestamp) -> Self {
        Self {
            id: TabId::generate(),
            label: new.label.clone(),
            resource: new.resource.clone(),
            status: TabStatus::Open,
            rate_per_hour: new.rate_per_hour,
            currency: new.currency,
            rounding: new.rounding,
            customer: new.customer.clone(),
            note: new.note.clone(),
            periods: vec![Period {
                started_at: now,
                ended_at: None,
            }],
            items: Vec::new(),
            location_id: new.location.clone(),
            order_id: None,
            void_reason: None,
            version: Version(1),
            opened_at: now,
            closed_at: None,
            updated_at: now,
        }
    }

    /// Whether the clock is stopped (an open tab whose last period has ended).
    pub fn paused(&self) -> bool {
        self.status == TabStatus::Open && self.periods.last().is_none_or(|p| p.ended_at.is_some())
    }

    /// Seconds the clock has run up to `now`.
    pub fn seconds(&self, now: Timestamp) -> i64 {
        self.periods.iter().map(|p| p.seconds(now)).sum()
    }

    /// Items still on the tab.
    pub fn live_items(&self) -> impl Iterator<Item = &TabItem> {
        self.items.iter().filter(|i| i.removed_at.is_none())
    }

    /// What closing at `now` would bill, or `None` if it would pass [`MAX_ORDER_TOTAL`].
    pub fn due(&self, now: Timestamp) -> Option<Due> {
        let mut merged: BTreeMap<(&ProductId, i64), OrderLine> = BTreeMap::new();
        for item in self.live_items() {
            let line = merged
                .entry((&item.product_id, item.unit_price))
                .or_insert_with(|| OrderLine {
                    product_id: item.product_id.clone(),
                    sku: item.sku.clone(),
                    name: item.name.clone(),
                    quantity: 0,
                    unit_price: item.unit_price,
                    line_total: 0,
                });
            line.quantity = line.quantity.checked_add(item.quantity)?;
            line.line_total = line.unit_price.checked_mul(line.quantity)?;
        }
        let lines: Vec<OrderLine> = merged.into_values().collect();
        let time = if self.rate_per_hour > 0 {
            let minutes = self.rounding.billed_minutes(self.seconds(now));
            Some(TimeCharge {
                minutes,
                rate_per_hour: self.rate_per_hour,
                amount: time_amount(self.rate_per_hour, minutes)?,
            })
        } else {
            None
        };
        let mut subtotal = time.map_or(0, |t| t.amount);
        for l in &lines {
            subtotal = subtotal.checked_add(l.line_total)?;
        }
        (subtotal <= MAX_ORDER_TOTAL).then_some(Due {
            lines,
            time,
            subtotal,
        })
    }
}

/// A rate as received: within the price range, in the store currency.
pub fn parse_rate(amount: i64, currency: &str, store: Currency) -> Result<i64, DomainError> {
    Ok(crate::money::Money::parse_price("rate", amount, currency, store)?.amount)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::money::MAX_AMOUNT;

    fn r(unit: i64, minimum: i64, grace: i64) -> Rounding {
        Rounding::parse(unit, minimum, grace).unwrap()
    }

    #[test]
    fn minutes_are_billed_by_the_rounding_rule() {
        // (rule, seconds stayed, minutes billed)
        let cases = [
            (r(1, 0, 0), 0, 0),
            (r(1, 0, 0), 1, 1),
            (r(1, 0, 0), 60, 1),
            (r(1, 0, 0), 61, 2),
            (r(15, 60, 5), 4 * 60, 0),
            (r(15, 60, 5), 5 * 60, 0),
            (r(15, 60, 5), 5 * 60 + 1, 60),
            (r(15, 60, 5), 30 * 60, 60),
            (r(15, 60, 5), 64 * 60, 60),
            (r(15, 60, 5), 65 * 60, 60),
            (r(15, 60, 5), 66 * 60, 75),
            (r(30, 0, 0), 31 * 60, 60),
            (r(60, 0, 10), 70 * 60, 60),
            (r(60, 0, 10), 70 * 60 + 1, 120),
        ];
        for (rule, seconds, billed) in cases {
            assert_eq!(rule.billed_minutes(seconds), billed, "{rule:?} {seconds}s");
        }
    }

    #[test]
    fn amounts_are_exact_to_the_minor_unit_half_up() {
        assert_eq!(time_amount(6000, 60), Some(6000));
        assert_eq!(time_amount(6000, 95), Some(9500));
        // 100 per hour for 25 minutes is 41.67: 42.
        assert_eq!(time_amount(100, 25), Some(42));
        // 1 per hour for 30 minutes is exactly half: rounded up.
        assert_eq!(time_amount(1, 30), Some(1));
        assert_eq!(time_amount(1, 29), Some(0));
        assert_eq!(time_amount(MAX_AMOUNT, MAX_ROUNDING_MINUTES * 1000), None);
    }

    #[test]
    fn bad_rounding_is_refused() {
        assert!(Rounding::parse(0, 0, 0).is_err());
        assert!(Rounding::parse(1, -1, 0).is_err());
        assert!(Rounding::parse(1, 0, MAX_ROUNDING_MINUTES + 1).is_err());
    }

    fn tab(rate: i64, rounding: Rounding, opened: Timestamp) -> Tab {
        Tab::open(
            &NewTab {
                label: "Desk 3".into(),
                resource: Some("desk-3".into()),
                rate_per_hour: rate,
                currency: Currency::parse("c", "MXN").unwrap(),
                rounding,
                customer: None,
                note: None,
                location: crate::ids::LocationId::main(),
            },
            opened,
        )
    }

    #[test]
    fn paused_time_is_not_billed_and_midnight_is_just_a_minute() {
        let start = Utc.with_ymd_and_hms(2026, 3, 7, 23, 30, 0).unwrap();
        let mut t = tab(6000, Rounding::default(), start);
        // Runs 20 minutes, pauses 40, runs 25 more across midnight.
        t.periods[0].ended_at = Some(start + Duration::minutes(20));
        t.periods.push(Period {
            started_at: start + Duration::minutes(60),
            ended_at: None,
        });
        let now = start + Duration::minutes(85);
        assert_eq!(t.seconds(now), 45 * 60);
        let due = t.due(now).unwrap();
        assert_eq!(due.time.unwrap().minutes, 45);
        assert_eq!(due.time.unwrap().amount, 4500);
        assert_eq!(due.subtotal, 4500);
    }

    #[test]
    fn items_merge_per_product_and_price_and_removed_ones_are_not_billed() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut t = tab(0, Rounding::default(), now);
        let p = ProductId::generate();
        let item = |q, price, removed: bool| TabItem {
            id: TabItemId::generate(),
            product_id: p.clone(),
            sku: "COF".into(),
            name: "Coffee".into(),
            quantity: q,
            unit_price: price,
            note: None,
            added_at: now,
            removed_at: removed.then_some(now),
        };
        t.items = vec![
            item(1, 3000, false),
            item(2, 3000, false),
            item(5, 3000, true),
            item(1, 3500, false),
        ];
        let due = t.due(now + Duration::hours(3)).unwrap();
        assert_eq!(due.time, None);
        assert_eq!(due.lines.len(), 2);
        assert_eq!((due.lines[0].quantity, due.lines[0].line_total), (3, 9000));
        assert_eq!((due.lines[1].quantity, due.lines[1].line_total), (1, 3500));
        assert_eq!(due.subtotal, 12_500);
    }

    #[test]
    fn a_paused_tab_says_so() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut t = tab(100, Rounding::default(), now);
        assert!(!t.paused());
        t.periods[0].ended_at = Some(now);
        assert!(t.paused());
    }
}

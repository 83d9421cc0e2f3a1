//! Locations: the branches, stalls and stockrooms stock is kept and sold from, the transfers
//! that move stock between them, and the hand-overs that move an order.
//!
//! A product's `stock` is the total of what its locations can sell; each location's share
//! is kept beside it, and the ledger names the location of every movement, so the books
//! balance per location and in total. Stock in transit between two locations is counted at
//! neither: it left one and has not reached the other.

use std::collections::BTreeMap;

use crate::ids::{LocationId, ProductId, TransferId};
use crate::product::Version;
use crate::time::Timestamp;
use crate::DomainError;

/// A location's short code, as people type it at a till or in a URL: 1–32 letters, digits,
/// `-` and `_`. Unique among locations, case kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocationCode(String);

impl LocationCode {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.len() > 32 {
            return Err(DomainError::invalid("code", "must be 1 to 32 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(DomainError::invalid(
                "code",
                "may hold only letters, digits, `-` and `_`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A location's display name: 1–200 characters after trimming, no control characters.
pub fn parse_name(s: &str) -> Result<String, DomainError> {
    crate::text::optional("name", Some(s), 200)?
        .ok_or_else(|| DomainError::invalid("name", "must be 1 to 200 characters"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: LocationId,
    pub code: LocationCode,
    pub name: String,
    pub version: Version,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Location {
    /// Whether this is the location all stock belonged to before there were others.
    pub fn is_default(&self) -> bool {
        self.id.is_main()
    }
}

#[derive(Debug, Clone)]
pub struct NewLocation {
    pub code: LocationCode,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct LocationPatch {
    pub code: Option<LocationCode>,
    pub name: Option<String>,
}

/// How much of a product each location can sell. A location with none is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockByLocation(BTreeMap<LocationId, i64>);

impl StockByLocation {
    /// All of `stock` at the main location (a product created before there were
    /// locations, or created with its stock where caja keeps it by default).
    pub fn at_main(stock: i64) -> Self {
        let mut map = BTreeMap::new();
        if stock != 0 {
            map.insert(LocationId::main(), stock);
        }
        Self(map)
    }

    pub fn from_map(map: BTreeMap<LocationId, i64>) -> Self {
        Self(map.into_iter().filter(|(_, n)| *n != 0).collect())
    }

    pub fn at(&self, location: &LocationId) -> i64 {
        self.0.get(location).copied().unwrap_or(0)
    }

    /// Moves `delta` at `location`; `None` (and nothing changed) if it would go below zero.
    pub fn apply(&mut self, location: &LocationId, delta: i64) -> Option<i64> {
        let after = crate::ledger::apply(self.at(location), delta)?;
        if after == 0 {
            self.0.remove(location);
        } else {
            self.0.insert(location.clone(), after);
        }
        Some(after)
    }

    pub fn total(&self) -> i64 {
        self.0.values().sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LocationId, i64)> {
        self.0.iter().map(|(l, n)| (l, *n))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStatus {
    /// Out of its source, not yet at its target: sellable at neither.
    InTransit,
    Received,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::InTransit => "in_transit",
            TransferStatus::Received => "received",
        }
    }
}

impl std::str::FromStr for TransferStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in_transit" => Ok(TransferStatus::InTransit),
            "received" => Ok(TransferStatus::Received),
            _ => Err(DomainError::invalid(
                "status",
                "must be in_transit or received",
            )),
        }
    }
}

/// Units of one product sent from one location to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub product_id: ProductId,
    pub from: LocationId,
    pub to: LocationId,
    pub quantity: i64,
    pub note: Option<String>,
    pub status: TransferStatus,
    pub created_at: Timestamp,
    pub received_at: Option<Timestamp>,
}

/// A transfer request, parsed: `quantity` is 1..=1,000,000 and `from` is not `to`.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub product_id: ProductId,
    pub from: LocationId,
    pub to: LocationId,
    pub quantity: i64,
    pub note: Option<String>,
    /// Leave it in transit until it is received, instead of arriving at once.
    pub in_transit: bool,
}

impl NewTransfer {
    /// Checks what a transfer must be whatever the stock: some units, between two places.
    pub fn check(self) -> Result<Self, DomainError> {
        if !(1..=1_000_000).contains(&self.quantity) {
            return Err(DomainError::invalid(
                "quantity",
                "must be 1 to 1000000 units",
            ));
        }
        if self.from == self.to {
            return Err(DomainError::invalid(
                "to",
                "must be another location than `from`",
            ));
        }
        Ok(self)
    }
}

/// Whether a seller whose key is bound to `bound` (none: not bound) may sell stock kept at
/// `at`. The one rule of bound keys, asked by the API for what a request names and by the
/// decisions for what a tab holds.
pub fn may_sell_at(bound: Option<&LocationId>, at: &LocationId) -> bool {
    bound.is_none_or(|b| b == at)
}

/// One move of an order from a location to another, as its history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub from: LocationId,
    pub to: LocationId,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_and_plain() {
        assert!(LocationCode::parse("north-2_B").is_ok());
        for bad in ["", "has space", "ñ", "a/b", &"x".repeat(33)] {
            assert!(LocationCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_required() {
        assert_eq!(parse_name("  Centro ").unwrap(), "Centro");
        assert!(parse_name("  ").is_err());
        assert!(parse_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn stock_per_location_never_goes_below_zero_and_adds_up() {
        let north = LocationId::generate();
        let mut stock = StockByLocation::at_main(5);
        assert_eq!(stock.apply(&north, -1), None);
        assert_eq!(stock.apply(&LocationId::main(), -2), Some(3));
        assert_eq!(stock.apply(&north, 4), Some(4));
        assert_eq!(stock.total(), 7);
        assert_eq!(stock.apply(&north, -4), Some(0));
        assert_eq!(stock.iter().count(), 1, "a location with none is dropped");
        assert_eq!(stock, StockByLocation::at_main(3));
    }

    #[test]
    fn a_transfer_moves_something_somewhere_else() {
        let a = LocationId::generate();
        let b = LocationId::generate();
        let t = |from: &LocationId, to: &LocationId, quantity| NewTransfer {
            product_id: ProductId::generate(),
            from: from.clone(),
            to: to.clone(),
            quantity,
            note: None,
            in_transit: false,
        };
        assert!(t(&a, &b, 3).check().is_ok());
        assert!(t(&a, &a, 3).check().is_err());
        assert!(t(&a, &b, 0).check().is_err());
        assert!(t(&a, &b, 1_000_001).check().is_err());
    }
}

//! Products: what the catalog sells. A product is never deleted, only archived, so every
//! order and ledger row that names it keeps meaning something.

use serde::Serialize;

use crate::ids::ProductId;
use crate::money::Money;
use crate::time::Timestamp;
use crate::DomainError;

/// A stock-keeping unit: 1–64 characters of letters, digits, `-`, `_`, `.` and `/`.
/// Case is kept; uniqueness is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(DomainError::invalid("sku", "must be 1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        {
            return Err(DomainError::invalid(
                "sku",
                "may hold only letters, digits, `-`, `_`, `.` and `/`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's display name: 1–200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(DomainError::invalid("name", "must be 1 to 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not hold control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units on hand. Never negative: the storage layer refuses any movement that would make it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Stock(i64);

impl Stock {
    pub const MAX: i64 = 1_000_000_000;

    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if (0..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid(
                "stock",
                format!("must be between 0 and {}", Self::MAX),
            ))
        }
    }

    /// Stock as stored. Only the floor is a rule of the books; [`Stock::MAX`] bounds what
    /// people may set, but stock released back by a cancellation may pass it, and such a
    /// product must still read.
    pub fn stored(value: i64) -> Result<Self, DomainError> {
        if value >= 0 {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid("stock", "is below zero"))
        }
    }

    pub fn value(self) -> i64 {
        self.0
    }
}

/// A product's version, bumped by every change; its `ETag` is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Version(pub i64);

impl Version {
    /// The strong entity tag for this version, quotes included.
    pub fn etag(self) -> String {
        format!("\"{}\"", self.0)
    }

    /// Reads an `If-Match` value: one strong or weak tag of ours. `None` when the value
    /// cannot be one of our tags (which then matches nothing).
    pub fn from_if_match(value: &str) -> Option<Self> {
        let v = value.trim();
        let v = v.strip_prefix("W/").unwrap_or(v);
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        v.parse().ok().map(Self)
    }
}

/// A product as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub sku: Sku,
    pub name: ProductName,
    pub price: Money,
    /// The total every location can sell: the sum of `locations`.
    pub stock: Stock,
    /// Each location's share of `stock`.
    pub locations: crate::location::StockByLocation,
    pub version: Version,
    pub archived: bool,
    /// A section of this ticketed event: sold only through holds, changed only by its
    /// event.
    pub event_id: Option<crate::ids::EventId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A product to create, already parsed.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    pub price: Money,
    pub stock: Stock,
    /// Where the initial stock is.
    pub location: crate::ids::LocationId,
}

/// A change to a product's describing fields. Stock is not here on purpose: it moves only
/// through the stock ledger.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub sku: Option<Sku>,
    pub name: Option<ProductName>,
    pub price: Option<Money>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        self.sku.is_none() && self.name.is_none() && self.price.is_none()
    }

    /// The product after this patch, one version later.
    pub fn apply(&self, product: &Product, at: Timestamp) -> Product {
        Product {
            sku: self.sku.clone().unwrap_or_else(|| product.sku.clone()),
            name: self.name.clone().unwrap_or_else(|| product.name.clone()),
            price: self.price.unwrap_or(product.price),
            version: Version(product.version.0 + 1),
            updated_at: at,
            ..product.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn product() -> Product {
        let t = crate::time::now();
        Product {
            id: ProductId::generate(),
            sku: Sku::parse("CAFE-1").unwrap(),
            name: ProductName::parse("Café americano").unwrap(),
            price: Money {
                amount: 4550,
                currency: Currency::parse("c", "MXN").unwrap(),
            },
            stock: Stock::parse(10).unwrap(),
            locations: crate::location::StockByLocation::at_main(10),
            version: Version(1),
            archived: false,
            event_id: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn skus_are_short_and_plain() {
        assert!(Sku::parse("TSHIRT-M/blue_2.0").is_ok());
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Té  ").unwrap().as_str(), "Té");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse("a\u{0}b").is_err());
        assert!(ProductName::parse(&"ñ".repeat(200)).is_ok());
        assert!(ProductName::parse(&"ñ".repeat(201)).is_err());
    }

    #[test]
    fn stock_is_never_negative() {
        assert!(Stock::parse(-1).is_err());
        assert_eq!(Stock::parse(0).unwrap().value(), 0);
    }

    #[test]
    fn if_match_accepts_our_tags_only() {
        assert_eq!(Version::from_if_match("\"3\""), Some(Version(3)));
        assert_eq!(Version::from_if_match("W/\"3\""), Some(Version(3)));
        assert_eq!(Version::from_if_match("3"), None);
        assert_eq!(Version::from_if_match("\"abc\""), None);
        assert_eq!(Version(7).etag(), "\"7\"");
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_bumps_the_version() {
        let p = product();
        let later = p.updated_at + chrono::Duration::seconds(1);
        let patch = ProductPatch {
            name: Some(ProductName::parse("Latte").unwrap()),
            ..Default::default()
        };
        let q = patch.apply(&p, later);
        assert_eq!(q.name.as_str(), "Latte");
        assert_eq!(q.sku, p.sku);
        assert_eq!(q.stock, p.stock);
        assert_eq!(q.version, Version(2));
        assert_eq!(q.updated_at, later);
        assert_eq!(q.created_at, p.created_at);
        assert!(ProductPatch::default().is_empty());
    }
}

//! The stock ledger's rules: why stock moves, and that it never goes below zero.

use std::fmt;
use std::str::FromStr;

use crate::ids::{OrderId, ProductId, TabId};
use crate::time::Timestamp;
use crate::DomainError;

/// One ledger row: a movement of one product's stock, with the stock it left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub id: i64,
    pub product_id: ProductId,
    /// Where the units moved.
    pub location_id: crate::ids::LocationId,
    pub delta: i64,
    pub reason: Reason,
    pub note: Option<String>,
    pub order_id: Option<OrderId>,
    /// The tab whose item took or gave back the stock.
    pub tab_id: Option<TabId>,
    /// The box-office hold that took or gave back the stock.
    pub hold_id: Option<crate::ids::HoldId>,
    /// The transfer that sent or received the stock.
    pub transfer_id: Option<crate::ids::TransferId>,
    pub stock_after: i64,
    pub created_at: Timestamp,
}

/// Why a unit of stock moved. The first four are entered by people; the rest are written
/// by caja itself as orders move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Restock,
    Correction,
    Damage,
    Return,
    /// The stock a product was created with.
    Initial,
    Sale,
    /// Stock given back by a cancelled or expired order, or by an item taken off a tab.
    Release,
    /// Stock held by an item on an open tab.
    Tab,
    /// Places held by a box-office hold.
    Hold,
    RefundRestock,
    /// Out of a location, sent to another.
    TransferOut,
    /// Into a location, received from another.
    TransferIn,
    /// An order's stock given back at the location it left, or taken at the one it moved
    /// to.
    Handover,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Restock => "restock",
            Reason::Correction => "correction",
            Reason::Damage => "damage",
            Reason::Return => "return",
            Reason::Initial => "initial",
            Reason::Sale => "sale",
            Reason::Release => "release",
            Reason::Tab => "tab",
            Reason::Hold => "hold",
            Reason::RefundRestock => "refund_restock",
            Reason::TransferOut => "transfer_out",
            Reason::TransferIn => "transfer_in",
            Reason::Handover => "handover",
        }
    }

    /// Reasons a person may give to `POST /stock-movements`.
    pub fn parse_manual(s: &str) -> Result<Self, DomainError> {
        match s.parse::<Reason>()? {
            r @ (Reason::Restock | Reason::Correction | Reason::Damage | Reason::Return) => Ok(r),
            _ => Err(Self::manual_error()),
        }
    }

    fn manual_error() -> DomainError {
        DomainError::invalid(
            "reason",
            "must be one of restock, correction, damage, return",
        )
    }
}

impl FromStr for Reason {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "restock" => Reason::Restock,
            "correction" => Reason::Correction,
            "damage" => Reason::Damage,
            "return" => Reason::Return,
            "initial" => Reason::Initial,
            "sale" => Reason::Sale,
            "release" => Reason::Release,
            "tab" => Reason::Tab,
            "refund_restock" => Reason::RefundRestock,
            "hold" => Reason::Hold,
            "transfer_out" => Reason::TransferOut,
            "transfer_in" => Reason::TransferIn,
            "handover" => Reason::Handover,
            _ => return Err(Self::manual_error()),
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manual movement's size: non-zero, at most a million units either way.
pub fn parse_delta(delta: i64) -> Result<i64, DomainError> {
    // `unsigned_abs`: `i64::MIN.abs()` would overflow.
    if delta == 0 || delta.unsigned_abs() > 1_000_000 {
        return Err(DomainError::invalid(
            "delta",
            "must be a non-zero number of units, at most 1000000 either way",
        ));
    }
    Ok(delta)
}

/// Stock after a movement, or `None` if it would go below zero.
pub fn apply(stock: i64, delta: i64) -> Option<i64> {
    stock.checked_add(delta).filter(|s| *s >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_may_give_only_the_manual_reasons() {
        for r in ["restock", "correction", "damage", "return"] {
            assert_eq!(Reason::parse_manual(r).unwrap().as_str(), r);
        }
        for r in [
            "sale",
            "release",
            "refund_restock",
            "initial",
            "tab",
            "theft",
        ] {
            assert!(Reason::parse_manual(r).is_err(), "{r}");
        }
    }

    #[test]
    fn stock_never_goes_below_zero() {
        assert_eq!(apply(5, -5), Some(0));
        assert_eq!(apply(5, -6), None);
        assert_eq!(apply(0, 3), Some(3));
        assert_eq!(apply(i64::MAX, 1), None);
    }

    #[test]
    fn a_movement_moves_something() {
        assert!(parse_delta(0).is_err());
        assert!(parse_delta(1_000_001).is_err());
        assert!(parse_delta(i64::MIN).is_err());
        assert!(parse_delta(i64::MAX).is_err());
        assert_eq!(parse_delta(-3).unwrap(), -3);
    }
}

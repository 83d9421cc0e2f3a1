//! Why a command was refused: each refusal has a stable problem type, which the API shows
//! and the metrics count.

use crate::order::{InvalidTransition, Shortage};
use crate::product::Version;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Some lines name products that do not exist or are archived.
    UnknownProducts(Vec<String>),
    /// Some lines ask for more than is in stock; every short line is listed.
    OutOfStock(Vec<Shortage>),
    /// The order's total would pass [`crate::order::MAX_ORDER_TOTAL`].
    AmountTooLarge {
        max: i64,
    },
    OrderNotFound,
    ProductNotFound,
    InvalidTransition(InvalidTransition),
    /// A payment must be for exactly the total.
    AmountMismatch {
        total: i64,
    },
    /// The product is archived and cannot change.
    Archived,
    /// A manual movement would take stock below zero.
    NotEnoughStock {
        available: i64,
    },
    /// A manual movement would take stock above [`crate::product::Stock::MAX`].
    StockLimit {
        current: i64,
    },
    /// `If-Match` named another version.
    StaleVersion {
        current: Version,
    },
    /// A live product already has this sku.
    DuplicateSku,
}

impl Refusal {
    /// The stable problem type.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnknownProducts(_) => "unknown-product",
            Refusal::OutOfStock(_) | Refusal::NotEnoughStock { .. } => "out-of-stock",
            Refusal::AmountTooLarge { .. } => "amount-too-large",
            Refusal::OrderNotFound | Refusal::ProductNotFound => "not-found",
            Refusal::InvalidTransition(_) => "invalid-transition",
            Refusal::AmountMismatch { .. } => "amount-mismatch",
            Refusal::Archived => "archived",
            Refusal::StockLimit { .. } => "stock-limit",
            Refusal::StaleVersion { .. } => "precondition-failed",
            Refusal::DuplicateSku => "duplicate-sku",
        }
    }
}

//! Money: an integer amount in minor units and an ISO 4217 currency. Never a float.

use std::fmt;

use serde::Serialize;

use crate::DomainError;

/// An ISO 4217 alphabetic code: three ASCII capital letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        let bytes = s.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Self([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(DomainError::invalid(
                field,
                "must be an ISO 4217 code of three capital letters, e.g. MXN",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        // Built only from three ASCII capitals in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A non-negative amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// Prices above this are refused: a trillion minor units leaves every sum of a
/// thousand-line order far from `i64` overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

impl Money {
    /// A price as received: amount within range, currency the store's.
    pub fn parse_price(
        field: &'static str,
        amount: i64,
        currency: &str,
        store: Currency,
    ) -> Result<Self, DomainError> {
        if !(0..=MAX_AMOUNT).contains(&amount) {
            return Err(DomainError::invalid(
                field,
                format!("amount must be between 0 and {MAX_AMOUNT} minor units"),
            ));
        }
        let currency = Currency::parse(field, currency)?;
        if currency != store {
            return Err(DomainError::CurrencyMismatch {
                expected: store.to_string(),
                got: currency.to_string(),
            });
        }
        Ok(Self { amount, currency })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mxn() -> Currency {
        Currency::parse("c", "MXN").unwrap()
    }

    #[test]
    fn currencies_are_three_capital_letters() {
        assert!(Currency::parse("c", "MXN").is_ok());
        for bad in ["mxn", "MX", "MXNN", "", "M1N", "ÑXN"] {
            assert!(Currency::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_price_in_another_currency_is_refused() {
        let err = Money::parse_price("price", 100, "USD", mxn()).unwrap_err();
        assert!(matches!(err, DomainError::CurrencyMismatch { .. }));
    }

    #[test]
    fn negative_or_huge_amounts_are_refused() {
        assert!(Money::parse_price("price", -1, "MXN", mxn()).is_err());
        assert!(Money::parse_price("price", MAX_AMOUNT + 1, "MXN", mxn()).is_err());
        assert_eq!(
            Money::parse_price("price", 0, "MXN", mxn()).unwrap().amount,
            0
        );
    }
}

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

    /// Digits after the decimal point in the currency's major unit (ISO 4217): what a
    /// provider that speaks decimal amounts needs to convert ours.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// `amount` minor units as a decimal in the major unit (4550 MXN → 45.5).
    pub fn to_decimal(&self, amount: i64) -> f64 {
        amount as f64 / 10_f64.powi(self.minor_digits() as i32)
    }

    /// A decimal amount in the major unit as minor units, if it is a whole number of them
    /// within [`MAX_AMOUNT`] (45.5 MXN → 4550; 45.555 MXN → `None`).
    pub fn from_decimal(&self, decimal: f64) -> Option<i64> {
        let scaled = decimal * 10_f64.powi(self.minor_digits() as i32);
        let rounded = scaled.round();
        ((scaled - rounded).abs() < 1e-6 && (0.0..=MAX_AMOUNT as f64).contains(&rounded))
            .then_some(rounded as i64)
    }
}

#[cfg(test)]
mod decimal_tests {
    use super::Currency;

    #[test]
    fn decimals_convert_both_ways_by_the_currencys_digits() {
        let mxn = Currency::parse("c", "MXN").unwrap();
        let clp = Currency::parse("c", "CLP").unwrap();
        assert_eq!(mxn.to_decimal(4550), 45.5);
        assert_eq!(mxn.from_decimal(45.5), Some(4550));
        assert_eq!(mxn.from_decimal(0.1 + 0.2), Some(30));
        assert_eq!(mxn.from_decimal(45.555), None);
        assert_eq!(mxn.from_decimal(-1.0), None);
        assert_eq!(clp.to_decimal(4550), 4550.0);
        assert_eq!(clp.from_decimal(4550.0), Some(4550));
        for amount in [0, 1, 99, 4550, 123_456_789, 999_999_999_999] {
            assert_eq!(mxn.from_decimal(mxn.to_decimal(amount)), Some(amount));
        }
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

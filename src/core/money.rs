//! Money as integer minor units plus an ISO-4217 currency code.
//!
//! Floating point never touches amounts: every price, fee and refund is an
//! `i64` count of the currency's minor unit (cents, bani, pence). All
//! arithmetic is checked, and combining two currencies is an error rather
//! than a silent conversion.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;

/// A three-letter currency code, stored inline so `Money` stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const GBP: Currency = Currency(*b"GBP");
    pub const RON: Currency = Currency(*b"RON");
    pub const USD: Currency = Currency(*b"USD");

    /// Parses a code, upper-casing it; anything but three ASCII letters is rejected.
    pub fn new(code: &str) -> Result<Self, CoreError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CoreError::InvalidCurrency(code.to_string()));
        }
        Ok(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Number of decimal digits of the minor unit, used only for display.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_string()
    }
}

/// An amount of money in integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Money {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    pub fn is_positive(&self) -> bool {
        self.amount_minor > 0
    }

    fn same_currency(&self, other: &Money) -> Result<(), CoreError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(CoreError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, CoreError> {
        self.same_currency(&other)?;
        let amount = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(CoreError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, CoreError> {
        self.same_currency(&other)?;
        let amount = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(CoreError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, CoreError> {
        let amount = self
            .amount_minor
            .checked_mul(factor)
            .ok_or(CoreError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Negative amounts become zero: "owed" and "refund" are never negative.
    pub fn clamp_non_negative(self) -> Money {
        Money::new(self.amount_minor.max(0), self.currency)
    }

    pub fn min(self, other: Money) -> Result<Money, CoreError> {
        self.same_currency(&other)?;
        Ok(Money::new(
            self.amount_minor.min(other.amount_minor),
            self.currency,
        ))
    }
}

impl fmt::Display for Money {
    /// `EUR 12.50`, using the currency's usual number of decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if digits == 0 {
            return write!(f, "{} {sign}{abs}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{} {sign}{}.{:0width$}",
            self.currency,
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parses_and_rejects() {
        assert_eq!(Currency::new("eur").unwrap(), Currency::EUR);
        assert!(Currency::new("EU").is_err());
        assert!(Currency::new("E1R").is_err());
    }

    #[test]
    fn mixed_currencies_are_an_error() {
        let err = Money::new(1, Currency::EUR)
            .checked_add(Money::new(1, Currency::RON))
            .unwrap_err();
        assert!(matches!(err, CoreError::CurrencyMismatch { .. }));
    }

    #[test]
    fn display_uses_minor_digits() {
        assert_eq!(Money::new(1250, Currency::EUR).to_string(), "EUR 12.50");
        assert_eq!(Money::new(-5, Currency::GBP).to_string(), "GBP -0.05");
        let jpy = Currency::new("JPY").unwrap();
        assert_eq!(Money::new(300, jpy).to_string(), "JPY 300");
    }

    #[test]
    fn serde_round_trip() {
        let m = Money::new(150, Currency::RON);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount_minor":150,"currency":"RON"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1,"currency":"X"}"#).is_err());
    }
}

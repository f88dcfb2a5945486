//! Money: integer minor units plus an ISO 4217 currency.
//!
//! Floats never touch an amount. CodePay speaks decimal strings in major units (`"34.50"` USD,
//! `"20"` JPY); [`Money::from_major_str`] and [`Money::to_major_string`] are the only way across
//! that boundary and both are exact: an amount that would need rounding is an error.

use crate::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An active ISO 4217 currency that has minor units defined (so it can carry a payment).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    inner: iso_currency::Currency,
    exponent: u8,
}

impl Currency {
    /// Looks up an upper-case ISO 4217 alphabetic code (`USD`, `JPY`, `KWD`).
    ///
    /// Codes without minor units (gold, SDR, testing codes) are refused: nothing can be paid in them.
    pub fn from_code(code: &str) -> Result<Self, DomainError> {
        let inner = iso_currency::Currency::from_code(code)
            .ok_or_else(|| DomainError::UnknownCurrency(code.to_owned()))?;
        let exponent = inner
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .ok_or_else(|| DomainError::UnknownCurrency(code.to_owned()))?;
        Ok(Self { inner, exponent })
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.inner.code()
    }

    /// Number of decimal places of the minor unit (USD 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount of money in minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Builds an amount from minor units; negative amounts are refused.
    pub fn new(minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if minor < 0 {
            return Err(DomainError::InvalidAmount {
                amount: minor.to_string(),
                currency: currency.code().to_owned(),
                reason: "must not be negative",
            });
        }
        Ok(Self { minor, currency })
    }

    /// Zero in the given currency.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Amount in minor units (cents for USD, yen for JPY).
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True when the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Sum of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(DomainError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    /// Difference of two amounts of the same currency; an amount below zero is an error.
    pub fn checked_sub(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(DomainError::Overflow)?;
        Money::new(minor, self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<(), DomainError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(DomainError::CurrencyMismatch(
                self.currency.code().to_owned(),
                other.currency.code().to_owned(),
            ))
        }
    }

    /// Parses CodePay's major-unit decimal string exactly (`"34.50"` USD → 3450).
    ///
    /// Accepted: digits, optionally a point and at least one digit. Fewer decimals than the
    /// currency has are fine (`"34.5"`), more are fine only when the extra digits are zeros
    /// (`"1.000"` USD), anything else that would need rounding (`"1.005"` USD) is an error.
    pub fn from_major_str(text: &str, currency: Currency) -> Result<Self, DomainError> {
        let invalid = |reason: &'static str| DomainError::InvalidAmount {
            amount: text.to_owned(),
            currency: currency.code().to_owned(),
            reason,
        };
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("expected a plain decimal number such as 34.50"));
        }
        let frac = frac_part.unwrap_or("");
        if frac_part.is_some() && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid("expected digits after the decimal point"));
        }
        let exp = usize::from(currency.exponent());
        let (kept, extra) = frac.split_at(frac.len().min(exp));
        if extra.bytes().any(|b| b != b'0') {
            return Err(invalid("more decimal places than the currency has"));
        }
        let mut minor: i64 = 0;
        for b in int_part
            .bytes()
            .chain(kept.bytes())
            .chain(std::iter::repeat_n(b'0', exp - kept.len()))
        {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or_else(|| invalid("too large"))?;
        }
        Ok(Money { minor, currency })
    }

    /// Renders the amount as CodePay's major-unit decimal string with exactly the currency's
    /// number of decimals (`3450` USD → `"34.50"`, `20` JPY → `"20"`, `1` KWD → `"0.001"`).
    pub fn to_major_string(&self) -> String {
        let exp = usize::from(self.currency.exponent());
        let digits = self.minor.to_string();
        if exp == 0 {
            return digits;
        }
        let padded = format!("{:0>width$}", digits, width = exp + 1);
        let (int_part, frac_part) = padded.split_at(padded.len() - exp);
        format!("{int_part}.{frac_part}")
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).expect("known currency")
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(cur("USD").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("CLF").exponent(), 4);
        assert!(
            Currency::from_code("XAU").is_err(),
            "no minor unit: not payable"
        );
        assert!(Currency::from_code("usd").is_err());
        assert!(Currency::from_code("ABC").is_err());
    }

    #[test]
    fn major_strings_convert_exactly() {
        assert_eq!(
            Money::from_major_str("34.50", cur("USD")).map(|m| m.minor()),
            Ok(3450)
        );
        assert_eq!(
            Money::from_major_str("34.5", cur("USD")).map(|m| m.minor()),
            Ok(3450)
        );
        assert_eq!(
            Money::from_major_str("20", cur("JPY")).map(|m| m.minor()),
            Ok(20)
        );
        assert_eq!(
            Money::from_major_str("1.000", cur("USD")).map(|m| m.minor()),
            Ok(100)
        );
        assert_eq!(
            Money::from_major_str("0.001", cur("KWD")).map(|m| m.minor()),
            Ok(1)
        );
        for bad in [
            "1.005", "", ".5", "5.", "-1", "+1", "1e3", " 1", "1,00", "NaN", "1.2.3",
        ] {
            assert!(
                Money::from_major_str(bad, cur("USD")).is_err(),
                "{bad:?} must be refused"
            );
        }
        assert!(Money::from_major_str("20.5", cur("JPY")).is_err());
        assert!(Money::from_major_str("99999999999999999999", cur("USD")).is_err());
    }

    #[test]
    fn rendering_pads_to_the_currency_exponent() {
        assert_eq!(
            Money::new(3450, cur("USD")).map(|m| m.to_major_string()),
            Ok("34.50".into())
        );
        assert_eq!(
            Money::new(5, cur("USD")).map(|m| m.to_major_string()),
            Ok("0.05".into())
        );
        assert_eq!(
            Money::new(20, cur("JPY")).map(|m| m.to_major_string()),
            Ok("20".into())
        );
        assert_eq!(
            Money::new(1, cur("KWD")).map(|m| m.to_major_string()),
            Ok("0.001".into())
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let usd = cur("USD");
        let a = Money::new(i64::MAX, usd).expect("valid");
        let one = Money::new(1, usd).expect("valid");
        assert_eq!(a.checked_add(one), Err(DomainError::Overflow));
        assert!(one.checked_sub(a).is_err(), "below zero");
        let jpy = Money::new(1, cur("JPY")).expect("valid");
        assert!(matches!(
            one.checked_add(jpy),
            Err(DomainError::CurrencyMismatch(..))
        ));
        assert!(Money::new(-1, usd).is_err());
    }

    proptest! {
        #[test]
        fn minor_to_major_and_back_is_identity(minor in 0i64..=i64::MAX, code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CLF", "BHD", "KRW"])) {
            let m = Money::new(minor, cur(code)).expect("non-negative");
            let back = Money::from_major_str(&m.to_major_string(), m.currency());
            prop_assert_eq!(back, Ok(m));
        }

        #[test]
        fn extra_nonzero_decimals_are_always_refused(int in 0u32..1_000_000, frac in 1u32..10) {
            // USD has 2 decimals; a non-zero third is not representable.
            let text = format!("{int}.00{frac}");
            prop_assert!(Money::from_major_str(&text, cur("USD")).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,24}") {
            let _ = Money::from_major_str(&text, cur("USD"));
        }
    }
}

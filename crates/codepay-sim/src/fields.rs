//! Reading request fields strictly: types, presence, lengths and formats.

use crate::codes::{ErrorKind, GatewayError};
use domain::{Currency, Money, Wallet};
use serde_json::{Map, Value};

/// A request body, read field by field.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a>(pub &'a Map<String, Value>);

impl<'a> Req<'a> {
    /// A string field; absent, `null` and `""` read as `None` (the signing rule drops them too).
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, GatewayError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ErrorKind::InvalidParameter.with(format!("{key} must be a string"))),
        }
    }

    /// A required string field.
    pub fn req_str(&self, key: &str) -> Result<&'a str, GatewayError> {
        self.opt_str(key)?
            .ok_or_else(|| ErrorKind::MissingParameter.with(key))
    }

    /// A string field of at most `max` characters.
    pub fn opt_str_max(&self, key: &str, max: usize) -> Result<Option<&'a str>, GatewayError> {
        let v = self.opt_str(key)?;
        if v.is_some_and(|s| s.chars().count() > max) {
            return Err(
                ErrorKind::InvalidParameter.with(format!("{key} is longer than {max} characters"))
            );
        }
        Ok(v)
    }

    /// An integer sent as a JSON number or a string of digits.
    pub fn opt_uint(&self, key: &str) -> Result<Option<u64>, GatewayError> {
        let bad = || ErrorKind::InvalidParameter.with(format!("{key} must be a whole number"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map(Some).map_err(|_| bad())
            }
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }
}

/// `merchant_order_no`: ≤32 of `[A-Za-z0-9_\-|*@]`.
pub(crate) fn check_order_no(key: &str, value: &str) -> Result<(), GatewayError> {
    let ok = value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::InvalidParameter
            .with(format!("{key} must be at most 32 of [A-Za-z0-9_-|*@]")))
    }
}

/// The currency of `price_currency`.
pub(crate) fn currency(code: &str) -> Result<Currency, GatewayError> {
    Currency::from_code(code).map_err(|_| ErrorKind::UnsupportedCurrency.with(code))
}

/// A positive amount in major units, exact in its currency's exponent.
pub(crate) fn amount(key: &str, text: &str, currency: Currency) -> Result<Money, GatewayError> {
    let money = Money::from_major_str(text, currency)
        .map_err(|e| ErrorKind::InvalidAmount.with(format!("{key}: {e}")))?;
    if money.is_zero() {
        return Err(ErrorKind::InvalidAmount.with(format!("{key} must be greater than zero")));
    }
    Ok(money)
}

/// A wallet the gateway routes to (case-sensitive `pay_method_id`).
pub(crate) fn pay_method(id: &str) -> Result<Wallet, GatewayError> {
    Wallet::from_pay_method_id(id).map_err(|_| ErrorKind::UnsupportedPayMethod.with(id))
}

/// A `notify_url`: absolute http(s) URL.
pub(crate) fn notify_url(text: &str) -> Result<(), GatewayError> {
    let bad = || ErrorKind::InvalidParameter.with("notify_url must be an absolute http(s) URL");
    let url = url::Url::parse(text).map_err(|_| bad())?;
    if matches!(url.scheme(), "http" | "https") && url.host().is_some() && text.len() <= 512 {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_follow_the_contract() {
        assert!(check_order_no("m", "A-z_0|9*@x").is_ok());
        assert!(check_order_no("m", &"a".repeat(32)).is_ok());
        assert!(check_order_no("m", &"a".repeat(33)).is_err());
        for bad in ["a b", "a/b", "a.b", "é", "a#"] {
            assert!(check_order_no("m", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_follow_the_currency_exponent() {
        let usd = currency("USD").expect("known");
        let jpy = currency("JPY").expect("known");
        assert_eq!(amount("a", "34.50", usd).map(|m| m.minor()), Ok(3450));
        assert!(amount("a", "34.505", usd).is_err());
        assert!(amount("a", "20.5", jpy).is_err());
        assert_eq!(amount("a", "20", jpy).map(|m| m.minor()), Ok(20));
        assert_eq!(amount("a", "0", usd).map_err(|e| e.code), Err("E04103"));
        assert_eq!(currency("usd").map_err(|e| e.code), Err("E04104"));
    }

    #[test]
    fn field_types_are_strict() {
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"a":"x","n":5,"s":"7","e":"","o":{"k":1},"neg":-1}"#)
                .expect("json");
        let r = Req(&body);
        assert_eq!(r.req_str("a"), Ok("x"));
        assert_eq!(r.req_str("e").map_err(|e| e.code), Err("E01001"));
        assert_eq!(r.req_str("n").map_err(|e| e.code), Err("E01002"));
        assert_eq!(r.opt_uint("n"), Ok(Some(5)));
        assert_eq!(r.opt_uint("s"), Ok(Some(7)));
        assert!(r.opt_uint("o").is_err());
        assert!(r.opt_uint("neg").is_err());
        assert!(notify_url("https://shop.example/cb").is_ok());
        assert!(notify_url("ftp://x/").is_err());
        assert!(notify_url("/relative").is_err());
    }
}

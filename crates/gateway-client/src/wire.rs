//! Lenient readers for fields of CodePay's business objects: the contract says what types to expect,
//! the public record says integrators have seen others (numbers as strings and the reverse).

use domain::{Currency, Money, TransStatus};
use serde_json::{Map, Value};

/// A field of a CodePay business object that is missing or cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// A text field; numbers are accepted as their decimal text, null and `""` count as absent.
pub(crate) fn opt_str(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(field, format!("expected a string, got {other}"))),
    }
}

/// A text field that must be present.
pub(crate) fn req_str(map: &Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    opt_str(map, field)?.ok_or_else(|| bad(field, "missing"))
}

/// An integer field; numeric strings are accepted.
pub(crate) fn opt_i64(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<i64>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(field, format!("not an integer: {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(field, format!("not an integer: {s:?}"))),
        Some(other) => Err(bad(field, format!("expected an integer, got {other}"))),
    }
}

/// `trans_status`, required: without it a result cannot be settled.
pub(crate) fn trans_status(map: &Map<String, Value>) -> Result<TransStatus, FieldError> {
    opt_i64(map, "trans_status")?
        .map(TransStatus::from_code)
        .ok_or_else(|| bad("trans_status", "missing"))
}

/// The currency the object states, if it states one.
pub(crate) fn opt_currency(map: &Map<String, Value>) -> Result<Option<Currency>, FieldError> {
    opt_str(map, "price_currency")?
        .map(|code| Currency::from_code(&code).map_err(|e| bad("price_currency", e.to_string())))
        .transpose()
}

/// An amount in major units (decimal string, or a JSON number read through its decimal text, never
/// through a float), converted exactly in `currency`.
pub(crate) fn opt_money(
    map: &Map<String, Value>,
    field: &'static str,
    currency: Currency,
) -> Result<Option<Money>, FieldError> {
    opt_str(map, field)?
        .map(|text| Money::from_major_str(&text, currency).map_err(|e| bad(field, e.to_string())))
        .transpose()
}

/// An amount that only informs (a fee): read like [`opt_money`], but a malformed value, or one
/// without a currency to read it in, is logged and taken as absent, so that it cannot make a
/// whole answer or notification unreadable and leave its order unsettled.
pub(crate) fn lenient_money(
    map: &Map<String, Value>,
    field: &'static str,
    currency: Option<Currency>,
) -> Option<Money> {
    let read = match currency {
        Some(c) => opt_money(map, field, c),
        None => opt_str(map, field).and_then(|v| match v {
            Some(_) => Err(bad(field, "amount without price_currency")),
            None => Ok(None),
        }),
    };
    read.unwrap_or_else(|e| {
        tracing::warn!(field, error = %e.reason, "CodePay sent an unreadable amount; ignored");
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn amounts_are_read_exactly_from_strings_and_numbers() {
        let usd = Currency::from_code("USD").unwrap();
        let jpy = Currency::from_code("JPY").unwrap();
        let m = obj(json!({"a": "34.50", "b": 34.5, "c": "20", "d": "", "e": "1.234"}));
        assert_eq!(opt_money(&m, "a", usd).unwrap().unwrap().minor(), 3450);
        assert_eq!(opt_money(&m, "b", usd).unwrap().unwrap().minor(), 3450);
        assert_eq!(opt_money(&m, "c", jpy).unwrap().unwrap().minor(), 20);
        assert_eq!(opt_money(&m, "d", usd).unwrap(), None);
        assert_eq!(opt_money(&m, "e", usd).unwrap_err().field, "e");
    }

    #[test]
    fn lenient_amounts_are_absent_when_unreadable() {
        let usd = Currency::from_code("USD").unwrap();
        let m = obj(json!({"ok": "0.01", "neg": "-1", "word": "abc", "deep": {"x": 1}}));
        assert_eq!(
            lenient_money(&m, "ok", Some(usd)).map(|m| m.minor()),
            Some(1)
        );
        for field in ["neg", "word", "deep", "absent"] {
            assert_eq!(lenient_money(&m, field, Some(usd)), None, "{field}");
        }
        assert_eq!(
            lenient_money(&m, "ok", None),
            None,
            "no currency to read it in"
        );
    }

    #[test]
    fn status_accepts_number_or_numeric_string() {
        assert_eq!(
            trans_status(&obj(json!({"trans_status": 2}))),
            Ok(TransStatus::Succeeded)
        );
        assert_eq!(
            trans_status(&obj(json!({"trans_status": "0"}))),
            Ok(TransStatus::InProgress)
        );
        assert_eq!(
            trans_status(&obj(json!({"trans_status": 4}))),
            Ok(TransStatus::Unknown(4))
        );
        assert!(trans_status(&obj(json!({}))).is_err());
        assert!(trans_status(&obj(json!({"trans_status": "x"}))).is_err());
    }
}

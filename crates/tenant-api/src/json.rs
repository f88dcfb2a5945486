//! Request bodies: strict JSON parsing where every failure is a 400 with a stable `code` and
//! the offending `param` (a path such as `metadata.order` found with `serde_path_to_error`).

use crate::error::{Error, Result};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;

/// Reads a JSON number that is a whole number as an `i64`: `249` and `249.0` alike, since JSON
/// (and the OpenAPI document's `integer`) does not tell them apart. A fraction or a value
/// beyond 2^53 written with a fraction part is refused too: there a float no longer holds every
/// whole number exactly, and an amount must never be rounded on its way in.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    // 2^53: up to it every whole number has its own f64, so `x.0` is exactly `x`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (-EXACT..=EXACT).contains(&f) => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "invalid type: `{n}` is not a whole number"
        ))),
    }
}

/// A response object as the JSON value that handlers answer and the idempotency store keeps;
/// a failure to encode is a 503, never an empty body.
pub fn value<T: serde::Serialize>(object: &T) -> Result<serde_json::Value> {
    serde_json::to_value(object)
        .map_err(|e| crate::Error::Unavailable(format!("cannot encode the response: {e}")))
}

/// Parses a JSON body into `T` (whose types use `deny_unknown_fields`). The body must be a
/// JSON object: serde would also fill a struct from an array of its fields in order, which no
/// client means and the API does not document.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "invalid_json",
            "the request body must be a JSON object",
            None,
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let ObjectOnly(value) = serde_path_to_error::deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|e| {
        Error::invalid(
            "invalid_json",
            format!("trailing data after the JSON body: {e}"),
            None,
        )
    })?;
    Ok(value)
}

/// A `T` read from a JSON object only (not from an array of its fields).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
            .map(ObjectOnly)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// `#[serde(default, deserialize_with = "crate::json::optional_object")]` for a nested struct
/// field of a request body: `null` or absent is `None`, an object is the struct, and an array is
/// refused as it is for the body itself.
pub fn optional_object<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<ObjectOnly<T>>::deserialize(d).map(|o| o.map(|ObjectOnly(v)| v))
}

fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = inner.to_string();
    let message = text
        .split(" at line ")
        .next()
        .unwrap_or(text.as_str())
        .to_owned();
    let join = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_owned()
        } else if path.ends_with(field) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            Error::invalid("invalid_json", format!("malformed JSON: {text}"), None)
        }
        serde_json::error::Category::Io => Error::invalid("invalid_json", "unreadable body", None),
        serde_json::error::Category::Data => {
            let quoted = quoted_name(&message);
            if message.starts_with("unknown field") {
                let field = quoted.unwrap_or_default();
                Error::invalid("unknown_field", message.clone(), Some(&join(&field)))
            } else if message.starts_with("missing field") {
                let field = quoted.unwrap_or_default();
                Error::invalid("parameter_missing", message.clone(), Some(&join(&field)))
            } else if message.starts_with("invalid type") {
                let param = (path != ".").then_some(path.as_str());
                Error::invalid("invalid_type", message.clone(), param)
            } else {
                let param = (path != ".").then_some(path.as_str());
                Error::invalid("parameter_invalid", message.clone(), param)
            }
        }
    }
}

fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default, deserialize_with = "optional_object")]
        inner: Option<Inner>,
    }

    #[test]
    fn a_nested_struct_is_read_from_an_object_only() {
        let param_of = |body: &str| match parse::<Outer>(body.as_bytes()) {
            Err(Error::InvalidRequest { code, param, .. }) => (code, param),
            other => panic!("expected a 400, got {other:?}"),
        };
        assert_eq!(
            param_of(r#"{"inner":[1]}"#),
            ("invalid_type", Some("inner".into()))
        );
        assert_eq!(
            param_of(r#"{"inner":{"n":"a"}}"#),
            ("invalid_type", Some("inner.n".into()))
        );
        assert_eq!(param_of(r#"{"inner":{"m":1}}"#).0, "unknown_field");
        for absent in ["{}", r#"{"inner":null}"#] {
            assert!(
                parse::<Outer>(absent.as_bytes())
                    .expect(absent)
                    .inner
                    .is_none()
            );
        }
        assert!(
            parse::<Outer>(br#"{"inner":{"n":1}}"#)
                .expect("object")
                .inner
                .is_some()
        );
    }

    fn err(body: &str) -> (String, Option<String>) {
        match parse::<Body>(body.as_bytes()) {
            Err(Error::InvalidRequest { code, param, .. }) => (code.to_owned(), param),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_body_names_its_code_and_param() {
        assert_eq!(err("{").0, "invalid_json");
        assert_eq!(err("").0, "invalid_json");
        assert_eq!(err("{\"amount\":1} x").0, "invalid_json");
        assert_eq!(
            err("{\"amount\":\"1\"}"),
            ("invalid_type".into(), Some("amount".into()))
        );
        assert_eq!(
            err("{\"amount\":1.5}"),
            ("invalid_type".into(), Some("amount".into()))
        );
        assert_eq!(
            err("{}"),
            ("parameter_missing".into(), Some("amount".into()))
        );
        assert_eq!(
            err("{\"amount\":1,\"x\":2}"),
            ("unknown_field".into(), Some("x".into()))
        );
        assert_eq!(
            err("{\"amount\":1,\"inner\":{\"n\":\"a\"}}"),
            ("invalid_type".into(), Some("inner.n".into()))
        );
        assert_eq!(err("{\"amount\":1,\"inner\":{\"m\":1}}").0, "unknown_field");
        assert!(parse::<Body>(b"{\"amount\":1}").is_ok());
        // A struct is read from an object only, never from an array of its fields.
        assert_eq!(err("[1]"), ("invalid_type".into(), None));
        assert_eq!(err("null"), ("invalid_type".into(), None));
    }
}

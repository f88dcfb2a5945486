//! Request bodies: strict JSON parsing where every failure is a 400 with a stable `code` and
//! the offending `param` (a path such as `metadata.order` found with `serde_path_to_error`).

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;

/// A response object as the JSON value that handlers answer and the idempotency store keeps;
/// a failure to encode is a 503, never an empty body.
pub fn value<T: serde::Serialize>(object: &T) -> Result<serde_json::Value> {
    serde_json::to_value(object)
        .map_err(|e| crate::Error::Unavailable(format!("cannot encode the response: {e}")))
}

/// Parses a JSON body into `T` (whose types use `deny_unknown_fields`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "invalid_json",
            "the request body must be a JSON object",
            None,
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|e| {
        Error::invalid(
            "invalid_json",
            format!("trailing data after the JSON body: {e}"),
            None,
        )
    })?;
    Ok(value)
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
    }
}

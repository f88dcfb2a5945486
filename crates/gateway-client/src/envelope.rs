//! The CodePay envelope: one flat JSON object per request with the common fields beside
//! the business ones, and responses `{code, msg, psn, sign, data}` with `data` a JSON string.

use serde_json::{Map, Value};

use crate::outcome::UnknownReason;
use crate::signing::{PrivateKey, PublicKey, sign_message, verify_message};
use crate::{SignatureError, operations::MerchantRef};

/// Builds a signed request: business `fields` plus the common fields of the contract.
pub fn build_request(
    app_id: &str,
    method: &str,
    merchant: &MerchantRef,
    fields: Map<String, Value>,
    timestamp_ms: u64,
    key: &PrivateKey,
) -> Map<String, Value> {
    let mut msg = Map::new();
    let common = [
        ("app_id", app_id),
        ("format", "JSON"),
        ("charset", "UTF-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("method", method),
        ("merchant_no", merchant.merchant_no.as_str()),
    ];
    for (k, v) in common {
        msg.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    msg.insert("timestamp".into(), Value::String(timestamp_ms.to_string()));
    for (k, v) in [
        ("store_no", &merchant.store_no),
        ("terminal_sn", &merchant.terminal_sn),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            msg.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    msg.extend(fields);
    sign_message(&mut msg, key);
    msg
}

/// Milliseconds since the Unix epoch, as CodePay's `timestamp` wants.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A response body judged against the gateway key.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseVerdict {
    /// `code` `"0"`, trusted; the business object from `data`.
    Success {
        /// CodePay's request serial.
        psn: Option<String>,
        /// The business object (empty when `data` is absent).
        data: Map<String, Value>,
    },
    /// A definite refusal.
    Declined {
        /// CodePay's code.
        code: String,
        /// CodePay's message.
        msg: String,
    },
    /// Not to be trusted either way.
    Unknown(UnknownReason),
}

/// Reads and verifies a response body. A success must be signed (unless `accept_unsigned_success`);
/// an error may come unsigned, but an error with a *bad* signature is not believed: a forged
/// refusal would lead the caller to retry under a new order number and charge twice.
pub fn read_response(
    body: &[u8],
    key: &PublicKey,
    accept_unsigned_success: bool,
) -> ResponseVerdict {
    let msg: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return unparsable("body is not a JSON object"),
        Err(e) => return unparsable(&format!("body is not JSON: {e}")),
    };
    let code = match msg.get("code") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return unparsable("no code field"),
    };
    let signature = verify_message(&msg, key);
    if code != "0" {
        return match signature {
            Ok(()) | Err(SignatureError::Missing) => ResponseVerdict::Declined {
                code,
                msg: text(msg.get("msg")),
            },
            Err(SignatureError::Invalid) => ResponseVerdict::Unknown(UnknownReason::BadSignature),
        };
    }
    match signature {
        Ok(()) => {}
        Err(SignatureError::Missing) if accept_unsigned_success => {}
        Err(SignatureError::Missing) => {
            return ResponseVerdict::Unknown(UnknownReason::UnsignedSuccess);
        }
        Err(SignatureError::Invalid) => {
            return ResponseVerdict::Unknown(UnknownReason::BadSignature);
        }
    }
    match data_object(msg.get("data")) {
        Ok(data) => ResponseVerdict::Success {
            psn: msg
                .get("psn")
                .map(|v| text(Some(v)))
                .filter(|s| !s.is_empty()),
            data,
        },
        Err(e) => unparsable(&e),
    }
}

fn unparsable(reason: &str) -> ResponseVerdict {
    ResponseVerdict::Unknown(UnknownReason::Unparsable(reason.to_owned()))
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `data` is a JSON string holding the object; an object is accepted too, absence means empty.
pub fn data_object(data: Option<&Value>) -> Result<Map<String, Value>, String> {
    match data {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(Value::Null) => Ok(Map::new()),
            Ok(_) => Err("data is not a JSON object".into()),
            Err(e) => Err(format!("data is not JSON: {e}")),
        },
        Some(_) => Err("data is neither a JSON string nor an object".into()),
    }
}

#[cfg(test)]
mod tests;

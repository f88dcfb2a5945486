//! The `payfac codepay canonical|sign|verify` helpers: the operator's tools for the most common
//! integration failure, a signature mismatch. The binary wires them to clap and stdin.

use serde_json::{Map, Value};

use crate::error::CliError;
use crate::signing::{PrivateKey, PublicKey, canonical_string, sign_message, verify_message};

fn message(stdin_json: &str) -> Result<Map<String, Value>, CliError> {
    match serde_json::from_str(stdin_json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CliError::NotObject),
        Err(e) => Err(CliError::Json(e.to_string())),
    }
}

/// The string that is signed for the JSON message given.
pub fn canonical(stdin_json: &str) -> Result<String, CliError> {
    Ok(canonical_string(&message(stdin_json)?))
}

/// The message as compact JSON (field order kept) with `sign` set by the private key.
pub fn sign(stdin_json: &str, private_key_pem: &str) -> Result<String, CliError> {
    let key = PrivateKey::from_pem_or_base64(private_key_pem)?;
    let mut msg = message(stdin_json)?;
    sign_message(&mut msg, &key);
    serde_json::to_string(&msg).map_err(|e| CliError::Json(e.to_string()))
}

/// Whether the message's `sign` verifies with the public key (a missing `sign` is `false`).
pub fn verify(stdin_json: &str, public_key_pem: &str) -> Result<bool, CliError> {
    let key = PublicKey::from_pem_or_base64(public_key_pem)?;
    Ok(verify_message(&message(stdin_json)?, &key).is_ok())
}

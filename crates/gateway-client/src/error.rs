//! Errors of the CodePay client.

use thiserror::Error;

/// A key that could not be read or generated.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The text is neither PEM nor base64 of a DER key.
    #[error("key is neither PEM nor base64 DER: {0}")]
    Encoding(String),
    /// The PEM label names something other than the expected key kind.
    #[error("unsupported PEM label {0:?}")]
    UnsupportedLabel(String),
    /// The DER bytes are not an RSA key of the expected kind.
    #[error("not an RSA key: {0}")]
    Malformed(String),
    /// CodePay signs with RSA-2048; smaller keys are refused.
    #[error("RSA key of {0} bits is too small (need at least 2048)")]
    TooSmall(u32),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generation(String),
}

/// Why a signed message did not verify.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SignatureError {
    /// The message carries no `sign` field (or an empty one).
    #[error("message has no sign field")]
    Missing,
    /// The signature does not match the message under the given key.
    #[error("signature does not verify")]
    Invalid,
}

/// A `payment.result.notify` body that cannot be trusted or read. Forgeries (`Unsigned`,
/// `BadSignature`) are kept apart from malformed bodies so the caller can record them as such.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NotificationError {
    /// The body is not a JSON object.
    #[error("notification is not a JSON object: {0}")]
    NotJson(String),
    /// The body carries no signature.
    #[error("notification is unsigned")]
    Unsigned,
    /// The signature does not verify with the gateway key.
    #[error("notification signature does not verify")]
    BadSignature,
    /// Correctly signed, but a field is missing or malformed.
    #[error("notification field {field}: {reason}")]
    InvalidField {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl NotificationError {
    /// True when the body failed signature verification (a possible forgery to record).
    pub fn is_forgery(&self) -> bool {
        matches!(self, Self::Unsigned | Self::BadSignature)
    }
}

/// Failures of the `payfac codepay canonical|sign|verify` helpers.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CliError {
    /// Standard input is not JSON.
    #[error("input is not JSON: {0}")]
    Json(String),
    /// The JSON is not an object (CodePay messages are flat objects).
    #[error("input must be a JSON object (one CodePay message)")]
    NotObject,
    /// The key file could not be read as a key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The HTTP client could not be built from its configuration.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The base URL is not an absolute http(s) URL.
    #[error("invalid CodePay base URL {0:?}")]
    BaseUrl(String),
    /// reqwest refused the settings (TLS backend, pool).
    #[error("cannot build HTTP client: {0}")]
    Http(String),
}

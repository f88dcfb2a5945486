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

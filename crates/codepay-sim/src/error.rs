//! The one error type of the simulator's Rust API (the wire speaks [`crate::codes`]).

use thiserror::Error;

/// Why the simulator could not be built, configured or persisted.
#[derive(Debug, Error)]
pub enum SimError {
    /// A key (gateway private key or an app's public key) could not be read or generated.
    #[error("key: {0}")]
    Key(#[from] gateway_client::KeyError),
    /// An identifier or setting given for an app, merchant, store or terminal is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The merchant is not registered.
    #[error("merchant_no {0:?} is not registered")]
    UnknownMerchant(String),
    /// The merchant has no such store.
    #[error("merchant_no {merchant_no:?} has no store_no {store_no:?}")]
    UnknownStore {
        /// The merchant.
        merchant_no: String,
        /// The store it does not have.
        store_no: String,
    },
    /// The customer's wallet does not know this MPM QR code.
    #[error("unknown qr_code")]
    UnknownQrCode,
    /// The customer action does not fit the order's state (paying a closed order, …).
    #[error("{0}")]
    NotPayable(String),
    /// The state file could not be read or written.
    #[error("state file {path}: {source}")]
    StateFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file is not a snapshot this version understands.
    #[error("state file {path} is not a simulator snapshot: {source}")]
    Snapshot {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

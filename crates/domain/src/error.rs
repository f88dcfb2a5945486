//! The one error type of the domain crate.

use thiserror::Error;

/// Why a domain value could not be built or a rule refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The currency code is not an active ISO 4217 code.
    #[error("unknown currency `{0}`")]
    UnknownCurrency(String),
    /// The amount cannot be expressed exactly in the currency (too many decimals, bad syntax).
    #[error("amount `{amount}` is not a valid {currency} amount: {reason}")]
    InvalidAmount {
        /// The text as received.
        amount: String,
        /// The currency it was read in.
        currency: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Arithmetic would overflow `i64` minor units.
    #[error("amount overflow")]
    Overflow,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(String, String),
    /// An id had the wrong prefix or shape.
    #[error("invalid id `{value}`: expected a `{prefix}_` id")]
    InvalidId {
        /// The text as received.
        value: String,
        /// The prefix that was expected.
        prefix: &'static str,
    },
    /// A state machine refused a transition.
    #[error("{entity} cannot go from `{from}` to `{to}`")]
    InvalidTransition {
        /// `payment` or `refund`.
        entity: &'static str,
        /// Current state.
        from: &'static str,
        /// Requested state.
        to: &'static str,
    },
    /// A string did not name a known enum value.
    #[error("unknown {kind} `{value}`")]
    UnknownValue {
        /// What was being parsed (`wallet`, `mode`, …).
        kind: &'static str,
        /// The text as received.
        value: String,
    },
}

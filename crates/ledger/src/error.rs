//! The one error type of the ledger crate.

use crate::journal::JournalKind;
use domain::{Currency, DomainError};
use thiserror::Error;

/// Why a price list, fee, journal, statement or cut-off was refused.
///
/// Each variant names what was wrong precisely enough for the caller to map it to a typed API
/// error (`param` = the field or index) without parsing the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// A rate field is out of range. `index` is the rate's position in its price list (none for
    /// a rate checked on its own).
    #[error("{}: {reason}", rate_field(*.index, .field))]
    InvalidRate {
        /// Position of the rate in `rates`, when it came from a price list.
        index: Option<usize>,
        /// The offending field (`percent_bps`, `fixed`, `currency`).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two rates of one price list apply to the same wallet and currency pair.
    #[error("rates[{index}]: same wallet and currency as rates[{first}]")]
    DuplicateRate {
        /// The later rate.
        index: usize,
        /// The earlier rate with the same pair.
        first: usize,
    },
    /// Two amounts, or an amount and a rate or journal, are in different currencies.
    #[error("currency mismatch: expected {expected}, got {found}")]
    CurrencyMismatch {
        /// The currency the operation is in.
        expected: Currency,
        /// The currency that was given.
        found: Currency,
    },
    /// An amount argument is not acceptable (zero payment, zero adjustment, negative part).
    #[error("{field}: {reason}")]
    InvalidAmount {
        /// The argument's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Refunds would add up to more than the payment.
    #[error("refunds of {refunded} exceed the payment amount {payment} (minor units)")]
    RefundExceedsPayment {
        /// The payment amount.
        payment: i64,
        /// Everything refunded, this refund included.
        refunded: i128,
    },
    /// Arithmetic would overflow `i64` minor units.
    #[error("amount overflow")]
    Overflow,
    /// A journal must have at least one posting.
    #[error("a journal needs postings")]
    EmptyJournal,
    /// A posting amount is zero or negative.
    #[error("postings[{index}].amount must be positive, got {amount}")]
    NonPositivePosting {
        /// Position of the posting.
        index: usize,
        /// The amount given.
        amount: i64,
    },
    /// Debits and credits of a journal differ.
    #[error("journal does not balance: debits {debits}, credits {credits}")]
    Unbalanced {
        /// Sum of the debit postings.
        debits: i128,
        /// Sum of the credit postings.
        credits: i128,
    },
    /// The journal's subject is not the kind of object its kind is about.
    #[error("a {kind} journal is about a {expected}, not a {found}")]
    SubjectMismatch {
        /// The journal kind.
        kind: JournalKind,
        /// What that kind is about (`payment`, `refund`, `adjustment`).
        expected: &'static str,
        /// What was given.
        found: &'static str,
    },
    /// A posting names another merchant's payable than the journal's merchant.
    #[error("postings[{index}] is for another merchant than the journal's")]
    ForeignMerchant {
        /// Position of the posting.
        index: usize,
    },
    /// A text field that must say something is empty (an adjustment's memo or reference).
    #[error("{field} must not be empty")]
    EmptyText {
        /// The field's name.
        field: &'static str,
    },
    /// A statement line is not consistent with its kind or its own net.
    #[error("lines[{index}]: {reason}")]
    InvalidLine {
        /// Position of the line as given (0 for a line built on its own).
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A statement line's time is outside the business day's window.
    #[error("lines[{index}] occurred outside the business day's window")]
    LineOutsideWindow {
        /// Position of the line as given.
        index: usize,
    },
    /// A `PAYFAC_SETTLEMENT_CUTOFF` value could not be read.
    #[error("invalid settlement cut-off `{value}`: {reason}")]
    InvalidCutoff {
        /// The text as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A business date is too far from today for the calendar arithmetic.
    #[error("business date out of range")]
    DateOutOfRange,
    /// A domain rule refused a value (negative money, currency mismatch in `Money` arithmetic).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

fn rate_field(index: Option<usize>, field: &str) -> String {
    match index {
        Some(i) => format!("rates[{i}].{field}"),
        None => field.to_owned(),
    }
}

//! The gateway's errors. Codes and messages come from payfac's shared table
//! (`gateway_client::codes`), so the client classifies every code the simulator answers with;
//! codes the table marks `Seen` are used for what they were seen for, the others are the
//! simulator's choice, listed in `docs/codepay.md`.

use gateway_client::codes::{self, Code};
use std::fmt;

/// A business error as it appears in the envelope: non-`"0"` `code` plus `msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The envelope `code`.
    pub code: &'static str,
    /// The envelope `msg`.
    pub msg: String,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.msg)
    }
}

/// Every error the simulator answers with: (kind, its row in payfac's shared code table, which
/// gives the code and the default message).
pub const CODES: &[(ErrorKind, &Code)] = &[
    (ErrorKind::MissingParameter, &codes::E01001),
    (ErrorKind::InvalidParameter, &codes::E01002),
    (ErrorKind::InvalidSignature, &codes::E01003),
    (ErrorKind::StaleTimestamp, &codes::E01004),
    (ErrorKind::UnknownApp, &codes::E01005),
    (ErrorKind::UnknownMerchant, &codes::E01006),
    (ErrorKind::UnknownStoreOrTerminal, &codes::E01007),
    (ErrorKind::UnknownMethod, &codes::E07303),
    (ErrorKind::DuplicateOrderNo, &codes::E04101),
    (ErrorKind::InvalidAmount, &codes::E04103),
    (ErrorKind::UnsupportedCurrency, &codes::E04104),
    (ErrorKind::UnsupportedPayMethod, &codes::E04105),
    (ErrorKind::OrderNotFoundByTransNo, &codes::E04110),
    (ErrorKind::OrderNotFound, &codes::E04111),
    (ErrorKind::RefundExceedsOrder, &codes::E04126),
    (ErrorKind::OrigNotPaid, &codes::E04127),
    (ErrorKind::CurrencyMismatch, &codes::E04128),
    (ErrorKind::RefundTotalExceeded, &codes::E04130),
    (ErrorKind::RevokeRefunded, &codes::E04131),
    (ErrorKind::PartialRefundNotAllowed, &codes::E04132),
    (ErrorKind::AuthCodeInvalid, &codes::E04201),
    (ErrorKind::AuthCodeUsed, &codes::E04202),
    (ErrorKind::AuthCodeWrongWallet, &codes::E04203),
    (ErrorKind::System, &codes::E09999),
];

/// Why the gateway refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is described by its row in `CODES`
pub enum ErrorKind {
    MissingParameter,
    InvalidParameter,
    InvalidSignature,
    StaleTimestamp,
    UnknownApp,
    UnknownMerchant,
    /// A `store_no` the merchant does not have, a `terminal_sn` its store does not have, or a
    /// `terminal_sn` without a `store_no`.
    UnknownStoreOrTerminal,
    UnknownMethod,
    DuplicateOrderNo,
    InvalidAmount,
    UnsupportedCurrency,
    UnsupportedPayMethod,
    /// No such order (a queried or revoked one, or a refund's original), named by `trans_no`.
    OrderNotFoundByTransNo,
    /// No such order (a queried or revoked one, or a refund's original), named by
    /// `merchant_order_no`.
    OrderNotFound,
    RefundExceedsOrder,
    OrigNotPaid,
    CurrencyMismatch,
    RefundTotalExceeded,
    RevokeRefunded,
    PartialRefundNotAllowed,
    AuthCodeInvalid,
    AuthCodeUsed,
    AuthCodeWrongWallet,
    System,
}

impl ErrorKind {
    /// The not-found error for an order named by `trans_no` when one was given, else by
    /// `merchant_order_no`: the two seen codes tell the names apart.
    pub fn not_found(by_trans_no: bool) -> Self {
        if by_trans_no {
            Self::OrderNotFoundByTransNo
        } else {
            Self::OrderNotFound
        }
    }

    /// This kind's row in the shared table.
    pub fn code(self) -> &'static Code {
        CODES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or(&codes::E09999, |(_, c)| *c)
    }

    /// The error with its default message.
    pub fn err(self) -> GatewayError {
        let row = self.code();
        GatewayError {
            code: row.code,
            msg: row.message.to_owned(),
        }
    }

    /// The error with its default message plus detail (`"missing required parameter: sign"`).
    pub fn with(self, detail: impl fmt::Display) -> GatewayError {
        let row = self.code();
        GatewayError {
            code: row.code,
            msg: format!("{}: {detail}", row.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_distinct_code() {
        let mut seen = std::collections::HashSet::new();
        for (kind, row) in CODES {
            assert_eq!(kind.err().code, row.code);
            assert!(seen.insert(row.code), "{} used twice", row.code);
            assert_ne!(row.code, "0");
        }
        assert_eq!(ErrorKind::UnknownMethod.err().code, "E07303");
        assert_eq!(ErrorKind::OrderNotFound.err().code, "E04111");
        assert_eq!(ErrorKind::OrderNotFoundByTransNo.err().code, "E04110");
    }
}

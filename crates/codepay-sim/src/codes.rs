//! The gateway's error codes, as data. Codes marked "seen" in the contract are used for what they
//! were seen for; every other code is the simulator's choice, listed in `docs/codepay.md`.

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

/// Every error the simulator answers with: (kind, code, default message).
pub const CODES: &[(ErrorKind, &str, &str)] = &[
    (
        ErrorKind::MissingParameter,
        "E01001",
        "missing required parameter",
    ),
    (ErrorKind::InvalidParameter, "E01002", "invalid parameter"),
    (
        ErrorKind::InvalidSignature,
        "E01003",
        "signature verification failed",
    ),
    (
        ErrorKind::StaleTimestamp,
        "E01004",
        "timestamp outside the allowed window",
    ),
    (ErrorKind::UnknownApp, "E01005", "app_id does not exist"),
    (
        ErrorKind::UnknownMerchant,
        "E01006",
        "merchant_no does not exist",
    ),
    (ErrorKind::UnknownMethod, "E07303", "method not authorised"),
    (
        ErrorKind::DuplicateOrderNo,
        "E04101",
        "merchant_order_no already used",
    ),
    (ErrorKind::OrderNotFound, "E04102", "order does not exist"),
    (ErrorKind::InvalidAmount, "E04103", "invalid amount"),
    (
        ErrorKind::UnsupportedCurrency,
        "E04104",
        "currency not supported",
    ),
    (
        ErrorKind::UnsupportedPayMethod,
        "E04105",
        "pay_method_id not supported",
    ),
    (
        ErrorKind::OrigNotFoundByTransNo,
        "E04110",
        "original order does not exist",
    ),
    (
        ErrorKind::OrigNotFound,
        "E04111",
        "original order does not exist",
    ),
    (
        ErrorKind::RefundExceedsOrder,
        "E04126",
        "refund amount exceeds the order amount",
    ),
    (
        ErrorKind::OrigNotPaid,
        "E04127",
        "original order is not paid",
    ),
    (
        ErrorKind::CurrencyMismatch,
        "E04128",
        "currency differs from the original order",
    ),
    (
        ErrorKind::RefundTotalExceeded,
        "E04130",
        "total refund amount exceeds the paid amount",
    ),
    (
        ErrorKind::RevokeRefunded,
        "E04131",
        "order has refunds and cannot be revoked",
    ),
    (
        ErrorKind::PartialRefundNotAllowed,
        "E04132",
        "partial refund not allowed",
    ),
    (
        ErrorKind::AuthCodeInvalid,
        "E04201",
        "auth_code is invalid or expired",
    ),
    (
        ErrorKind::AuthCodeUsed,
        "E04202",
        "auth_code has already been used",
    ),
    (
        ErrorKind::AuthCodeWrongWallet,
        "E04203",
        "auth_code does not belong to pay_method_id",
    ),
    (ErrorKind::System, "E09999", "system busy, try again"),
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
    UnknownMethod,
    DuplicateOrderNo,
    OrderNotFound,
    InvalidAmount,
    UnsupportedCurrency,
    UnsupportedPayMethod,
    OrigNotFoundByTransNo,
    OrigNotFound,
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
    fn row(self) -> (&'static str, &'static str) {
        CODES
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, c, m)| (*c, *m))
            .unwrap_or(("E09999", "system busy, try again"))
    }

    /// The error with its default message.
    pub fn err(self) -> GatewayError {
        let (code, msg) = self.row();
        GatewayError {
            code,
            msg: msg.to_owned(),
        }
    }

    /// The error with its default message plus detail (`"missing required parameter: sign"`).
    pub fn with(self, detail: impl fmt::Display) -> GatewayError {
        let (code, msg) = self.row();
        GatewayError {
            code,
            msg: format!("{msg}: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_distinct_code() {
        let mut seen = std::collections::HashSet::new();
        for (kind, code, _) in CODES {
            assert_eq!(kind.err().code, *code);
            assert!(seen.insert(*code), "{code} used twice");
            assert_ne!(*code, "0");
        }
        assert_eq!(ErrorKind::UnknownMethod.err().code, "E07303");
        assert_eq!(ErrorKind::OrigNotFound.err().code, "E04111");
    }
}

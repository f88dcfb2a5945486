//! CodePay's business error codes, as data: the one table payfac and its simulator share.
//!
//! The envelope's `code` is the only machine-readable reason CodePay gives, and the public record
//! names only a few codes (`codepay-api.md` §8). Every code payfac knows lives here once, with
//! the class the engine acts on, so the client's reading of a code and the simulator's use of it
//! cannot drift apart. A code that is not here is [`CodeClass::Unrecognised`]: the gateway may
//! send codes nobody has documented, and such a code must never leave an order or refund waiting
//! forever, so callers settle it by query.

/// What a business error code tells payfac about the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeClass {
    /// The order the request names does not exist at CodePay: a query or revocation of an order
    /// CodePay never saw, or a refund of an original it never saw. CodePay never applied it.
    OrderNotFound,
    /// The `merchant_order_no` is already used by this merchant (sales and refunds share the
    /// namespace). The new request was refused, but an earlier one with that number may have
    /// been applied, so its fate is settled by query of that number.
    DuplicateOrderNo,
    /// The amount was refused: a refund above the order or the paid total, or a partial refund
    /// where only whole ones are allowed.
    AmountRefused,
    /// The order's state forbids the request: refunding an unpaid original, revoking a refunded one.
    OrderStateRefused,
    /// The customer's `auth_code` was refused (invalid, expired, used, another wallet's).
    AuthCodeRefused,
    /// A field is missing or malformed, or names an unsupported currency or wallet.
    RequestInvalid,
    /// The request's credentials were refused: signature, timestamp window, unknown `app_id`.
    AuthFailed,
    /// The app may not do this: method not authorised, merchant unknown to the gateway, a store
    /// or terminal the merchant does not have.
    NotPermitted,
    /// CodePay reported an internal failure; whether it applied the request is not stated.
    SystemBusy,
    /// Not in the table. The outcome is unknown: settle by query, never treat as a refusal.
    Unrecognised,
}

impl CodeClass {
    /// True when CodePay certainly did not apply the request: a definitive refusal (or a
    /// not-found) that no query can turn into a success. Every other class (a duplicate number,
    /// a system error, an unrecognised code) leaves the outcome to be settled by query.
    pub fn is_definitive(self) -> bool {
        !matches!(
            self,
            Self::DuplicateOrderNo | Self::SystemBusy | Self::Unrecognised
        )
    }

    /// True when the outcome is unknown and must be settled by `order.query` /
    /// `order.refund.query` on the same order number.
    pub fn settles_by_query(self) -> bool {
        !self.is_definitive()
    }
}

/// Where payfac learned a code, so operators know which ones to re-check against production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Observed in CodePay's traffic or official material (`codepay-api.md` §8).
    Seen,
    /// Cited by integrators for this meaning, not yet seen by payfac.
    Cited,
    /// The simulator's choice where the public record is silent; production may use another code.
    Simulator,
    /// Recognised by payfac before this table existed, origin undocumented; kept so that
    /// recognising it does not silently stop.
    Kept,
}

/// One business error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The envelope `code`.
    pub code: &'static str,
    /// What it means to payfac.
    pub class: CodeClass,
    /// The default `msg` (what the simulator sends; CodePay's own wording may differ).
    pub message: &'static str,
    /// Where the code comes from.
    pub source: Source,
}

const fn row(code: &'static str, class: CodeClass, message: &'static str, source: Source) -> Code {
    Code {
        code,
        class,
        message,
        source,
    }
}

use CodeClass as C;
use Source as S;

/// Missing required parameter.
pub const E01001: Code = row(
    "E01001",
    C::RequestInvalid,
    "missing required parameter",
    S::Simulator,
);
/// Invalid parameter (type, format, length).
pub const E01002: Code = row(
    "E01002",
    C::RequestInvalid,
    "invalid parameter",
    S::Simulator,
);
/// Signature verification failed.
pub const E01003: Code = row(
    "E01003",
    C::AuthFailed,
    "signature verification failed",
    S::Simulator,
);
/// Timestamp outside the allowed window.
pub const E01004: Code = row(
    "E01004",
    C::AuthFailed,
    "timestamp outside the allowed window",
    S::Simulator,
);
/// Unknown `app_id`.
pub const E01005: Code = row(
    "E01005",
    C::AuthFailed,
    "app_id does not exist",
    S::Simulator,
);
/// Unknown `merchant_no`.
pub const E01006: Code = row(
    "E01006",
    C::NotPermitted,
    "merchant_no does not exist",
    S::Simulator,
);
/// `store_no` not a store of the merchant, or `terminal_sn` not a terminal of that store (or sent
/// without a `store_no`). CodePay's own code for this is not public: the simulator's guess.
pub const E01007: Code = row(
    "E01007",
    C::NotPermitted,
    "store_no or terminal_sn does not exist",
    S::Simulator,
);
/// Method not authorised (also what an unknown method gets).
pub const E07303: Code = row("E07303", C::NotPermitted, "method not authorised", S::Seen);
/// `merchant_order_no` already used by this merchant.
pub const E04101: Code = row(
    "E04101",
    C::DuplicateOrderNo,
    "merchant_order_no already used",
    S::Simulator,
);
/// Invalid amount.
pub const E04103: Code = row("E04103", C::RequestInvalid, "invalid amount", S::Simulator);
/// Currency not supported.
pub const E04104: Code = row(
    "E04104",
    C::RequestInvalid,
    "currency not supported",
    S::Simulator,
);
/// `pay_method_id` not supported.
pub const E04105: Code = row(
    "E04105",
    C::RequestInvalid,
    "pay_method_id not supported",
    S::Simulator,
);
/// Order not found, named by `trans_no` (or a refund's `orig_trans_no`).
pub const E04110: Code = row(
    "E04110",
    C::OrderNotFound,
    "original order does not exist",
    S::Seen,
);
/// Order not found, named by `merchant_order_no` (or a refund's `orig_merchant_order_no`).
pub const E04111: Code = row(
    "E04111",
    C::OrderNotFound,
    "original order does not exist",
    S::Seen,
);
/// Refund amount above the order amount.
pub const E04126: Code = row(
    "E04126",
    C::AmountRefused,
    "refund amount exceeds the order amount",
    S::Seen,
);
/// Original order not paid.
pub const E04127: Code = row(
    "E04127",
    C::OrderStateRefused,
    "original order is not paid",
    S::Simulator,
);
/// Refund currency differs from the original order's.
pub const E04128: Code = row(
    "E04128",
    C::RequestInvalid,
    "currency differs from the original order",
    S::Simulator,
);
/// Refunds would total more than the paid amount.
pub const E04130: Code = row(
    "E04130",
    C::AmountRefused,
    "total refund amount exceeds the paid amount",
    S::Seen,
);
/// Revoking an order that has refunds.
pub const E04131: Code = row(
    "E04131",
    C::OrderStateRefused,
    "order has refunds and cannot be revoked",
    S::Simulator,
);
/// Partial refund not allowed.
pub const E04132: Code = row(
    "E04132",
    C::AmountRefused,
    "partial refund not allowed",
    S::Seen,
);
/// `auth_code` invalid or expired.
pub const E04201: Code = row(
    "E04201",
    C::AuthCodeRefused,
    "auth_code is invalid or expired",
    S::Simulator,
);
/// `auth_code` already used.
pub const E04202: Code = row(
    "E04202",
    C::AuthCodeRefused,
    "auth_code has already been used",
    S::Simulator,
);
/// `auth_code` belongs to another wallet.
pub const E04203: Code = row(
    "E04203",
    C::AuthCodeRefused,
    "auth_code does not belong to pay_method_id",
    S::Simulator,
);
/// System busy.
pub const E09999: Code = row(
    "E09999",
    C::SystemBusy,
    "system busy, try again",
    S::Simulator,
);
/// "Order / original transaction not found", cited by integrators.
pub const M010: Code = row("M010", C::OrderNotFound, "order not found", S::Cited);
/// "Order / original transaction not found", cited by integrators.
pub const ET002: Code = row("ET002", C::OrderNotFound, "order not found", S::Cited);
/// "Order / original transaction not found", cited by integrators.
pub const ET003: Code = row("ET003", C::OrderNotFound, "order not found", S::Cited);
/// A symbolic not-found code payfac's engine recognised before this table.
pub const ORDER_NOT_FOUND: Code = row(
    "ORDER_NOT_FOUND",
    C::OrderNotFound,
    "order not found",
    S::Kept,
);

/// Every code payfac knows, each once.
pub const CODES: &[Code] = &[
    E01001,
    E01002,
    E01003,
    E01004,
    E01005,
    E01006,
    E01007,
    E07303,
    E04101,
    E04103,
    E04104,
    E04105,
    E04110,
    E04111,
    E04126,
    E04127,
    E04128,
    E04130,
    E04131,
    E04132,
    E04201,
    E04202,
    E04203,
    E09999,
    M010,
    ET002,
    ET003,
    ORDER_NOT_FOUND,
];

/// The table's row for `code`, if payfac knows it. Matched exactly (codes are case-sensitive
/// strings on the wire).
pub fn lookup(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// What `code` means; [`CodeClass::Unrecognised`] when it is not in the table.
pub fn classify(code: &str) -> CodeClass {
    lookup(code).map_or(CodeClass::Unrecognised, |c| c.class)
}

/// True when `code` says CodePay does not know the order the request named, so it never applied
/// that request.
pub fn is_order_not_found(code: &str) -> bool {
    classify(code) == CodeClass::OrderNotFound
}

/// True when `code` says the `merchant_order_no` is already used by this merchant.
pub fn is_duplicate_order_no(code: &str) -> bool {
    classify(code) == CodeClass::DuplicateOrderNo
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_code_is_listed_once_and_is_never_success() {
        let mut seen = HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} listed twice", c.code);
            assert_ne!(c.code, "0");
            assert_ne!(c.class, CodeClass::Unrecognised, "{}", c.code);
            assert!(!c.message.is_empty(), "{}", c.code);
        }
    }

    #[test]
    fn the_researched_codes_keep_their_meaning() {
        for code in [
            "E04111",
            "E04110",
            "M010",
            "ET002",
            "ET003",
            "ORDER_NOT_FOUND",
        ] {
            assert!(is_order_not_found(code), "{code}");
        }
        for code in ["E04126", "E04130", "E04132"] {
            assert_eq!(classify(code), CodeClass::AmountRefused, "{code}");
        }
        assert_eq!(classify("E07303"), CodeClass::NotPermitted);
        // An unknown store or terminal: refused before anything was applied.
        assert_eq!(classify("E01007"), CodeClass::NotPermitted);
        assert!(classify("E01007").is_definitive());
        for code in ["E07303", "E04110", "E04111", "E04126", "E04130", "E04132"] {
            assert_eq!(lookup(code).map(|c| c.source), Some(Source::Seen), "{code}");
        }
        assert!(is_duplicate_order_no("E04101"));
    }

    #[test]
    fn an_unknown_code_is_settled_by_query() {
        for code in ["E99999", "e04111", "", "0"] {
            assert_eq!(classify(code), CodeClass::Unrecognised, "{code:?}");
            assert!(!is_order_not_found(code));
            assert!(classify(code).settles_by_query());
        }
        assert!(CodeClass::DuplicateOrderNo.settles_by_query());
        assert!(CodeClass::SystemBusy.settles_by_query());
        assert!(CodeClass::OrderNotFound.is_definitive());
        assert!(CodeClass::AmountRefused.is_definitive());
    }
}

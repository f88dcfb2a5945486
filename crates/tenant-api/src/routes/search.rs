//! The filters of `GET /v1/payments` and `GET /v1/refunds`: a merchant's own lists and an
//! operator's search across merchants share them. Each filter is checked (400
//! `parameter_invalid` naming it in `param`, as every other malformed query value), then the
//! caller's [`Access`] scopes the search: a merchant's list is its own whatever `merchant_id`
//! says, and a bound credential's is narrowed to its store or terminal.

use crate::auth::Access;
use crate::error::{Error, Result};
use ::payments::ports::{PaymentFilter, RefundFilter};
use chrono::{DateTime, Utc};
use domain::{
    Currency, GatewayAccountId, MerchantId, PaymentId, PaymentMode, PaymentStatus, RefundId,
    RefundStatus, StoreId, TerminalId, Wallet,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::schemas::{
    CurrencyCode, GatewayAccountIdText, MerchantIdText, PaymentIdText, PaymentModeName,
    PaymentStatusName, RefundIdText, RefundStatusName, StoreIdText, TerminalIdText, WalletName,
};

/// Query of `GET /v1/payments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Operators: only this merchant's (`mer_…`). A merchant's list is always its own.
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only payments taken at this store (`store_…`); a bound credential may name its own
    /// store only (403 `credential_bound`).
    #[param(value_type = StoreIdText, inline, required = false)]
    pub store_id: Option<String>,
    /// Only payments taken at this terminal (`term_…`); a terminal-bound credential may name
    /// its own terminal only (403 `credential_bound`).
    #[param(value_type = TerminalIdText, inline, required = false)]
    pub terminal_id: Option<String>,
    /// Exact status.
    #[param(value_type = PaymentStatusName, inline, required = false)]
    pub status: Option<String>,
    /// Wallet name (`alipay`, `wechat_pay`, …).
    #[param(value_type = WalletName, inline, required = false)]
    pub wallet: Option<String>,
    /// `mpm` or `cpm`.
    #[param(value_type = PaymentModeName, inline, required = false)]
    pub mode: Option<String>,
    /// ISO 4217.
    #[param(value_type = CurrencyCode, inline, required = false)]
    pub currency: Option<String>,
    /// Amount at least, minor units (not above `amount_lte`).
    #[param(value_type = i64, required = false, minimum = 0, maximum = 9223372036854775807i64)]
    pub amount_gte: Option<String>,
    /// Amount at most, minor units (not below `amount_gte`).
    #[param(value_type = i64, required = false, minimum = 0, maximum = 9223372036854775807i64)]
    pub amount_lte: Option<String>,
    /// Exact reference.
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub merchant_order_id: Option<String>,
    /// CodePay's `merchant_order_no` of the order (payfac generated it; `codepay.merchant_order_no`).
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub codepay_merchant_order_no: Option<String>,
    /// CodePay's `trans_no` (`codepay.trans_no`).
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub codepay_trans_no: Option<String>,
    /// Only payments routed through this gateway account (`gwa_…`).
    #[param(value_type = GatewayAccountIdText, inline, required = false)]
    pub gateway_account_id: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub created_gte: Option<String>,
    /// Created before (RFC 3339; after `created_gte`).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub created_lt: Option<String>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a payment id from the previous page.
    #[param(value_type = PaymentIdText, inline, required = false)]
    pub starting_after: Option<String>,
}

/// Query of `GET /v1/refunds`. `wallet`, `mode` and `merchant_order_id` match the refunded
/// payment.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RefundListQuery {
    /// Operators: only this merchant's (`mer_…`). A merchant's list is always its own.
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only refunds of this payment (`pay_…`).
    #[param(value_type = PaymentIdText, inline, required = false)]
    pub payment_id: Option<String>,
    /// Only refunds of payments taken at this store (`store_…`); a bound credential may name
    /// its own store only (403 `credential_bound`).
    #[param(value_type = StoreIdText, inline, required = false)]
    pub store_id: Option<String>,
    /// Only refunds of payments taken at this terminal (`term_…`); a terminal-bound credential
    /// may name its own terminal only (403 `credential_bound`).
    #[param(value_type = TerminalIdText, inline, required = false)]
    pub terminal_id: Option<String>,
    /// Exact refund status.
    #[param(value_type = RefundStatusName, inline, required = false)]
    pub status: Option<String>,
    /// The refunded payment's wallet.
    #[param(value_type = WalletName, inline, required = false)]
    pub wallet: Option<String>,
    /// The refunded payment's mode.
    #[param(value_type = PaymentModeName, inline, required = false)]
    pub mode: Option<String>,
    /// ISO 4217.
    #[param(value_type = CurrencyCode, inline, required = false)]
    pub currency: Option<String>,
    /// Amount at least, minor units (not above `amount_lte`).
    #[param(value_type = i64, required = false, minimum = 0, maximum = 9223372036854775807i64)]
    pub amount_gte: Option<String>,
    /// Amount at most, minor units (not below `amount_gte`).
    #[param(value_type = i64, required = false, minimum = 0, maximum = 9223372036854775807i64)]
    pub amount_lte: Option<String>,
    /// The refunded payment's reference.
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub merchant_order_id: Option<String>,
    /// Your refund reference.
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub merchant_refund_id: Option<String>,
    /// The refund order's CodePay `merchant_order_no` (`codepay.refund_no`).
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub codepay_merchant_order_no: Option<String>,
    /// The refund's CodePay `trans_no` (`codepay.trans_no`).
    #[param(nullable = false, min_length = 1, max_length = 256)]
    pub codepay_trans_no: Option<String>,
    /// Only refunds carried by this gateway account (`gwa_…`).
    #[param(value_type = GatewayAccountIdText, inline, required = false)]
    pub gateway_account_id: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub created_gte: Option<String>,
    /// Created before (RFC 3339; after `created_gte`).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub created_lt: Option<String>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a refund id from the previous page.
    #[param(value_type = RefundIdText, inline, required = false)]
    pub starting_after: Option<String>,
}

fn bad(param: &str, message: impl Into<String>) -> Error {
    Error::invalid("parameter_invalid", message, Some(param))
}

/// `value` parsed with `parse`, or 400 naming `param` and what it must be.
fn parsed<T, E>(
    value: Option<String>,
    param: &str,
    what: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    value
        .map(|v| parse(&v).map_err(|_| bad(param, format!("{param} must be {what}"))))
        .transpose()
}

/// A non-empty text filter (an empty one matches nothing and is surely a mistake).
fn text(value: Option<String>, param: &str) -> Result<Option<String>> {
    match value {
        Some(v) if v.is_empty() || v.len() > 256 => {
            Err(bad(param, format!("{param} must be 1 to 256 characters")))
        }
        other => Ok(other),
    }
}

fn wallet(value: Option<String>) -> Result<Option<Wallet>> {
    value
        .map(|v| {
            Wallet::from_name(&v).map_err(|_| {
                let known: Vec<_> = Wallet::all().map(|w| w.name()).collect();
                bad(
                    "wallet",
                    format!("unknown wallet; use one of {}", known.join(", ")),
                )
            })
        })
        .transpose()
}

/// The amount and creation ranges, parsed here rather than by the query extractor so that a
/// malformed one is named in `param`: non-negative amounts, lower bounds not above upper.
type Ranges = (
    (Option<i64>, Option<i64>),
    (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
);

fn ranges(
    amount: (Option<String>, Option<String>),
    created: (Option<String>, Option<String>),
) -> Result<Ranges> {
    let minor = |v, param| {
        parsed(
            v,
            param,
            "an integer amount in minor units",
            str::parse::<i64>,
        )
    };
    let time = |v, param| {
        parsed(v, param, "an RFC 3339 time", |t: &str| {
            DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc))
        })
    };
    let amount = (
        minor(amount.0, "amount_gte")?,
        minor(amount.1, "amount_lte")?,
    );
    let created = (
        time(created.0, "created_gte")?,
        time(created.1, "created_lt")?,
    );
    for (v, param) in [(amount.0, "amount_gte"), (amount.1, "amount_lte")] {
        if v.is_some_and(|a| a < 0) {
            return Err(bad(param, format!("{param} must not be negative")));
        }
    }
    if let (Some(lo), Some(hi)) = amount
        && lo > hi
    {
        return Err(bad("amount_lte", "amount_lte must not be below amount_gte"));
    }
    if let (Some(lo), Some(hi)) = created
        && lo >= hi
    {
        return Err(bad("created_lt", "created_lt must be after created_gte"));
    }
    Ok((amount, created))
}

/// The checked ids of the common filters, scoped to `access`: (merchant, store, terminal).
type Scope = (Option<MerchantId>, Option<StoreId>, Option<TerminalId>);

fn scope(
    access: &Access,
    merchant_id: Option<String>,
    store_id: Option<String>,
    terminal_id: Option<String>,
) -> Result<Scope> {
    let merchant = parsed(
        merchant_id,
        "merchant_id",
        "a merchant id",
        MerchantId::parse,
    )?;
    let store = parsed(store_id, "store_id", "a store id", StoreId::parse)?;
    let terminal = parsed(
        terminal_id,
        "terminal_id",
        "a terminal id",
        TerminalId::parse,
    )?;
    let (store, terminal) = access.location_scope(store, terminal)?;
    Ok((access.merchant_scope(merchant), store, terminal))
}

/// `q` checked and scoped to `access`, as the store's payment filter.
pub fn payment_filter(access: &Access, q: ListQuery) -> Result<PaymentFilter> {
    let ((amount_gte, amount_lte), (created_gte, created_lt)) =
        ranges((q.amount_gte, q.amount_lte), (q.created_gte, q.created_lt))?;
    let (merchant_id, store_id, terminal_id) =
        scope(access, q.merchant_id, q.store_id, q.terminal_id)?;
    Ok(PaymentFilter {
        merchant_id,
        store_id,
        terminal_id,
        status: parsed(
            q.status,
            "status",
            "a payment status",
            str::parse::<PaymentStatus>,
        )?,
        wallet: wallet(q.wallet)?,
        mode: parsed(q.mode, "mode", "`mpm` or `cpm`", str::parse::<PaymentMode>)?,
        currency: parsed(
            q.currency,
            "currency",
            "an ISO 4217 code",
            Currency::from_code,
        )?,
        amount_gte,
        amount_lte,
        merchant_order_id: text(q.merchant_order_id, "merchant_order_id")?,
        merchant_order_no: text(q.codepay_merchant_order_no, "codepay_merchant_order_no")?,
        trans_no: text(q.codepay_trans_no, "codepay_trans_no")?,
        gateway_account_id: parsed(
            q.gateway_account_id,
            "gateway_account_id",
            "a gateway account id",
            GatewayAccountId::parse,
        )?,
        created_gte,
        created_lt,
        starting_after: parsed(
            q.starting_after,
            "starting_after",
            "a payment id",
            PaymentId::parse,
        )?,
    })
}

/// `q` checked and scoped to `access`, as the store's refund filter.
pub fn refund_filter(access: &Access, q: RefundListQuery) -> Result<RefundFilter> {
    let ((amount_gte, amount_lte), (created_gte, created_lt)) =
        ranges((q.amount_gte, q.amount_lte), (q.created_gte, q.created_lt))?;
    let (merchant_id, store_id, terminal_id) =
        scope(access, q.merchant_id, q.store_id, q.terminal_id)?;
    Ok(RefundFilter {
        merchant_id,
        store_id,
        terminal_id,
        payment_id: parsed(q.payment_id, "payment_id", "a payment id", PaymentId::parse)?,
        status: parsed(
            q.status,
            "status",
            "a refund status",
            str::parse::<RefundStatus>,
        )?,
        wallet: wallet(q.wallet)?,
        mode: parsed(q.mode, "mode", "`mpm` or `cpm`", str::parse::<PaymentMode>)?,
        currency: parsed(
            q.currency,
            "currency",
            "an ISO 4217 code",
            Currency::from_code,
        )?,
        amount_gte,
        amount_lte,
        merchant_order_id: text(q.merchant_order_id, "merchant_order_id")?,
        merchant_refund_id: text(q.merchant_refund_id, "merchant_refund_id")?,
        merchant_order_no: text(q.codepay_merchant_order_no, "codepay_merchant_order_no")?,
        trans_no: text(q.codepay_trans_no, "codepay_trans_no")?,
        gateway_account_id: parsed(
            q.gateway_account_id,
            "gateway_account_id",
            "a gateway account id",
            GatewayAccountId::parse,
        )?,
        created_gte,
        created_lt,
        starting_after: parsed(
            q.starting_after,
            "starting_after",
            "a refund id",
            RefundId::parse,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Binding, MerchantCaller};

    fn param_of(e: Error) -> Option<String> {
        e.body().error.param
    }

    #[test]
    fn every_malformed_filter_names_its_param() {
        let cases: Vec<(ListQuery, &str)> = vec![
            (
                ListQuery {
                    merchant_id: Some("x".into()),
                    ..Default::default()
                },
                "merchant_id",
            ),
            (
                ListQuery {
                    store_id: Some("term_01J0000000000000000000000".into()),
                    ..Default::default()
                },
                "store_id",
            ),
            (
                ListQuery {
                    terminal_id: Some("store_x".into()),
                    ..Default::default()
                },
                "terminal_id",
            ),
            (
                ListQuery {
                    status: Some("paid".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                ListQuery {
                    wallet: Some("cash".into()),
                    ..Default::default()
                },
                "wallet",
            ),
            (
                ListQuery {
                    mode: Some("nfc".into()),
                    ..Default::default()
                },
                "mode",
            ),
            (
                ListQuery {
                    currency: Some("dollars".into()),
                    ..Default::default()
                },
                "currency",
            ),
            (
                ListQuery {
                    amount_gte: Some("-1".into()),
                    ..Default::default()
                },
                "amount_gte",
            ),
            (
                ListQuery {
                    amount_gte: Some("10".into()),
                    amount_lte: Some("5".into()),
                    ..Default::default()
                },
                "amount_lte",
            ),
            (
                ListQuery {
                    amount_lte: Some("lots".into()),
                    ..Default::default()
                },
                "amount_lte",
            ),
            (
                ListQuery {
                    created_gte: Some("yesterday".into()),
                    ..Default::default()
                },
                "created_gte",
            ),
            (
                ListQuery {
                    codepay_trans_no: Some(String::new()),
                    ..Default::default()
                },
                "codepay_trans_no",
            ),
            (
                ListQuery {
                    gateway_account_id: Some("gwa".into()),
                    ..Default::default()
                },
                "gateway_account_id",
            ),
            (
                ListQuery {
                    starting_after: Some("ref_x".into()),
                    ..Default::default()
                },
                "starting_after",
            ),
        ];
        for (q, param) in cases {
            let e = payment_filter(&Access::Operator, q).expect_err(param);
            assert_eq!(param_of(e), Some(param.to_owned()));
        }
        let e = refund_filter(
            &Access::Operator,
            RefundListQuery {
                status: Some("canceled".into()),
                ..Default::default()
            },
        )
        .expect_err("a payment status is not a refund status");
        assert_eq!(param_of(e), Some("status".to_owned()));
    }

    #[test]
    fn a_merchant_list_is_its_own_and_a_bound_one_its_stores() {
        let (me, other) = (MerchantId::generate(), MerchantId::generate());
        let store = StoreId::generate();
        let q = || ListQuery {
            merchant_id: Some(other.to_string()),
            ..Default::default()
        };
        let op = payment_filter(&Access::Operator, q()).expect("operator");
        assert_eq!(op.merchant_id.as_ref(), Some(&other));
        let merchant = Access::Merchant(MerchantCaller {
            id: me.clone(),
            binding: None,
        });
        assert_eq!(
            payment_filter(&merchant, q())
                .expect("merchant")
                .merchant_id,
            Some(me.clone())
        );
        let bound = Access::Merchant(MerchantCaller {
            id: me.clone(),
            binding: Some(Binding {
                store_id: store.clone(),
                terminal_id: None,
            }),
        });
        let f = refund_filter(&bound, RefundListQuery::default()).expect("bound");
        assert_eq!((f.merchant_id, f.store_id), (Some(me), Some(store.clone())));
    }
}

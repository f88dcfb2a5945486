//! Refunds: `order.refund.submit`, `order.refund.query`, and the asynchronous settlement.

use crate::clock::format_utc;
use crate::codes::{ErrorKind, GatewayError};
use crate::faults::{FaultKind, REFUND_METHOD};
use crate::fields::{self, Req};
use crate::ledger::{Job, Order, TRANS_TYPE_REFUND};
use crate::notify;
use crate::ops::Ctx;
use crate::sim::{Simulator, State};
use domain::{Money, TransStatus};
use serde_json::{Map, Value, json};

pub(crate) fn submit(
    sim: &Simulator,
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let merchant_order_no = req.req_str("merchant_order_no")?;
    fields::check_order_no("merchant_order_no", merchant_order_no)?;
    let orig_order_no = req.opt_str("orig_merchant_order_no")?;
    let orig_trans_no = req.opt_str("orig_trans_no")?;
    if orig_order_no.is_none() && orig_trans_no.is_none() {
        return Err(ErrorKind::MissingParameter.with("orig_merchant_order_no or orig_trans_no"));
    }
    let currency = fields::currency(req.req_str("price_currency")?)?;
    let amount = refund_amount(&req, currency)?;
    let notify_url = req.opt_str("notify_url")?;
    if let Some(u) = notify_url {
        fields::notify_url(u)?;
    }
    let description = req.opt_str_max("description", 256)?;
    if st.ledger.order_no_taken(ctx.merchant_no, merchant_order_no) {
        return Err(ErrorKind::DuplicateOrderNo.with(merchant_order_no));
    }
    let not_found = || ErrorKind::not_found(orig_trans_no.is_some()).err();
    let orig = st
        .ledger
        .find(ctx.merchant_no, orig_order_no, orig_trans_no)
        .filter(|o| o.is_sale())
        .cloned()
        .ok_or_else(not_found)?;
    let whole_only = st.whole_refunds_only.contains(ctx.merchant_no);
    let total = refunded_total_after(&orig, amount, whole_only)?;
    let refund = Order {
        trans_no: sim.next_number(""),
        app_id: ctx.app_id.to_owned(),
        merchant_no: ctx.merchant_no.to_owned(),
        store_no: orig.store_no.clone(),
        terminal_sn: orig.terminal_sn.clone(),
        merchant_order_no: merchant_order_no.to_owned(),
        trans_type: TRANS_TYPE_REFUND,
        scenario: None,
        pay_method_id: orig.pay_method_id.clone(),
        currency: orig.currency.clone(),
        amount_minor: amount.minor(),
        // Created straight into `0`: the wallet has the refund, the money has not moved yet.
        status: TransStatus::InProgress.code(),
        created_ms: ctx.now_ms,
        end_ms: None,
        expire_virtual_ms: None,
        expire_ms: None,
        qr_code: None,
        notify_url: notify_url.map(str::to_owned),
        description: description.map(str::to_owned),
        attach: None,
        error_code: None,
        error_msg: None,
        orig_trans_no: Some(orig.trans_no.clone()),
        orig_merchant_order_no: Some(orig.merchant_order_no.clone()),
        refunded_minor: 0,
        pay_user_account_id: None,
        pay_channel_trans_no: None,
        fee_minor: Some(0),
    };
    if let Some(o) = st.ledger.orders.get_mut(&orig.trans_no) {
        o.refunded_minor = total;
    }
    // Taken only now that the refund is accepted: a refused submit leaves the fault armed.
    let fails = st
        .faults
        .take_outcome(REFUND_METHOD, FaultKind::RefundFails)
        .is_some();
    let delay = i64::try_from(sim.inner.cfg.refund_settle_ms).unwrap_or(i64::MAX);
    st.ledger.schedule(
        ctx.virtual_ms.saturating_add(delay),
        Job::SettleRefund {
            trans_no: refund.trans_no.clone(),
            fails,
        },
    );
    let data = submit_answer(&refund, &orig, amount);
    st.ledger.insert(refund);
    Ok(data)
}

/// The refund amount. Older samples name it `trans_amount`: take either, refuse two different
/// ones.
fn refund_amount(req: &Req<'_>, currency: domain::Currency) -> Result<Money, GatewayError> {
    match (req.opt_str("order_amount")?, req.opt_str("trans_amount")?) {
        (Some(a), Some(b)) if a != b => {
            Err(ErrorKind::InvalidParameter.with("order_amount and trans_amount differ"))
        }
        (Some(a), _) => fields::amount("order_amount", a, currency),
        (None, Some(b)) => fields::amount("trans_amount", b, currency),
        (None, None) => Err(ErrorKind::MissingParameter.with("order_amount")),
    }
}

/// The original order's refunded total with `amount` added, or why CodePay refuses the refund
/// (not paid, another currency, more than the order or than what is left, a partial refund for
/// a merchant taking whole refunds only).
fn refunded_total_after(
    orig: &Order,
    amount: Money,
    whole_only: bool,
) -> Result<i64, GatewayError> {
    if orig.trans_status() != TransStatus::Succeeded {
        return Err(ErrorKind::OrigNotPaid.err());
    }
    if orig.currency != amount.currency().code() {
        return Err(ErrorKind::CurrencyMismatch.with(&orig.currency));
    }
    if amount.minor() > orig.amount_minor {
        return Err(ErrorKind::RefundExceedsOrder.err());
    }
    if amount.minor() < orig.amount_minor && whole_only {
        return Err(ErrorKind::PartialRefundNotAllowed.err());
    }
    let total = orig
        .refunded_minor
        .checked_add(amount.minor())
        .ok_or_else(|| ErrorKind::InvalidAmount.err())?;
    if total > orig.amount_minor {
        let left = Money::new(orig.amount_minor - orig.refunded_minor, amount.currency())
            .map(|m| m.to_major_string())
            .unwrap_or_default();
        return Err(ErrorKind::RefundTotalExceeded.with(format!("refundable {left}")));
    }
    Ok(total)
}

/// The `data` of an accepted refund submit.
fn submit_answer(refund: &Order, orig: &Order, amount: Money) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("trans_no".into(), json!(refund.trans_no));
    data.insert("merchant_order_no".into(), json!(refund.merchant_order_no));
    data.insert("orig_trans_no".into(), json!(orig.trans_no));
    data.insert(
        "orig_merchant_order_no".into(),
        json!(orig.merchant_order_no),
    );
    data.insert("price_currency".into(), json!(refund.currency));
    data.insert("trans_amount".into(), json!(amount.to_major_string()));
    data.insert("order_amount".into(), json!(amount.to_major_string()));
    data
}

pub(crate) fn query(
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let merchant_order_no = req.opt_str("merchant_order_no")?;
    let trans_no = req.opt_str("trans_no")?;
    if merchant_order_no.is_none() && trans_no.is_none() {
        return Err(ErrorKind::MissingParameter.with("merchant_order_no or trans_no"));
    }
    st.ledger
        .find(ctx.merchant_no, merchant_order_no, trans_no)
        .filter(|o| o.trans_type == TRANS_TYPE_REFUND)
        .map(refund_view)
        .ok_or_else(|| ErrorKind::not_found(trans_no.is_some()).err())
}

/// A refund as `order.refund.query` shows it.
pub(crate) fn refund_view(o: &Order) -> Map<String, Value> {
    let major = |minor: i64| {
        fields::currency(&o.currency)
            .ok()
            .and_then(|c| Money::new(minor, c).ok())
            .map(|m| m.to_major_string())
    };
    let amount = major(o.amount_minor);
    let mut d = Map::new();
    d.insert("trans_no".into(), json!(o.trans_no));
    d.insert("merchant_order_no".into(), json!(o.merchant_order_no));
    d.insert("merchant_no".into(), json!(o.merchant_no));
    d.insert("orig_trans_no".into(), json!(o.orig_trans_no));
    d.insert(
        "orig_merchant_order_no".into(),
        json!(o.orig_merchant_order_no),
    );
    d.insert("trans_type".into(), json!(o.trans_type));
    d.insert("trans_status".into(), json!(o.status));
    d.insert("pay_method_id".into(), json!(o.pay_method_id));
    d.insert("price_currency".into(), json!(o.currency));
    d.insert("order_amount".into(), json!(amount));
    d.insert("trans_amount".into(), json!(amount));
    d.insert("create_time".into(), json!(format_utc(o.created_ms)));
    if let Some(t) = o.end_ms {
        d.insert("trans_end_time".into(), json!(format_utc(t)));
    }
    if let Some(c) = &o.error_code {
        d.insert("trans_error_code".into(), json!(c));
    }
    if let Some(m) = &o.error_msg {
        d.insert("trans_error_msg".into(), json!(m));
    }
    for (k, v) in [("store_no", &o.store_no), ("terminal_sn", &o.terminal_sn)] {
        if let Some(v) = v {
            d.insert(k.into(), json!(v));
        }
    }
    if let Some(fee) = o.fee_minor {
        d.insert("trans_fee_c".into(), json!(major(fee)));
    }
    d
}

/// `trans_error_code`/`trans_error_msg` of a refund failed by the `refund_fails` fault.
pub const REFUND_FAILED: (&str, &str) = ("REFUND_FAILED", "the wallet refused the refund");

/// The wallet answered: `0` → `2` (money returned) or, when `fails`, `0` → `1` with
/// [`REFUND_FAILED`] and the amount no longer counted against the sale; then a notification to
/// the refund's `notify_url`.
pub(crate) fn settle(sim: &Simulator, st: &mut State, trans_no: &str, fails: bool, now_ms: i64) {
    let Some(o) = st.ledger.orders.get_mut(trans_no) else {
        return;
    };
    let moved = if fails {
        o.fail(REFUND_FAILED.0, REFUND_FAILED.1, now_ms)
    } else {
        o.transition(TransStatus::Succeeded, now_ms)
    };
    if moved.is_err() {
        return;
    }
    if fails {
        let (amount, orig) = (o.amount_minor, o.orig_trans_no.clone());
        if let Some(sale) = orig.and_then(|t| st.ledger.orders.get_mut(&t)) {
            sale.refunded_minor = sale.refunded_minor.saturating_sub(amount).max(0);
        }
    }
    notify::enqueue(sim, st, trans_no);
}

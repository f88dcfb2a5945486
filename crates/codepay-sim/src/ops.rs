//! The sale operations of `/api/entry`: MPM QR codes, CPM submissions, queries and revocation,
//! plus the transitions the customer and the timers cause.

use crate::clock::format_utc;
use crate::codes::{ErrorKind, GatewayError};
use crate::fields::{self, Req};
use crate::ledger::{AuthScenario, Job, Order, Scenario, TRANS_TYPE_SALE};
use crate::sim::{Simulator, State};
use crate::{fees, notify, refunds};
use domain::{Money, TransStatus};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};

/// Every `method` the gateway answers.
pub const METHODS: &[&str] = &[
    "cscanb.pay.getqrcode",
    "bscanc.pay.submit",
    "order.refund.submit",
    "order.query",
    "order.refund.query",
    "order.revoker",
];

/// Longest `expires` accepted, seconds.
const MAX_EXPIRES_SECS: u64 = 86_400;

/// Who is calling and when.
pub(crate) struct Ctx<'a> {
    pub app_id: &'a str,
    pub merchant_no: &'a str,
    /// `store_no`, checked to be one of the merchant's stores.
    pub store_no: Option<&'a str>,
    /// `terminal_sn`, checked to be one of that store's terminals.
    pub terminal_sn: Option<&'a str>,
    pub now_ms: i64,
    pub virtual_ms: i64,
}

/// Runs one operation against the books.
pub(crate) fn dispatch(
    sim: &Simulator,
    st: &mut State,
    method: &str,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    match method {
        "cscanb.pay.getqrcode" => get_qr_code(sim, st, req, ctx),
        "bscanc.pay.submit" => submit(sim, st, req, ctx),
        "order.query" => query(sim, st, req, ctx),
        "order.revoker" => revoke(sim, st, req, ctx),
        "order.refund.submit" => refunds::submit(sim, st, req, ctx),
        "order.refund.query" => refunds::query(st, req, ctx),
        other => Err(ErrorKind::UnknownMethod.with(other)),
    }
}

/// The fields every sale has, validated.
struct SaleRequest<'a> {
    merchant_order_no: &'a str,
    amount: Money,
    pay_method_id: Option<&'a str>,
    description: Option<&'a str>,
    notify_url: Option<&'a str>,
    attach: Option<&'a str>,
}

fn sale_request<'a>(
    req: Req<'a>,
    pay_method_required: bool,
) -> Result<SaleRequest<'a>, GatewayError> {
    let merchant_order_no = req.req_str("merchant_order_no")?;
    fields::check_order_no("merchant_order_no", merchant_order_no)?;
    let currency = fields::currency(req.req_str("price_currency")?)?;
    let amount = fields::amount("order_amount", req.req_str("order_amount")?, currency)?;
    let pay_method_id = if pay_method_required {
        Some(req.req_str("pay_method_id")?)
    } else {
        req.opt_str("pay_method_id")?
    };
    if let Some(p) = pay_method_id {
        fields::pay_method(p)?;
    }
    let notify_url = req.opt_str("notify_url")?;
    if let Some(u) = notify_url {
        fields::notify_url(u)?;
    }
    Ok(SaleRequest {
        merchant_order_no,
        amount,
        pay_method_id,
        description: req.opt_str_max("description", 256)?,
        notify_url,
        attach: req.opt_str_max("attach", 512)?,
    })
}

fn new_sale(
    sim: &Simulator,
    ctx: &Ctx<'_>,
    r: &SaleRequest<'_>,
    scenario: Scenario,
    pay_method_id: &str,
) -> Order {
    Order {
        trans_no: sim.next_number(""),
        app_id: ctx.app_id.to_owned(),
        merchant_no: ctx.merchant_no.to_owned(),
        store_no: ctx.store_no.map(str::to_owned),
        terminal_sn: ctx.terminal_sn.map(str::to_owned),
        merchant_order_no: r.merchant_order_no.to_owned(),
        trans_type: TRANS_TYPE_SALE,
        scenario: Some(scenario),
        pay_method_id: pay_method_id.to_owned(),
        currency: r.amount.currency().code().to_owned(),
        amount_minor: r.amount.minor(),
        status: TransStatus::Created.code(),
        created_ms: ctx.now_ms,
        end_ms: None,
        expire_virtual_ms: None,
        expire_ms: None,
        qr_code: None,
        notify_url: r.notify_url.map(str::to_owned),
        description: r.description.map(str::to_owned),
        attach: r.attach.map(str::to_owned),
        error_code: None,
        error_msg: None,
        orig_trans_no: None,
        orig_merchant_order_no: None,
        refunded_minor: 0,
        pay_user_account_id: None,
        pay_channel_trans_no: None,
        fee_minor: None,
    }
}

fn ensure_unused(st: &State, ctx: &Ctx<'_>, merchant_order_no: &str) -> Result<(), GatewayError> {
    if st.ledger.order_no_taken(ctx.merchant_no, merchant_order_no) {
        Err(ErrorKind::DuplicateOrderNo.with(merchant_order_no))
    } else {
        Ok(())
    }
}

fn get_qr_code(
    sim: &Simulator,
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let r = sale_request(req, true)?;
    let expires = req
        .opt_uint("expires")?
        .unwrap_or(sim.inner.cfg.default_expires_secs);
    if !(1..=MAX_EXPIRES_SECS).contains(&expires) {
        return Err(ErrorKind::InvalidParameter
            .with(format!("expires must be 1 to {MAX_EXPIRES_SECS} seconds")));
    }
    ensure_unused(st, ctx, r.merchant_order_no)?;
    let mut order = new_sale(
        sim,
        ctx,
        &r,
        Scenario::Mpm,
        r.pay_method_id.unwrap_or_default(),
    );
    let expires_ms = i64::try_from(expires * 1000).unwrap_or(i64::MAX);
    let token: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    order.qr_code = Some(format!(
        "{}/q/{token}",
        sim.inner.cfg.qr_base_url.trim_end_matches('/')
    ));
    order.expire_virtual_ms = Some(ctx.virtual_ms.saturating_add(expires_ms));
    order.expire_ms = Some(ctx.now_ms.saturating_add(expires_ms));
    st.ledger.schedule(
        ctx.virtual_ms.saturating_add(expires_ms),
        Job::Expire {
            trans_no: order.trans_no.clone(),
        },
    );
    let mut data = Map::new();
    data.insert("trans_no".into(), json!(order.trans_no));
    data.insert("merchant_order_no".into(), json!(order.merchant_order_no));
    data.insert("qrcode_url".into(), json!(order.qr_code));
    data.insert("price_currency".into(), json!(order.currency));
    data.insert("order_amount".into(), json!(r.amount.to_major_string()));
    data.insert("trans_amount".into(), json!(r.amount.to_major_string()));
    data.insert("trans_status".into(), json!(order.status));
    data.insert(
        "expire_time".into(),
        json!(format_utc(ctx.now_ms + expires_ms)),
    );
    st.ledger.insert(order);
    Ok(data)
}

fn submit(
    sim: &Simulator,
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let r = sale_request(req, false)?;
    let auth_code = req.req_str("auth_code")?;
    ensure_unused(st, ctx, r.merchant_order_no)?;
    let code = st
        .ledger
        .auth_codes
        .get(auth_code)
        .cloned()
        .ok_or_else(|| ErrorKind::AuthCodeInvalid.err())?;
    if code.used {
        return Err(ErrorKind::AuthCodeUsed.err());
    }
    if r.pay_method_id.is_some_and(|p| p != code.pay_method_id) {
        return Err(ErrorKind::AuthCodeWrongWallet.with(code.pay_method_id));
    }
    if let Some(c) = st.ledger.auth_codes.get_mut(auth_code) {
        c.used = true;
    }
    let order = new_sale(sim, ctx, &r, Scenario::Cpm, &code.pay_method_id);
    let trans_no = order.trans_no.clone();
    st.ledger.insert(order);
    match code.scenario {
        AuthScenario::Approve => settle_sale(sim, st, &trans_no, ctx.now_ms)?,
        AuthScenario::Decline => fail_sale(
            sim,
            st,
            &trans_no,
            (
                "USER_DECLINED",
                "the customer's wallet declined the payment",
            ),
            ctx.now_ms,
        )?,
        AuthScenario::Pin { succeed } => {
            set_in_progress(st, &trans_no, ctx.now_ms)?;
            let delay = i64::try_from(code.delay_ms).unwrap_or(i64::MAX);
            st.ledger.schedule(
                ctx.virtual_ms.saturating_add(delay),
                Job::FinishPin {
                    trans_no: trans_no.clone(),
                    succeed,
                },
            );
        }
        AuthScenario::NeverSettles => set_in_progress(st, &trans_no, ctx.now_ms)?,
    }
    let order = st
        .ledger
        .orders
        .get(&trans_no)
        .ok_or_else(|| ErrorKind::System.err())?;
    Ok(sale_view(order))
}

fn query(
    sim: &Simulator,
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let trans_no = find_sale(st, req, ctx)?;
    expire_if_due(sim, st, &trans_no, ctx.virtual_ms, ctx.now_ms);
    let order = st
        .ledger
        .orders
        .get(&trans_no)
        .ok_or_else(|| ErrorKind::System.err())?;
    Ok(sale_view(order))
}

fn revoke(
    sim: &Simulator,
    st: &mut State,
    req: Req<'_>,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, GatewayError> {
    let trans_no = find_sale(st, req, ctx)?;
    expire_if_due(sim, st, &trans_no, ctx.virtual_ms, ctx.now_ms);
    let (status, refunded) = st
        .ledger
        .orders
        .get(&trans_no)
        .map(|o| (o.trans_status(), o.refunded_minor))
        .ok_or_else(|| ErrorKind::System.err())?;
    match status {
        TransStatus::Created | TransStatus::InProgress | TransStatus::Unknown(_) => fail_sale(
            sim,
            st,
            &trans_no,
            ("ORDER_CLOSED", "order closed by the merchant"),
            ctx.now_ms,
        )?,
        TransStatus::Succeeded if refunded > 0 => return Err(ErrorKind::RevokeRefunded.err()),
        TransStatus::Succeeded => {
            if let Some(o) = st.ledger.orders.get_mut(&trans_no) {
                o.transition(TransStatus::Canceled, ctx.now_ms)?;
            }
            notify::enqueue(sim, st, &trans_no);
        }
        // Already final: revoking again is harmless, as a retried reversal must be.
        TransStatus::Failed | TransStatus::Canceled => {}
    }
    let order = st
        .ledger
        .orders
        .get(&trans_no)
        .ok_or_else(|| ErrorKind::System.err())?;
    let mut data = Map::new();
    data.insert("trans_no".into(), json!(order.trans_no));
    data.insert("merchant_order_no".into(), json!(order.merchant_order_no));
    data.insert("trans_status".into(), json!(order.status));
    Ok(data)
}

/// The sale a query or revocation names by `merchant_order_no` or `trans_no`.
fn find_sale(st: &State, req: Req<'_>, ctx: &Ctx<'_>) -> Result<String, GatewayError> {
    let merchant_order_no = req.opt_str("merchant_order_no")?;
    let trans_no = req.opt_str("trans_no")?;
    if merchant_order_no.is_none() && trans_no.is_none() {
        return Err(ErrorKind::MissingParameter.with("merchant_order_no or trans_no"));
    }
    st.ledger
        .find(ctx.merchant_no, merchant_order_no, trans_no)
        .filter(|o| o.is_sale())
        .map(|o| o.trans_no.clone())
        .ok_or_else(|| ErrorKind::not_found(trans_no.is_some()).err())
}

/// A sale as `order.query` shows it.
pub(crate) fn sale_view(o: &Order) -> Map<String, Value> {
    let mut d = Map::new();
    let major = |minor: i64| {
        fields::currency(&o.currency)
            .ok()
            .and_then(|c| Money::new(minor, c).ok())
            .map(|m| m.to_major_string())
    };
    d.insert("trans_no".into(), json!(o.trans_no));
    d.insert("merchant_order_no".into(), json!(o.merchant_order_no));
    d.insert("merchant_no".into(), json!(o.merchant_no));
    d.insert("trans_type".into(), json!(o.trans_type));
    d.insert("trans_status".into(), json!(o.status));
    d.insert("pay_method_id".into(), json!(o.pay_method_id));
    let scenario = match o.scenario {
        Some(Scenario::Cpm) => "BSCANQR_PAY",
        _ => "SCANQR_PAY",
    };
    d.insert("pay_scenario".into(), json!(scenario));
    d.insert("price_currency".into(), json!(o.currency));
    d.insert("order_amount".into(), json!(major(o.amount_minor)));
    d.insert("trans_amount".into(), json!(major(o.amount_minor)));
    if matches!(
        o.trans_status(),
        TransStatus::Succeeded | TransStatus::Canceled
    ) {
        d.insert("paid_amount".into(), json!(major(o.amount_minor)));
        d.insert("refund_amount".into(), json!(major(o.refunded_minor)));
    }
    d.insert("create_time".into(), json!(format_utc(o.created_ms)));
    if let Some(t) = o.end_ms {
        d.insert("trans_end_time".into(), json!(format_utc(t)));
    }
    if let Some(t) = o.expire_ms {
        d.insert("expire_time".into(), json!(format_utc(t)));
    }
    let optional = [
        ("qrcode_url", &o.qr_code),
        ("pay_user_account_id", &o.pay_user_account_id),
        ("pay_channel_trans_no", &o.pay_channel_trans_no),
        ("trans_error_code", &o.error_code),
        ("trans_error_msg", &o.error_msg),
        ("attach", &o.attach),
        ("store_no", &o.store_no),
        ("terminal_sn", &o.terminal_sn),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            d.insert(k.into(), json!(v));
        }
    }
    if let Some(fee) = o.fee_minor {
        d.insert("trans_fee_c".into(), json!(major(fee)));
    }
    d
}

fn set_in_progress(st: &mut State, trans_no: &str, now_ms: i64) -> Result<(), GatewayError> {
    let o = st
        .ledger
        .orders
        .get_mut(trans_no)
        .ok_or_else(|| ErrorKind::OrderNotFound.err())?;
    o.transition(TransStatus::InProgress, now_ms)
}

/// The wallet paid: `9`/`0` → `2`, then a notification.
pub(crate) fn settle_sale(
    sim: &Simulator,
    st: &mut State,
    trans_no: &str,
    now_ms: i64,
) -> Result<(), GatewayError> {
    let channel_no = sim.next_number("W");
    let State {
        ledger, merchants, ..
    } = st;
    let o = ledger
        .orders
        .get_mut(trans_no)
        .ok_or_else(|| ErrorKind::OrderNotFound.err())?;
    o.transition(TransStatus::Succeeded, now_ms)?;
    let fee_bps = merchants
        .get(&o.merchant_no)
        .and_then(|m| m.fee_bps)
        .unwrap_or(sim.inner.cfg.default_fee_bps);
    let amount = fields::currency(&o.currency)
        .ok()
        .and_then(|c| Money::new(o.amount_minor, c).ok());
    o.fee_minor = amount.map(|a| fees::fee(a, fee_bps).minor());
    let user: u32 = rand::rng().random_range(0..10_000);
    o.pay_user_account_id = Some(format!("sandbox***{user:04}"));
    o.pay_channel_trans_no = Some(channel_no);
    notify::enqueue(sim, st, trans_no);
    Ok(())
}

/// The order closed or failed: `9`/`0` → `1` with a reason, then a notification.
pub(crate) fn fail_sale(
    sim: &Simulator,
    st: &mut State,
    trans_no: &str,
    (code, msg): (&str, &str),
    now_ms: i64,
) -> Result<(), GatewayError> {
    let o = st
        .ledger
        .orders
        .get_mut(trans_no)
        .ok_or_else(|| ErrorKind::OrderNotFound.err())?;
    o.fail(code, msg, now_ms)?;
    notify::enqueue(sim, st, trans_no);
    Ok(())
}

/// Closes an unpaid MPM order whose expiry has passed on the scheduling clock. Checked lazily on
/// every read as well as by the timer, so a jump of the clock takes effect at once.
pub(crate) fn expire_if_due(
    sim: &Simulator,
    st: &mut State,
    trans_no: &str,
    virtual_ms: i64,
    now_ms: i64,
) {
    let due = st.ledger.orders.get(trans_no).is_some_and(|o| {
        !o.trans_status().is_final() && o.expire_virtual_ms.is_some_and(|e| e <= virtual_ms)
    });
    if due {
        let _ = fail_sale(
            sim,
            st,
            trans_no,
            ("ORDER_EXPIRED", "order expired before it was paid"),
            now_ms,
        );
    }
}

//! The control API under `/sim/`: the customer's wallet, registration, faults, the ledger and
//! the clock. Plain JSON; errors as `{"error": "..."}` with a 4xx status.

use crate::clock::{MAX_TIME_SCALE, format_utc};
use crate::faults::Fault;
use crate::ledger::{AuthCode, AuthScenario, TRANS_TYPE_REFUND};
use crate::ops;
use crate::refunds::refund_view;
use crate::sim::Simulator;
use actix_web::{HttpResponse, web};
use domain::{TransStatus, Wallet};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

fn error(status: actix_web::http::StatusCode, msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": msg.to_string() }))
}

fn bad_request(msg: impl std::fmt::Display) -> HttpResponse {
    error(actix_web::http::StatusCode::BAD_REQUEST, msg)
}

/// `POST /sim/apps` body.
#[derive(Deserialize)]
pub(crate) struct NewApp {
    app_id: Option<String>,
    public_key: String,
}

pub(crate) async fn register_app(
    sim: web::Data<Simulator>,
    body: web::Json<NewApp>,
) -> HttpResponse {
    match sim.register_app(body.app_id.as_deref(), &body.public_key) {
        Ok(app_id) => HttpResponse::Ok().json(json!({ "app_id": app_id })),
        Err(e) => bad_request(e),
    }
}

pub(crate) async fn list_apps(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "apps": sim.app_ids() }))
}

/// `POST /sim/merchants` body.
#[derive(Deserialize, Default)]
pub(crate) struct NewMerchant {
    merchant_no: Option<String>,
    store_no: Option<String>,
}

pub(crate) async fn register_merchant(
    sim: web::Data<Simulator>,
    body: Option<web::Json<NewMerchant>>,
) -> HttpResponse {
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    match sim.register_merchant(body.merchant_no.as_deref(), body.store_no.as_deref()) {
        Ok(m) => HttpResponse::Ok().json(m),
        Err(e) => bad_request(e),
    }
}

pub(crate) async fn list_merchants(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "merchants": sim.merchants() }))
}

pub(crate) async fn gateway_key(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(sim.gateway_public_key_pem())
}

/// `POST /sim/mpm/{action}` body.
#[derive(Deserialize)]
pub(crate) struct QrAction {
    qr_code: String,
}

/// What the wallet does with a scanned MPM code.
#[derive(Clone, Copy)]
pub(crate) enum WalletAction {
    /// Customer opened the code and is confirming: `9` → `0`.
    Scan,
    /// Customer paid: → `2`.
    Pay,
    /// Customer refused: → `1`.
    Decline,
}

pub(crate) async fn mpm(
    sim: web::Data<Simulator>,
    action: WalletAction,
    body: web::Json<QrAction>,
) -> HttpResponse {
    sim.start();
    let now_ms = sim.inner.clock.now_ms();
    let now_virtual = sim.inner.clock.virtual_ms();
    let res = {
        let mut st = sim.inner.state.lock();
        let Some(trans_no) = st.ledger.by_qr.get(&body.qr_code).cloned() else {
            return error(actix_web::http::StatusCode::NOT_FOUND, "unknown qr_code");
        };
        ops::expire_if_due(&sim, &mut st, &trans_no, now_virtual, now_ms);
        let res = match action {
            WalletAction::Pay => ops::settle_sale(&sim, &mut st, &trans_no, now_ms),
            WalletAction::Decline => ops::fail_sale(
                &sim,
                &mut st,
                &trans_no,
                ("USER_DECLINED", "the customer declined the payment"),
                now_ms,
            ),
            WalletAction::Scan => st
                .ledger
                .orders
                .get_mut(&trans_no)
                .map_or(Ok(()), |o| o.transition(TransStatus::InProgress, now_ms)),
        };
        let view = st.ledger.orders.get(&trans_no).map(ops::sale_view);
        res.map(|()| view)
    };
    sim.changed();
    match res {
        Ok(view) => HttpResponse::Ok().json(view),
        Err(e) => error(actix_web::http::StatusCode::CONFLICT, e.msg),
    }
}

/// `POST /sim/auth-codes` body.
#[derive(Deserialize)]
pub(crate) struct NewAuthCode {
    scenario: String,
    delay_ms: Option<u64>,
    then: Option<String>,
    pay_method_id: Option<String>,
}

/// First digits of real payment codes per wallet, so codes look like what a scanner reads.
const AUTH_CODE_PREFIXES: &[(&str, &str)] = &[
    ("Alipay", "28"),
    ("Alipay+", "28"),
    ("WeChatPay", "13"),
    ("UnionPay", "62"),
];

pub(crate) async fn new_auth_code(
    sim: web::Data<Simulator>,
    body: web::Json<NewAuthCode>,
) -> HttpResponse {
    let pin_outcome = match body.then.as_deref() {
        None | Some("success") => true,
        Some("fail" | "failure") => false,
        Some(other) => return bad_request(format!("then must be success or fail, got {other:?}")),
    };
    let scenario = match body.scenario.as_str() {
        "approve" => AuthScenario::Approve,
        "pin" => AuthScenario::Pin {
            succeed: pin_outcome,
        },
        "pin_fail" => AuthScenario::Pin { succeed: false },
        "decline" => AuthScenario::Decline,
        "never_settles" => AuthScenario::NeverSettles,
        other => {
            return bad_request(format!(
                "scenario must be approve, pin, pin_fail, decline or never_settles, got {other:?}"
            ));
        }
    };
    let pay_method_id = body
        .pay_method_id
        .clone()
        .unwrap_or_else(|| "Alipay".into());
    if Wallet::from_pay_method_id(&pay_method_id).is_err() {
        return bad_request(format!("unknown pay_method_id {pay_method_id:?}"));
    }
    let prefix = AUTH_CODE_PREFIXES
        .iter()
        .find(|(w, _)| *w == pay_method_id)
        .map_or("99", |(_, p)| p);
    let mut st = sim.inner.state.lock();
    let code = loop {
        let candidate = format!(
            "{prefix}{:016}",
            rand::rng().random_range(0..10_000_000_000_000_000u64)
        );
        if !st.ledger.auth_codes.contains_key(&candidate) {
            break candidate;
        }
    };
    st.ledger.auth_codes.insert(
        code.clone(),
        AuthCode {
            scenario,
            delay_ms: body.delay_ms.unwrap_or(sim.inner.cfg.pin_delay_ms),
            pay_method_id: pay_method_id.clone(),
            used: false,
        },
    );
    drop(st);
    sim.changed();
    HttpResponse::Ok().json(json!({
        "auth_code": code,
        "scenario": body.scenario,
        "pay_method_id": pay_method_id,
    }))
}

pub(crate) async fn add_fault(sim: web::Data<Simulator>, body: web::Json<Fault>) -> HttpResponse {
    let fault = body.into_inner();
    match sim.inner.state.lock().faults.add(fault.clone()) {
        Ok(()) => HttpResponse::Ok().json(fault),
        Err(e) => bad_request(e),
    }
}

pub(crate) async fn list_faults(sim: web::Data<Simulator>) -> HttpResponse {
    let faults = sim.inner.state.lock().faults.list().to_vec();
    HttpResponse::Ok().json(json!({ "faults": faults }))
}

pub(crate) async fn clear_faults(sim: web::Data<Simulator>) -> HttpResponse {
    sim.inner.state.lock().faults.clear();
    HttpResponse::Ok().json(json!({ "faults": [] }))
}

/// `GET /sim/orders` filters.
#[derive(Deserialize)]
pub(crate) struct OrderFilter {
    merchant_no: Option<String>,
    merchant_order_no: Option<String>,
}

pub(crate) async fn orders(sim: web::Data<Simulator>, q: web::Query<OrderFilter>) -> HttpResponse {
    let st = sim.inner.state.lock();
    let list: Vec<Value> = st
        .ledger
        .orders
        .values()
        .filter(|o| q.merchant_no.as_ref().is_none_or(|m| *m == o.merchant_no))
        .filter(|o| {
            q.merchant_order_no
                .as_ref()
                .is_none_or(|m| *m == o.merchant_order_no)
        })
        .map(|o| {
            let mut v = if o.trans_type == TRANS_TYPE_REFUND {
                refund_view(o)
            } else {
                ops::sale_view(o)
            };
            v.insert("amount_minor".into(), json!(o.amount_minor));
            v.insert("refunded_minor".into(), json!(o.refunded_minor));
            v.insert("app_id".into(), json!(o.app_id));
            Value::Object(v)
        })
        .collect();
    HttpResponse::Ok().json(json!({ "orders": list }))
}

/// `GET /sim/notifications` filter.
#[derive(Deserialize)]
pub(crate) struct NotificationFilter {
    trans_no: Option<String>,
}

pub(crate) async fn notifications(
    sim: web::Data<Simulator>,
    q: web::Query<NotificationFilter>,
) -> HttpResponse {
    let st = sim.inner.state.lock();
    let list: Vec<_> = st
        .attempts
        .iter()
        .filter(|a| q.trans_no.as_ref().is_none_or(|t| *t == a.trans_no))
        .cloned()
        .collect();
    HttpResponse::Ok().json(json!({ "attempts": list }))
}

/// `POST /sim/clock` body.
#[derive(Deserialize)]
pub(crate) struct ClockChange {
    time_scale: Option<u32>,
    advance_seconds: Option<i64>,
}

pub(crate) async fn set_clock(
    sim: web::Data<Simulator>,
    body: web::Json<ClockChange>,
) -> HttpResponse {
    sim.start();
    if let Some(scale) = body.time_scale {
        if !(1..=MAX_TIME_SCALE).contains(&scale) {
            return bad_request(format!("time_scale must be 1 to {MAX_TIME_SCALE}"));
        }
        sim.set_time_scale(scale);
    }
    if let Some(secs) = body.advance_seconds {
        sim.advance_clock(secs);
    }
    get_clock(sim).await
}

pub(crate) async fn get_clock(sim: web::Data<Simulator>) -> HttpResponse {
    let c = &sim.inner.clock;
    HttpResponse::Ok().json(json!({
        "time_scale": c.scale(),
        "now_ms": c.now_ms(),
        "now": format_utc(c.now_ms()),
        "offset_ms": c.offset_ms(),
    }))
}

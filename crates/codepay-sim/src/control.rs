//! The control API under `/sim/`: the customer's wallet, registration, faults, the ledger and
//! the clock. Plain JSON; errors as `{"error": "..."}` with a 4xx status.

use crate::actions::WalletAction;
use crate::clock::{MAX_TIME_SCALE, format_utc};
use crate::config::MerchantConfig;
use crate::error::SimError;
use crate::faults::Fault;
use crate::ledger::{AuthScenario, TRANS_TYPE_REFUND};
use crate::ops;
use crate::refunds::refund_view;
use crate::sim::Simulator;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn error(status: actix_web::http::StatusCode, msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": msg.to_string() }))
}

fn bad_request(msg: impl std::fmt::Display) -> HttpResponse {
    error(actix_web::http::StatusCode::BAD_REQUEST, msg)
}

/// A refused registration: 404 for a merchant or store the gateway does not know, 400 else.
fn refused(e: SimError) -> HttpResponse {
    match e {
        SimError::UnknownMerchant(_) | SimError::UnknownStore { .. } => {
            error(actix_web::http::StatusCode::NOT_FOUND, e)
        }
        e => bad_request(e),
    }
}

/// A body that may be left out (an empty body reads as `T::default()`), but that is refused
/// like a malformed JSON body ([`BadBody`]) when it is there and does not parse: an
/// `Option<web::Json<_>>` would quietly read a malformed body as absent and register something
/// the caller did not ask for.
fn optional_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, BadBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| BadBody(format!("Json deserialize error: {e}")))
}

/// A control request body that does not parse: 400 with `{"error": …}`.
#[derive(Debug)]
pub(crate) struct BadBody(pub(crate) String);

impl std::fmt::Display for BadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl actix_web::ResponseError for BadBody {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        bad_request(&self.0)
    }
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
#[serde(deny_unknown_fields)]
pub(crate) struct NewMerchant {
    merchant_no: Option<String>,
    store_no: Option<String>,
    /// Fee rate, basis points; absent: the default for a new merchant, unchanged for a known one.
    fee_bps: Option<u32>,
    /// `false`: the merchant's refunds must be whole (`E04132`); absent keeps the current
    /// setting (allowed for a new merchant).
    partial_refunds: Option<bool>,
}

/// A merchant as the control API shows it.
fn merchant_view(sim: &Simulator, m: &MerchantConfig) -> Value {
    json!({
        "merchant_no": m.merchant_no,
        "store_no": m.store_no,
        "fee_bps": m.fee_bps,
        "partial_refunds": sim.partial_refunds(&m.merchant_no),
    })
}

pub(crate) async fn register_merchant(
    sim: web::Data<Simulator>,
    body: web::Bytes,
) -> Result<HttpResponse, BadBody> {
    let body: NewMerchant = optional_body(&body)?;
    let registered = sim
        .register_merchant_with_fee(
            body.merchant_no.as_deref(),
            body.store_no.as_deref(),
            body.fee_bps,
        )
        .and_then(|m| match body.partial_refunds {
            Some(allowed) => sim.set_partial_refunds(&m.merchant_no, allowed).map(|()| m),
            None => Ok(m),
        });
    Ok(match registered {
        Ok(m) => HttpResponse::Ok().json(merchant_view(&sim, &m)),
        Err(e) => bad_request(e),
    })
}

/// `PATCH /sim/merchants/{merchant_no}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MerchantChange {
    fee_bps: u32,
}

pub(crate) async fn change_merchant(
    sim: web::Data<Simulator>,
    merchant_no: web::Path<String>,
    body: web::Json<MerchantChange>,
) -> HttpResponse {
    if let Err(e) = sim.set_fee_bps(&merchant_no, body.fee_bps) {
        return refused(e);
    }
    match sim
        .merchants()
        .iter()
        .find(|m| m.merchant_no == *merchant_no)
    {
        Some(m) => HttpResponse::Ok().json(merchant_view(&sim, m)),
        None => refused(SimError::UnknownMerchant(merchant_no.into_inner())),
    }
}

/// `POST /sim/merchants/{merchant_no}/stores` body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewStore {
    store_no: Option<String>,
}

pub(crate) async fn register_store(
    sim: web::Data<Simulator>,
    merchant_no: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, BadBody> {
    let body: NewStore = optional_body(&body)?;
    Ok(
        match sim.register_store(&merchant_no, body.store_no.as_deref()) {
            Ok(store_no) => HttpResponse::Ok().json(json!({
                "merchant_no": merchant_no.as_str(),
                "store_no": store_no,
            })),
            Err(e) => refused(e),
        },
    )
}

/// `POST /sim/merchants/{merchant_no}/stores/{store_no}/terminals` body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTerminal {
    terminal_sn: Option<String>,
}

pub(crate) async fn register_terminal(
    sim: web::Data<Simulator>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, BadBody> {
    let body: NewTerminal = optional_body(&body)?;
    let (merchant_no, store_no) = path.into_inner();
    Ok(
        match sim.register_terminal(&merchant_no, &store_no, body.terminal_sn.as_deref()) {
            Ok(terminal_sn) => HttpResponse::Ok().json(json!({
                "merchant_no": merchant_no,
                "store_no": store_no,
                "terminal_sn": terminal_sn,
            })),
            Err(e) => refused(e),
        },
    )
}

pub(crate) async fn list_merchants(sim: web::Data<Simulator>) -> HttpResponse {
    let list: Vec<Value> = sim
        .merchants()
        .iter()
        .map(|m| merchant_view(&sim, m))
        .collect();
    HttpResponse::Ok().json(json!({ "merchants": list }))
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

pub(crate) async fn mpm(
    sim: web::Data<Simulator>,
    action: WalletAction,
    body: web::Json<QrAction>,
) -> HttpResponse {
    match sim.mpm_action(&body.qr_code, action) {
        Ok(view) => HttpResponse::Ok().json(view),
        Err(SimError::UnknownQrCode) => {
            error(actix_web::http::StatusCode::NOT_FOUND, "unknown qr_code")
        }
        Err(e) => error(actix_web::http::StatusCode::CONFLICT, e),
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
    let pay_method_id = body.pay_method_id.as_deref().unwrap_or("Alipay");
    match sim.new_auth_code(scenario, Some(pay_method_id), body.delay_ms) {
        Ok(code) => HttpResponse::Ok().json(json!({
            "auth_code": code.expose(),
            "scenario": body.scenario,
            "pay_method_id": pay_method_id,
        })),
        Err(e) => bad_request(e),
    }
}

pub(crate) async fn add_fault(sim: web::Data<Simulator>, body: web::Json<Fault>) -> HttpResponse {
    let fault = body.into_inner();
    match sim.add_fault(fault.clone()) {
        Ok(()) => HttpResponse::Ok().json(fault),
        Err(e) => bad_request(e),
    }
}

pub(crate) async fn list_faults(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "faults": sim.faults() }))
}

pub(crate) async fn clear_faults(sim: web::Data<Simulator>) -> HttpResponse {
    sim.clear_faults();
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
            v.insert("fee_minor".into(), json!(o.fee_minor));
            v.insert("store_no".into(), json!(o.store_no));
            v.insert("terminal_sn".into(), json!(o.terminal_sn));
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

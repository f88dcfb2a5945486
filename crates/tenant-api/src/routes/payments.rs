//! `/v1/payments…` and `/v1/refunds…`: thin handlers that parse, authorise, call the engine
//! and render.
//!
//! Every handler reads the payment or refund it acts on through [`visible_payment`] or
//! [`visible_refund`], which apply the caller's [`Access`]: another merchant's object, or one
//! beyond a store- or terminal-bound credential's binding, is a 404 like a missing one.
//! Operators read any merchant's payments and refunds (and search them) but create nothing.

use crate::AppState;
use crate::auth::{Access, MerchantCaller, Principal};
use crate::error::{Error, Result};
use crate::idempotency::Attempt;
use crate::{idempotency, json};
use ::payments::create::{CreateOnce, NewPayment};
use ::payments::idempotency::IdempotentCreate;
use ::payments::model::{Location, Payment, Refund};
use ::payments::objects::{PaymentObject, RefundObject};
use ::payments::ports::{PaymentFilter, RefundFilter};
use ::payments::refunds::NewRefund;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::{Currency, PaymentId, PaymentMode, RefundId, Secret, Wallet};
use serde::Deserialize;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use super::params::{IdempotencyKey, PaymentPath, RefundPath};
use super::responses::{
    Authenticated, BadQuery, Conflict, Idempotent, JsonBody, Lookup, Refused, Upstream,
};
use super::schemas::{
    CreatePaymentBody, CurrencyCode, PaymentModeName, StoreIdText, TerminalIdText, WalletName,
};

/// Longest `?wait=` a POS may block on create.
const MAX_WAIT_SECS: u64 = 60;

/// `POST /v1/payments` body. `Debug` is written by hand: the CPM `auth_code` is a bearer
/// credential for the customer's wallet and must never reach a log line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    /// `mpm` or `cpm`.
    #[schema(value_type = PaymentModeName)]
    pub mode: String,
    /// Positive integer, minor units of `currency`.
    #[schema(minimum = 1, maximum = 9223372036854775807i64)]
    pub amount: i64,
    /// ISO 4217; defaults to the merchant's currency.
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    /// Your unique reference: 1 to 64 bytes (of UTF-8), no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub merchant_order_id: String,
    /// The wallet the customer pays with.
    #[schema(value_type = WalletName)]
    pub wallet: String,
    /// Shown to the customer: at most 256 bytes (of UTF-8).
    #[schema(max_length = 256)]
    pub description: Option<String>,
    /// CPM: the customer's wallet code.
    pub auth_code: Option<String>,
    /// MPM: seconds until the QR expires.
    pub expires_in: Option<i64>,
    /// Your key/value data: at most 50 keys and 8 KB as JSON.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The store it is taken at (`store_…`; filled in for a store- or terminal-bound credential).
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<String>,
    /// The terminal it is taken at (`term_…`; implies its store; filled in for a terminal-bound
    /// credential).
    #[schema(value_type = Option<TerminalIdText>)]
    pub terminal_id: Option<String>,
}

impl std::fmt::Debug for CreatePaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatePaymentRequest")
            .field("mode", &self.mode)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("merchant_order_id", &self.merchant_order_id)
            .field("wallet", &self.wallet)
            .field("description", &self.description)
            .field("auth_code", &self.auth_code.as_ref().map(|_| "***"))
            .field("expires_in", &self.expires_in)
            .field("metadata", &self.metadata.as_ref().map(|m| m.len()))
            .field("store_id", &self.store_id)
            .field("terminal_id", &self.terminal_id)
            .finish()
    }
}

/// Query of `POST /v1/payments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// Block up to N seconds for a final state (more than 60 waits 60).
    #[param(schema_with = wait_schema)]
    pub wait: Option<u64>,
}

/// `wait` as documented: any `u64`, of which at most [`MAX_WAIT_SECS`] are waited.
fn wait_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .description(Some(format!(
            "Block up to this many seconds for a final state (more than {MAX_WAIT_SECS} wait \
             {MAX_WAIT_SECS})."
        )))
        .minimum(Some(0))
        .maximum(Some(u64::MAX))
        .build()
}

pub use super::search::{ListQuery, RefundListQuery};

pub use super::list::List;
use super::list::{page_limit, split_page};

/// `POST /v1/payments/{id}/refunds` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// Minor units; omitted means everything still refundable.
    #[schema(minimum = 1, maximum = 9223372036854775807i64)]
    pub amount: Option<i64>,
    /// Your unique reference: 1 to 64 bytes (of UTF-8), no control characters, not starting
    /// with `late_success_` (payfac's automatic refunds).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^(?!late_success_)[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub merchant_refund_id: String,
    /// Why.
    pub reason: Option<String>,
}

fn parse_payment_id(id: &str) -> Result<PaymentId> {
    // A malformed id is "no such payment", like a foreign one.
    PaymentId::parse(id).map_err(|_| Error::not_found("payment", id))
}

/// The payment `id` (as given) if `access` sees it: every payment route reads through here, so
/// none can forget the merchant or the binding. Anything else is a 404 like a missing one.
pub(crate) async fn visible_payment(
    state: &AppState,
    access: &Access,
    id: &str,
) -> Result<Payment> {
    match state.engine.store().payment(&parse_payment_id(id)?).await? {
        Some(p) if access.sees(&p.merchant_id, p.store_id.as_ref(), p.terminal_id.as_ref()) => {
            Ok(p)
        }
        _ => Err(Error::not_found("payment", id)),
    }
}

/// The refund `id` (as given) if `access` sees it (see [`visible_payment`]).
pub(crate) async fn visible_refund(state: &AppState, access: &Access, id: &str) -> Result<Refund> {
    let missing = || Error::not_found("refund", id);
    let rid = RefundId::parse(id).map_err(|_| missing())?;
    match state.engine.store().refund(&rid).await? {
        Some(r) if access.sees(&r.merchant_id, r.store_id.as_ref(), r.terminal_id.as_ref()) => {
            Ok(r)
        }
        _ => Err(missing()),
    }
}

/// Where a payment of `caller` is taken: the store and terminal the request names, filled in
/// from a bound credential's binding. A bound credential naming another store (or, bound to a
/// terminal, another terminal; or, bound to a store, a terminal elsewhere) is refused with 403
/// `credential_bound`. A missing or foreign store or terminal is a 404; a disabled one is 422
/// `store_disabled` / `terminal_disabled`.
async fn payment_location(
    state: &AppState,
    caller: &MerchantCaller,
    store_id: Option<String>,
    terminal_id: Option<String>,
) -> Result<Option<Location>> {
    let (store_id, terminal_id) = match &caller.binding {
        None => (store_id, terminal_id),
        Some(b) => {
            if let Some(s) = store_id.as_deref().filter(|s| *s != b.store_id.as_str()) {
                return Err(b.refusal(&format!("store {s}")));
            }
            if let (Some(bound), Some(t)) = (&b.terminal_id, terminal_id.as_deref())
                && t != bound.as_str()
            {
                return Err(b.refusal(&format!("terminal {t}")));
            }
            let terminal = terminal_id.or_else(|| b.terminal_id.as_ref().map(|t| t.to_string()));
            // A terminal named by a store-bound credential implies its store: checked below.
            let store = store_id.or_else(|| terminal.is_none().then(|| b.store_id.to_string()));
            (store, terminal)
        }
    };
    if store_id.is_none() && terminal_id.is_none() {
        return Ok(None);
    }
    let locations = crate::locations::locations(state)?;
    let Some((store, terminal)) = crate::locations::resolve(
        locations,
        &caller.id,
        store_id.as_deref(),
        terminal_id.as_deref(),
    )
    .await?
    else {
        return Ok(None);
    };
    if let Some(b) = &caller.binding
        && !b.covers(Some(&store.id), terminal.as_ref().map(|t| &t.id))
    {
        return Err(b.refusal(&format!("store {}", store.id)));
    }
    if !store.enabled {
        return Err(Error::unprocessable(
            "store_disabled",
            format!("store {} is disabled", store.id),
            Some("store_id"),
        ));
    }
    if let Some(t) = terminal.as_ref().filter(|t| !t.enabled) {
        return Err(Error::unprocessable(
            "terminal_disabled",
            format!("terminal {} is disabled", t.id),
            Some("terminal_id"),
        ));
    }
    Ok(Some(Location {
        store_no: store.store_no,
        store_id: store.id,
        terminal_id: terminal.as_ref().map(|t| t.id.clone()),
        terminal_sn: terminal.map(|t| t.terminal_sn),
    }))
}

fn to_new_payment(body: CreatePaymentRequest) -> Result<NewPayment> {
    let mode = body.mode.parse::<PaymentMode>().map_err(|_| {
        Error::invalid(
            "parameter_invalid",
            "mode must be `mpm` or `cpm`",
            Some("mode"),
        )
    })?;
    let currency = body
        .currency
        .as_deref()
        .map(Currency::from_code)
        .transpose()
        .map_err(|_| {
            Error::invalid(
                "currency_unsupported",
                "currency must be an ISO 4217 code such as USD",
                Some("currency"),
            )
        })?;
    let wallet = Wallet::from_name(&body.wallet).map_err(|_| {
        let known: Vec<_> = Wallet::all().map(|w| w.name()).collect();
        Error::invalid(
            "wallet_unsupported",
            format!("unknown wallet; use one of {}", known.join(", ")),
            Some("wallet"),
        )
    })?;
    let metadata = body.metadata.unwrap_or_default();
    if metadata.len() > 50
        || serde_json::to_string(&metadata)
            .map(|s| s.len())
            .unwrap_or(0)
            > 8192
    {
        return Err(Error::invalid(
            "parameter_invalid",
            "metadata is limited to 50 keys and 8 KB",
            Some("metadata"),
        ));
    }
    if body.description.as_ref().is_some_and(|d| d.len() > 256) {
        return Err(Error::invalid(
            "parameter_invalid",
            "description is limited to 256 bytes",
            Some("description"),
        ));
    }
    if mode == PaymentMode::Mpm && body.auth_code.is_some() {
        return Err(Error::invalid(
            "parameter_invalid",
            "auth_code is only for cpm payments",
            Some("auth_code"),
        ));
    }
    Ok(NewPayment {
        mode,
        amount_minor: body.amount,
        currency,
        merchant_order_id: body.merchant_order_id,
        wallet,
        description: body.description,
        auth_code: body.auth_code.map(Secret::new),
        expires_in: body.expires_in,
        metadata: serde_json::Value::Object(metadata),
        location: None,
    })
}

/// Create a payment (MPM or CPM).
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body = CreatePaymentBody, params(CreateQuery, IdempotencyKey),
    responses((status = 201, description = "The payment.", body = PaymentObject), Authenticated,
        JsonBody, BadQuery, Lookup, Idempotent, Conflict, Refused, Upstream),
    security(("bearer" = [])))]
pub async fn create_payment(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<CreateQuery>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let caller = principal.caller("payments:write")?;
    let merchant_id = caller.id.clone();
    let mut request = json::parse::<CreatePaymentRequest>(&body)?;
    let (store_id, terminal_id) = (request.store_id.take(), request.terminal_id.take());
    let mut parsed = to_new_payment(request)?;
    parsed.location = payment_location(&state, &caller, store_id, terminal_id).await?;
    let wait = query.wait.unwrap_or(0).min(MAX_WAIT_SECS);
    let scope = caller.idempotency_scope(merchant_id.as_str());
    if wait == 0
        && state.engine.folds_idempotency()
        && let Some(key) = idempotency::key_of(&req)?
        && let Some(merchant) = state.accounts.merchant(&merchant_id).await.ok().flatten()
    {
        let once = IdempotentCreate {
            scope: scope.clone(),
            key: key.clone(),
            fingerprint: idempotency::fingerprint(req.method().as_str(), req.path(), &body),
        };
        match state
            .engine
            .create_payment_once(&merchant.profile(), parsed.clone(), &once)
            .await
        {
            CreateOnce::Claimed { result, stored } => {
                let outcome = match *result {
                    Ok(p) => json::value(&state.engine.payment_object(&p))
                        .map(|v| (StatusCode::CREATED, v)),
                    Err(e) => Err(e.into()),
                };
                if stored && let Ok((status, value)) = &outcome {
                    return Ok(idempotency::respond_stored(&req, *status, value));
                }
                return idempotency::finish(
                    state.idempotency.as_ref(),
                    &req,
                    &scope,
                    &key,
                    outcome,
                )
                .await;
            }
            // Nothing written: the separate claim below replays, refuses, waits or retries.
            CreateOnce::NotClaimed(_) => {}
        }
    }
    let state = &*state;
    idempotency::run_resuming(
        state.idempotency.as_ref(),
        &req,
        &scope,
        &body,
        |attempt| async move {
            // A retry of a create whose process died after committing it answers that payment as it
            // stands (its job settles it with CodePay); creating again would only find the
            // merchant_order_id taken.
            let earlier = match attempt {
                Attempt::Recovered => earlier_payment(state, &merchant_id, &parsed).await?,
                Attempt::First => None,
            };
            let mut payment = match earlier {
                Some(p) => p,
                None => {
                    let merchant = state
                        .accounts
                        .merchant(&merchant_id)
                        .await?
                        .ok_or_else(|| Error::not_found("merchant", merchant_id.as_str()))?;
                    state
                        .engine
                        .create_payment(&merchant.profile(), parsed)
                        .await?
                }
            };
            if wait > 0 && !payment.status.is_final() {
                payment = wait_final(state, payment, Duration::from_secs(wait)).await?;
            }
            let object = json::value(&state.engine.payment_object(&payment))?;
            Ok((StatusCode::CREATED, object))
        },
    )
    .await
}

/// The payment a dead attempt of this create committed: the merchant's payment with this
/// `merchant_order_id`, if it is the one asked for (mode, wallet, amount, currency, store and
/// terminal agree; the key's fingerprint already says the body is the same). Another payment
/// under that reference stays a `merchant_order_id_taken` conflict.
async fn earlier_payment(
    state: &AppState,
    merchant: &domain::MerchantId,
    asked: &NewPayment,
) -> Result<Option<Payment>> {
    let filter = PaymentFilter {
        merchant_id: Some(merchant.clone()),
        merchant_order_id: Some(asked.merchant_order_id.clone()),
        ..PaymentFilter::default()
    };
    let found = state
        .engine
        .store()
        .list_payments(&filter, 2)
        .await?
        .into_iter()
        .next();
    Ok(found.filter(|p| {
        p.merchant_order_id == asked.merchant_order_id
            && p.mode == asked.mode
            && p.wallet == asked.wallet
            && p.amount.minor() == asked.amount_minor
            && asked.currency.is_none_or(|c| c == p.amount.currency())
            && p.store_id == asked.location.as_ref().map(|l| l.store_id.clone())
            && p.terminal_id == asked.location.as_ref().and_then(|l| l.terminal_id.clone())
    }))
}

async fn wait_final(state: &AppState, mut payment: Payment, max: Duration) -> Result<Payment> {
    let deadline = tokio::time::Instant::now() + max;
    let Some(commits) = &state.commits else {
        // No wake-ups wired (tests building their own state): poll.
        while !payment.status.is_final() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(p) = state.engine.store().payment(&payment.id).await? {
                payment = p;
            }
        }
        return Ok(payment);
    };
    let mut woken = commits.subscribe();
    loop {
        // The first read comes after subscribing: a settlement committed between the caller's
        // read and the subscription would otherwise wait for the fallback.
        let read_at = tokio::time::Instant::now();
        if let Some(p) = state.engine.store().payment(&payment.id).await? {
            payment = p;
        }
        let now = tokio::time::Instant::now();
        if payment.status.is_final() || now >= deadline {
            return Ok(payment);
        }
        // Woken by a commit, or the fallback re-read, or the deadline (one last read decides).
        let until = deadline.min(now + commits.fallback());
        if let Ok(Err(_)) = tokio::time::timeout_at(until, woken.changed()).await {
            // the listener is gone: sleep out to the fallback as if never woken
            tokio::time::sleep_until(until).await;
        }
        // A wake-up names no payment, so under a stream of commits every waiter would read at
        // each one: at most one read per MIN_WAIT_READ_GAP keeps that below the old 200 ms poll.
        tokio::time::sleep_until(deadline.min(read_at + MIN_WAIT_READ_GAP)).await;
    }
}

/// Shortest time between two reads of one `?wait=` waiter, however many commits wake it.
const MIN_WAIT_READ_GAP: Duration = Duration::from_millis(200);

/// Read a payment.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(PaymentPath),
    responses((status = 200, description = "The payment.", body = PaymentObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn get_payment(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let access = principal.access("payments:read")?;
    let p = visible_payment(&state, &access, &path).await?;
    Ok(HttpResponse::Ok().json(state.engine.payment_object(&p)))
}

/// List payments, newest first.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(ListQuery),
    responses((status = 200, description = "A page of payments.", body = List<PaymentObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_payments(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let access = principal.access("payments:read")?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let filter: PaymentFilter = super::search::payment_filter(&access, q)?;
    let rows = state
        .engine
        .store()
        .list_payments(&filter, limit + 1)
        .await?;
    let (rows, has_more) = split_page(rows, limit);
    let data = rows
        .iter()
        .map(|p| state.engine.payment_object(p))
        .collect();
    Ok(List::new(data, has_more).respond())
}

/// Cancel a payment that is not final yet.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments",
    params(PaymentPath),
    responses(
        (status = 200, description = "The payment, canceled or still closing.",
            body = PaymentObject),
        Authenticated, Lookup, Conflict, Upstream),
    security(("bearer" = [])))]
pub async fn cancel_payment(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let caller = principal.caller("payments:write")?;
    let p = visible_payment(&state, &Access::Merchant(caller.clone()), &path).await?;
    let actor = principal.key_id().to_string();
    let p = state
        .engine
        .cancel_payment_by(&caller.id, &p.id, Some(&actor))
        .await?;
    Ok(HttpResponse::Ok().json(state.engine.payment_object(&p)))
}

/// Refund a succeeded payment, in full or in part.
#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "refunds",
    request_body = CreateRefundRequest, params(PaymentPath, IdempotencyKey),
    responses((status = 201, description = "The refund.", body = RefundObject), Authenticated,
        Lookup, JsonBody, Idempotent, Conflict, Refused, Upstream),
    security(("bearer" = [])))]
pub async fn create_refund(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let caller = principal.caller("refunds:write")?;
    let merchant = caller.id.clone();
    let payment_id = visible_payment(&state, &Access::Merchant(caller.clone()), &path)
        .await?
        .id;
    let b = json::parse::<CreateRefundRequest>(&body)?;
    let new = NewRefund {
        amount_minor: b.amount,
        merchant_refund_id: b.merchant_refund_id,
        reason: b.reason,
    };
    let scope = caller.idempotency_scope(merchant.as_str());
    let actor = principal.key_id().to_string();
    let state = &*state;
    idempotency::run_resuming(
        state.idempotency.as_ref(),
        &req,
        &scope,
        &body,
        |attempt| async move {
            // A retry of a refund whose process died after committing it answers that refund as it
            // stands (its job settles it with CodePay); creating again would be refused (reference
            // taken, or nothing left to refund).
            let earlier = match attempt {
                Attempt::Recovered => earlier_refund(state, &merchant, &payment_id, &new).await?,
                Attempt::First => None,
            };
            let r = match earlier {
                Some(r) => r,
                None => {
                    state
                        .engine
                        .create_refund_by(&merchant, &payment_id, new, Some(&actor))
                        .await?
                }
            };
            Ok((
                StatusCode::CREATED,
                json::value(&RefundObject::from_refund(&r))?,
            ))
        },
    )
    .await
}

/// The refund a dead attempt of this request committed: the merchant's refund with this
/// `merchant_refund_id`, if it is of this payment and of the amount asked (when one was).
async fn earlier_refund(
    state: &AppState,
    merchant: &domain::MerchantId,
    payment: &PaymentId,
    asked: &NewRefund,
) -> Result<Option<::payments::model::Refund>> {
    let found = state
        .engine
        .store()
        .refund_by_merchant_ref(merchant, &asked.merchant_refund_id)
        .await?;
    Ok(found.filter(|r| {
        &r.payment_id == payment && asked.amount_minor.is_none_or(|a| a == r.amount.minor())
    }))
}

/// A payment's refunds.
#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "refunds",
    params(PaymentPath),
    responses((status = 200, description = "The payment's refunds.", body = List<RefundObject>),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn list_refunds(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let access = principal.access("refunds:read")?;
    let p = visible_payment(&state, &access, &path).await?;
    let mut refunds = state.engine.store().refunds_of(&p.id).await?;
    refunds.reverse();
    let data = refunds.iter().map(RefundObject::from_refund).collect();
    Ok(List::all(data).respond())
}

/// Read a refund.
#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "refunds",
    params(RefundPath),
    responses((status = 200, description = "The refund.", body = RefundObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn get_refund(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let access = principal.access("refunds:read")?;
    let r = visible_refund(&state, &access, &path).await?;
    Ok(HttpResponse::Ok().json(RefundObject::from_refund(&r)))
}

/// List refunds, newest first: a merchant's own (within a bound credential's store or
/// terminal), or, for an operator, every merchant's, filtered.
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds",
    params(RefundListQuery),
    responses((status = 200, description = "A page of refunds.", body = List<RefundObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn search_refunds(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<RefundListQuery>,
) -> Result<HttpResponse> {
    let access = principal.access("refunds:read")?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let filter: RefundFilter = super::search::refund_filter(&access, q)?;
    let rows = state
        .engine
        .store()
        .list_refunds(&filter, limit + 1)
        .await?;
    let (rows, has_more) = split_page(rows, limit);
    let data = rows.iter().map(RefundObject::from_refund).collect();
    Ok(List::new(data, has_more).respond())
}

/// The payment's QR code as SVG.
#[utoipa::path(get, path = "/v1/payments/{id}/qr.svg", tag = "payments",
    params(PaymentPath),
    responses(
        (status = 200, description = "The QR code as SVG.", content_type = "image/svg+xml",
            body = String),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn qr_svg(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let content = qr_content(&state, &principal, &path).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(crate::qr::svg(&content)?))
}

/// The payment's QR code as PNG.
#[utoipa::path(get, path = "/v1/payments/{id}/qr.png", tag = "payments",
    params(PaymentPath),
    responses(
        (status = 200, description = "The QR code as PNG.", content_type = "image/png",
            body = Vec<u8>),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn qr_png(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let content = qr_content(&state, &principal, &path).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .body(crate::qr::png(&content)?))
}

/// The QR content of the caller's payment `id` (404 without one).
async fn qr_content(state: &AppState, principal: &Principal, id: &str) -> Result<String> {
    let access = principal.access("payments:read")?;
    let p = visible_payment(state, &access, id).await?;
    p.qr_code.ok_or_else(|| Error::not_found("qr code", id))
}

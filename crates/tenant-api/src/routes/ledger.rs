//! The ledger over HTTP (docs/books.md): a merchant's balance, the operator's view of the
//! entries, and manual adjustments (a correction is a new journal; nothing is edited).

use super::books::{BooksData, merchant_filter, page};
use super::list::List;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::{AppState, idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeZone, Utc};
use domain::Currency;
use payments::books::NewAdjustment;
use serde::{Deserialize, Serialize};
use store::ledger::{Entry, EntryFilter};
use utoipa::{IntoParams, ToSchema};

use super::params::IdempotencyKey;
use super::responses::{Authenticated, BadQuery, Idempotent, JsonBody, Lookup, Refused};
use super::schemas::{CurrencyCode, MerchantIdText};

/// The account kinds an entry filter may name.
const ACCOUNTS: [&str; 5] = [
    "gateway_clearing",
    "merchant_payable",
    "platform_fee_revenue",
    "codepay_fee_expense",
    "platform_adjustments",
];

super::books::filter_enum! {
    /// `account` of the entry filter: one of `ACCOUNTS`.
    AccountName = ACCOUNTS;
    /// `kind` of the entry filter: a journal kind `ledger::JournalKind::parse` accepts.
    JournalKindName = ledger::JournalKind::ALL.map(ledger::JournalKind::as_str);
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// One ledger entry: a transfer of `amount` from the credited account to the debited one.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryObject {
    /// `le_…`.
    pub id: String,
    /// Always `ledger_entry`.
    pub object: &'static str,
    /// The journal it belongs to (`jrn_…`).
    pub journal_id: String,
    /// The journal's kind: `capture`, `fee`, `refund`, `fee_return`, `late_success_refund`,
    /// `reversal`, `codepay_fee`, `adjustment`.
    pub kind: String,
    /// The payment, refund or adjustment it is about.
    pub subject_id: String,
    /// The merchant (whose payable a `merchant_payable` leg is).
    pub merchant_id: String,
    /// Account debited.
    pub debit_account: String,
    /// Account credited.
    pub credit_account: String,
    /// Minor units, > 0.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// When payfac recorded the event.
    pub occurred_at: DateTime<Utc>,
}

fn entry_object(e: &Entry) -> LedgerEntryObject {
    LedgerEntryObject {
        id: e.id.clone(),
        object: "ledger_entry",
        journal_id: e.journal_id.clone(),
        kind: e.kind.clone(),
        subject_id: e.subject_id.clone(),
        merchant_id: e.merchant_id.clone(),
        debit_account: e.debit_account.clone(),
        credit_account: e.credit_account.clone(),
        amount: e.amount_minor,
        currency: e.currency.clone(),
        occurred_at: at(e.occurred_at),
    }
}

/// Query of `GET /v1/ledger/entries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// Only this merchant's (`mer_…`).
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only entries moving this account (`gateway_clearing`, `merchant_payable`,
    /// `platform_fee_revenue`, `codepay_fee_expense`, `platform_adjustments`).
    #[param(value_type = AccountName, inline, required = false)]
    pub account: Option<String>,
    /// Only this currency (ISO 4217).
    #[param(value_type = CurrencyCode, inline, required = false)]
    pub currency: Option<String>,
    /// Only this journal kind.
    #[param(value_type = JournalKindName, inline, required = false)]
    pub kind: Option<String>,
    /// Only about this payment, refund or adjustment.
    #[param(nullable = false)]
    pub subject_id: Option<String>,
    /// Occurred at or after (RFC 3339).
    #[param(nullable = false)]
    pub occurred_gte: Option<DateTime<Utc>>,
    /// Occurred before (RFC 3339).
    #[param(nullable = false)]
    pub occurred_lt: Option<DateTime<Utc>>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: an entry id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

/// List ledger entries, newest first.
#[utoipa::path(get, path = "/v1/ledger/entries", tag = "ledger", params(EntryQuery),
    responses((status = 200, description = "A page of ledger entries.", body = List<LedgerEntryObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_entries(
    books: BooksData,
    principal: Principal,
    query: web::Query<EntryQuery>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let q = query.into_inner();
    if let Some(a) = q.account.as_deref()
        && !ACCOUNTS.contains(&a)
    {
        return Err(Error::invalid(
            "parameter_invalid",
            format!("account must be one of {}", ACCOUNTS.join(", ")),
            Some("account"),
        ));
    }
    if let Some(k) = q.kind.as_deref()
        && ledger::JournalKind::parse(k).is_none()
    {
        return Err(Error::invalid(
            "parameter_invalid",
            "unknown journal kind",
            Some("kind"),
        ));
    }
    let currency = q
        .currency
        .as_deref()
        .map(Currency::from_code)
        .transpose()
        .map_err(|e| Error::invalid("parameter_invalid", e.to_string(), Some("currency")))?;
    let filter = EntryFilter {
        merchant_id: merchant_filter(q.merchant_id.as_deref())?.map(|m| m.to_string()),
        account: q.account,
        currency: currency.map(|c| c.code().to_owned()),
        kind: q.kind,
        subject_id: q.subject_id,
        occurred_gte: q.occurred_gte.map(|t| t.timestamp_millis()),
        occurred_lt: q.occurred_lt.map(|t| t.timestamp_millis()),
    };
    let got = books
        .books
        .entries(filter, page(q.limit, q.starting_after)?)
        .await?;
    Ok(List::new(got.items.iter().map(entry_object).collect(), got.has_more).respond())
}

/// `POST /v1/ledger/adjustments` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// The merchant (`mer_…`).
    pub merchant_id: String,
    /// ISO 4217.
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Minor units: positive credits the merchant (the platform pays), negative debits it;
    /// never 0.
    pub amount: i64,
    /// Why: kept on the journal and in the audit log; not blank, at most 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub memo: String,
}

/// A posted journal.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalObject {
    /// `jrn_…`.
    pub id: String,
    /// Always `ledger_journal`.
    pub object: &'static str,
    /// `adjustment`.
    pub kind: String,
    /// Its entries.
    pub entries: Vec<LedgerEntryObject>,
}

/// Post a manual adjustment of a merchant's balance (one balanced journal, audited).
///
/// A malformed or unknown `merchant_id` is a 404.
#[utoipa::path(post, path = "/v1/ledger/adjustments", tag = "ledger",
    request_body = AdjustmentRequest, params(IdempotencyKey),
    responses((status = 201, description = "The posted journal.", body = JournalObject),
        Authenticated, JsonBody, Lookup, Idempotent),
    security(("bearer" = [])))]
pub async fn create_adjustment(
    state: web::Data<AppState>,
    books: BooksData,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let b = json::parse::<AdjustmentRequest>(&body)?;
    let merchant_id = domain::MerchantId::parse(&b.merchant_id)
        .map_err(|_| Error::not_found("merchant", b.merchant_id.as_str()))?;
    let currency = Currency::from_code(&b.currency)
        .map_err(|e| Error::invalid("parameter_invalid", e.to_string(), Some("currency")))?;
    if b.memo.chars().count() > 500 {
        return Err(Error::invalid(
            "parameter_invalid",
            "memo must be at most 500 characters",
            Some("memo"),
        ));
    }
    let new = NewAdjustment {
        merchant_id,
        currency,
        amount: b.amount,
        memo: b.memo,
    };
    let scope = format!("operator:{}", principal.key_id());
    let actor = principal.key_id().to_string();
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let (id, entries) = books.books.adjust(new, &actor).await?;
        let object = JournalObject {
            id,
            object: "ledger_journal",
            kind: ledger::JournalKind::Adjustment.as_str().to_owned(),
            entries: entries.iter().map(entry_object).collect(),
        };
        Ok((StatusCode::CREATED, json::value(&object)?))
    })
    .await
}

/// A merchant's payable in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceAmount {
    /// ISO 4217.
    pub currency: String,
    /// Minor units owed to the merchant and in no statement yet (negative: the merchant owes).
    pub pending: i64,
    /// Minor units owed to the merchant through closed statements.
    pub settled: i64,
}

/// `GET /v1/balance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceObject {
    /// Always `balance`.
    pub object: &'static str,
    /// The merchant.
    pub merchant_id: String,
    /// One per currency the merchant has entries in.
    pub balances: Vec<BalanceAmount>,
}

/// Query of `GET /v1/balance`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    /// Operators: whose balance (`mer_…`; required for them). A merchant sees its own and
    /// may not name one.
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
}

/// The merchant's payable per currency: pending (in no statement yet) and settled.
#[utoipa::path(get, path = "/v1/balance", tag = "ledger", params(BalanceQuery),
    responses((status = 200, description = "The merchant's balance.", body = BalanceObject),
        Authenticated, BadQuery, Refused),
    security(("bearer" = [])))]
pub async fn get_balance(
    books: BooksData,
    principal: Principal,
    query: web::Query<BalanceQuery>,
) -> Result<HttpResponse> {
    let merchant = match &principal {
        Principal::Operator { .. } => {
            merchant_filter(query.merchant_id.as_deref())?.ok_or_else(|| {
                // Well-formed without it; what is missing depends on who asks: a 422.
                Error::unprocessable(
                    "parameter_missing",
                    "an operator names the merchant: merchant_id",
                    Some("merchant_id"),
                )
            })?
        }
        Principal::Merchant { .. } => {
            if query.merchant_id.is_some() {
                return Err(Error::Forbidden {
                    code: "operator_key_required",
                    message: "merchant_id is for operators; a merchant sees its own balance"
                        .to_owned(),
                });
            }
            principal.merchant("payments:read")?.clone()
        }
    };
    let balances = books.books.balance(&merchant).await?;
    Ok(HttpResponse::Ok().json(BalanceObject {
        object: "balance",
        merchant_id: merchant.to_string(),
        balances: balances
            .into_iter()
            .map(|b| BalanceAmount {
                currency: b.currency,
                pending: b.pending_minor,
                settled: b.settled_minor,
            })
            .collect(),
    }))
}

crate::routes::route_table! {
    /// Mounts the ledger and balance routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    get "/ledger/entries" => list_entries,
    post "/ledger/adjustments" => create_adjustment,
    get "/balance" => get_balance,
}

//! Reconciliation with CodePay (docs/books.md): the breaks found, and a run on demand.

use super::books::{BooksData, business_date, merchant_filter, page};
use super::list::List;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::{AppState, json};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use store::reconciliation::{Break, BreakFilter, Run};
use utoipa::{IntoParams, ToSchema};

use super::responses::{Authenticated, BadQuery, Conflict, JsonBody};
use super::schemas::MerchantIdText;

const KINDS: [&str; 4] = [
    "missing_upstream",
    "status_mismatch",
    "amount_mismatch",
    "fee_mismatch",
];
const STATUSES: [&str; 3] = ["open", "repaired", "resolved"];

super::books::filter_enum! {
    /// `status` of the break filter: one of `STATUSES`.
    BreakStatusName = STATUSES;
    /// `kind` of the break filter: one of `KINDS`.
    BreakKindName = KINDS;
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A difference between payfac and CodePay about one payment or refund.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakObject {
    /// `brk_…`.
    pub id: String,
    /// Always `reconciliation_break`.
    pub object: &'static str,
    /// `missing_upstream`, `status_mismatch`, `amount_mismatch`, `fee_mismatch`.
    pub kind: String,
    /// `open` (needs an operator), `repaired` (CodePay's final status was applied through the
    /// normal settle path), `resolved` (a later run found both sides agreeing).
    pub status: String,
    /// The business date of the payment or refund.
    pub business_date: String,
    /// `payment` or `refund`.
    pub subject_type: String,
    /// Its id.
    pub subject_id: String,
    /// Its merchant.
    pub merchant_id: String,
    /// The gateway account that carried it (`null`: the platform's default).
    pub gateway_account_id: Option<String>,
    /// payfac's values (status, amount, currency, booked CodePay fee).
    #[schema(value_type = Object)]
    pub ours: serde_json::Value,
    /// CodePay's values (trans_status, amount, currency, trans_fee_c), or `found: false`.
    #[schema(value_type = Object)]
    pub theirs: serde_json::Value,
    /// What was done, or why not.
    pub detail: Option<String>,
    /// The run that last saw it.
    pub run_id: String,
    /// First found.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn break_object(b: &Break) -> BreakObject {
    BreakObject {
        id: b.id.clone(),
        object: "reconciliation_break",
        kind: b.kind.clone(),
        status: b.status.clone(),
        business_date: b.business_date.clone(),
        subject_type: b.subject_type.clone(),
        subject_id: b.subject_id.clone(),
        merchant_id: b.merchant_id.clone(),
        gateway_account_id: b.gateway_account_id.clone(),
        ours: json_of(&b.ours),
        theirs: json_of(&b.theirs),
        detail: b.detail.clone(),
        run_id: b.run_id.clone(),
        created_at: at(b.created_at),
        updated_at: at(b.updated_at),
    }
}

/// Query of `GET /v1/reconciliation/breaks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BreakQuery {
    /// `open`, `repaired` or `resolved`.
    #[param(value_type = BreakStatusName, inline, required = false)]
    pub status: Option<String>,
    /// `missing_upstream`, `status_mismatch`, `amount_mismatch` or `fee_mismatch`.
    #[param(value_type = BreakKindName, inline, required = false)]
    pub kind: Option<String>,
    /// Only this merchant's (`mer_…`).
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only this business date (`YYYY-MM-DD`).
    #[param(value_type = Option<chrono::NaiveDate>, nullable = false)]
    pub business_date: Option<String>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a break id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

fn one_of(value: Option<String>, allowed: &[&str], param: &str) -> Result<Option<String>> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(Error::invalid(
            "parameter_invalid",
            format!("{param} must be one of {}", allowed.join(", ")),
            Some(param),
        )),
        v => Ok(v),
    }
}

/// List reconciliation breaks, newest first.
#[utoipa::path(get, path = "/v1/reconciliation/breaks", tag = "reconciliation", params(BreakQuery),
    responses((status = 200, description = "A page of reconciliation breaks.", body = List<BreakObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_breaks(
    books: BooksData,
    principal: Principal,
    query: web::Query<BreakQuery>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let q = query.into_inner();
    let filter = BreakFilter {
        status: one_of(q.status, &STATUSES, "status")?,
        kind: one_of(q.kind, &KINDS, "kind")?,
        merchant_id: merchant_filter(q.merchant_id.as_deref())?.map(|m| m.to_string()),
        business_date: q
            .business_date
            .as_deref()
            .map(|d| business_date(d, "business_date"))
            .transpose()?
            .map(|d| d.to_string()),
    };
    let page = page(q.limit, q.starting_after)?;
    let got = books
        .books
        .db()
        .read(move |c| store::reconciliation::list(c, &filter, &page))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(List::new(got.items.iter().map(break_object).collect(), got.has_more).respond())
}

/// `POST /v1/reconciliation/run` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The business date whose payments and refunds are checked (`YYYY-MM-DD`); a date not
    /// yet started is refused (`date_in_future`).
    #[schema(value_type = chrono::NaiveDate)]
    pub date: String,
}

/// One reconciliation run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationRunObject {
    /// `rcn_…`.
    pub id: String,
    /// Always `reconciliation_run`.
    pub object: &'static str,
    /// The business date checked.
    pub business_date: String,
    /// Payments and refunds compared with CodePay (those CodePay did not answer for are
    /// left for the next run).
    pub checked: i64,
    /// Breaks found, repaired ones included.
    pub breaks_found: i64,
    /// Breaks repaired through the normal settle path.
    pub repaired: i64,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
}

fn run_object(r: &Run) -> ReconciliationRunObject {
    ReconciliationRunObject {
        id: r.id.clone(),
        object: "reconciliation_run",
        business_date: r.business_date.clone(),
        checked: r.checked,
        breaks_found: r.breaks_found,
        repaired: r.repaired,
        started_at: at(r.started_at),
        finished_at: r.finished_at.map(at),
    }
}

/// Reconcile one business day with CodePay now and wait for the result (queries are paced per
/// gateway account, so a busy day takes a while; the daily job does the same after each close).
///
/// CodePay not answering about an order is no error: the order is left for the next run. A
/// repair that loses a race with a concurrent change of the same payment is a 409.
#[utoipa::path(post, path = "/v1/reconciliation/run", tag = "reconciliation",
    request_body = ReconcileRequest,
    responses((status = 200, description = "The finished run.", body = ReconciliationRunObject),
        Authenticated, JsonBody, Conflict),
    security(("bearer" = [])))]
pub async fn run_reconciliation(
    state: web::Data<AppState>,
    books: BooksData,
    principal: Principal,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let b = json::parse::<ReconcileRequest>(&body)?;
    let date = business_date(&b.date, "date")?;
    let run = state
        .engine
        .reconcile_day(&books.books, date, &books.recon)
        .await?;
    Ok(HttpResponse::Ok().json(run_object(&run)))
}

crate::routes::route_table! {
    /// Mounts the reconciliation routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    get "/reconciliation/breaks" => list_breaks,
    post "/reconciliation/run" => run_reconciliation,
}

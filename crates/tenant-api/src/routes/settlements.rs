//! Daily settlement statements (docs/books.md): merchants read their own, operators read all
//! and close a day on demand.

use super::books::{BooksData, business_date, merchant_filter, page};
use super::list::List;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::json;
use actix_web::{HttpResponse, web};
use domain::{Currency, MerchantId};
use payments::books::SettlementObject;
use serde::{Deserialize, Serialize};
use store::settlements::SettlementFilter;
use utoipa::{IntoParams, ToSchema};

use super::responses::{Authenticated, BadQuery, Conflict, JsonBody, Lookup};
use super::schemas::{CurrencyCode, MerchantIdText};

/// `{id}` of a settlement statement.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SettlementPath {
    /// The statement (`stl_…`); a malformed or another merchant's id is a 404.
    pub id: String,
}

/// Who may read which statements: a merchant its own (scope `payments:read`), an operator any.
fn reader(principal: &Principal) -> Result<Option<MerchantId>> {
    match principal {
        Principal::Operator { .. } => Ok(None),
        Principal::Merchant { .. } => Ok(Some(principal.merchant("payments:read")?.clone())),
    }
}

/// Query of `GET /v1/settlements`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SettlementQuery {
    /// Operators: only this merchant's (`mer_…`). A merchant lists its own and may not name
    /// one.
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only this business date (`YYYY-MM-DD`).
    #[param(value_type = Option<chrono::NaiveDate>, nullable = false)]
    pub business_date: Option<String>,
    /// Only this currency (ISO 4217).
    #[param(value_type = CurrencyCode, inline, required = false)]
    pub currency: Option<String>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a statement id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

/// List settlement statements, newest first.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements", params(SettlementQuery),
    responses((status = 200, description = "A page of settlement statements.",
            body = List<SettlementObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_settlements(
    books: BooksData,
    principal: Principal,
    query: web::Query<SettlementQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    let merchant = match reader(&principal)? {
        Some(_) if q.merchant_id.is_some() => {
            return Err(Error::Forbidden {
                code: "operator_key_required",
                message: "merchant_id is for operators; a merchant lists its own statements"
                    .to_owned(),
            });
        }
        Some(own) => Some(own),
        None => merchant_filter(q.merchant_id.as_deref())?,
    };
    let date = q
        .business_date
        .as_deref()
        .map(|d| business_date(d, "business_date"))
        .transpose()?;
    let currency = q
        .currency
        .as_deref()
        .map(Currency::from_code)
        .transpose()
        .map_err(|e| Error::invalid("parameter_invalid", e.to_string(), Some("currency")))?;
    let filter = SettlementFilter {
        merchant_id: merchant.map(|m| m.to_string()),
        currency: currency.map(|c| c.code().to_owned()),
        business_date: date.map(|d| d.to_string()),
    };
    let got = books
        .books
        .statements(filter, page(q.limit, q.starting_after)?)
        .await?;
    let data = got.items.iter().map(SettlementObject::from).collect();
    Ok(List::new(data, got.has_more).respond())
}

/// Read a settlement statement (its totals; the lines are `lines.csv`).
#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements", params(SettlementPath),
    responses((status = 200, description = "The statement.", body = SettlementObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_settlement(
    books: BooksData,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = reader(&principal)?;
    let s = books.books.statement(&path, merchant.as_ref()).await?;
    Ok(HttpResponse::Ok().json(SettlementObject::from(&s)))
}

/// A statement's lines as CSV (RFC 4180), one per payment, refund or adjustment. The body is
/// fixed when the statement is closed; `Digest` (RFC 3230) and `Content-Digest` (RFC 9530)
/// carry its SHA-256.
#[utoipa::path(get, path = "/v1/settlements/{id}/lines.csv", tag = "settlements",
    params(SettlementPath),
    responses((status = 200, description = "The statement's lines, CSV with a header row.",
            content_type = "text/csv", body = String,
            headers(("Digest" = String, description = "sha-256=<base64 of the body's SHA-256>"),
                ("Content-Digest" = String, description = "sha-256=:<base64 of the body's SHA-256>:"))),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn settlement_lines(
    books: BooksData,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = reader(&principal)?;
    let s = books.books.statement(&path, merchant.as_ref()).await?;
    // The stored digest is the RFC 9530 form `sha-256=:<b64>:`; RFC 3230's `Digest` carries
    // the same base64 without the colons.
    let b64 = s
        .lines_digest
        .strip_prefix("sha-256=:")
        .and_then(|d| d.strip_suffix(':'))
        .unwrap_or_default()
        .to_owned();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Digest", format!("sha-256={b64}")))
        .insert_header(("Content-Digest", s.lines_digest.clone()))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.csv\"", s.id),
        ))
        .body(s.lines_csv))
}

/// `POST /v1/settlements/run` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The business date to close (`YYYY-MM-DD`); today closes what happened so far, a date
    /// not yet started is refused (`date_in_future`).
    #[schema(value_type = chrono::NaiveDate)]
    pub date: String,
}

/// What a close did: every statement of the date.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementRunObject {
    /// Always `settlement_run`.
    pub object: &'static str,
    /// The business date.
    pub date: String,
    /// Every statement of that date, newest first (closing again adds only what is new).
    pub statements: Vec<SettlementObject>,
}

/// Close a business day now, for every merchant (idempotent: a second run adds only entries
/// recorded since).
#[utoipa::path(post, path = "/v1/settlements/run", tag = "settlements", request_body = RunRequest,
    responses((status = 200, description = "Every statement of the date.", body = SettlementRunObject),
        Authenticated, JsonBody, Conflict),
    security(("bearer" = [])))]
pub async fn run_settlement(
    books: BooksData,
    principal: Principal,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let b = json::parse::<RunRequest>(&body)?;
    let date = business_date(&b.date, "date")?;
    let all = books.books.close_day(date, chrono::Utc::now()).await?;
    Ok(HttpResponse::Ok().json(SettlementRunObject {
        object: "settlement_run",
        date: date.to_string(),
        statements: all.iter().map(SettlementObject::from).collect(),
    }))
}

crate::routes::route_table! {
    /// Mounts the settlement routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    get "/settlements" => list_settlements,
    post "/settlements/run" => run_settlement,
    get "/settlements/{id}" => get_settlement,
    get "/settlements/{id}/lines.csv" => settlement_lines,
}

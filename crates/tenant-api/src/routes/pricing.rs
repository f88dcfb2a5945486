//! Operator routes: a merchant's pricing (docs/books.md). Each `PUT` stores a new version, in
//! force for payments created from then on; older payments keep the version of their creation.

use super::books::{BooksData, merchant_in_path};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::{AppState, idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::{Currency, Wallet};
use ledger::{PriceList, Rate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{IdempotencyKey, MerchantPath};
use super::responses::{Authenticated, Idempotent, JsonBody, Lookup};
use super::schemas::{CurrencyCode, WalletName};

/// Most rates one price list may hold.
const MAX_RATES: usize = 100;

/// `PUT /v1/merchants/{id}/pricing` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingRequest {
    /// The rates; the most specific match applies to a payment (wallet + currency, then
    /// currency, then wallet, then the catch-all). An empty list charges nothing. At most
    /// one rate per wallet and currency pair.
    #[schema(max_items = 100)]
    pub rates: Vec<RateRequest>,
}

/// One rate as asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRequest {
    /// Wallet name; `null`: every wallet.
    #[schema(value_type = Option<WalletName>)]
    pub wallet: Option<String>,
    /// ISO 4217; `null`: every currency (then `fixed` must be 0).
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    /// Percentage in basis points, 0 … 10000 (290 = 2.9 %).
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub percent_bps: i64,
    /// Fixed part in minor units of `currency`, 0 … 2^53 − 1.
    #[schema(minimum = 0, maximum = 9007199254740991i64)]
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub fixed: i64,
}

/// One rate.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateObject {
    /// Wallet name, or `null` for every wallet.
    pub wallet: Option<String>,
    /// ISO 4217, or `null` for every currency.
    pub currency: Option<String>,
    /// Basis points.
    pub percent_bps: u32,
    /// Minor units.
    pub fixed: i64,
}

/// One pricing version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricingVersionObject {
    /// 1, 2, …
    pub version: i64,
    /// Payments created from then on are priced by it.
    pub effective_at: DateTime<Utc>,
    /// Its rates.
    pub rates: Vec<RateObject>,
}

/// A merchant's pricing: the version in force and every version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricingObject {
    /// Always `pricing`.
    pub object: &'static str,
    /// The merchant.
    pub merchant_id: String,
    /// The newest version (`null`: never priced, so no fee).
    pub current: Option<PricingVersionObject>,
    /// Every version, newest first.
    pub history: Vec<PricingVersionObject>,
}

fn version_object(l: &PriceList) -> PricingVersionObject {
    PricingVersionObject {
        version: l.version(),
        effective_at: l.effective_at(),
        rates: l
            .rates()
            .iter()
            .map(|r| RateObject {
                wallet: r.wallet.map(|w| w.name().to_owned()),
                currency: r.currency.map(|c| c.code().to_owned()),
                percent_bps: r.percent_bps,
                fixed: r.fixed,
            })
            .collect(),
    }
}

fn pricing_object(merchant: &str, versions: &[PriceList]) -> PricingObject {
    PricingObject {
        object: "pricing",
        merchant_id: merchant.to_owned(),
        current: versions.first().map(version_object),
        history: versions.iter().map(version_object).collect(),
    }
}

/// The rates as the ledger crate's, with errors naming the rate and field.
fn rates(body: PricingRequest) -> Result<Vec<Rate>> {
    if body.rates.len() > MAX_RATES {
        return Err(Error::invalid(
            "parameter_invalid",
            format!("at most {MAX_RATES} rates"),
            Some("rates"),
        ));
    }
    body.rates
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |field: &str, message: String| {
                Error::invalid(
                    "parameter_invalid",
                    message,
                    Some(&format!("rates[{i}].{field}")),
                )
            };
            let wallet = r
                .wallet
                .as_deref()
                .map(Wallet::from_name)
                .transpose()
                .map_err(|e| bad("wallet", e.to_string()))?;
            let currency = r
                .currency
                .as_deref()
                .map(Currency::from_code)
                .transpose()
                .map_err(|e| bad("currency", e.to_string()))?;
            let percent_bps = u32::try_from(r.percent_bps)
                .ok()
                .filter(|b| *b <= ledger::pricing::BPS_PER_UNIT)
                .ok_or_else(|| bad("percent_bps", "must be between 0 and 10000".to_owned()))?;
            // The largest whole number JSON carries exactly everywhere (2^53 − 1).
            if !(0..=9_007_199_254_740_991).contains(&r.fixed) {
                return Err(bad(
                    "fixed",
                    "must be between 0 and 9007199254740991".to_owned(),
                ));
            }
            Ok(Rate {
                wallet,
                currency,
                percent_bps,
                fixed: r.fixed,
            })
        })
        .collect()
}

/// Set a merchant's pricing: a new version, in force for payments created from now on.
#[utoipa::path(put, path = "/v1/merchants/{id}/pricing", tag = "operator",
    request_body = PricingRequest, params(MerchantPath, IdempotencyKey),
    responses((status = 200, description = "The merchant's pricing, with the new version in force.",
            body = PricingObject),
        Authenticated, JsonBody, Lookup, Idempotent),
    security(("bearer" = [])))]
pub async fn set_pricing(
    state: web::Data<AppState>,
    books: BooksData,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let merchant = merchant_in_path(&path)?;
    let rates = rates(json::parse::<PricingRequest>(&body)?)?;
    let scope = format!("operator:{}", principal.key_id());
    let actor = principal.key_id().to_string();
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        books.books.set_pricing(&merchant, rates, &actor).await?;
        let versions = books.books.pricing(&merchant).await?;
        Ok((
            StatusCode::OK,
            json::value(&pricing_object(merchant.as_str(), &versions))?,
        ))
    })
    .await
}

/// Read a merchant's pricing: the version in force and every version.
#[utoipa::path(get, path = "/v1/merchants/{id}/pricing", tag = "operator",
    params(MerchantPath),
    responses((status = 200, description = "The merchant's pricing.", body = PricingObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_pricing(
    books: BooksData,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let merchant = merchant_in_path(&path)?;
    let versions = books.books.pricing(&merchant).await?;
    Ok(HttpResponse::Ok().json(pricing_object(merchant.as_str(), &versions)))
}

crate::routes::route_table! {
    /// Mounts the pricing routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    put "/merchants/{id}/pricing" => set_pricing,
    get "/merchants/{id}/pricing" => get_pricing,
}

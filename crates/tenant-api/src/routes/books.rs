//! What the books' routes share (`pricing`, `ledger`, `settlements`, `reconciliation`): the
//! [`payments::books::Books`] service the server registers, and their parsing helpers.

use crate::error::{Error, Result};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::NaiveDate;
use domain::MerchantId;
use payments::books::Books;
use payments::recon::ReconConfig;
use std::future::{Ready, ready};
use store::PageRequest;

/// Declares the documented schema of a query filter that accepts a fixed set of strings: a unit
/// type whose schema is a string enumeration of `$values` (the very list the handler checks),
/// named in the query type with `#[param(value_type = $ty, inline, required = false)]`.
macro_rules! filter_enum {
    ($($(#[$doc:meta])* $ty:ident = $values:expr;)+) => {$(
        $(#[$doc])*
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($values))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {}
    )+};
}
pub(crate) use filter_enum;

/// What the books' routes need; the server registers it with `app_data(web::Data::new(…))`.
pub struct BooksApi {
    /// Pricing, balances, entries, adjustments and statements over SQL.
    pub books: Books,
    /// How an on-demand reconciliation talks to CodePay.
    pub recon: ReconConfig,
}

/// The registered [`BooksApi`], or 503 when the server did not register one.
pub struct BooksData(pub web::Data<BooksApi>);

impl FromRequest for BooksData {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<BooksApi>>()
                .cloned()
                .map(BooksData)
                .ok_or_else(|| Error::Unavailable("the books are not configured".to_owned())),
        )
    }
}

impl std::ops::Deref for BooksData {
    type Target = BooksApi;
    fn deref(&self) -> &BooksApi {
        &self.0
    }
}

/// A merchant id from a path or a filter; anything else is a 404 (path) or 400 (filter).
pub(crate) fn merchant_in_path(id: &str) -> Result<MerchantId> {
    MerchantId::parse(id).map_err(|_| Error::not_found("merchant", id))
}

/// A `merchant_id` filter.
pub(crate) fn merchant_filter(id: Option<&str>) -> Result<Option<MerchantId>> {
    id.map(|v| {
        MerchantId::parse(v).map_err(|_| {
            Error::invalid(
                "parameter_invalid",
                "merchant_id must be a merchant id (mer_…)",
                Some("merchant_id"),
            )
        })
    })
    .transpose()
}

/// A `YYYY-MM-DD` business date in `param`.
pub(crate) fn business_date(text: &str, param: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            "parameter_invalid",
            format!("{param} must be a date, YYYY-MM-DD"),
            Some(param),
        )
    })
}

/// A page request from `limit` and an opaque `starting_after` id.
pub(crate) fn page(limit: Option<usize>, starting_after: Option<String>) -> Result<PageRequest> {
    let limit = super::list::page_limit(limit)?;
    Ok(PageRequest {
        limit: i64::try_from(limit).unwrap_or(100),
        starting_after,
    })
}

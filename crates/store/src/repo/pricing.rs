//! Pricing versions: what the platform charges each merchant, one row per change. A change is
//! a new version; old versions stay, because a payment is priced by the version in force at
//! its creation (docs/books.md).

use crate::schema::pricing_versions as pv;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// One pricing version of a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = pv)]
pub struct PricingVersion {
    /// The merchant.
    pub merchant_id: String,
    /// 1, 2, … per merchant.
    pub version: i64,
    /// Unix ms from which it applies (to payments created at or after it).
    pub effective_at: i64,
    /// JSON array of rates (`ledger::Rate`).
    pub rates: String,
    /// Who set it (an operator key id).
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Stores the merchant's next version (the newest + 1) with `rates`, effective at `now`.
/// Two concurrent changes compute the same number: the second fails with a conflict on the
/// primary key and changes nothing.
pub fn insert_next(
    conn: &mut DbConnection,
    merchant_id: &str,
    rates: &str,
    created_by: &str,
    now: i64,
) -> StoreResult<PricingVersion> {
    let newest: Option<i64> = on_backend!(conn, |c| pv::table
        .filter(pv::merchant_id.eq(merchant_id))
        .select(diesel::dsl::max(pv::version))
        .first(c))?;
    let row = PricingVersion {
        merchant_id: merchant_id.to_owned(),
        version: newest.unwrap_or(0) + 1,
        effective_at: now,
        rates: rates.to_owned(),
        created_by: created_by.to_owned(),
        created_at: now,
    };
    on_backend!(conn, |c| diesel::insert_into(pv::table)
        .values(&row)
        .execute(c))?;
    Ok(row)
}

/// Every version of a merchant, newest first.
pub fn history(conn: &mut DbConnection, merchant_id: &str) -> StoreResult<Vec<PricingVersion>> {
    Ok(on_backend!(conn, |c| pv::table
        .filter(pv::merchant_id.eq(merchant_id))
        .order(pv::version.desc())
        .select(PricingVersion::as_select())
        .load(c))?)
}

/// The version in force at `at` (unix ms): the latest `effective_at` not after it, the higher
/// version on a tie. `None` before the merchant's first version.
pub fn in_force_at(
    conn: &mut DbConnection,
    merchant_id: &str,
    at: i64,
) -> StoreResult<Option<PricingVersion>> {
    Ok(on_backend!(conn, |c| pv::table
        .filter(pv::merchant_id.eq(merchant_id))
        .filter(pv::effective_at.le(at))
        .order((pv::effective_at.desc(), pv::version.desc()))
        .select(PricingVersion::as_select())
        .first(c)
        .optional())?)
}

/// A payment's fee snapshot (`payment_fees`), written once, when the payment succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::payment_fees)]
pub struct PaymentFee {
    /// The payment.
    pub payment_id: String,
    /// The platform's fee, minor units (percentage part + fixed part).
    pub fee_minor: i64,
    /// Its percentage part.
    pub fee_percent_minor: i64,
    /// Its fixed part.
    pub fee_fixed_minor: i64,
    /// The pricing version it was computed with (`None`: no pricing, no fee).
    pub pricing_version: Option<i64>,
    /// CodePay's own fee (`trans_fee_c`), when CodePay reported it.
    pub codepay_fee_minor: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

/// Stores a payment's fee snapshot (in the transaction that marks it succeeded); a second
/// snapshot of the same payment is a conflict.
pub fn insert_payment_fee(conn: &mut DbConnection, fee: &PaymentFee) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(
        crate::schema::payment_fees::table
    )
    .values(fee)
    .execute(c))?;
    Ok(())
}

/// The fee snapshots of `payment_ids` (payments without one are left out).
pub fn payment_fees(
    conn: &mut DbConnection,
    payment_ids: &[String],
) -> StoreResult<Vec<PaymentFee>> {
    use crate::schema::payment_fees as pf;
    super::by_ids_in_chunks(payment_ids, |chunk| {
        Ok(on_backend!(conn, |c| pf::table
            .filter(pf::payment_id.eq_any(chunk))
            .select(PaymentFee::as_select())
            .load(c))?)
    })
}

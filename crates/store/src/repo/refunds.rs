//! Refunds.

use crate::page::{Page, PageRequest};
use crate::schema::refunds;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{MerchantId, PaymentId, RefundId, RefundStatus};

/// A refund row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refunds)]
pub struct Refund {
    /// `ref_…`.
    pub id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// Owner.
    pub merchant_id: String,
    /// The merchant's own refund id (unique per merchant).
    pub merchant_refund_id: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code (the payment's).
    pub currency: String,
    /// Domain wire name.
    pub status: String,
    /// CodePay merchant.
    pub codepay_merchant_no: String,
    /// payfac-generated CodePay `merchant_order_no` of the refund.
    pub upstream_order_no: String,
    /// CodePay `trans_no`.
    pub trans_no: Option<String>,
    /// Merchant's reason.
    pub reason: Option<String>,
    /// Failure code.
    pub failure_code: Option<String>,
    /// Failure text.
    pub failure_message: Option<String>,
    /// Bumped on every change; the webhook sequence number.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The payment's store, copied so store-bound credentials can filter refunds.
    pub store_id: Option<String>,
    /// The payment's terminal, copied likewise.
    pub terminal_id: Option<String>,
    /// The payment's gateway account (`gwa_…`), which carries the refund too.
    pub gateway_account_id: Option<String>,
    /// The payment's CodePay `store_no`.
    pub codepay_store_no: Option<String>,
    /// The payment's CodePay `terminal_sn`.
    pub codepay_terminal_sn: Option<String>,
    /// The share of the payment's fee given back, set when the refund succeeds.
    pub fee_return_minor: Option<i64>,
}

impl Refund {
    /// Typed id.
    pub fn refund_id(&self) -> StoreResult<RefundId> {
        Ok(RefundId::parse(&self.id)?)
    }
    /// Typed status.
    pub fn status(&self) -> StoreResult<RefundStatus> {
        RefundStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("refund status `{}`", self.status)))
    }
}

/// Stores a new refund.
pub fn insert(conn: &mut DbConnection, refund: &Refund) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(refunds::table)
        .values(refund)
        .execute(c))?;
    Ok(())
}

/// One refund of a merchant.
pub fn get(conn: &mut DbConnection, merchant: &MerchantId, id: &RefundId) -> StoreResult<Refund> {
    Ok(on_backend!(conn, |c| refunds::table
        .filter(refunds::id.eq(id.as_str()))
        .filter(refunds::merchant_id.eq(merchant.as_str()))
        .select(Refund::as_select())
        .first(c))?)
}

/// The refund with this merchant refund id, if any.
pub fn find_by_merchant_refund_id(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    merchant_refund_id: &str,
) -> StoreResult<Option<Refund>> {
    Ok(on_backend!(conn, |c| refunds::table
        .filter(refunds::merchant_id.eq(merchant.as_str()))
        .filter(refunds::merchant_refund_id.eq(merchant_refund_id))
        .select(Refund::as_select())
        .first(c)
        .optional())?)
}

/// The refund CodePay knows as (`merchant_no`, `merchant_order_no`).
pub fn find_by_upstream_order_no(
    conn: &mut DbConnection,
    codepay_merchant_no: &str,
    upstream_order_no: &str,
) -> StoreResult<Option<Refund>> {
    Ok(on_backend!(conn, |c| refunds::table
        .filter(refunds::codepay_merchant_no.eq(codepay_merchant_no))
        .filter(refunds::upstream_order_no.eq(upstream_order_no))
        .select(Refund::as_select())
        .first(c)
        .optional())?)
}

/// Refunds of one payment, newest first.
pub fn list_for_payment(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    payment: &PaymentId,
    page: &PageRequest,
) -> StoreResult<Page<Refund>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = refunds::table
            .filter(refunds::merchant_id.eq(merchant.as_str()))
            .filter(refunds::payment_id.eq(payment.as_str()))
            .select(Refund::as_select())
            .into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(refunds::id.lt(after));
        }
        q.order(refunds::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// One refund by id, whoever owns it.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Refund>> {
    Ok(on_backend!(conn, |c| refunds::table
        .find(id)
        .select(Refund::as_select())
        .first(c)
        .optional())?)
}

/// Every refund of one payment, oldest first (the engine sums them against the capture).
pub fn all_for_payment(conn: &mut DbConnection, payment: &str) -> StoreResult<Vec<Refund>> {
    Ok(on_backend!(conn, |c| refunds::table
        .filter(refunds::payment_id.eq(payment))
        .order(refunds::id.asc())
        .select(Refund::as_select())
        .load(c))?)
}

/// Minor units of a payment's refunds that count against its capture (pending + succeeded).
/// Read it after `payments::get_for_update` so no concurrent refund slips in.
pub fn committed_total(conn: &mut DbConnection, payment: &PaymentId) -> StoreResult<i64> {
    let counted: Vec<&str> = RefundStatus::ALL
        .into_iter()
        .filter(|s| s.counts_against_capture())
        .map(|s| s.as_str())
        .collect();
    let amounts: Vec<i64> = on_backend!(conn, |c| refunds::table
        .filter(refunds::payment_id.eq(payment.as_str()))
        .filter(refunds::status.eq_any(&counted))
        .select(refunds::amount_minor)
        .load(c))?;
    amounts
        .into_iter()
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| StoreError::Corrupt("refund total overflows".into()))
}

/// Writes the mutable fields if `version` is current; see `payments::save`.
pub fn save(conn: &mut DbConnection, refund: &Refund, now: i64) -> StoreResult<Refund> {
    let r = refund;
    let n = on_backend!(conn, |c| diesel::update(
        refunds::table
            .filter(refunds::id.eq(&r.id))
            .filter(refunds::merchant_id.eq(&r.merchant_id))
            .filter(refunds::version.eq(r.version))
    )
    .set((
        refunds::status.eq(&r.status),
        refunds::trans_no.eq(&r.trans_no),
        refunds::failure_code.eq(&r.failure_code),
        refunds::failure_message.eq(&r.failure_message),
        refunds::fee_return_minor.eq(r.fee_return_minor),
        refunds::version.eq(r.version + 1),
        refunds::updated_at.eq(now),
    ))
    .execute(c))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "refund {} changed concurrently (version {})",
            r.id, r.version
        )));
    }
    let mut saved = r.clone();
    saved.version += 1;
    saved.updated_at = now;
    Ok(saved)
}

/// Pending refunds created before `created_before`, oldest first (polling, reconciliation).
pub fn list_pending(
    conn: &mut DbConnection,
    created_before: i64,
    limit: i64,
) -> StoreResult<Vec<Refund>> {
    Ok(on_backend!(conn, |c| refunds::table
        .filter(refunds::status.eq(RefundStatus::Pending.as_str()))
        .filter(refunds::created_at.lt(created_before))
        .order(refunds::created_at.asc())
        .limit(limit)
        .select(Refund::as_select())
        .load(c))?)
}

/// Filters of the refund list. Every filter is optional; `merchant_id` is what scopes a
/// merchant's own list (an operator's search may leave it out). The `payment_*` filters match
/// the refunded payment (a refund row has no wallet, mode or merchant order id of its own).
#[derive(Debug, Clone, Default)]
pub struct RefundFilter {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only refunds of this payment.
    pub payment_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this merchant refund id.
    pub merchant_refund_id: Option<String>,
    /// Only this store's.
    pub store_id: Option<String>,
    /// Only this terminal's.
    pub terminal_id: Option<String>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Amount at least (minor units).
    pub amount_gte: Option<i64>,
    /// Amount at most (minor units).
    pub amount_lte: Option<i64>,
    /// Only the refund CodePay knows by this `merchant_order_no` (its refund number).
    pub upstream_order_no: Option<String>,
    /// Only the refund CodePay numbered with this `trans_no`.
    pub trans_no: Option<String>,
    /// Only refunds carried by this gateway account.
    pub gateway_account_id: Option<String>,
    /// Only refunds of payments in this wallet (payfac's name).
    pub payment_wallet: Option<String>,
    /// Only refunds of payments of this mode (`mpm`/`cpm`).
    pub payment_mode: Option<String>,
    /// Only refunds of the payment with this merchant order id.
    pub payment_merchant_order_id: Option<String>,
    /// Created at or after (unix ms).
    pub created_gte: Option<i64>,
    /// Created before (unix ms).
    pub created_lt: Option<i64>,
}

/// Refunds matching `filter`, newest first (a merchant's list when `filter.merchant_id` is
/// set, an operator's search across merchants otherwise).
pub fn list(
    conn: &mut DbConnection,
    filter: &RefundFilter,
    page: &PageRequest,
) -> StoreResult<Page<Refund>> {
    use crate::schema::payments;
    let limit = page.effective_limit();
    let f = filter;
    let rows = on_backend!(conn, |c| {
        let mut q = refunds::table.select(Refund::as_select()).into_boxed();
        if let Some(v) = &f.merchant_id {
            q = q.filter(refunds::merchant_id.eq(v));
        }
        if let Some(v) = &f.payment_id {
            q = q.filter(refunds::payment_id.eq(v));
        }
        if let Some(v) = &f.status {
            q = q.filter(refunds::status.eq(v));
        }
        if let Some(v) = &f.merchant_refund_id {
            q = q.filter(refunds::merchant_refund_id.eq(v));
        }
        if let Some(v) = &f.store_id {
            q = q.filter(refunds::store_id.eq(v));
        }
        if let Some(v) = &f.terminal_id {
            q = q.filter(refunds::terminal_id.eq(v));
        }
        if let Some(v) = &f.currency {
            q = q.filter(refunds::currency.eq(v));
        }
        if let Some(v) = f.amount_gte {
            q = q.filter(refunds::amount_minor.ge(v));
        }
        if let Some(v) = f.amount_lte {
            q = q.filter(refunds::amount_minor.le(v));
        }
        if let Some(v) = &f.upstream_order_no {
            q = q.filter(refunds::upstream_order_no.eq(v));
        }
        if let Some(v) = &f.trans_no {
            q = q.filter(refunds::trans_no.eq(v));
        }
        if let Some(v) = &f.gateway_account_id {
            q = q.filter(refunds::gateway_account_id.eq(v));
        }
        // The payment's own columns: one subquery each (only when asked for).
        if let Some(v) = &f.payment_wallet {
            q = q.filter(
                refunds::payment_id.eq_any(
                    payments::table
                        .filter(payments::wallet.eq(v.clone()))
                        .select(payments::id),
                ),
            );
        }
        if let Some(v) = &f.payment_mode {
            q = q.filter(
                refunds::payment_id.eq_any(
                    payments::table
                        .filter(payments::mode.eq(v.clone()))
                        .select(payments::id),
                ),
            );
        }
        if let Some(v) = &f.payment_merchant_order_id {
            q = q.filter(
                refunds::payment_id.eq_any(
                    payments::table
                        .filter(payments::merchant_order_id.eq(v.clone()))
                        .select(payments::id),
                ),
            );
        }
        if let Some(t) = f.created_gte {
            q = q.filter(refunds::created_at.ge(t));
        }
        if let Some(t) = f.created_lt {
            q = q.filter(refunds::created_at.lt(t));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(refunds::id.lt(after));
        }
        q.order(refunds::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

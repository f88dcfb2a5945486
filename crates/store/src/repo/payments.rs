//! Payments.

use crate::page::{Page, PageRequest};
use crate::schema::payments;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{Currency, MerchantId, Money, PaymentId, PaymentMode, PaymentStatus, Wallet};

/// A payment row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments)]
pub struct Payment {
    /// `pay_…`.
    pub id: String,
    /// Owner.
    pub merchant_id: String,
    /// The merchant's own order id (unique per merchant).
    pub merchant_order_id: String,
    /// `mpm`/`cpm`.
    pub mode: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// payfac wallet name.
    pub wallet: String,
    /// Domain wire name of the status.
    pub status: String,
    /// The CodePay merchant the order was placed under.
    pub codepay_merchant_no: String,
    /// payfac-generated CodePay `merchant_order_no`.
    pub upstream_order_no: String,
    /// CodePay `trans_no`.
    pub trans_no: Option<String>,
    /// QR content (MPM).
    pub qr_code: Option<String>,
    /// Unix ms.
    pub expires_at: Option<i64>,
    /// Unix ms.
    pub paid_at: Option<i64>,
    /// Upstream or payfac failure code.
    pub failure_code: Option<String>,
    /// Human-readable failure.
    pub failure_message: Option<String>,
    /// Sum of succeeded refunds.
    pub amount_refunded_minor: i64,
    /// Merchant's description.
    pub description: Option<String>,
    /// JSON object.
    pub metadata: String,
    /// True when payfac closed it (so a later `trans_status 1` means canceled, not failed).
    pub closed_by_us: bool,
    /// Bumped on every change; also the webhook sequence number.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The CodePay `store_no` the order was placed under.
    pub codepay_store_no: Option<String>,
    /// The gateway account the payment was routed through (`gwa_…`).
    pub gateway_account_id: Option<String>,
    /// The merchant's store (`store_…`), when the payment names one.
    pub store_id: Option<String>,
    /// The store's terminal (`term_…`), when the payment names one.
    pub terminal_id: Option<String>,
    /// The CodePay `terminal_sn` the order was placed under.
    pub codepay_terminal_sn: Option<String>,
}

impl Payment {
    /// Typed id.
    pub fn payment_id(&self) -> StoreResult<PaymentId> {
        Ok(PaymentId::parse(&self.id)?)
    }
    /// Typed owner.
    pub fn merchant(&self) -> StoreResult<MerchantId> {
        Ok(MerchantId::parse(&self.merchant_id)?)
    }
    /// Typed status.
    pub fn status(&self) -> StoreResult<PaymentStatus> {
        parse_status(&self.status)
    }
    /// Typed mode.
    pub fn mode(&self) -> StoreResult<PaymentMode> {
        Ok(self.mode.parse()?)
    }
    /// Typed wallet.
    pub fn wallet(&self) -> StoreResult<Wallet> {
        Ok(Wallet::from_name(&self.wallet)?)
    }
    /// The amount.
    pub fn amount(&self) -> StoreResult<Money> {
        Ok(Money::new(
            self.amount_minor,
            Currency::from_code(&self.currency)?,
        )?)
    }
    /// The refunded amount.
    pub fn amount_refunded(&self) -> StoreResult<Money> {
        Ok(Money::new(
            self.amount_refunded_minor,
            Currency::from_code(&self.currency)?,
        )?)
    }
}

fn parse_status(s: &str) -> StoreResult<PaymentStatus> {
    PaymentStatus::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("payment status `{s}`")))
}

/// Filters of the payment list. Every filter is optional; `merchant_id` is what scopes a
/// merchant's own list (an operator's search may leave it out).
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only this status.
    pub status: Option<PaymentStatus>,
    /// Only this merchant order id.
    pub merchant_order_id: Option<String>,
    /// Only this store.
    pub store_id: Option<String>,
    /// Only this terminal.
    pub terminal_id: Option<String>,
    /// Only this wallet (payfac's name).
    pub wallet: Option<String>,
    /// Only this mode (`mpm`/`cpm`).
    pub mode: Option<String>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Amount at least (minor units).
    pub amount_gte: Option<i64>,
    /// Amount at most (minor units).
    pub amount_lte: Option<i64>,
    /// Only the payment CodePay knows by this `merchant_order_no`.
    pub upstream_order_no: Option<String>,
    /// Only the payment CodePay numbered with this `trans_no`.
    pub trans_no: Option<String>,
    /// Only payments routed through this gateway account.
    pub gateway_account_id: Option<String>,
    /// Created at or after (unix ms).
    pub created_gte: Option<i64>,
    /// Created before (unix ms).
    pub created_lt: Option<i64>,
}

/// Stores a new payment (version should be 0).
pub fn insert(conn: &mut DbConnection, payment: &Payment) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(payments::table)
        .values(payment)
        .execute(c))?;
    Ok(())
}

/// One payment of a merchant.
pub fn get(conn: &mut DbConnection, merchant: &MerchantId, id: &PaymentId) -> StoreResult<Payment> {
    Ok(on_backend!(conn, |c| payments::table
        .filter(payments::id.eq(id.as_str()))
        .filter(payments::merchant_id.eq(merchant.as_str()))
        .select(Payment::as_select())
        .first(c))?)
}

/// One payment by id, whoever owns it (the engine checks ownership itself, so that a foreign
/// id and a missing one answer the same).
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Payment>> {
    Ok(on_backend!(conn, |c| payments::table
        .find(id)
        .select(Payment::as_select())
        .first(c)
        .optional())?)
}

/// One payment, locked for the rest of the transaction (PostgreSQL `FOR UPDATE`; on SQLite the
/// immediate write transaction already excludes other writers). Use inside `Database::write`.
pub fn get_for_update(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &PaymentId,
) -> StoreResult<Payment> {
    let q = payments::table
        .filter(payments::id.eq(id.as_str()))
        .filter(payments::merchant_id.eq(merchant.as_str()));
    Ok(match conn {
        DbConnection::Postgresql(c) => q.select(Payment::as_select()).for_update().first(c)?,
        DbConnection::Sqlite(c) => q.select(Payment::as_select()).first(c)?,
    })
}

/// The payment with this merchant order id, if any.
pub fn find_by_merchant_order_id(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    merchant_order_id: &str,
) -> StoreResult<Option<Payment>> {
    Ok(on_backend!(conn, |c| payments::table
        .filter(payments::merchant_id.eq(merchant.as_str()))
        .filter(payments::merchant_order_id.eq(merchant_order_id))
        .select(Payment::as_select())
        .first(c)
        .optional())?)
}

/// The payment CodePay knows as (`merchant_no`, `merchant_order_no`) (callbacks, reconciliation).
pub fn find_by_upstream_order_no(
    conn: &mut DbConnection,
    codepay_merchant_no: &str,
    upstream_order_no: &str,
) -> StoreResult<Option<Payment>> {
    Ok(on_backend!(conn, |c| payments::table
        .filter(payments::codepay_merchant_no.eq(codepay_merchant_no))
        .filter(payments::upstream_order_no.eq(upstream_order_no))
        .select(Payment::as_select())
        .first(c)
        .optional())?)
}

/// Payments matching `filter`, newest first (a merchant's list when `filter.merchant_id` is
/// set, an operator's search across merchants otherwise).
pub fn list(
    conn: &mut DbConnection,
    filter: &PaymentFilter,
    page: &PageRequest,
) -> StoreResult<Page<Payment>> {
    let limit = page.effective_limit();
    let f = filter;
    let rows = on_backend!(conn, |c| {
        let mut q = payments::table.select(Payment::as_select()).into_boxed();
        if let Some(m) = &f.merchant_id {
            q = q.filter(payments::merchant_id.eq(m));
        }
        if let Some(s) = f.status {
            q = q.filter(payments::status.eq(s.as_str()));
        }
        if let Some(m) = &f.merchant_order_id {
            q = q.filter(payments::merchant_order_id.eq(m));
        }
        if let Some(v) = &f.store_id {
            q = q.filter(payments::store_id.eq(v));
        }
        if let Some(v) = &f.terminal_id {
            q = q.filter(payments::terminal_id.eq(v));
        }
        if let Some(v) = &f.wallet {
            q = q.filter(payments::wallet.eq(v));
        }
        if let Some(v) = &f.mode {
            q = q.filter(payments::mode.eq(v));
        }
        if let Some(v) = &f.currency {
            q = q.filter(payments::currency.eq(v));
        }
        if let Some(v) = f.amount_gte {
            q = q.filter(payments::amount_minor.ge(v));
        }
        if let Some(v) = f.amount_lte {
            q = q.filter(payments::amount_minor.le(v));
        }
        if let Some(v) = &f.upstream_order_no {
            q = q.filter(payments::upstream_order_no.eq(v));
        }
        if let Some(v) = &f.trans_no {
            q = q.filter(payments::trans_no.eq(v));
        }
        if let Some(v) = &f.gateway_account_id {
            q = q.filter(payments::gateway_account_id.eq(v));
        }
        if let Some(t) = f.created_gte {
            q = q.filter(payments::created_at.ge(t));
        }
        if let Some(t) = f.created_lt {
            q = q.filter(payments::created_at.lt(t));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(payments::id.lt(after));
        }
        q.order(payments::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Writes every mutable field of `payment`, if its `version` is still the stored one; returns the
/// payment with `version + 1` and `updated_at = now`. A stale version is a
/// [`StoreError::Conflict`]: someone else changed it first.
pub fn save(conn: &mut DbConnection, payment: &Payment, now: i64) -> StoreResult<Payment> {
    let p = payment;
    let n = on_backend!(conn, |c| diesel::update(
        payments::table
            .filter(payments::id.eq(&p.id))
            .filter(payments::merchant_id.eq(&p.merchant_id))
            .filter(payments::version.eq(p.version))
    )
    .set((
        payments::status.eq(&p.status),
        payments::trans_no.eq(&p.trans_no),
        payments::qr_code.eq(&p.qr_code),
        payments::expires_at.eq(p.expires_at),
        payments::paid_at.eq(p.paid_at),
        payments::failure_code.eq(&p.failure_code),
        payments::failure_message.eq(&p.failure_message),
        payments::amount_refunded_minor.eq(p.amount_refunded_minor),
        payments::description.eq(&p.description),
        payments::metadata.eq(&p.metadata),
        payments::closed_by_us.eq(p.closed_by_us),
        payments::version.eq(p.version + 1),
        payments::updated_at.eq(now),
    ))
    .execute(c))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "payment {} changed concurrently (version {})",
            p.id, p.version
        )));
    }
    let mut saved = p.clone();
    saved.version += 1;
    saved.updated_at = now;
    Ok(saved)
}

/// Unsettled (`pending`/`processing`) payments created before `created_before`, oldest first,
/// across merchants (reconciliation).
pub fn list_unsettled(
    conn: &mut DbConnection,
    created_before: i64,
    limit: i64,
) -> StoreResult<Vec<Payment>> {
    Ok(on_backend!(conn, |c| payments::table
        .filter(payments::status.eq_any([
            PaymentStatus::Pending.as_str(),
            PaymentStatus::Processing.as_str()
        ]))
        .filter(payments::created_at.lt(created_before))
        .order(payments::created_at.asc())
        .limit(limit)
        .select(Payment::as_select())
        .load(c))?)
}

/// Payments per status across all merchants (the payments gauge).
pub fn count_by_status(conn: &mut DbConnection) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_backend!(conn, |c| payments::table
        .group_by(payments::status)
        .select((payments::status, diesel::dsl::count_star()))
        .order(payments::status.asc())
        .load(c))?)
}

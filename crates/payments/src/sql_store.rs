//! [`PaymentStore`] over the `store` crate: one `Database::write` transaction per [`Change`]
//! (payment/refund compare-and-swap on `version`, events, jobs, and the create's
//! `Idempotency-Key` record), on PostgreSQL or SQLite.

use crate::error::{PaymentError, Result};
use crate::idempotency;
use crate::model::{Change, FeeSnapshot, IdempotencyWrite, Payment, Refund};
use crate::ports::{AccountScope, PaymentFilter, PaymentStore, RefundFilter};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{Currency, MerchantId, Money, PaymentId, RefundId};
use std::sync::Arc;
use store::sealing::MasterKeyring;
use store::{Database, DbConnection, StoreError, StoreResult};

/// Payments, refunds, events and jobs in SQL.
#[derive(Clone)]
pub struct SqlPaymentStore {
    db: Database,
    cpm_deadline: chrono::Duration,
    idempotency: Option<Arc<MasterKeyring>>,
    claimant: Option<String>,
}

impl SqlPaymentStore {
    /// Over a migrated database; `cpm_deadline` rebuilds each CPM payment's settle deadline
    /// (created + deadline) since the row does not store it.
    pub fn new(db: Database, cpm_deadline: std::time::Duration) -> Self {
        Self {
            db,
            cpm_deadline: chrono::Duration::from_std(cpm_deadline).unwrap_or_default(),
            idempotency: None,
            claimant: None,
        }
    }

    /// Also keeps `Idempotency-Key` records ([`Change::idempotency`]) in this database, their
    /// response bodies sealed with `keyring` exactly as the API's idempotency store seals them.
    /// The wiring chooses this once, when the idempotency store uses the same database.
    pub fn with_idempotency(mut self, keyring: Arc<MasterKeyring>) -> Self {
        self.idempotency = Some(keyring);
        self
    }

    /// Names this process (its instance id, heartbeating in `store::instances`) as the claimant
    /// of the keys it claims, so a retry after this process died takes them over at once. Without
    /// one, a claim left in flight is freed only by the lease ([`idempotency::LEASE`]).
    pub fn with_claimant(mut self, instance_id: impl Into<String>) -> Self {
        self.claimant = Some(instance_id.into());
        self
    }
}

/// A storage failure as the engine reports it.
fn store_error(e: StoreError) -> PaymentError {
    if e.is_conflict() {
        PaymentError::Duplicate("row")
    } else if e.is_not_found() {
        PaymentError::not_found("object", "")
    } else {
        PaymentError::Unavailable(e.to_string())
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn payment_row(p: &Payment) -> store::payments::Payment {
    store::payments::Payment {
        id: p.id.to_string(),
        merchant_id: p.merchant_id.to_string(),
        merchant_order_id: p.merchant_order_id.clone(),
        mode: p.mode.as_str().to_owned(),
        amount_minor: p.amount.minor(),
        currency: p.amount.currency().code().to_owned(),
        wallet: p.wallet.name().to_owned(),
        status: p.status.as_str().to_owned(),
        codepay_merchant_no: p.upstream_merchant_no.clone(),
        upstream_order_no: p.merchant_order_no.clone(),
        trans_no: p.trans_no.clone(),
        qr_code: p.qr_code.clone(),
        expires_at: p.expires_at.map(ms),
        paid_at: p.paid_at.map(ms),
        failure_code: p.failure_code.clone(),
        failure_message: p.failure_message.clone(),
        amount_refunded_minor: p.amount_refunded,
        description: p.description.clone(),
        metadata: p.metadata.to_string(),
        closed_by_us: p.closed_by_us,
        version: p.version,
        created_at: ms(p.created_at),
        updated_at: ms(p.updated_at),
        codepay_store_no: p.upstream_store_no.clone(),
        gateway_account_id: p.gateway_account_id.as_ref().map(|a| a.to_string()),
        store_id: p.store_id.as_ref().map(|s| s.to_string()),
        terminal_id: p.terminal_id.as_ref().map(|t| t.to_string()),
        codepay_terminal_sn: p.upstream_terminal_sn.clone(),
    }
}

fn payment_from(
    r: store::payments::Payment,
    fee: Option<store::pricing::PaymentFee>,
    cpm_deadline: chrono::Duration,
) -> StoreResult<Payment> {
    let mode = r.mode()?;
    let created_at = at(r.created_at);
    let currency = Currency::from_code(&r.currency)?;
    let fee = fee
        .map(|f| -> StoreResult<FeeSnapshot> {
            Ok(FeeSnapshot {
                percent_part: Money::new(f.fee_percent_minor, currency)?,
                fixed_part: Money::new(f.fee_fixed_minor, currency)?,
                pricing_version: f.pricing_version,
                codepay_fee: f
                    .codepay_fee_minor
                    .map(|m| Money::new(m, currency))
                    .transpose()?,
            })
        })
        .transpose()?;
    Ok(Payment {
        fee,
        id: r.payment_id()?,
        merchant_id: r.merchant()?,
        amount: r.amount()?,
        wallet: r.wallet()?,
        status: r.status()?,
        metadata: serde_json::from_str(&r.metadata).map_err(corrupt)?,
        settle_deadline: (mode == domain::PaymentMode::Cpm).then(|| created_at + cpm_deadline),
        mode,
        merchant_order_id: r.merchant_order_id,
        upstream_merchant_no: r.codepay_merchant_no,
        upstream_store_no: r.codepay_store_no,
        upstream_terminal_sn: r.codepay_terminal_sn,
        gateway_account_id: r
            .gateway_account_id
            .as_deref()
            .map(domain::GatewayAccountId::parse)
            .transpose()?,
        store_id: r
            .store_id
            .as_deref()
            .map(domain::StoreId::parse)
            .transpose()?,
        terminal_id: r
            .terminal_id
            .as_deref()
            .map(domain::TerminalId::parse)
            .transpose()?,
        merchant_order_no: r.upstream_order_no,
        trans_no: r.trans_no,
        qr_code: r.qr_code,
        description: r.description,
        expires_at: r.expires_at.map(at),
        paid_at: r.paid_at.map(at),
        failure_code: r.failure_code,
        failure_message: r.failure_message,
        amount_refunded: r.amount_refunded_minor,
        closed_by_us: r.closed_by_us,
        version: r.version,
        created_at,
        updated_at: at(r.updated_at),
    })
}

/// Payments with their fee snapshots (read in the same transaction).
fn payments_from(
    c: &mut DbConnection,
    rows: Vec<store::payments::Payment>,
    d: chrono::Duration,
) -> StoreResult<Vec<Payment>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut fees: std::collections::HashMap<String, store::pricing::PaymentFee> =
        store::pricing::payment_fees(c, &ids)?
            .into_iter()
            .map(|f| (f.payment_id.clone(), f))
            .collect();
    rows.into_iter()
        .map(|r| {
            let fee = fees.remove(&r.id);
            payment_from(r, fee, d)
        })
        .collect()
}

fn one_payment(
    c: &mut DbConnection,
    row: Option<store::payments::Payment>,
    d: chrono::Duration,
) -> StoreResult<Option<Payment>> {
    Ok(payments_from(c, row.into_iter().collect(), d)?.pop())
}

/// The stored form of a fee snapshot.
fn fee_row(payment: &PaymentId, f: &FeeSnapshot, now: DateTime<Utc>) -> store::pricing::PaymentFee {
    store::pricing::PaymentFee {
        payment_id: payment.to_string(),
        fee_minor: f.total().minor(),
        fee_percent_minor: f.percent_part.minor(),
        fee_fixed_minor: f.fixed_part.minor(),
        pricing_version: f.pricing_version,
        codepay_fee_minor: f.codepay_fee.map(|m| m.minor()),
        created_at: ms(now),
    }
}

fn refund_row(r: &Refund) -> store::refunds::Refund {
    store::refunds::Refund {
        id: r.id.to_string(),
        payment_id: r.payment_id.to_string(),
        merchant_id: r.merchant_id.to_string(),
        merchant_refund_id: r.merchant_refund_id.clone(),
        amount_minor: r.amount.minor(),
        currency: r.amount.currency().code().to_owned(),
        status: r.status.as_str().to_owned(),
        codepay_merchant_no: r.upstream_merchant_no.clone(),
        upstream_order_no: r.merchant_order_no.clone(),
        trans_no: r.trans_no.clone(),
        reason: r.reason.clone(),
        failure_code: r.failure_code.clone(),
        failure_message: r.failure_message.clone(),
        version: r.version,
        created_at: ms(r.created_at),
        updated_at: ms(r.updated_at),
        store_id: r.store_id.as_ref().map(|s| s.to_string()),
        terminal_id: r.terminal_id.as_ref().map(|t| t.to_string()),
        gateway_account_id: r.gateway_account_id.as_ref().map(|a| a.to_string()),
        codepay_store_no: r.upstream_store_no.clone(),
        codepay_terminal_sn: r.upstream_terminal_sn.clone(),
        fee_return_minor: r.fee_return.map(|m| m.minor()),
    }
}

fn refund_from(r: store::refunds::Refund) -> StoreResult<Refund> {
    let currency = Currency::from_code(&r.currency)?;
    Ok(Refund {
        id: r.refund_id()?,
        status: r.status()?,
        payment_id: PaymentId::parse(&r.payment_id)?,
        merchant_id: MerchantId::parse(&r.merchant_id)?,
        amount: Money::new(r.amount_minor, currency)?,
        merchant_refund_id: r.merchant_refund_id,
        reason: r.reason,
        merchant_order_no: r.upstream_order_no,
        upstream_merchant_no: r.codepay_merchant_no,
        upstream_store_no: r.codepay_store_no,
        upstream_terminal_sn: r.codepay_terminal_sn,
        gateway_account_id: r
            .gateway_account_id
            .as_deref()
            .map(domain::GatewayAccountId::parse)
            .transpose()?,
        store_id: r
            .store_id
            .as_deref()
            .map(domain::StoreId::parse)
            .transpose()?,
        terminal_id: r
            .terminal_id
            .as_deref()
            .map(domain::TerminalId::parse)
            .transpose()?,
        trans_no: r.trans_no,
        failure_code: r.failure_code,
        failure_message: r.failure_message,
        fee_return: r
            .fee_return_minor
            .map(|m| Money::new(m, currency))
            .transpose()?,
        version: r.version,
        created_at: at(r.created_at),
        updated_at: at(r.updated_at),
    })
}

fn get_payment(c: &mut DbConnection, id: &str) -> StoreResult<Option<store::payments::Payment>> {
    store::payments::find(c, id)
}

/// A stored pricing version as the ledger crate's price list (its rates checked again).
pub fn price_list(v: &store::pricing::PricingVersion) -> StoreResult<ledger::PriceList> {
    let rates: Vec<ledger::Rate> = serde_json::from_str(&v.rates)?;
    ledger::PriceList::new(v.version, at(v.effective_at), rates).map_err(corrupt)
}

/// Marks a uniqueness failure so `commit` can report which reference was taken.
fn duplicate(e: StoreError, what: &'static str) -> StoreError {
    if e.is_conflict() {
        StoreError::Conflict(format!("duplicate:{what}"))
    } else {
        e
    }
}

#[async_trait]
impl PaymentStore for SqlPaymentStore {
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>> {
        let (id, d) = (id.to_string(), self.cpm_deadline);
        self.db
            .read(move |c| {
                let row = get_payment(c, &id)?;
                one_payment(c, row, d)
            })
            .await
            .map_err(store_error)
    }

    async fn payment_by_order_no(
        &self,
        scope: &AccountScope,
        merchant_no: &str,
        no: &str,
    ) -> Result<Option<Payment>> {
        let (m, no, d) = (merchant_no.to_owned(), no.to_owned(), self.cpm_deadline);
        let found = self
            .db
            .read(move |c| {
                let row = store::payments::find_by_upstream_order_no(c, &m, &no)?;
                one_payment(c, row, d)
            })
            .await
            .map_err(store_error)?;
        // (merchant_no, merchant_order_no) is unique, so the one row found is the order or
        // nothing; another account's order is nothing to this notification.
        Ok(found.filter(|p| scope.covers(p.gateway_account_id.as_ref())))
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        let id = id.to_string();
        self.db
            .read(move |c| store::refunds::find(c, &id)?.map(refund_from).transpose())
            .await
            .map_err(store_error)
    }

    async fn refund_by_order_no(
        &self,
        scope: &AccountScope,
        merchant_no: &str,
        no: &str,
    ) -> Result<Option<Refund>> {
        let (m, no) = (merchant_no.to_owned(), no.to_owned());
        let found = self
            .db
            .read(move |c| {
                store::refunds::find_by_upstream_order_no(c, &m, &no)?
                    .map(refund_from)
                    .transpose()
            })
            .await
            .map_err(store_error)?;
        Ok(found.filter(|r| scope.covers(r.gateway_account_id.as_ref())))
    }

    async fn refund_by_merchant_ref(
        &self,
        m: &MerchantId,
        reference: &str,
    ) -> Result<Option<Refund>> {
        let (m, reference) = (m.clone(), reference.to_owned());
        self.db
            .read(move |c| {
                store::refunds::find_by_merchant_refund_id(c, &m, &reference)?
                    .map(refund_from)
                    .transpose()
            })
            .await
            .map_err(store_error)
    }

    async fn refunds_of(&self, payment: &PaymentId) -> Result<Vec<Refund>> {
        let id = payment.to_string();
        self.db
            .read(move |c| {
                store::refunds::all_for_payment(c, &id)?
                    .into_iter()
                    .map(refund_from)
                    .collect()
            })
            .await
            .map_err(store_error)
    }

    async fn unsettled_payments(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>> {
        let (before, d) = (ms(before), self.cpm_deadline);
        let limit = i64::try_from(limit).unwrap_or(100);
        self.db
            .read(move |c| {
                let rows = store::payments::list_unsettled(c, before, limit)?;
                payments_from(c, rows, d)
            })
            .await
            .map_err(store_error)
    }

    async fn unsettled_refunds(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Refund>> {
        let (before, limit) = (ms(before), i64::try_from(limit).unwrap_or(100));
        self.db
            .read(move |c| {
                store::refunds::list_pending(c, before, limit)?
                    .into_iter()
                    .map(refund_from)
                    .collect()
            })
            .await
            .map_err(store_error)
    }

    async fn price_list_at(
        &self,
        merchant: &MerchantId,
        at: DateTime<Utc>,
    ) -> Result<Option<ledger::PriceList>> {
        let (m, at) = (merchant.to_string(), ms(at));
        let row = self
            .db
            .read(move |c| store::pricing::in_force_at(c, &m, at))
            .await
            .map_err(store_error)?;
        row.map(|v| price_list(&v)).transpose().map_err(store_error)
    }

    async fn list_payments(&self, f: &PaymentFilter, limit: usize) -> Result<Vec<Payment>> {
        let text = |v: Option<&dyn std::fmt::Display>| v.map(|v| v.to_string());
        let filter = store::payments::PaymentFilter {
            merchant_id: text(f.merchant_id.as_ref().map(|v| v as _)),
            status: f.status,
            merchant_order_id: f.merchant_order_id.clone(),
            store_id: text(f.store_id.as_ref().map(|v| v as _)),
            terminal_id: text(f.terminal_id.as_ref().map(|v| v as _)),
            wallet: f.wallet.map(|w| w.name().to_owned()),
            mode: f.mode.map(|m| m.as_str().to_owned()),
            currency: f.currency.map(|c| c.code().to_owned()),
            amount_gte: f.amount_gte,
            amount_lte: f.amount_lte,
            upstream_order_no: f.merchant_order_no.clone(),
            trans_no: f.trans_no.clone(),
            gateway_account_id: text(f.gateway_account_id.as_ref().map(|v| v as _)),
            created_gte: f.created_gte.map(ms),
            created_lt: f.created_lt.map(ms),
        };
        // The caller asks for page + 1 to learn `has_more`; the store does the same, so ask it
        // for the page and put its probe row back.
        let page = store::PageRequest {
            limit: i64::try_from(limit.saturating_sub(1).max(1)).unwrap_or(100),
            starting_after: f.starting_after.as_ref().map(|p| p.to_string()),
        };
        let d = self.cpm_deadline;
        let (rows, has_more) = self
            .db
            .read(move |c| {
                let p = store::payments::list(c, &filter, &page)?;
                let rows = payments_from(c, p.items, d)?;
                Ok((rows, p.has_more))
            })
            .await
            .map_err(store_error)?;
        let mut rows = rows;
        if has_more && let Some(last) = rows.last().cloned() {
            rows.push(last);
        }
        Ok(rows)
    }

    async fn list_refunds(&self, f: &RefundFilter, limit: usize) -> Result<Vec<Refund>> {
        let text = |v: Option<&dyn std::fmt::Display>| v.map(|v| v.to_string());
        let filter = store::refunds::RefundFilter {
            merchant_id: text(f.merchant_id.as_ref().map(|v| v as _)),
            payment_id: text(f.payment_id.as_ref().map(|v| v as _)),
            status: f.status.map(|s| s.as_str().to_owned()),
            merchant_refund_id: f.merchant_refund_id.clone(),
            store_id: text(f.store_id.as_ref().map(|v| v as _)),
            terminal_id: text(f.terminal_id.as_ref().map(|v| v as _)),
            currency: f.currency.map(|c| c.code().to_owned()),
            amount_gte: f.amount_gte,
            amount_lte: f.amount_lte,
            upstream_order_no: f.merchant_order_no.clone(),
            trans_no: f.trans_no.clone(),
            gateway_account_id: text(f.gateway_account_id.as_ref().map(|v| v as _)),
            payment_wallet: f.wallet.map(|w| w.name().to_owned()),
            payment_mode: f.mode.map(|m| m.as_str().to_owned()),
            payment_merchant_order_id: f.merchant_order_id.clone(),
            created_gte: f.created_gte.map(ms),
            created_lt: f.created_lt.map(ms),
        };
        // As in `list_payments`: the caller's `limit` is page + 1.
        let page = store::PageRequest {
            limit: i64::try_from(limit.saturating_sub(1).max(1)).unwrap_or(100),
            starting_after: f.starting_after.as_ref().map(|r| r.to_string()),
        };
        let (mut rows, has_more) = self
            .db
            .read(move |c| {
                let p = store::refunds::list(c, &filter, &page)?;
                let rows = p
                    .items
                    .into_iter()
                    .map(refund_from)
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok((rows, p.has_more))
            })
            .await
            .map_err(store_error)?;
        if has_more && let Some(last) = rows.last().cloned() {
            rows.push(last);
        }
        Ok(rows)
    }

    async fn commit(&self, change: Change) -> Result<()> {
        self.commit_then(change, |_| Ok(())).await
    }

    async fn commit_and_price(
        &self,
        change: Change,
        merchant: &MerchantId,
        at: DateTime<Utc>,
    ) -> Result<Option<ledger::PriceList>> {
        let (m, at) = (merchant.to_string(), ms(at));
        let row = self
            .commit_then(change, move |c| store::pricing::in_force_at(c, &m, at))
            .await?;
        row.map(|v| price_list(&v)).transpose().map_err(store_error)
    }
}

impl SqlPaymentStore {
    /// Commits `change`, running `then` in the same transaction after it (a read the caller
    /// needs next, saved a transaction of its own).
    async fn commit_then<T, F>(&self, mut change: Change, then: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        if let Some(write) = change.idempotency.as_mut() {
            self.seal_response(write)?;
        }
        let now = Utc::now();
        let claimant = self.claimant.clone();
        let result = self
            .db
            .write(move |c| {
                write_change(c, &change, now, claimant.as_deref())?;
                then(c)
            })
            .await;
        match result {
            Ok(v) => Ok(v),
            Err(StoreError::Conflict(what)) if what == "duplicate:merchant_order_id" => {
                Err(PaymentError::Duplicate("merchant_order_id"))
            }
            Err(StoreError::Conflict(what)) if what == "duplicate:merchant_refund_id" => {
                Err(PaymentError::Duplicate("merchant_refund_id"))
            }
            Err(StoreError::Conflict(what)) if what == "duplicate:idempotency_key" => {
                Err(PaymentError::Duplicate("idempotency_key"))
            }
            Err(e) if e.is_conflict() => Err(PaymentError::VersionConflict),
            Err(e) => Err(store_error(e)),
        }
    }
}

impl SqlPaymentStore {
    /// Seals a stored response body before it reaches the row, like the API's idempotency
    /// store does; refuses when this store was not built to keep idempotency records.
    fn seal_response(&self, write: &mut IdempotencyWrite) -> Result<()> {
        let Some(keyring) = &self.idempotency else {
            return Err(PaymentError::Unavailable(
                "this payment store keeps no idempotency records".to_owned(),
            ));
        };
        if let IdempotencyWrite::Complete {
            scope, key, body, ..
        } = write
        {
            let binding = store::sealing::binding::idempotency_response(scope, key);
            *body = keyring
                .seal(body.as_bytes(), &binding)
                .map_err(|e| PaymentError::Unavailable(format!("cannot seal a response: {e}")))?;
        }
        Ok(())
    }
}

/// Everything of one [`Change`], inside one transaction. The idempotency claim comes first: a
/// request that does not own the key writes nothing.
fn write_change(
    c: &mut DbConnection,
    change: &Change,
    now: DateTime<Utc>,
    claimant: Option<&str>,
) -> StoreResult<()> {
    if let Some(IdempotencyWrite::Claim {
        scope,
        key,
        fingerprint,
    }) = &change.idempotency
    {
        claim_key(c, scope, key, fingerprint, now, claimant)?;
    }
    if let Some(p) = &change.insert_payment {
        store::payments::insert(c, &payment_row(p))
            .map_err(|e| duplicate(e, "merchant_order_id"))?;
    }
    if let Some((p, expected)) = &change.payment {
        let mut row = payment_row(p);
        row.version = *expected;
        store::payments::save(c, &row, ms(p.updated_at))?;
    }
    if let Some(r) = &change.insert_refund {
        store::refunds::insert(c, &refund_row(r))
            .map_err(|e| duplicate(e, "merchant_refund_id"))?;
    }
    if let Some((r, expected)) = &change.refund_update {
        let mut row = refund_row(r);
        row.version = *expected;
        store::refunds::save(c, &row, ms(r.updated_at))?;
    }
    if let Some((id, fee)) = &change.payment_fee {
        store::pricing::insert_payment_fee(c, &fee_row(id, fee, now))?;
    }
    if !change.journals.is_empty() {
        let (mut headers, mut entries) = (Vec::new(), Vec::new());
        for j in &change.journals {
            let (header, rows) = crate::posting::stored_rows(j, now);
            headers.push(header);
            entries.extend(rows);
        }
        store::ledger::insert_all(c, &headers, &entries)?;
    }
    for e in &change.events {
        insert_event(c, e)?;
    }
    for a in &change.audit {
        store::audit::record(
            c,
            &a.actor,
            a.action,
            (a.target_type, &a.target_id),
            Some(a.merchant_id.as_str()),
            &a.details,
            ms(now),
        )?;
    }
    if let Some(IdempotencyWrite::Complete {
        scope,
        key,
        status,
        body,
    }) = &change.idempotency
    {
        store::idempotency::complete(c, scope, key, i32::from(*status), body)?;
    }
    for (kind, subject) in &change.retire_jobs {
        store::jobs::retire_queued(c, kind.as_str(), subject, ms(now))?;
    }
    for j in &change.jobs {
        let payload = serde_json::json!({ "subject": j.subject }).to_string();
        store::jobs::enqueue(
            c,
            &store::jobs::NewJob {
                kind: j.kind.as_str(),
                dedupe_key: Some(&j.subject),
                payload: &payload,
                run_at: ms(j.run_at),
            },
            ms(now),
        )?;
    }
    Ok(())
}

/// Claims `(scope, key)` for this transaction as `claimant`, or fails it with
/// `duplicate:idempotency_key`.
///
/// A claim recovered from a dead claimant is this request's too; when the dead attempt's payment
/// row is there, the insert that follows fails with `duplicate:merchant_order_id` and rolls the
/// takeover back with it, and the caller's separate claim answers with that payment.
fn claim_key(
    c: &mut DbConnection,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    claimant: Option<&str>,
) -> StoreResult<()> {
    use store::idempotency::{Begin, claim};
    let expires = ms(now + idempotency::RETENTION);
    let lease = idempotency::LEASE.num_milliseconds();
    match claim(
        c,
        scope,
        key,
        fingerprint,
        ms(now),
        expires,
        lease,
        claimant,
    )? {
        Begin::Started | Begin::Recovered => Ok(()),
        Begin::Existing(_) => Err(StoreError::Conflict("duplicate:idempotency_key".to_owned())),
    }
}

/// Writes one outbox event (the store fans it out to the merchant's endpoints).
fn insert_event(c: &mut DbConnection, e: &crate::model::NewEvent) -> StoreResult<()> {
    let object_id = e
        .payload
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    store::events::insert(
        c,
        &store::events::Event {
            id: domain::EventId::generate().into_string(),
            merchant_id: e.merchant_id.to_string(),
            event_type: e.event_type.as_str().to_owned(),
            object_id,
            payload: e.payload.to_string(),
            created_at: ms(e.created_at),
        },
    )
}

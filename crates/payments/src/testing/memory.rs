//! An in-memory [`PaymentStore`], for unit tests of the payment logic and HTTP-level tests
//! that need no database. Same compare-and-swap and uniqueness semantics as the real stores.

use crate::error::{PaymentError, Result};
use crate::model::{AuditNote, Change, JobKind, NewEvent, NewJob, Payment, Refund};
use crate::ports::{AccountScope, PaymentFilter, PaymentStore, RefundFilter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{MerchantId, PaymentId, RefundId};
use parking_lot::Mutex;
use std::collections::BTreeMap;

#[derive(Default)]
struct State {
    payments: BTreeMap<String, Payment>,
    refunds: BTreeMap<String, Refund>,
    events: Vec<NewEvent>,
    jobs: Vec<NewJob>,
    retired_jobs: Vec<(JobKind, String)>,
    audit: Vec<AuditNote>,
    journals: Vec<ledger::Journal>,
    posted: Vec<Posted>,
    prices: BTreeMap<String, Vec<ledger::PriceList>>,
}

/// What one commit that carried journals wrote beside them, so tests can check that a state
/// change and its journals were committed together.
#[derive(Clone, Debug)]
pub struct Posted {
    /// The payment row the commit wrote, if any.
    pub payment: Option<Payment>,
    /// The refund row the commit wrote, if any.
    pub refund: Option<Refund>,
    /// The events it wrote.
    pub events: Vec<NewEvent>,
    /// Its journals.
    pub journals: Vec<ledger::Journal>,
}

/// Payments, refunds, events and jobs in a mutex.
#[derive(Default)]
pub struct MemoryPaymentStore {
    state: Mutex<State>,
}

impl MemoryPaymentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event written so far, in order.
    pub fn events(&self) -> Vec<NewEvent> {
        self.state.lock().events.clone()
    }

    /// Every audit entry written so far, in order.
    pub fn audit(&self) -> Vec<AuditNote> {
        self.state.lock().audit.clone()
    }

    /// Every job scheduled so far, in order.
    pub fn jobs(&self) -> Vec<NewJob> {
        self.state.lock().jobs.clone()
    }

    /// Every job retired by a change, as (kind, subject), in order.
    pub fn retired_jobs(&self) -> Vec<(JobKind, String)> {
        self.state.lock().retired_jobs.clone()
    }

    /// Every journal posted so far, in order.
    pub fn journals(&self) -> Vec<ledger::Journal> {
        self.state.lock().journals.clone()
    }

    /// Every commit that carried journals, in order, with what it wrote beside them.
    pub fn posted(&self) -> Vec<Posted> {
        self.state.lock().posted.clone()
    }

    /// Adds a price list version of `merchant`.
    pub fn add_prices(&self, merchant: &MerchantId, list: ledger::PriceList) {
        self.state
            .lock()
            .prices
            .entry(merchant.to_string())
            .or_default()
            .push(list);
    }
}

#[async_trait]
impl PaymentStore for MemoryPaymentStore {
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>> {
        Ok(self.state.lock().payments.get(id.as_str()).cloned())
    }

    async fn payment_by_order_no(
        &self,
        scope: &AccountScope,
        merchant_no: &str,
        no: &str,
    ) -> Result<Option<Payment>> {
        let s = self.state.lock();
        Ok(s.payments
            .values()
            .find(|p| p.upstream_merchant_no == merchant_no && p.merchant_order_no == no)
            .filter(|p| scope.covers(p.gateway_account_id.as_ref()))
            .cloned())
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        Ok(self.state.lock().refunds.get(id.as_str()).cloned())
    }

    async fn refund_by_order_no(
        &self,
        scope: &AccountScope,
        _merchant_no: &str,
        no: &str,
    ) -> Result<Option<Refund>> {
        let s = self.state.lock();
        Ok(s.refunds
            .values()
            .find(|r| r.merchant_order_no == no)
            .filter(|r| scope.covers(r.gateway_account_id.as_ref()))
            .cloned())
    }

    async fn refund_by_merchant_ref(
        &self,
        m: &MerchantId,
        reference: &str,
    ) -> Result<Option<Refund>> {
        let s = self.state.lock();
        Ok(s.refunds
            .values()
            .find(|r| &r.merchant_id == m && r.merchant_refund_id == reference)
            .cloned())
    }

    async fn refunds_of(&self, payment: &PaymentId) -> Result<Vec<Refund>> {
        let s = self.state.lock();
        Ok(s.refunds
            .values()
            .filter(|r| &r.payment_id == payment)
            .cloned()
            .collect())
    }

    async fn unsettled_payments(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>> {
        let s = self.state.lock();
        Ok(s.payments
            .values()
            .filter(|p| !p.status.is_final() && p.created_at < before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn unsettled_refunds(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Refund>> {
        let s = self.state.lock();
        Ok(s.refunds
            .values()
            .filter(|r| !r.status.is_final() && r.created_at < before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn price_list_at(
        &self,
        merchant: &MerchantId,
        at: DateTime<Utc>,
    ) -> Result<Option<ledger::PriceList>> {
        let s = self.state.lock();
        let lists = s
            .prices
            .get(merchant.as_str())
            .map_or(&[][..], Vec::as_slice);
        Ok(ledger::pricing::pick_version(lists, at).cloned())
    }

    async fn list_payments(&self, f: &PaymentFilter, limit: usize) -> Result<Vec<Payment>> {
        let s = self.state.lock();
        Ok(s.payments
            .values()
            .rev()
            .filter(|p| f.merchant_id.as_ref().is_none_or(|m| &p.merchant_id == m))
            .filter(|p| f.store_id.is_none() || p.store_id == f.store_id)
            .filter(|p| f.terminal_id.is_none() || p.terminal_id == f.terminal_id)
            .filter(|p| f.wallet.is_none_or(|w| p.wallet == w))
            .filter(|p| f.mode.is_none_or(|m| p.mode == m))
            .filter(|p| f.currency.is_none_or(|c| p.amount.currency() == c))
            .filter(|p| f.amount_gte.is_none_or(|a| p.amount.minor() >= a))
            .filter(|p| f.amount_lte.is_none_or(|a| p.amount.minor() <= a))
            .filter(|p| {
                f.merchant_order_no
                    .as_ref()
                    .is_none_or(|o| &p.merchant_order_no == o)
            })
            .filter(|p| f.trans_no.is_none() || p.trans_no == f.trans_no)
            .filter(|p| {
                f.gateway_account_id.is_none() || p.gateway_account_id == f.gateway_account_id
            })
            .filter(|p| f.starting_after.as_ref().is_none_or(|c| p.id < *c))
            .filter(|p| {
                f.merchant_order_id
                    .as_ref()
                    .is_none_or(|o| &p.merchant_order_id == o)
            })
            .filter(|p| f.status.is_none_or(|st| p.status == st))
            .filter(|p| f.created_gte.is_none_or(|t| p.created_at >= t))
            .filter(|p| f.created_lt.is_none_or(|t| p.created_at < t))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn list_refunds(&self, f: &RefundFilter, limit: usize) -> Result<Vec<Refund>> {
        let s = self.state.lock();
        let payment = |r: &Refund| s.payments.get(r.payment_id.as_str());
        Ok(s.refunds
            .values()
            .rev()
            .filter(|r| f.merchant_id.as_ref().is_none_or(|m| &r.merchant_id == m))
            .filter(|r| f.payment_id.as_ref().is_none_or(|p| &r.payment_id == p))
            .filter(|r| f.status.is_none_or(|st| r.status == st))
            .filter(|r| {
                f.merchant_refund_id
                    .as_ref()
                    .is_none_or(|m| &r.merchant_refund_id == m)
            })
            .filter(|r| f.store_id.is_none() || r.store_id == f.store_id)
            .filter(|r| f.terminal_id.is_none() || r.terminal_id == f.terminal_id)
            .filter(|r| {
                f.wallet
                    .is_none_or(|w| payment(r).is_some_and(|p| p.wallet == w))
            })
            .filter(|r| {
                f.mode
                    .is_none_or(|m| payment(r).is_some_and(|p| p.mode == m))
            })
            .filter(|r| {
                f.merchant_order_id
                    .as_ref()
                    .is_none_or(|o| payment(r).is_some_and(|p| &p.merchant_order_id == o))
            })
            .filter(|r| f.currency.is_none_or(|c| r.amount.currency() == c))
            .filter(|r| f.amount_gte.is_none_or(|a| r.amount.minor() >= a))
            .filter(|r| f.amount_lte.is_none_or(|a| r.amount.minor() <= a))
            .filter(|r| {
                f.merchant_order_no
                    .as_ref()
                    .is_none_or(|o| &r.merchant_order_no == o)
            })
            .filter(|r| f.trans_no.is_none() || r.trans_no == f.trans_no)
            .filter(|r| {
                f.gateway_account_id.is_none() || r.gateway_account_id == f.gateway_account_id
            })
            .filter(|r| f.created_gte.is_none_or(|t| r.created_at >= t))
            .filter(|r| f.created_lt.is_none_or(|t| r.created_at < t))
            .filter(|r| f.starting_after.as_ref().is_none_or(|c| r.id < *c))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn commit(&self, change: Change) -> Result<()> {
        if change.idempotency.is_some() {
            // An engine over this store is never wired with `with_idempotent_creates`.
            return Err(PaymentError::Unavailable(
                "the in-memory payment store keeps no idempotency records".to_owned(),
            ));
        }
        let mut s = self.state.lock();
        if let Some(p) = &change.insert_payment {
            let taken = s.payments.values().any(|o| {
                o.merchant_id == p.merchant_id && o.merchant_order_id == p.merchant_order_id
            });
            if taken {
                return Err(PaymentError::Duplicate("merchant_order_id"));
            }
        }
        if let Some(r) = &change.insert_refund {
            let taken = s.refunds.values().any(|o| {
                o.merchant_id == r.merchant_id && o.merchant_refund_id == r.merchant_refund_id
            });
            if taken {
                return Err(PaymentError::Duplicate("merchant_refund_id"));
            }
        }
        if let Some((p, expected)) = &change.payment
            && s.payments.get(p.id.as_str()).map(|c| c.version) != Some(*expected)
        {
            return Err(PaymentError::VersionConflict);
        }
        if let Some((r, expected)) = &change.refund_update
            && s.refunds.get(r.id.as_str()).map(|c| c.version) != Some(*expected)
        {
            return Err(PaymentError::VersionConflict);
        }
        // As the ledger table: one journal per kind and subject.
        let posted_twice = change.journals.iter().any(|j| {
            s.journals
                .iter()
                .any(|o| o.kind() == j.kind() && o.subject() == j.subject())
        });
        if posted_twice {
            return Err(PaymentError::VersionConflict);
        }
        if !change.journals.is_empty() {
            s.posted.push(Posted {
                payment: change.payment.as_ref().map(|(p, _)| p.clone()),
                refund: change.refund_update.as_ref().map(|(r, _)| r.clone()),
                events: change.events.clone(),
                journals: change.journals.clone(),
            });
        }
        for p in change
            .insert_payment
            .into_iter()
            .chain(change.payment.map(|(p, _)| p))
        {
            s.payments.insert(p.id.to_string(), p);
        }
        for r in change
            .insert_refund
            .into_iter()
            .chain(change.refund_update.map(|(r, _)| r))
        {
            s.refunds.insert(r.id.to_string(), r);
        }
        s.events.extend(change.events);
        s.audit.extend(change.audit);
        s.jobs.extend(change.jobs);
        s.retired_jobs.extend(change.retire_jobs);
        s.journals.extend(change.journals);
        Ok(())
    }
}

//! payfac's payment engine, the one place that holds the payment logic: create, settle, cancel,
//! refund, apply an upstream status, expire, reconcile. The API handlers, the CodePay callback
//! and the job runner all call [`Engine`]; it reaches storage and CodePay only through the
//! narrow traits of [`ports`], so every rule here is unit-tested with in-memory implementations
//! ([`testing`]). [`sql_store`] and [`codepay`] are the real implementations of those ports,
//! [`gateways`] sends each order through the gateway account its payment was routed to,
//! [`intake`] verifies CodePay's notifications with that account's key, and [`jobs`] runs the
//! engine's timers.
//!
//! Crash safety: every upstream call is preceded by a committed local row carrying the
//! `merchant_order_no` payfac generated, plus a durable job that will settle the order with
//! `order.query` if payfac dies before it records CodePay's answer. A second charge is
//! impossible because a retry never generates a new `merchant_order_no` for the same payment.

pub mod books;
pub mod codepay;
pub mod create;
pub mod error;
pub mod gateways;
pub mod idempotency;
mod in_flight;
pub mod intake;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod ports;
pub mod posting;
pub mod recon;
pub mod refunds;
pub mod settle;
mod settled;
pub mod sql_store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use chrono::{DateTime, Utc};
use domain::{EventType, PaymentId};
pub use error::{PaymentError, Result};
use model::{Change, JobKind, NewEvent, Payment, Refund};
use objects::{PaymentObject, RefundObject, event_payload};
use ports::{PaymentStore, Upstream, UpstreamMerchant};
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the payment logic.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// payfac's external base URL, without trailing `/` (QR and pay-page links).
    pub public_url: String,
    /// How often a processing payment or pending refund is queried (default 2 s).
    pub poll_interval: Duration,
    /// How long a CPM payment may stay unsettled before it is reversed (default 60 s).
    pub cpm_deadline: Duration,
    /// MPM expiry when the request gives none (default 15 min).
    pub default_mpm_expiry: Duration,
    /// Longest MPM expiry a request may ask for (default 24 h).
    pub max_mpm_expiry: Duration,
    /// Shortest MPM expiry a request may ask for (default 30 s; a sandbox may lower it).
    pub min_mpm_expiry: Duration,
    /// How often the `payment.reconcile` job runs (default 60 s).
    pub reconcile_interval: Duration,
    /// Payments younger than this are left to their own jobs by reconciliation (default 60 s).
    pub reconcile_min_age: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            poll_interval: Duration::from_secs(2),
            cpm_deadline: Duration::from_secs(60),
            default_mpm_expiry: Duration::from_secs(15 * 60),
            max_mpm_expiry: Duration::from_secs(24 * 3600),
            min_mpm_expiry: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(60),
            reconcile_min_age: Duration::from_secs(60),
        }
    }
}

/// Where time comes from (tests move it by hand).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The payment logic, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn PaymentStore>,
    upstream: Arc<dyn Upstream>,
    cfg: Arc<EngineConfig>,
    clock: Arc<dyn Clock>,
    metrics: Option<Arc<metrics::TransitionMetrics>>,
    idempotent_creates: bool,
    paid: Arc<settled::PaidPayments>,
    in_flight: Arc<in_flight::InFlight>,
}

/// How many times a lost compare-and-swap is retried before giving up with 409.
const CAS_RETRIES: usize = 16;

impl Engine {
    /// Builds the engine over a store and an upstream.
    pub fn new(
        store: Arc<dyn PaymentStore>,
        upstream: Arc<dyn Upstream>,
        cfg: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            upstream,
            cfg: Arc::new(cfg),
            clock,
            metrics: None,
            idempotent_creates: false,
            paid: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// Declares that the store keeps `Idempotency-Key` records in its own transactions
    /// (`SqlPaymentStore::with_idempotency`), so [`Engine::create_payment_once`] may fold a
    /// create's key into its commits. Decided once, when the app is wired.
    pub fn with_idempotent_creates(mut self) -> Self {
        self.idempotent_creates = true;
        self
    }

    /// True when creates fold their `Idempotency-Key` into their own commits.
    pub fn folds_idempotency(&self) -> bool {
        self.idempotent_creates
    }

    /// Counts every committed payment and refund transition on `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<metrics::TransitionMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The gateway accounts were written through this process (created, updated, a key
    /// rotated): the next payment, query or refund uses what is stored now. Other processes
    /// follow on their own (see [`gateways`]).
    pub async fn gateway_accounts_changed(&self) {
        self.upstream.accounts_changed().await;
    }

    /// The store, for read-only queries of the API layer.
    pub fn store(&self) -> &Arc<dyn PaymentStore> {
        &self.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn after(&self, d: Duration) -> DateTime<Utc> {
        self.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(2))
    }

    /// A payment owned by `merchant`; another merchant's id is a 404, exactly like a missing one.
    pub async fn payment_for(
        &self,
        merchant: &domain::MerchantId,
        id: &PaymentId,
    ) -> Result<Payment> {
        match self.store.payment(id).await? {
            Some(p) if &p.merchant_id == merchant => Ok(p),
            _ => Err(PaymentError::not_found("payment", id.as_str())),
        }
    }

    /// A refund owned by `merchant`.
    pub async fn refund_for(
        &self,
        merchant: &domain::MerchantId,
        id: &domain::RefundId,
    ) -> Result<Refund> {
        match self.store.refund(id).await? {
            Some(r) if &r.merchant_id == merchant => Ok(r),
            _ => Err(PaymentError::not_found("refund", id.as_str())),
        }
    }

    /// The public object of a payment.
    pub fn payment_object(&self, p: &Payment) -> PaymentObject {
        PaymentObject::from_payment(p, &self.cfg.public_url)
    }

    fn payment_event(&self, p: &Payment) -> Option<NewEvent> {
        EventType::for_payment(p.status).map(|event_type| NewEvent {
            merchant_id: p.merchant_id.clone(),
            event_type,
            payload: event_payload(&self.payment_object(p), p.version),
            created_at: p.updated_at,
        })
    }

    fn refund_event(&self, r: &Refund) -> Option<NewEvent> {
        EventType::for_refund(r.status).map(|event_type| NewEvent {
            merchant_id: r.merchant_id.clone(),
            event_type,
            payload: event_payload(&RefundObject::from_refund(r), r.version),
            created_at: r.updated_at,
        })
    }

    /// Re-reads a payment, lets `edit` change it (returning false for "nothing to do"), and
    /// commits the new row with a compare-and-swap on its version. A status change writes its
    /// `payment.*` event in the same commit, so no state change is ever announced twice or lost.
    async fn update_payment<F>(&self, id: &PaymentId, edit: F) -> Result<Payment>
    where
        F: FnMut(&mut Payment, &mut Change) -> Result<bool> + Send,
    {
        Ok(self.update_payment_from(id, None, None, edit).await?.0)
    }

    /// [`Engine::update_payment`] starting from `known`, the caller's copy of the row (saving a
    /// read; a stale copy only costs one retry), and, with `once`, storing the request's
    /// idempotent response in the same commit. The flag says whether that response was stored.
    async fn update_payment_from<F>(
        &self,
        id: &PaymentId,
        mut known: Option<Payment>,
        once: Option<&idempotency::IdempotentCreate>,
        mut edit: F,
    ) -> Result<(Payment, bool)>
    where
        F: FnMut(&mut Payment, &mut Change) -> Result<bool> + Send,
    {
        for _ in 0..CAS_RETRIES {
            let current = self.known_or_read(id, known.take()).await?;
            let mut next = current.clone();
            let mut change = Change::default();
            if !edit(&mut next, &mut change)? {
                return Ok((current, false));
            }
            next.version = current.version + 1;
            next.updated_at = self.now();
            if next.status != current.status {
                change.events.extend(self.payment_event(&next));
            }
            if next.status.is_final() && !current.status.is_final() {
                // A CPM payment has only a poll job; an MPM one its expiry and maybe a poll.
                let kinds: &[JobKind] = match next.mode {
                    domain::PaymentMode::Cpm => &[JobKind::PollPayment],
                    domain::PaymentMode::Mpm => &[JobKind::ExpirePayment, JobKind::PollPayment],
                };
                for kind in kinds {
                    change.retire_jobs.push((*kind, next.id.to_string()));
                }
            }
            change.idempotency = once.and_then(|o| o.completion(&self.payment_object(&next)));
            let stored = change.idempotency.is_some();
            change.payment = Some((next.clone(), current.version));
            match self.store.commit(change).await {
                Ok(()) => {
                    if let Some(m) = &self.metrics
                        && next.status != current.status
                    {
                        m.payment(current.status, next.status);
                    }
                    self.remember_if_paid(&next);
                    return Ok((next, stored));
                }
                Err(PaymentError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(PaymentError::VersionConflict)
    }

    /// The caller's copy of payment `id`, else the stored row (`NotFound` when there is none).
    async fn known_or_read(&self, id: &PaymentId, known: Option<Payment>) -> Result<Payment> {
        match known {
            Some(p) => Ok(p),
            None => self
                .store
                .payment(id)
                .await?
                .ok_or_else(|| PaymentError::not_found("payment", id.as_str())),
        }
    }

    /// Remembers a paid payment for the notification shortcut ([`settled`]).
    fn remember_if_paid(&self, p: &Payment) {
        if p.status == domain::PaymentStatus::Succeeded {
            self.paid.remember(
                &p.merchant_order_no,
                settled::Paid {
                    id: p.id.clone(),
                    merchant_no: p.upstream_merchant_no.clone(),
                    account: p.gateway_account_id.clone(),
                    amount: p.amount,
                    has_trans_no: p.trans_no.is_some(),
                },
            );
        }
    }

    /// Like [`Engine::update_payment`] for a refund; the payment's version is bumped in the same
    /// commit so refund changes serialise with refund creation on that payment.
    async fn update_refund<F>(&self, id: &domain::RefundId, mut edit: F) -> Result<Refund>
    where
        F: FnMut(&mut Refund, &mut Payment, &mut Change) -> Result<bool> + Send,
    {
        for _ in 0..CAS_RETRIES {
            let current = self
                .store
                .refund(id)
                .await?
                .ok_or_else(|| PaymentError::not_found("refund", id.as_str()))?;
            let payment = self
                .store
                .payment(&current.payment_id)
                .await?
                .ok_or_else(|| PaymentError::not_found("payment", current.payment_id.as_str()))?;
            let mut next = current.clone();
            let mut next_payment = payment.clone();
            let mut change = Change::default();
            if !edit(&mut next, &mut next_payment, &mut change)? {
                return Ok(current);
            }
            let now = self.now();
            next.version = current.version + 1;
            next.updated_at = now;
            next_payment.version = payment.version + 1;
            next_payment.updated_at = now;
            if next.status != current.status {
                change.events.extend(self.refund_event(&next));
            }
            change.refund_update = Some((next.clone(), current.version));
            change.payment = Some((next_payment, payment.version));
            match self.store.commit(change).await {
                Ok(()) => {
                    if let Some(m) = &self.metrics
                        && next.status != current.status
                    {
                        m.refund(current.status, next.status);
                    }
                    return Ok(next);
                }
                Err(PaymentError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(PaymentError::VersionConflict)
    }
}

fn upstream_merchant(p: &Payment) -> UpstreamMerchant {
    UpstreamMerchant {
        gateway_account_id: p.gateway_account_id.clone(),
        merchant_no: p.upstream_merchant_no.clone(),
        store_no: p.upstream_store_no.clone(),
        terminal_sn: p.upstream_terminal_sn.clone(),
    }
}

/// A fresh CodePay `merchant_order_no`: `P`/`R` + a ULID (27 chars, within CodePay's 32 and its
/// `[A-Za-z0-9_\-|*@]` alphabet), unique without asking anyone.
fn new_order_no(prefix: char) -> String {
    format!("{prefix}{}", ulid::Ulid::new())
}

/// A merchant's reference (`merchant_order_id`, `merchant_refund_id`): 1 to 64 printable
/// characters, so it fits every column and log line it travels through.
fn check_reference(value: &str, param: &str) -> Result<()> {
    let ok = !value.is_empty() && value.len() <= 64 && value.chars().all(|c| !c.is_control());
    if ok {
        Ok(())
    } else {
        Err(PaymentError::invalid(
            "parameter_invalid",
            format!("{param} must be 1 to 64 printable characters"),
            Some(param),
        ))
    }
}

/// "CodePay E04111: order not found", kept for support beside payfac's own code.
fn upstream_text(code: &str, msg: &str) -> String {
    format!("CodePay {code}: {msg}")
}

#[cfg(test)]
mod posting_tests;
#[cfg(test)]
mod tests;

//! Settling payments: applying what CodePay says (answers, queries, notifications) through the
//! domain state machine, polling, reversing, expiring, canceling, and the late-success rule.
//!
//! # The late-success rule
//! payfac marks a payment `canceled` only after CodePay confirmed the close (`order.revoker`
//! followed by `order.query` answering `1`/`3`, or "no such order"). If a success is reported
//! for such a payment afterwards (a delayed notification, a reconciliation query), payfac first
//! confirms it with `order.query`. If CodePay really holds the order as paid, payfac **refunds it
//! in full automatically** (refund `merchant_refund_id = late_success_<payment id>`, reason
//! `late_success_after_close`) and the payment stays `canceled`: the merchant was already told
//! the payment was canceled and may have released the goods, and a final state never changes.
//! The refund is an ordinary refund: polled until final, announced with `refund.*` events.
//! The confirmation is durable: a `payment.confirm_late_success` job is committed before the
//! query, so a timeout or a crash only delays the refund.
//!
//! # Closing
//! Once payfac starts closing an order (`closed_by_us`: cancel, expiry, CPM reversal, a create
//! whose outcome is unknown), no success is committed from a notification or a plain query:
//! the customer may pay while `order.revoker` is on its way, and the revoker then voids the
//! paid order. The close resolves itself (revoke, then query) and the state committed is what
//! CodePay holds after the revoke. A revoke whose outcome is unknown is retried by the poll job.

use super::model::{AuditNote, JobKind, NewJob, Payment, Prices};
use super::ports::{Outcome, UpstreamOrder, is_order_not_found};
use super::{Engine, posting, upstream_merchant, upstream_text};
use crate::error::{PaymentError, Result};
use chrono::{DateTime, Utc};
use domain::payment::Step;
use domain::{PaymentId, PaymentMode, PaymentStatus, TransStatus};

/// What a background job asks the runner to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished; delete the job.
    Done,
    /// Run again at this time.
    RetryAt(DateTime<Utc>),
}

/// Why payfac closed a payment, shown as `failure_code` of a `canceled` payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// MPM expiry.
    Expired,
    /// The merchant asked.
    CanceledByMerchant,
    /// CPM unsettled past its deadline.
    Reversed,
    /// The create call's outcome was unknown.
    CreateFailed,
    /// CodePay reported another amount than the payment's: the order is reversed and the
    /// payment ends `failed`.
    AmountMismatch,
}

/// `failure_code` of a payment whose order CodePay reported with another amount.
pub const AMOUNT_MISMATCH: &str = "upstream_amount_mismatch";

impl CloseReason {
    fn code(self) -> &'static str {
        match self {
            CloseReason::Expired => "expired",
            CloseReason::CanceledByMerchant => "canceled_by_merchant",
            CloseReason::Reversed => "reversed_unsettled",
            CloseReason::CreateFailed => "upstream_unavailable",
            CloseReason::AmountMismatch => AMOUNT_MISMATCH,
        }
    }
}

/// A CodePay result notification, parsed (and, when possible, verified) by the gateway layer.
#[derive(Clone, Debug)]
pub struct InboundNotification {
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// The order's `merchant_order_no` (the payment's or the refund's).
    pub merchant_order_no: String,
    /// `trans_type`: 1/4/6 are payments, 2/3/5/8 refunds and voids.
    pub trans_type: i64,
    /// What it reports.
    pub order: UpstreamOrder,
    /// Whether the RSA2 signature was checked and valid.
    pub verified: bool,
    /// The orders it may touch: those of the gateway account whose key verified it.
    pub scope: super::ports::AccountScope,
}

/// What a notification did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationEffect {
    /// Matched a payment; its status after.
    Payment(PaymentId, PaymentStatus),
    /// Matched a refund; its status after.
    Refund(domain::RefundId, domain::RefundStatus),
    /// No payment or refund of the notifying account carries that `merchant_order_no`.
    Unmatched,
}

/// Longest a notification waits for this process's create of the same order to commit its
/// answer (`crate::in_flight`); past it the notification is applied as it stands.
const CREATE_IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Applies an upstream answer to a payment through the state machine, with its event.
    /// `close` says payfac closed the order (so `trans_status 1` means canceled) and why.
    pub async fn apply_payment_answer(
        &self,
        id: &PaymentId,
        answer: &UpstreamOrder,
        close: Option<CloseReason>,
    ) -> Result<Payment> {
        Ok(self
            .apply_payment_answer_from(id, None, None, answer, close, None)
            .await?
            .0)
    }

    /// [`Engine::apply_payment_answer`] from the caller's copy of the row, storing the
    /// create's idempotent response in the same commit when `once` is given (see
    /// [`Engine::update_payment_from`]), with the payment's price list when the caller already
    /// read it (`prices: Some`; a CPM create reads it with the payment's creation).
    pub(super) async fn apply_payment_answer_from(
        &self,
        id: &PaymentId,
        known: Option<Payment>,
        once: Option<&crate::idempotency::IdempotentCreate>,
        answer: &UpstreamOrder,
        close: Option<CloseReason>,
        prices: Option<Prices>,
    ) -> Result<(Payment, bool)> {
        let mut late_success = false;
        let mut mismatch = false;
        let now = self.now();
        let requested_close = close;
        // A success is priced by the list in force at the payment's creation, which no later
        // change of pricing touches: read once, before the compare-and-swap loop. A payment
        // already final takes no success (a repeat changes nothing; one after a cancel is a late
        // success, refunded): no list is read for it.
        let (known, prices) = match (answer.status == TransStatus::Succeeded, prices) {
            (true, Some(prices)) => (known, prices),
            (true, None) => {
                let p = self.known_or_read(id, known).await?;
                let prices = if p.status.is_final() {
                    None
                } else {
                    self.store
                        .price_list_at(&p.merchant_id, p.created_at)
                        .await?
                };
                (Some(p), prices)
            }
            (false, _) => (known, None),
        };
        let (updated, stored) = self
            .update_payment_from(id, known, once, |p, change| {
                let close = close.or_else(|| expired_upstream(p, answer, now));
                let mut target = answer
                    .status
                    .payment_status(p.closed_by_us || close.is_some());
                if target == PaymentStatus::Succeeded
                    && p.closed_by_us
                    && requested_close.is_none()
                    && !p.status.is_final()
                {
                    // Closing (module doc): only the close's own query after its revoke decides.
                    return Ok(false);
                }
                if target == PaymentStatus::Succeeded
                    && let Some(paid) = answer.amount
                    && paid != p.amount
                {
                    // Never accept a success for another amount than ours: reverse the order
                    // (committed with the close mark and its poll job, so it survives a crash).
                    if p.status.is_final() || p.closed_by_us {
                        // Already closing or final; a paid order behind a canceled payment is
                        // still a late success, whatever amount CodePay reports.
                        late_success = p.status == PaymentStatus::Canceled;
                        return Ok(false);
                    }
                    mismatch = true;
                    p.closed_by_us = true;
                    p.failure_code = Some(AMOUNT_MISMATCH.to_owned());
                    p.failure_message = Some(format!(
                        "CodePay reported {} {} for this {} order; it is being reversed",
                        paid.minor(),
                        paid.currency().code(),
                        p.amount.currency().code()
                    ));
                    change.jobs.push(self.poll_job(p, now));
                    return Ok(true);
                }
                let mismatched = p.failure_code.as_deref() == Some(AMOUNT_MISMATCH);
                if mismatched && target == PaymentStatus::Canceled {
                    target = PaymentStatus::Failed;
                }
                match p.status.transition(target) {
                    Ok(Step::Moved) => {
                        p.status = target;
                        if p.trans_no.is_none() {
                            p.trans_no = answer.trans_no.clone();
                        }
                        match target {
                            PaymentStatus::Succeeded => {
                                p.paid_at = Some(answer.end_time.unwrap_or(now));
                                // The fee snapshot and the capture's journals commit with
                                // the success itself (docs/books.md).
                                let fee = posting::fee_of(p, prices.as_ref(), answer.fee)?;
                                change
                                    .journals
                                    .extend(posting::capture_journals(p, &fee, now)?);
                                change.payment_fee = Some((p.id.clone(), fee.clone()));
                                p.fee = Some(fee);
                            }
                            PaymentStatus::Failed if mismatched => {}
                            PaymentStatus::Failed => {
                                p.failure_code = Some("payment_declined".to_owned());
                                p.failure_message = Some(upstream_text(
                                    answer.error_code.as_deref().unwrap_or("1"),
                                    answer.error_msg.as_deref().unwrap_or("declined"),
                                ));
                            }
                            PaymentStatus::Canceled => {
                                let reason = close.unwrap_or_else(|| implied_close(p, now));
                                p.failure_code = Some(reason.code().to_owned());
                            }
                            PaymentStatus::Pending | PaymentStatus::Processing => {}
                        }
                        Ok(true)
                    }
                    Ok(Step::Unchanged) => {
                        let fill = p.trans_no.is_none() && answer.trans_no.is_some();
                        if fill {
                            p.trans_no = answer.trans_no.clone();
                        }
                        Ok(fill)
                    }
                    Err(_) => {
                        // Stale or out of order; the one case that matters is a success after
                        // our close (see the module doc).
                        late_success = p.status == PaymentStatus::Canceled
                            && target == PaymentStatus::Succeeded;
                        Ok(false)
                    }
                }
            })
            .await?;
        if mismatch {
            tracing::error!(payment_id = %updated.id, "CodePay reports another amount for this order; reversing it");
            if let Some(m) = &self.metrics {
                m.anomaly(AMOUNT_MISMATCH);
            }
            // Boxed: reversing applies CodePay's answer through this same function.
            let reversed = Box::pin(self.reverse(&updated, CloseReason::AmountMismatch)).await?;
            return Ok((reversed, stored));
        }
        if late_success {
            self.record_late_success(&updated).await?;
            self.settle_late_success(&updated).await?;
        }
        Ok((updated, stored))
    }

    /// The payment's poll job, due now (dedupes with an unfinished one).
    fn poll_job(&self, p: &Payment, now: DateTime<Utc>) -> NewJob {
        NewJob {
            kind: JobKind::PollPayment,
            subject: p.id.to_string(),
            run_at: now,
        }
    }

    /// Commits the durable confirmation of a late success before asking CodePay, so that a
    /// failed or lost query only delays the automatic refund.
    async fn record_late_success(&self, p: &Payment) -> Result<()> {
        let job = NewJob {
            kind: JobKind::ConfirmLateSuccess,
            subject: p.id.to_string(),
            run_at: self.after(self.cfg.poll_interval),
        };
        self.store
            .commit(super::model::Change {
                jobs: vec![job],
                ..Default::default()
            })
            .await
    }

    /// The `payment.confirm_late_success` job: confirms a success reported after payfac
    /// closed the payment, and refunds it in full when CodePay holds it paid. Done once the
    /// automatic refund exists or CodePay says the order is not paid.
    pub async fn confirm_late_success(&self, id: &PaymentId) -> Result<JobOutcome> {
        let Some(p) = self.store.payment(id).await? else {
            return Ok(JobOutcome::Done);
        };
        if p.status != PaymentStatus::Canceled {
            return Ok(JobOutcome::Done);
        }
        if self.automatic_refund_of(&p).await?.is_some() {
            return Ok(JobOutcome::Done);
        }
        match self.settle_late_success(&p).await? {
            true => Ok(JobOutcome::Done),
            false => Ok(JobOutcome::RetryAt(self.after(self.cfg.poll_interval))),
        }
    }

    /// The late-success rule (module doc): confirm by query, then refund in full. True when
    /// settled (refunded, or CodePay says the order is not paid); false when CodePay gave no
    /// clean answer and the confirmation job must ask again.
    async fn settle_late_success(&self, p: &Payment) -> Result<bool> {
        let merchant = upstream_merchant(p);
        match self.upstream.query(&merchant, &p.merchant_order_no).await {
            Outcome::Success(order) if order.status == TransStatus::Succeeded => {
                let amount = order.amount.unwrap_or(p.amount);
                tracing::warn!(payment_id = %p.id, "success after local close: refunding it");
                self.create_automatic_refund(p, amount).await?;
                Ok(true)
            }
            Outcome::Success(order) if order.status.payment_status(true).is_final() => Ok(true),
            Outcome::Declined { code, .. } if is_order_not_found(&code) => Ok(true),
            Outcome::Success(_) | Outcome::Declined { .. } | Outcome::Unknown { .. } => Ok(false),
        }
    }

    /// Applies one query to a payment; returns it after.
    async fn query_and_apply(&self, p: &Payment, close: Option<CloseReason>) -> Result<Payment> {
        match self
            .upstream
            .query(&upstream_merchant(p), &p.merchant_order_no)
            .await
        {
            Outcome::Success(order) => self.apply_payment_answer(&p.id, &order, close).await,
            Outcome::Declined { code, .. } if is_order_not_found(&code) && p.closed_by_us => {
                // CodePay never saw it and payfac has closed it: nothing can be charged now.
                let gone = UpstreamOrder::never_seen();
                self.apply_payment_answer(&p.id, &gone, close).await
            }
            Outcome::Declined { .. } | Outcome::Unknown { .. } => Ok(p.clone()),
        }
    }

    /// Closes an order upstream and confirms the result: mark closed (committed first, so a
    /// `1` seen afterwards means canceled), `order.revoker`, then `order.query`.
    async fn reverse(&self, p: &Payment, reason: CloseReason) -> Result<Payment> {
        self.reverse_noted(p, reason, None).await
    }

    /// [`Self::reverse`], writing `audit` with the close mark when it is set.
    async fn reverse_noted(
        &self,
        p: &Payment,
        reason: CloseReason,
        audit: Option<AuditNote>,
    ) -> Result<Payment> {
        let p = self
            .update_payment(&p.id, |p, change| {
                if p.closed_by_us || p.status.is_final() {
                    return Ok(false);
                }
                p.closed_by_us = true;
                change.audit.extend(audit.clone());
                // The close is resumed by the poll job if this process dies mid-way.
                change
                    .jobs
                    .push(self.poll_job(p, self.after(self.cfg.poll_interval)));
                Ok(true)
            })
            .await?;
        if p.status.is_final() {
            return Ok(p);
        }
        let settled = match self
            .upstream
            .revoke(&upstream_merchant(&p), &p.merchant_order_no)
            .await
        {
            Outcome::Success(()) => true,
            Outcome::Declined { code, msg } => {
                tracing::info!(payment_id = %p.id, %code, %msg, "revoker declined; confirming by query");
                true
            }
            Outcome::Unknown { reason } => {
                tracing::warn!(payment_id = %p.id, %reason, "revoker outcome unknown");
                false
            }
        };
        // After a revoke CodePay answered, its query is the final word; after one whose fate
        // is unknown the revoke may still void a paid order, so no success is taken from it.
        self.query_and_apply(&p, settled.then_some(reason)).await
    }

    /// The poll job: query; past the CPM deadline (or once payfac closed it) reverse.
    pub async fn poll_payment(&self, id: &PaymentId) -> Result<JobOutcome> {
        let Some(p) = self.store.payment(id).await? else {
            return Ok(JobOutcome::Done);
        };
        if p.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        let p = self.query_and_apply(&p, None).await?;
        if p.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        let now = self.now();
        let past_deadline = match p.mode {
            PaymentMode::Cpm => p.settle_deadline.is_some_and(|d| now >= d),
            PaymentMode::Mpm => p.expires_at.is_some_and(|e| now >= e),
        };
        if past_deadline || p.closed_by_us {
            let reason = match p.mode {
                PaymentMode::Cpm => CloseReason::Reversed,
                PaymentMode::Mpm if p.qr_code.is_none() => CloseReason::CreateFailed,
                PaymentMode::Mpm if past_deadline => CloseReason::Expired,
                PaymentMode::Mpm => CloseReason::CanceledByMerchant,
            };
            let p = self.reverse(&p, reason).await?;
            if p.status.is_final() {
                return Ok(JobOutcome::Done);
            }
        }
        Ok(JobOutcome::RetryAt(self.after(self.cfg.poll_interval)))
    }

    /// The expiry job of an MPM payment: a success before expiry is accepted (query first),
    /// otherwise the order is closed upstream and the payment becomes `canceled`.
    pub async fn expire_payment(&self, id: &PaymentId) -> Result<JobOutcome> {
        let Some(p) = self.store.payment(id).await? else {
            return Ok(JobOutcome::Done);
        };
        if p.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        if let Some(at) = p.expires_at
            && self.now() < at
            && !p.closed_by_us
        {
            return Ok(JobOutcome::RetryAt(at));
        }
        let reason = if p.qr_code.is_none() {
            CloseReason::CreateFailed
        } else {
            CloseReason::Expired
        };
        let p = self.query_and_apply(&p, None).await?;
        if p.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        let p = self.reverse(&p, reason).await?;
        if p.status.is_final() {
            Ok(JobOutcome::Done)
        } else {
            Ok(JobOutcome::RetryAt(self.after(self.cfg.poll_interval)))
        }
    }

    /// The merchant cancels a payment not yet final. A payment that turns out paid is not
    /// canceled (409); one CodePay cannot confirm closed yet stays open with a poll job.
    pub async fn cancel_payment(
        &self,
        merchant: &domain::MerchantId,
        id: &PaymentId,
    ) -> Result<Payment> {
        self.cancel_payment_by(merchant, id, None).await
    }

    /// [`Engine::cancel_payment`] asked by `actor` (an API key id): the close it starts is
    /// written to the audit log in the same transaction.
    pub async fn cancel_payment_by(
        &self,
        merchant: &domain::MerchantId,
        id: &PaymentId,
        actor: Option<&str>,
    ) -> Result<Payment> {
        let p = self.payment_for(merchant, id).await?;
        if p.status == PaymentStatus::Canceled {
            return Ok(p);
        }
        if !p.status.is_cancelable() {
            return Err(not_cancelable(&p));
        }
        let p = self.query_and_apply(&p, None).await?;
        if p.status.is_final() {
            return if p.status == PaymentStatus::Canceled {
                Ok(p)
            } else {
                Err(not_cancelable(&p))
            };
        }
        let audit = actor.map(|actor| AuditNote {
            actor: actor.to_owned(),
            action: "payment.cancel",
            target_type: "payment",
            target_id: p.id.to_string(),
            merchant_id: p.merchant_id.clone(),
            details: serde_json::json!({ "status_before": p.status.as_str() }),
        });
        let p = self
            .reverse_noted(&p, CloseReason::CanceledByMerchant, audit)
            .await?;
        if !p.status.is_final() {
            let job = NewJob {
                kind: JobKind::PollPayment,
                subject: p.id.to_string(),
                run_at: self.after(self.cfg.poll_interval),
            };
            self.update_payment(&p.id, |_, change| {
                change.jobs.push(job.clone());
                Ok(true)
            })
            .await?;
        }
        self.store
            .payment(id)
            .await?
            .ok_or_else(|| PaymentError::not_found("payment", id.as_str()))
    }

    /// Applies a CodePay notification. A verified one whose amount matches is applied as is;
    /// anything else is only a trigger, and the status applied is the one `order.query` returns.
    /// Only orders routed through the notifying account are matched (`n.scope`): an account's
    /// notification never touches another account's payment.
    pub async fn apply_notification(&self, n: &InboundNotification) -> Result<NotificationEffect> {
        let refund_like = matches!(n.trans_type, 2 | 3 | 5 | 8);
        if refund_like
            && let Some(r) = self
                .store
                .refund_by_order_no(&n.scope, &n.merchant_no, &n.merchant_order_no)
                .await?
        {
            let trusted = n.verified && n.order.amount.is_none_or(|a| a == r.amount);
            let r = if trusted {
                self.apply_refund_answer(&r.id, &n.order).await?
            } else {
                self.poll_refund_once(&r).await?
            };
            return Ok(NotificationEffect::Refund(r.id, r.status));
        }
        if !refund_like {
            self.in_flight
                .settled(&n.merchant_order_no, CREATE_IN_FLIGHT_WAIT)
                .await;
            if let Some(id) = self.already_paid(n) {
                return Ok(NotificationEffect::Payment(id, PaymentStatus::Succeeded));
            }
        }
        let Some(p) = self
            .store
            .payment_by_order_no(&n.scope, &n.merchant_no, &n.merchant_order_no)
            .await?
        else {
            return Ok(NotificationEffect::Unmatched);
        };
        self.remember_if_paid(&p);
        let trusted = n.verified && n.order.amount.is_none_or(|a| a == p.amount);
        let p = if trusted {
            // The row just read is the starting point: no second read (a stale copy retries).
            let id = p.id.clone();
            self.apply_payment_answer_from(&id, Some(p), None, &n.order, None, None)
                .await?
                .0
        } else {
            self.query_and_apply(&p, None).await?
        };
        Ok(NotificationEffect::Payment(p.id, p.status))
    }

    /// The payment a verified success notification repeats, when this process saw it paid
    /// with the same amount: applying it would change nothing (a success is final), so it is
    /// not read again.
    fn already_paid(&self, n: &InboundNotification) -> Option<PaymentId> {
        if !n.verified || n.order.status != TransStatus::Succeeded {
            return None;
        }
        let paid = self.paid.get(&n.merchant_order_no)?;
        let same = paid.merchant_no == n.merchant_no
            && n.scope.covers(paid.account.as_ref())
            && n.order.amount.is_none_or(|a| a == paid.amount)
            && (paid.has_trans_no || n.order.trans_no.is_none());
        same.then_some(paid.id)
    }

    /// Reconciliation: every payment still unsettled `min_age` after creation is queried (and
    /// reversed or expired when due; a payment payfac is closing is closed), and every refund
    /// still pending is queried (and resubmitted when CodePay never saw it). A late success on
    /// a canceled payment is not scanned here: its `payment.confirm_late_success` job holds it.
    /// Returns how many payments and refunds were examined.
    pub async fn reconcile(&self, min_age: std::time::Duration, limit: usize) -> Result<usize> {
        let before = self.now() - chrono::Duration::from_std(min_age).unwrap_or_default();
        let open = self.store.unsettled_payments(before, limit).await?;
        let mut n = open.len();
        for p in open {
            let step = match p.mode {
                PaymentMode::Mpm => self.expire_payment(&p.id).await,
                PaymentMode::Cpm => self.poll_payment(&p.id).await,
            };
            if let Err(e) = step {
                tracing::warn!(payment_id = %p.id, error = %e, "reconciliation step failed");
            }
        }
        let refunds = self.store.unsettled_refunds(before, limit).await?;
        n += refunds.len();
        for r in refunds {
            if let Err(e) = self.poll_refund(&r.id).await {
                tracing::warn!(refund_id = %r.id, error = %e, "refund reconciliation step failed");
            }
        }
        Ok(n)
    }
}

/// How far CodePay's clock may run ahead of ours when it closes an MPM order at its expiry.
const EXPIRY_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// An unpaid MPM order that CodePay closed by itself at the expiry payfac sent it: `1` there
/// means the QR expired (canceled, `expired`), not that the customer's payment failed.
fn expired_upstream(
    p: &Payment,
    answer: &UpstreamOrder,
    now: DateTime<Utc>,
) -> Option<CloseReason> {
    let at_expiry = answer.error_code.as_deref() == Some("ORDER_EXPIRED")
        || p.expires_at.is_some_and(|e| now + EXPIRY_SKEW >= e);
    (p.mode == PaymentMode::Mpm
        && !p.closed_by_us
        && answer.status == TransStatus::Failed
        && p.qr_code.is_some()
        && at_expiry)
        .then_some(CloseReason::Expired)
}

/// Why payfac closed a payment when the caller did not say (a poll that finds it closed).
fn implied_close(p: &Payment, now: DateTime<Utc>) -> CloseReason {
    match p.mode {
        PaymentMode::Cpm => CloseReason::Reversed,
        PaymentMode::Mpm if p.qr_code.is_none() => CloseReason::CreateFailed,
        PaymentMode::Mpm if p.expires_at.is_some_and(|e| now >= e) => CloseReason::Expired,
        PaymentMode::Mpm => CloseReason::CanceledByMerchant,
    }
}

fn not_cancelable(p: &Payment) -> PaymentError {
    PaymentError::conflict(
        "payment_not_cancelable",
        format!("payment {} is {} and cannot be canceled", p.id, p.status),
    )
}

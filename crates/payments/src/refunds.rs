//! Refunds: the refund-total rule under concurrency, submission, polling until final.

use super::model::{AuditNote, Change, JobKind, NewJob, Payment, Refund};
use super::ports::{
    Outcome, RefundOrder, UpstreamOrder, is_duplicate_order_no, is_order_not_found,
};
use super::settle::JobOutcome;
use super::{CAS_RETRIES, Engine, new_order_no, posting, upstream_merchant, upstream_text};
use crate::error::{PaymentError, Result};
use domain::payment::Step;
use domain::refund::{RefundRefusal, check_refund};
use domain::{MerchantId, Money, PaymentId, RefundId, RefundStatus};

/// A refund request.
#[derive(Clone, Debug)]
pub struct NewRefund {
    /// Minor units; `None` refunds whatever is left.
    pub amount_minor: Option<i64>,
    /// The merchant's unique reference.
    pub merchant_refund_id: String,
    /// Why.
    pub reason: Option<String>,
}

/// Refunds older than this are polled less often.
const FAST_POLL_WINDOW_SECS: i64 = 120;
/// The slow polling interval.
const SLOW_POLL_SECS: i64 = 30;

impl Engine {
    /// Creates a refund of a succeeded payment and submits it to CodePay.
    ///
    /// The refund-total rule (non-failed refunds ≤ captured) is checked against a snapshot of
    /// the payment and committed with a compare-and-swap on the payment's version: of two
    /// refunds racing on one payment, the second finds the version moved, re-reads (now seeing
    /// the first refund) and is checked again. This is the payment row lock, without holding a
    /// database lock across the upstream call.
    pub async fn create_refund(
        &self,
        merchant: &MerchantId,
        payment_id: &PaymentId,
        req: NewRefund,
    ) -> Result<Refund> {
        self.create_refund_by(merchant, payment_id, req, None).await
    }

    /// [`Engine::create_refund`] asked by `actor` (an API key id): the refund is written to the
    /// audit log in the transaction that creates it.
    pub async fn create_refund_by(
        &self,
        merchant: &MerchantId,
        payment_id: &PaymentId,
        req: NewRefund,
        actor: Option<&str>,
    ) -> Result<Refund> {
        validate_refund(&req)?;
        for _ in 0..CAS_RETRIES {
            let p = self.payment_for(merchant, payment_id).await?;
            if !p.status.is_refundable() {
                return Err(PaymentError::conflict(
                    "payment_not_refundable",
                    format!(
                        "payment {} is {}; only succeeded payments can be refunded",
                        p.id, p.status
                    ),
                ));
            }
            let committed = self.committed_refunds(&p).await?;
            let remaining = p
                .amount
                .checked_sub(committed)
                .unwrap_or(Money::zero(p.amount.currency()));
            let amount = Money::new(
                req.amount_minor.unwrap_or(remaining.minor()),
                p.amount.currency(),
            )?;
            check_refund(p.amount, committed, amount).map_err(refusal_error)?;
            let refund = self.new_refund(
                &p,
                amount,
                req.merchant_refund_id.clone(),
                req.reason.clone(),
            );
            let audit = actor.map(|actor| AuditNote {
                actor: actor.to_owned(),
                action: "refund.create",
                target_type: "refund",
                target_id: refund.id.to_string(),
                merchant_id: refund.merchant_id.clone(),
                details: serde_json::json!({
                    "payment_id": p.id.as_str(),
                    "amount": refund.amount.minor(),
                    "currency": refund.amount.currency().code(),
                    "merchant_refund_id": refund.merchant_refund_id,
                }),
            });
            match self.insert_refund(&p, &refund, audit).await {
                Ok(()) => return self.submit_refund(&p, refund).await,
                Err(PaymentError::VersionConflict) => continue,
                Err(PaymentError::Duplicate(_)) => {
                    return Err(PaymentError::conflict(
                        "merchant_refund_id_taken",
                        format!(
                            "a refund with merchant_refund_id `{}` already exists",
                            req.merchant_refund_id
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Err(PaymentError::VersionConflict)
    }

    /// The late-success refund (see `settle`): full amount, fixed reference so it happens once.
    pub(super) async fn create_automatic_refund(
        &self,
        p: &Payment,
        amount: Money,
    ) -> Result<Option<Refund>> {
        let reference = automatic_refund_reference(p);
        for _ in 0..CAS_RETRIES {
            if self
                .store
                .refund_by_merchant_ref(&p.merchant_id, &reference)
                .await?
                .is_some()
            {
                return Ok(None);
            }
            let Some(current) = self.store.payment(&p.id).await? else {
                return Ok(None);
            };
            let refund = self.new_refund(
                &current,
                amount,
                reference.clone(),
                Some("late_success_after_close".to_owned()),
            );
            match self.insert_refund(&current, &refund, None).await {
                Ok(()) => return self.submit_refund(&current, refund).await.map(Some),
                Err(PaymentError::VersionConflict) => continue,
                Err(PaymentError::Duplicate(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(PaymentError::VersionConflict)
    }

    /// The late-success refund of a payment, if it was created.
    pub(super) async fn automatic_refund_of(&self, p: &Payment) -> Result<Option<Refund>> {
        self.store
            .refund_by_merchant_ref(&p.merchant_id, &automatic_refund_reference(p))
            .await
    }

    async fn committed_refunds(&self, p: &Payment) -> Result<Money> {
        let mut sum = Money::zero(p.amount.currency());
        for r in self.store.refunds_of(&p.id).await? {
            if r.status.counts_against_capture() {
                sum = sum.checked_add(r.amount)?;
            }
        }
        Ok(sum)
    }

    fn new_refund(
        &self,
        p: &Payment,
        amount: Money,
        merchant_refund_id: String,
        reason: Option<String>,
    ) -> Refund {
        let now = self.now();
        Refund {
            id: RefundId::generate(),
            payment_id: p.id.clone(),
            merchant_id: p.merchant_id.clone(),
            merchant_refund_id,
            amount,
            status: RefundStatus::Pending,
            reason,
            merchant_order_no: new_order_no('R'),
            upstream_merchant_no: p.upstream_merchant_no.clone(),
            upstream_store_no: p.upstream_store_no.clone(),
            upstream_terminal_sn: p.upstream_terminal_sn.clone(),
            gateway_account_id: p.gateway_account_id.clone(),
            store_id: p.store_id.clone(),
            terminal_id: p.terminal_id.clone(),
            trans_no: None,
            failure_code: None,
            failure_message: None,
            fee_return: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Inserts the refund, its poll job, and bumps the payment's version, in one commit.
    async fn insert_refund(
        &self,
        p: &Payment,
        refund: &Refund,
        audit: Option<AuditNote>,
    ) -> Result<()> {
        let mut bumped = p.clone();
        bumped.version = p.version + 1;
        bumped.updated_at = self.now();
        let change = Change {
            payment: Some((bumped, p.version)),
            insert_refund: Some(refund.clone()),
            jobs: vec![NewJob {
                kind: JobKind::PollRefund,
                subject: refund.id.to_string(),
                run_at: self.after(self.cfg.poll_interval),
            }],
            audit: audit.into_iter().collect(),
            ..Change::default()
        };
        self.store.commit(change).await
    }

    async fn submit_refund(&self, p: &Payment, refund: Refund) -> Result<Refund> {
        let order = RefundOrder {
            merchant: upstream_merchant(p),
            orig_merchant_order_no: p.merchant_order_no.clone(),
            merchant_order_no: refund.merchant_order_no.clone(),
            amount: refund.amount,
            description: refund
                .reason
                .clone()
                .unwrap_or_else(|| format!("Refund {}", refund.merchant_refund_id)),
        };
        match self.upstream.submit_refund(&order).await {
            Outcome::Success(trans_no) => {
                self.update_refund(&refund.id, |r, _, _| {
                    let fill = r.trans_no.is_none() && trans_no.is_some();
                    if fill {
                        r.trans_no = trans_no.clone();
                    }
                    Ok(fill)
                })
                .await
            }
            Outcome::Declined { code, .. } if is_duplicate_order_no(&code) => {
                // A resubmit of a refund CodePay already has: its query, not this refusal,
                // says how it stands.
                tracing::info!(refund_id = %refund.id, %code, "refund already submitted; settling it by query");
                Ok(refund)
            }
            Outcome::Declined { code, msg } => {
                let failed = UpstreamOrder::declined(code, msg);
                self.apply_refund_answer(&refund.id, &failed).await
            }
            Outcome::Unknown { reason } => {
                tracing::warn!(refund_id = %refund.id, %reason, "refund submit outcome unknown; the poll job settles it");
                Ok(refund)
            }
        }
    }

    /// Applies a refund status from CodePay through the refund state machine, with its event,
    /// and keeps the payment's `amount_refunded` in step.
    pub async fn apply_refund_answer(
        &self,
        id: &RefundId,
        answer: &UpstreamOrder,
    ) -> Result<Refund> {
        let target = answer.status.refund_status();
        let now = self.now();
        self.update_refund(id, |r, p, change| match r.status.transition(target) {
            Ok(Step::Moved) => {
                r.status = target;
                if r.trans_no.is_none() {
                    r.trans_no = answer.trans_no.clone();
                }
                match target {
                    RefundStatus::Succeeded => {
                        // Booked with the success, from the payment as it stood before it.
                        let (fee_return, journals) = posting::refund_journals(p, r, now)?;
                        r.fee_return = fee_return;
                        change.journals.extend(journals);
                        p.amount_refunded = p.amount_refunded.saturating_add(r.amount.minor());
                    }
                    RefundStatus::Failed => {
                        r.failure_code = Some("refund_declined".to_owned());
                        r.failure_message = Some(upstream_text(
                            answer.error_code.as_deref().unwrap_or("1"),
                            answer.error_msg.as_deref().unwrap_or("refund failed"),
                        ));
                    }
                    RefundStatus::Pending => {}
                }
                Ok(true)
            }
            Ok(Step::Unchanged) | Err(_) => Ok(false),
        })
        .await
    }

    /// One query of a pending refund; a refund CodePay never saw is resubmitted with the same
    /// `merchant_order_no` (CodePay refuses a duplicate, so this can never refund twice).
    pub(super) async fn poll_refund_once(&self, r: &Refund) -> Result<Refund> {
        let Some(p) = self.store.payment(&r.payment_id).await? else {
            return Ok(r.clone());
        };
        match self
            .upstream
            .query_refund(&upstream_merchant(&p), &r.merchant_order_no)
            .await
        {
            Outcome::Success(order) => self.apply_refund_answer(&r.id, &order).await,
            Outcome::Declined { code, .. } if is_order_not_found(&code) => {
                self.submit_refund(&p, r.clone()).await
            }
            Outcome::Declined { .. } | Outcome::Unknown { .. } => Ok(r.clone()),
        }
    }

    /// The refund poll job.
    pub async fn poll_refund(&self, id: &RefundId) -> Result<JobOutcome> {
        let Some(r) = self.store.refund(id).await? else {
            return Ok(JobOutcome::Done);
        };
        if r.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        let r = self.poll_refund_once(&r).await?;
        if r.status.is_final() {
            return Ok(JobOutcome::Done);
        }
        let age = (self.now() - r.created_at).num_seconds();
        let next = if age < FAST_POLL_WINDOW_SECS {
            self.after(self.cfg.poll_interval)
        } else {
            self.now() + chrono::Duration::seconds(SLOW_POLL_SECS)
        };
        Ok(JobOutcome::RetryAt(next))
    }
}

/// `merchant_refund_id`s starting with this are payfac's own (automatic refunds), so a
/// merchant cannot take one and block a payment's automatic refund.
pub const RESERVED_REFUND_PREFIX: &str = "late_success_";

/// The fixed reference of a payment's late-success refund: one per payment, ever.
fn automatic_refund_reference(p: &Payment) -> String {
    format!("{RESERVED_REFUND_PREFIX}{}", p.id)
}

/// The request's own checks, before the payment is read.
fn validate_refund(req: &NewRefund) -> Result<()> {
    super::check_reference(&req.merchant_refund_id, "merchant_refund_id")?;
    if req.merchant_refund_id.starts_with(RESERVED_REFUND_PREFIX) {
        return Err(PaymentError::invalid(
            "merchant_refund_id_reserved",
            format!(
                "merchant_refund_id may not start with `{RESERVED_REFUND_PREFIX}` (payfac's automatic refunds)"
            ),
            Some("merchant_refund_id"),
        ));
    }
    if req.amount_minor.is_some_and(|a| a <= 0) {
        return Err(PaymentError::invalid(
            "amount_invalid",
            "amount must be a positive integer in minor units",
            Some("amount"),
        ));
    }
    Ok(())
}

/// A refused refund as the merchant sees it.
fn refusal_error(r: RefundRefusal) -> PaymentError {
    match r {
        RefundRefusal::ExceedsRefundable { remaining } => PaymentError::unprocessable(
            "refund_exceeds_captured",
            format!(
                "only {} minor units of this payment can still be refunded",
                remaining.minor()
            ),
            Some("amount"),
        ),
        RefundRefusal::ZeroAmount => PaymentError::unprocessable(
            "refund_exceeds_captured",
            "nothing of this payment is left to refund",
            Some("amount"),
        ),
        RefundRefusal::CurrencyMismatch => PaymentError::invalid(
            "currency_mismatch",
            "refund currency differs from the payment's",
            Some("currency"),
        ),
    }
}

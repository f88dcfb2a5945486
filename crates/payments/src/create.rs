//! Taking a payment: validate, commit the local row and its settling job, then call CodePay.

use super::idempotency::IdempotentCreate;
use super::model::{Change, JobKind, MerchantProfile, NewJob, Payment, Prices};
use super::ports::{CpmOrder, Outcome, PaymentOrder, QrOrder, UpstreamOrder};
use super::{Engine, check_reference, new_order_no, upstream_merchant, upstream_text};
use crate::error::{PaymentError, Result};
use domain::{Currency, Money, PaymentId, PaymentMode, PaymentStatus, Secret, Wallet};

/// A point in time, as the engine keeps them.
type Instant = chrono::DateTime<chrono::Utc>;

/// A validated-by-type request to take a payment.
#[derive(Clone, Debug)]
pub struct NewPayment {
    /// MPM or CPM.
    pub mode: PaymentMode,
    /// Minor units, must be > 0.
    pub amount_minor: i64,
    /// Defaults to the merchant's currency.
    pub currency: Option<Currency>,
    /// The merchant's unique reference.
    pub merchant_order_id: String,
    /// Wallet.
    pub wallet: Wallet,
    /// Text shown to the customer.
    pub description: Option<String>,
    /// CPM: the customer's wallet code.
    pub auth_code: Option<Secret>,
    /// MPM: seconds until the QR expires.
    pub expires_in: Option<i64>,
    /// Merchant data returned as given.
    pub metadata: serde_json::Value,
    /// The store (and terminal) it is taken at, when it names one.
    pub location: Option<super::model::Location>,
}

/// What became of [`Engine::create_payment_once`].
#[derive(Debug)]
pub enum CreateOnce {
    /// Nothing was written: the key is held or answered by another request, the
    /// `merchant_order_id` is taken, the request is invalid, or storage failed. Handle it with
    /// the separate claim (`tenant_api::idempotency::run_resuming`), which replays, refuses or stores this outcome.
    NotClaimed(PaymentError),
    /// This request claimed the key; `stored` says whether its response was stored with the
    /// payment (otherwise the caller stores or releases it).
    Claimed {
        /// The payment or the error to answer (boxed: a payment is large).
        result: Box<Result<Payment>>,
        /// The response is already stored.
        stored: bool,
    },
}

impl Engine {
    /// Creates a payment and asks CodePay for it. MPM: returns it `pending` with its QR. CPM:
    /// `succeeded`, `failed`, or `processing` (then settled by polling and reversal).
    pub async fn create_payment(
        &self,
        merchant: &MerchantProfile,
        req: NewPayment,
    ) -> Result<Payment> {
        let payment = self.admitted(merchant, &req).await?;
        let change = self.creation(&payment);
        let prices = match self.commit_creation(change, &payment).await {
            Ok(prices) => prices,
            Err(e) => return Err(order_taken(e, &payment)),
        };
        self.call_upstream(payment, &req, None, prices).await.0
    }

    /// Commits a payment's creation. A CPM payment, which CodePay may answer paid at once,
    /// reads the price list in force in the same transaction (`Some`), so its success is priced
    /// without a read of its own; an MPM one reads nothing (`None`).
    async fn commit_creation(&self, change: Change, payment: &Payment) -> Result<Option<Prices>> {
        match payment.mode {
            PaymentMode::Cpm => Ok(Some(
                self.store
                    .commit_and_price(change, &payment.merchant_id, payment.created_at)
                    .await?,
            )),
            PaymentMode::Mpm => self.store.commit(change).await.map(|()| None),
        }
    }

    /// [`Engine::create_payment`] with its `Idempotency-Key` folded into its two transactions:
    /// the claim commits with the payment row and its settling job (before CodePay hears of the
    /// order), the response with CodePay's answer. Two commits per create instead of four.
    pub async fn create_payment_once(
        &self,
        merchant: &MerchantProfile,
        req: NewPayment,
        once: &IdempotentCreate,
    ) -> CreateOnce {
        if !self.idempotent_creates {
            return CreateOnce::NotClaimed(PaymentError::Unavailable(
                "this engine's store keeps no idempotency records".to_owned(),
            ));
        }
        let payment = match self.admitted(merchant, &req).await {
            Ok(p) => p,
            Err(e) => return CreateOnce::NotClaimed(e),
        };
        let mut change = self.creation(&payment);
        change.idempotency = Some(once.claim());
        let prices = match self.commit_creation(change, &payment).await {
            Ok(prices) => prices,
            Err(e) => return CreateOnce::NotClaimed(order_taken(e, &payment)),
        };
        let (result, stored) = self.call_upstream(payment, &req, Some(once), prices).await;
        CreateOnce::Claimed {
            result: Box::new(result),
            stored,
        }
    }

    async fn call_upstream(
        &self,
        payment: Payment,
        req: &NewPayment,
        once: Option<&IdempotentCreate>,
        prices: Option<Prices>,
    ) -> (Result<Payment>, bool) {
        let outcome = match payment.mode {
            PaymentMode::Mpm => self.request_qr(payment, req, once).await,
            PaymentMode::Cpm => {
                let auth_code = req.auth_code.clone().unwrap_or_default();
                self.submit_cpm(payment, req, auth_code, once, prices).await
            }
        };
        match outcome {
            Ok((p, stored)) => (Ok(p), stored),
            Err(e) => (Err(e), false),
        }
    }

    /// The payment row and the job that settles it, committed before CodePay is called.
    fn creation(&self, payment: &Payment) -> Change {
        let mut change = Change {
            insert_payment: Some(payment.clone()),
            ..Change::default()
        };
        // The settling job is committed with the row, before CodePay hears of the order: if
        // payfac dies after CodePay answered, this job finds the order by `order.query`.
        change.jobs.push(match payment.mode {
            PaymentMode::Mpm => NewJob {
                kind: JobKind::ExpirePayment,
                subject: payment.id.to_string(),
                run_at: payment.expires_at.unwrap_or(payment.created_at),
            },
            PaymentMode::Cpm => NewJob {
                kind: JobKind::PollPayment,
                subject: payment.id.to_string(),
                run_at: self.after(self.cfg.poll_interval),
            },
        });
        change
    }

    /// The validated payment, with the gateway account it goes through: the one the
    /// merchant's routing picks, the default account when it picks none. An unknown or disabled
    /// account refuses the payment here, before anything is written or sent.
    async fn admitted(&self, m: &MerchantProfile, req: &NewPayment) -> Result<Payment> {
        let mut payment = self.validate(m, req)?;
        payment.gateway_account_id = self
            .upstream
            .admit(payment.gateway_account_id.as_ref())
            .await?;
        Ok(payment)
    }

    fn validate(&self, m: &MerchantProfile, req: &NewPayment) -> Result<Payment> {
        if !m.active {
            return Err(PaymentError::MerchantInactive);
        }
        if req.amount_minor <= 0 {
            return Err(PaymentError::invalid(
                "amount_invalid",
                "amount must be a positive integer in minor units",
                Some("amount"),
            ));
        }
        let currency = req.currency.unwrap_or(m.default_currency);
        let amount = Money::new(req.amount_minor, currency)?;
        if m.max_amount_minor.is_some() && currency != m.default_currency {
            // The limit is set in the merchant's currency and payfac converts nothing: another
            // currency would escape it.
            return Err(PaymentError::unprocessable(
                "currency_not_allowed",
                format!(
                    "this merchant's per-payment limit is set in {}; payments in {} are refused",
                    m.default_currency.code(),
                    currency.code()
                ),
                Some("currency"),
            ));
        }
        if let Some(max) = m.max_amount_minor
            && amount.minor() > max
        {
            return Err(PaymentError::unprocessable(
                "amount_over_limit",
                format!("amount exceeds this merchant's per-payment limit of {max}"),
                Some("amount"),
            ));
        }
        if !m.allowed_wallets.is_empty() && !m.allowed_wallets.contains(&req.wallet) {
            return Err(PaymentError::invalid(
                "wallet_not_allowed",
                format!("wallet `{}` is not enabled for this merchant", req.wallet),
                Some("wallet"),
            ));
        }
        check_reference(&req.merchant_order_id, "merchant_order_id")?;
        let now = self.now();
        let (expires_at, settle_deadline) = self.deadlines(req, now)?;
        Ok(Payment {
            id: PaymentId::generate(),
            merchant_id: m.id.clone(),
            merchant_order_id: req.merchant_order_id.clone(),
            mode: req.mode,
            amount,
            wallet: req.wallet,
            status: PaymentStatus::Pending,
            upstream_merchant_no: m.merchant_no.clone(),
            upstream_store_no: match &req.location {
                Some(l) => Some(l.store_no.clone()),
                None => m.store_no.clone(),
            },
            upstream_terminal_sn: req.location.as_ref().and_then(|l| l.terminal_sn.clone()),
            gateway_account_id: domain::routing::route(
                &m.routing,
                m.gateway_account_id.as_ref(),
                amount.currency(),
                req.wallet,
            )
            .cloned(),
            store_id: req.location.as_ref().map(|l| l.store_id.clone()),
            terminal_id: req.location.as_ref().and_then(|l| l.terminal_id.clone()),
            merchant_order_no: new_order_no('P'),
            trans_no: None,
            qr_code: None,
            description: req.description.clone(),
            metadata: req.metadata.clone(),
            expires_at,
            settle_deadline,
            paid_at: None,
            failure_code: None,
            failure_message: None,
            amount_refunded: 0,
            closed_by_us: false,
            version: 1,
            created_at: now,
            updated_at: now,
            fee: None,
        })
    }

    /// When an MPM order expires, or when a CPM payment must be settled by.
    fn deadlines(
        &self,
        req: &NewPayment,
        now: Instant,
    ) -> Result<(Option<Instant>, Option<Instant>)> {
        Ok(match req.mode {
            PaymentMode::Mpm => {
                let max = self.cfg.max_mpm_expiry.as_secs();
                let min = self.cfg.min_mpm_expiry.as_secs().max(1);
                let secs = match req.expires_in {
                    None => self.cfg.default_mpm_expiry.as_secs(),
                    Some(s) if s > 0 && (min..=max).contains(&s.unsigned_abs()) => s.unsigned_abs(),
                    Some(_) => {
                        return Err(PaymentError::invalid(
                            "parameter_invalid",
                            format!("expires_in must be between {min} and {max} seconds"),
                            Some("expires_in"),
                        ));
                    }
                };
                let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
                (Some(now + chrono::Duration::seconds(secs)), None)
            }
            PaymentMode::Cpm => {
                let code_ok = req
                    .auth_code
                    .as_ref()
                    .is_some_and(|c| !c.is_empty() && c.expose().len() <= 64);
                if !code_ok {
                    return Err(PaymentError::invalid(
                        "parameter_missing",
                        "a cpm payment needs the customer's auth_code",
                        Some("auth_code"),
                    ));
                }
                (None, Some(self.after(self.cfg.cpm_deadline)))
            }
        })
    }

    async fn request_qr(
        &self,
        payment: Payment,
        req: &NewPayment,
        once: Option<&IdempotentCreate>,
    ) -> Result<(Payment, bool)> {
        let expires_in = payment
            .expires_at
            .map(|e| (e - payment.created_at).num_seconds())
            .unwrap_or(900);
        let order = QrOrder {
            order: payment_order(req, &payment),
            expires_in,
        };
        match self.upstream.create_qr(&order).await {
            Outcome::Success(qr) => {
                let id = payment.id.clone();
                self.update_payment_from(&id, Some(payment), once, |p, _| {
                    p.qr_code = Some(qr.qr_code.clone());
                    if p.trans_no.is_none() {
                        p.trans_no = qr.trans_no.clone();
                    }
                    Ok(true)
                })
                .await
            }
            Outcome::Declined { code, msg } => {
                let id = payment.id.clone();
                self.update_payment_from(&id, Some(payment), once, |p, _| {
                    if p.status.transition(PaymentStatus::Failed).is_err() {
                        return Ok(false);
                    }
                    p.status = PaymentStatus::Failed;
                    p.failure_code = Some("upstream_rejected".to_owned());
                    p.failure_message = Some(upstream_text(&code, &msg));
                    Ok(true)
                })
                .await
            }
            Outcome::Unknown { reason } => {
                // Whether CodePay created the order is unknown and there is no QR to show: close
                // it now (the poll job sees `closed_by_us`: query → revoke → query) and tell the merchant.
                tracing::warn!(payment_id = %payment.id, %reason, "getqrcode outcome unknown");
                self.update_payment(&payment.id, |p, change| {
                    p.closed_by_us = true;
                    // A poll job, not a second expiry job: the store keeps one unfinished job per
                    // kind and payment, and the expiry job is already waiting for `expires_at`.
                    change.jobs.push(NewJob {
                        kind: JobKind::PollPayment,
                        subject: p.id.to_string(),
                        run_at: self.now(),
                    });
                    Ok(true)
                })
                .await?;
                Err(PaymentError::Upstream {
                    code: "upstream_unavailable",
                    message: format!(
                        "CodePay did not answer; payment {} is being canceled, create a new one with a new merchant_order_id",
                        payment.id
                    ),
                })
            }
        }
    }

    async fn submit_cpm(
        &self,
        payment: Payment,
        req: &NewPayment,
        auth_code: Secret,
        once: Option<&IdempotentCreate>,
        prices: Option<Prices>,
    ) -> Result<(Payment, bool)> {
        let order = CpmOrder {
            order: payment_order(req, &payment),
            auth_code,
        };
        let id = payment.id.clone();
        // Until the answer is committed, CodePay's notification of it waits for it here.
        let _in_flight = self.in_flight.start(&payment.merchant_order_no);
        match self.upstream.submit_cpm(&order).await {
            Outcome::Success(answer) => {
                self.apply_payment_answer_from(&id, Some(payment), once, &answer, None, prices)
                    .await
            }
            Outcome::Declined { code, msg } => {
                let declined = UpstreamOrder::declined(code, msg);
                self.apply_payment_answer_from(&id, Some(payment), once, &declined, None, prices)
                    .await
            }
            Outcome::Unknown { reason } => {
                // Never resubmitted: the poll job already committed settles it by query.
                tracing::warn!(payment_id = %payment.id, %reason, "cpm submit outcome unknown");
                self.update_payment_from(&id, Some(payment), once, |p, _| {
                    if p.status != PaymentStatus::Pending {
                        return Ok(false);
                    }
                    p.status = PaymentStatus::Processing;
                    Ok(true)
                })
                .await
            }
        }
    }
}

/// The order CodePay is told about for `payment`.
fn payment_order(req: &NewPayment, payment: &Payment) -> PaymentOrder {
    PaymentOrder {
        merchant: upstream_merchant(payment),
        merchant_order_no: payment.merchant_order_no.clone(),
        amount: payment.amount,
        wallet: payment.wallet,
        description: description_of(req, payment),
    }
}

fn description_of(req: &NewPayment, payment: &Payment) -> String {
    req.description
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("Order {}", payment.merchant_order_id))
}

/// A taken `merchant_order_id` as the API reports it; other failures unchanged.
fn order_taken(e: PaymentError, payment: &Payment) -> PaymentError {
    match e {
        PaymentError::Duplicate("merchant_order_id") => PaymentError::conflict(
            "merchant_order_id_taken",
            format!(
                "a payment with merchant_order_id `{}` already exists",
                payment.merchant_order_id
            ),
        ),
        other => other,
    }
}

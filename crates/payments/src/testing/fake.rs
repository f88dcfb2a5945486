//! Test doubles of the payment logic's ports: a hand-moved clock and a scripted CodePay that
//! records which gateway account each call went through and refuses disabled ones.

use crate::Clock;
use crate::error::PaymentError;
use crate::ports::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{GatewayAccountId, Money, TransStatus};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use tokio::sync::Notify;

/// A clock that moves only when told.
pub struct ManualClock(pub Mutex<DateTime<Utc>>);
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}
impl ManualClock {
    /// Moves the clock `secs` seconds forward.
    pub fn advance(&self, secs: i64) {
        *self.0.lock() += chrono::Duration::seconds(secs);
    }
}

/// What the scripted CodePay does with the next CPM submit.
#[derive(Clone, Copy, PartialEq)]
pub enum Cpm {
    /// Paid at once.
    Approve,
    /// Refused at once.
    Decline,
    /// Waits for the customer's PIN (`trans_status 0`).
    Pin,
    /// Charges the customer but the answer is lost.
    ChargeButLoseAnswer,
}

/// A scripted CodePay: orders and refunds in maps, CPM behaviour set by [`Cpm`], counters of
/// submits and revokes, knobs for the faults the engine must survive, and gateway accounts
/// (every call recorded with its account; a default account; disabled ones).
pub struct FakeCodePay {
    /// Order number → status and amount.
    pub orders: Mutex<HashMap<String, (TransStatus, Money)>>,
    /// Refund order number → status and amount.
    pub refunds: Mutex<HashMap<String, (TransStatus, Money)>>,
    /// What the next CPM submit does.
    pub cpm: Mutex<Cpm>,
    /// CPM submits seen.
    pub submits: AtomicUsize,
    /// Revokes seen.
    pub revokes: AtomicUsize,
    /// The QR request never gets an answer.
    pub qr_unanswered: AtomicBool,
    /// When set, `order.revoker` signals the first and waits for the second before acting, so a
    /// test can act while a revoke is on its way.
    pub revoke_gate: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    /// The first `order.query` of each order times out.
    pub first_query_times_out: AtomicBool,
    /// Order numbers already queried (for `first_query_times_out`).
    queried: Mutex<HashSet<String>>,
    /// CPM submits answer this much more than asked (another amount than the payment's).
    pub cpm_amount_skew: AtomicI64,
    /// Refund submits are applied but their answer is lost; a resubmit of a refund CodePay
    /// already has is refused with "duplicate order number" (`E04101`).
    pub refund_answers_lost: AtomicBool,
    /// The next N refund queries wrongly answer "not found".
    pub refund_not_found_queries: AtomicUsize,
    /// Every call in order: its operation and the gateway account it went through.
    pub calls: Mutex<Vec<(&'static str, Option<GatewayAccountId>)>>,
    /// The account payments whose merchant names none are admitted to (none: recorded with no
    /// account, as a deployment without accounts).
    pub default_account: Mutex<Option<GatewayAccountId>>,
    /// Accounts that take no new payment.
    pub disabled: Mutex<HashSet<GatewayAccountId>>,
    /// CodePay's fee in basis points of a paid order's amount, reported as `trans_fee_c` on
    /// payment answers (0: no fee reported).
    pub fee_bps: AtomicI64,
}

impl Default for FakeCodePay {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCodePay {
    /// No orders; CPM approves.
    pub fn new() -> Self {
        Self {
            orders: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
            cpm: Mutex::new(Cpm::Approve),
            submits: AtomicUsize::new(0),
            revokes: AtomicUsize::new(0),
            qr_unanswered: AtomicBool::new(false),
            revoke_gate: Mutex::new(None),
            first_query_times_out: AtomicBool::new(false),
            queried: Mutex::new(HashSet::new()),
            cpm_amount_skew: AtomicI64::new(0),
            refund_answers_lost: AtomicBool::new(false),
            refund_not_found_queries: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
            default_account: Mutex::new(None),
            disabled: Mutex::new(HashSet::new()),
            fee_bps: AtomicI64::new(0),
        }
    }
    /// The accounts the calls of `operation` went through, in order.
    pub fn accounts_of(&self, operation: &str) -> Vec<Option<GatewayAccountId>> {
        self.calls
            .lock()
            .iter()
            .filter(|(op, _)| *op == operation)
            .map(|(_, a)| a.clone())
            .collect()
    }
    fn call(&self, operation: &'static str, account: &Option<GatewayAccountId>) {
        self.calls.lock().push((operation, account.clone()));
    }
    /// Sets an order's status, as if the customer or CodePay acted.
    pub fn set(&self, order_no: &str, status: TransStatus) {
        if let Some(o) = self.orders.lock().get_mut(order_no) {
            o.0 = status;
        }
    }
    /// An order answer with `status` and `amount`.
    pub fn order(status: TransStatus, amount: Money) -> UpstreamOrder {
        UpstreamOrder {
            trans_no: Some("T1".into()),
            status,
            amount: Some(amount),
            end_time: None,
            error_code: None,
            error_msg: None,
            fee: None,
        }
    }

    /// A payment answer with CodePay's fee on it when the order is paid and `fee_bps` is set.
    fn with_fee(&self, mut o: UpstreamOrder) -> UpstreamOrder {
        let bps = self.fee_bps.load(Ordering::SeqCst);
        if bps > 0
            && o.status == TransStatus::Succeeded
            && let Some(a) = o.amount
        {
            o.fee = Money::new(a.minor() * bps / 10_000, a.currency()).ok();
        }
        o
    }
}

fn not_found<T>() -> Outcome<T> {
    Outcome::Declined {
        code: "E04111".into(),
        msg: "order not found".into(),
    }
}

#[async_trait]
impl Upstream for FakeCodePay {
    async fn admit(
        &self,
        routed: Option<&GatewayAccountId>,
    ) -> Result<Option<GatewayAccountId>, PaymentError> {
        let account = routed
            .cloned()
            .or_else(|| self.default_account.lock().clone());
        match account {
            Some(a) if self.disabled.lock().contains(&a) => Err(PaymentError::unprocessable(
                "gateway_account_disabled",
                format!("gateway account {a} is disabled"),
                Some("gateway_account_id"),
            )),
            other => Ok(other),
        }
    }
    async fn create_qr(&self, o: &QrOrder) -> Outcome<QrCreated> {
        self.call("create_qr", &o.merchant.gateway_account_id);
        if self.qr_unanswered.load(Ordering::SeqCst) {
            return Outcome::unknown("timeout");
        }
        self.orders.lock().insert(
            o.merchant_order_no.clone(),
            (TransStatus::Created, o.amount),
        );
        Outcome::Success(QrCreated {
            trans_no: Some("T1".into()),
            qr_code: format!("https://qr.example/{}", o.merchant_order_no),
        })
    }
    async fn submit_cpm(&self, o: &CpmOrder) -> Outcome<UpstreamOrder> {
        self.call("submit_cpm", &o.merchant.gateway_account_id);
        self.submits.fetch_add(1, Ordering::SeqCst);
        let mode = *self.cpm.lock();
        let status = match mode {
            Cpm::Approve | Cpm::ChargeButLoseAnswer => TransStatus::Succeeded,
            Cpm::Decline => TransStatus::Failed,
            Cpm::Pin => TransStatus::InProgress,
        };
        self.orders
            .lock()
            .insert(o.merchant_order_no.clone(), (status, o.amount));
        match mode {
            Cpm::ChargeButLoseAnswer => Outcome::unknown("timeout"),
            Cpm::Decline => Outcome::Declined {
                code: "E1".into(),
                msg: "insufficient funds".into(),
            },
            _ => {
                let skew = self.cpm_amount_skew.load(Ordering::SeqCst);
                let answered =
                    Money::new(o.amount.minor() + skew, o.amount.currency()).unwrap_or(o.amount);
                Outcome::Success(self.with_fee(Self::order(status, answered)))
            }
        }
    }
    async fn query(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        self.call("query", &m.gateway_account_id);
        if self.first_query_times_out.load(Ordering::SeqCst)
            && self.queried.lock().insert(no.to_owned())
        {
            return Outcome::unknown("timeout");
        }
        match self.orders.lock().get(no) {
            Some((s, a)) => Outcome::Success(self.with_fee(Self::order(*s, *a))),
            None => not_found(),
        }
    }
    async fn revoke(&self, m: &UpstreamMerchant, no: &str) -> Outcome<()> {
        self.call("revoke", &m.gateway_account_id);
        self.revokes.fetch_add(1, Ordering::SeqCst);
        let gate = self.revoke_gate.lock().clone();
        if let Some((entered, release)) = gate {
            entered.notify_one();
            release.notified().await;
        }
        // As CodePay: an unpaid order is closed (`1`), a paid one voided (`3`: the customer
        // gets the money back), a final one left as it is.
        match self.orders.lock().get_mut(no) {
            Some(o) if !o.0.is_final() => {
                o.0 = TransStatus::Failed;
                Outcome::Success(())
            }
            Some(o) if o.0 == TransStatus::Succeeded => {
                o.0 = TransStatus::Canceled;
                Outcome::Success(())
            }
            Some(_) => Outcome::Success(()),
            None => not_found(),
        }
    }
    async fn submit_refund(&self, o: &RefundOrder) -> Outcome<Option<String>> {
        self.call("submit_refund", &o.merchant.gateway_account_id);
        let lost = self.refund_answers_lost.load(Ordering::SeqCst);
        let mut refunds = self.refunds.lock();
        if lost && refunds.contains_key(&o.merchant_order_no) {
            return Outcome::Declined {
                code: "E04101".into(),
                msg: "merchant_order_no already used".into(),
            };
        }
        refunds.insert(
            o.merchant_order_no.clone(),
            (TransStatus::InProgress, o.amount),
        );
        if lost {
            return Outcome::unknown("response lost");
        }
        Outcome::Success(Some("RT1".into()))
    }
    async fn query_refund(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        self.call("query_refund", &m.gateway_account_id);
        let wrongly_missing = self
            .refund_not_found_queries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if wrongly_missing {
            return not_found();
        }
        match self.refunds.lock().get_mut(no) {
            Some(r) => {
                // A refund settles on its first query.
                r.0 = TransStatus::Succeeded;
                Outcome::Success(Self::order(r.0, r.1))
            }
            None => not_found(),
        }
    }
}

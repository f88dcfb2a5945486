//! Test doubles of the payment logic's ports: a hand-moved clock and a scripted CodePay.

use crate::Clock;
use crate::ports::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Money, TransStatus};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A scripted CodePay: orders and refunds in maps, CPM behaviour set by [`Cpm`], and counters
/// of submits and revokes.
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
        }
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
        }
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
    async fn create_qr(&self, o: &QrOrder) -> Outcome<QrCreated> {
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
            Cpm::ChargeButLoseAnswer => Outcome::Unknown {
                reason: "timeout".into(),
            },
            Cpm::Decline => Outcome::Declined {
                code: "E1".into(),
                msg: "insufficient funds".into(),
            },
            _ => Outcome::Success(Self::order(status, o.amount)),
        }
    }
    async fn query(&self, _: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        match self.orders.lock().get(no) {
            Some((s, a)) => Outcome::Success(Self::order(*s, *a)),
            None => not_found(),
        }
    }
    async fn revoke(&self, _: &UpstreamMerchant, no: &str) -> Outcome<()> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
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
        self.refunds.lock().insert(
            o.merchant_order_no.clone(),
            (TransStatus::InProgress, o.amount),
        );
        Outcome::Success(Some("RT1".into()))
    }
    async fn query_refund(&self, _: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
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

/// CodePay never answers the QR request.
pub struct SilentQr(pub Arc<FakeCodePay>);

#[async_trait]
impl Upstream for SilentQr {
    async fn create_qr(&self, _: &QrOrder) -> Outcome<QrCreated> {
        Outcome::Unknown {
            reason: "timeout".into(),
        }
    }
    async fn submit_cpm(&self, o: &CpmOrder) -> Outcome<UpstreamOrder> {
        self.0.submit_cpm(o).await
    }
    async fn query(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        self.0.query(m, no).await
    }
    async fn revoke(&self, m: &UpstreamMerchant, no: &str) -> Outcome<()> {
        self.0.revoke(m, no).await
    }
    async fn submit_refund(&self, o: &RefundOrder) -> Outcome<Option<String>> {
        self.0.submit_refund(o).await
    }
    async fn query_refund(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        self.0.query_refund(m, no).await
    }
}

//! The engine posts each state change's journals in the same commit as the change, over the
//! in-memory store (which keeps each commit's journals with the rows it wrote).

use super::create::NewPayment;
use super::model::{MerchantProfile, Payment};
use super::ports::{AccountScope, PaymentStore};
use super::refunds::NewRefund;
use super::settle::{InboundNotification, JobOutcome};
use super::{Engine, EngineConfig};
use crate::testing::fake::{Cpm, FakeCodePay, ManualClock};
use crate::testing::memory::{MemoryPaymentStore, Posted};
use chrono::Utc;
use domain::{
    Currency, EventType, MerchantId, Money, PaymentMode, PaymentStatus, RefundStatus, Secret,
    TransStatus, Wallet,
};
use ledger::{Account, Balances, JournalKind, PriceList, Rate};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Books {
    engine: Engine,
    store: Arc<MemoryPaymentStore>,
    codepay: Arc<FakeCodePay>,
    clock: Arc<ManualClock>,
    merchant: MerchantProfile,
}

fn usd() -> Currency {
    Currency::from_code("USD").expect("usd")
}

fn money(minor: i64) -> Money {
    Money::new(minor, usd()).expect("money")
}

/// An engine whose merchant is priced 2.9 % + 0.30 USD from the start, and a CodePay that
/// reports a 0.6 % fee on paid orders.
fn books() -> Books {
    let b = unpriced();
    b.codepay.fee_bps.store(60, Ordering::SeqCst);
    b.price(290, 30, 1);
    b
}

/// An engine whose merchant has no pricing, and a CodePay that reports no fee.
fn unpriced() -> Books {
    let store = Arc::new(MemoryPaymentStore::new());
    let codepay = Arc::new(FakeCodePay::new());
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let engine = Engine::new(
        store.clone(),
        codepay.clone(),
        EngineConfig::default(),
        clock.clone(),
    );
    let merchant = MerchantProfile {
        id: MerchantId::generate(),
        active: true,
        merchant_no: "M1".into(),
        store_no: None,
        default_currency: usd(),
        allowed_wallets: vec![],
        max_amount_minor: None,
        gateway_account_id: None,
        routing: vec![],
    };
    Books {
        engine,
        store,
        codepay,
        clock,
        merchant,
    }
}

impl Books {
    /// A new price list version in force from now.
    fn price(&self, percent_bps: u32, fixed: i64, version: i64) {
        let rate = Rate {
            wallet: None,
            currency: Some(usd()),
            percent_bps,
            fixed,
        };
        let now = *self.clock.0.lock();
        let list = PriceList::new(version, now, vec![rate]).expect("prices");
        self.store.add_prices(&self.merchant.id, list);
    }

    async fn pay(&self, mode: PaymentMode, amount: i64, order: &str) -> Payment {
        let r = NewPayment {
            mode,
            amount_minor: amount,
            currency: None,
            merchant_order_id: order.into(),
            wallet: Wallet::from_name("alipay").expect("wallet"),
            description: None,
            auth_code: (mode == PaymentMode::Cpm).then(|| Secret::new("281234567890")),
            expires_in: Some(300),
            metadata: serde_json::json!({}),
            location: None,
        };
        self.engine
            .create_payment(&self.merchant, r)
            .await
            .expect("created")
    }

    async fn refund(&self, p: &Payment, amount: i64, id: &str) {
        let r = self
            .engine
            .create_refund(
                &self.merchant.id,
                &p.id,
                NewRefund {
                    amount_minor: Some(amount),
                    merchant_refund_id: id.into(),
                    reason: None,
                },
            )
            .await
            .expect("refund");
        assert_eq!(
            self.engine.poll_refund(&r.id).await.ok(),
            Some(JobOutcome::Done)
        );
    }

    async fn payment(&self, p: &Payment) -> Payment {
        self.store.payment(&p.id).await.ok().flatten().expect("p")
    }
}

/// Each journal of a commit as (kind, the merchant payable's change).
fn kinds(posted: &Posted, merchant: &MerchantId) -> Vec<(JournalKind, i128)> {
    let payable = Account::MerchantPayable(merchant.clone());
    posted
        .journals
        .iter()
        .map(|j| (j.kind(), j.effect_on(&payable)))
        .collect()
}

#[tokio::test]
async fn a_success_commits_its_capture_fee_and_codepay_fee_with_the_state_change() {
    let b = books();
    let p = b.pay(PaymentMode::Cpm, 1000, "c1").await;
    assert_eq!(p.status, PaymentStatus::Succeeded);
    let posted = b.store.posted();
    assert_eq!(posted.len(), 1, "one commit carried journals");
    let commit = &posted[0];
    let row = commit
        .payment
        .as_ref()
        .expect("the payment row is in that commit");
    assert_eq!(row.status, PaymentStatus::Succeeded);
    assert_eq!(
        commit
            .events
            .iter()
            .map(|e| e.event_type)
            .collect::<Vec<_>>(),
        [EventType::PaymentSucceeded],
        "and its event"
    );
    assert_eq!(
        kinds(commit, &b.merchant.id),
        [
            (JournalKind::Capture, 1000),
            (JournalKind::Fee, -59),
            (JournalKind::CodePayFee, 0),
        ]
    );
    let codepay = commit.journals[2].effect_on(&Account::CodePayFeeExpense);
    assert_eq!(codepay, 6, "CodePay's 0.6 % of 10.00");
    let fee = b.payment(&p).await.fee.expect("fee snapshot");
    assert_eq!(
        (fee.percent_part, fee.fixed_part, fee.total()),
        (money(29), money(30), money(59))
    );
    assert_eq!(
        (fee.pricing_version, fee.codepay_fee),
        (Some(1), Some(money(6)))
    );
    let object = b.engine.payment_object(&b.payment(&p).await);
    assert_eq!(
        object.fee.map(|f| (f.amount, f.currency)),
        Some((59, "USD".into()))
    );
}

#[tokio::test]
async fn each_refund_commits_its_refund_and_cumulative_fee_return_with_its_success() {
    let b = books();
    let p = b.pay(PaymentMode::Cpm, 1000, "c1").await;
    b.refund(&p, 400, "r1").await;
    b.refund(&p, 600, "r2").await;
    let posted = b.store.posted();
    assert_eq!(posted.len(), 3);
    for (commit, (refund, back)) in posted[1..].iter().zip([(400, 12), (600, 17)]) {
        let r = commit
            .refund
            .as_ref()
            .expect("the refund row is in that commit");
        assert_eq!(r.status, RefundStatus::Succeeded);
        assert_eq!(r.fee_return, Some(money(back)));
        assert_eq!(
            kinds(commit, &b.merchant.id),
            [
                (JournalKind::Refund, -refund),
                (JournalKind::FeeReturn, i128::from(back))
            ]
        );
    }
    // 2.9 % of 10.00 is 29: all of it back after a full refund, the 30 fixed part kept.
    let all: Vec<_> = posted.iter().flat_map(|c| c.journals.clone()).collect();
    let balances = Balances::from_journals(&all).expect("balances");
    assert_eq!(balances.merchant_net(&b.merchant.id, usd()), -30);
    assert_eq!(balances.balance(&Account::PlatformFeeRevenue, usd()), 30);
    assert_eq!(balances.trial_difference(usd()), 0);
}

#[tokio::test]
async fn a_late_success_books_one_journal_that_nets_to_zero_and_no_fee() {
    let b = books();
    let p = b.pay(PaymentMode::Mpm, 700, "m1").await;
    b.clock.advance(301);
    b.engine.expire_payment(&p.id).await.expect("expired");
    b.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
    let n = InboundNotification {
        merchant_no: "M1".into(),
        merchant_order_no: p.merchant_order_no.clone(),
        trans_type: 1,
        order: FakeCodePay::order(TransStatus::Succeeded, p.amount),
        verified: true,
        scope: AccountScope::unrouted(),
    };
    b.engine.apply_notification(&n).await.expect("applied");
    let refund = b.store.refunds_of(&p.id).await.expect("refunds")[0].clone();
    assert_eq!(
        b.engine.poll_refund(&refund.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let posted = b.store.posted();
    assert_eq!(posted.len(), 1, "nothing for the canceled payment itself");
    assert_eq!(
        kinds(&posted[0], &b.merchant.id),
        [(JournalKind::LateSuccessRefund, 0)]
    );
    assert_eq!(
        posted[0].journals[0].effect_on(&Account::GatewayClearing),
        0
    );
    let r = posted[0]
        .refund
        .as_ref()
        .expect("with the refund's success");
    assert_eq!((r.status, r.fee_return), (RefundStatus::Succeeded, None));
    assert!(b.payment(&p).await.fee.is_none());
}

#[tokio::test]
async fn declined_and_expired_payments_book_nothing() {
    let b = books();
    *b.codepay.cpm.lock() = Cpm::Decline;
    let declined = b.pay(PaymentMode::Cpm, 1000, "c1").await;
    assert_eq!(declined.status, PaymentStatus::Failed);
    let p = b.pay(PaymentMode::Mpm, 700, "m1").await;
    b.clock.advance(301);
    b.engine.expire_payment(&p.id).await.expect("expired");
    assert_eq!(b.payment(&p).await.status, PaymentStatus::Canceled);
    assert!(b.store.journals().is_empty());
}

#[tokio::test]
async fn a_price_change_applies_to_payments_created_after_it() {
    let b = books();
    let before = b.pay(PaymentMode::Mpm, 1000, "m1").await;
    b.clock.advance(10);
    b.price(100, 0, 2);
    let after = b.pay(PaymentMode::Mpm, 1000, "m2").await;
    // Both are paid after the change: each keeps the price of its creation.
    for p in [&before, &after] {
        b.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
        let n = InboundNotification {
            merchant_no: "M1".into(),
            merchant_order_no: p.merchant_order_no.clone(),
            trans_type: 1,
            order: FakeCodePay::order(TransStatus::Succeeded, p.amount),
            verified: true,
            scope: AccountScope::unrouted(),
        };
        b.engine.apply_notification(&n).await.expect("applied");
    }
    let fee = |p: Payment| p.fee.map(|f| (f.total().minor(), f.pricing_version));
    assert_eq!(fee(b.payment(&before).await), Some((59, Some(1))));
    assert_eq!(fee(b.payment(&after).await), Some((10, Some(2))));
    // A notification replayed posts nothing more: the payment is already succeeded.
    let journals = b.store.journals().len();
    b.engine
        .apply_notification(&InboundNotification {
            merchant_no: "M1".into(),
            merchant_order_no: after.merchant_order_no.clone(),
            trans_type: 1,
            order: FakeCodePay::order(TransStatus::Succeeded, after.amount),
            verified: true,
            scope: AccountScope::unrouted(),
        })
        .await
        .expect("replayed");
    assert_eq!(b.store.journals().len(), journals);
}

#[tokio::test]
async fn a_merchant_without_pricing_pays_no_fee() {
    let b = unpriced();
    let p = b.pay(PaymentMode::Cpm, 1000, "c1").await;
    let posted = b.store.posted();
    assert_eq!(
        kinds(&posted[0], &b.merchant.id),
        [(JournalKind::Capture, 1000)],
        "no fee journal, and no CodePay fee when CodePay reports none"
    );
    let fee = b.payment(&p).await.fee.expect("snapshot");
    assert_eq!((fee.total(), fee.pricing_version), (money(0), None));
}

#[tokio::test]
async fn a_statement_file_shows_only_the_orders_payfac_never_saw() {
    use crate::recon::StatementRecord;
    let b = books();
    let p = b.pay(PaymentMode::Cpm, 1000, "c1").await;
    b.refund(&p, 400, "r1").await;
    let refund = b.store.refunds_of(&p.id).await.expect("refunds")[0].clone();
    let record = |no: &str| StatementRecord {
        merchant_no: "M1".into(),
        merchant_order_no: no.into(),
        trans_no: None,
        status: TransStatus::Succeeded,
        amount: money(1000),
        fee: None,
    };
    let file = [
        record(&p.merchant_order_no),
        record(&refund.merchant_order_no),
        record("P_NOT_OURS"),
    ];
    let unknown = b
        .engine
        .orders_unknown_to_payfac(&AccountScope::unrouted(), &file)
        .await
        .expect("compared");
    assert_eq!(unknown, [record("P_NOT_OURS")]);
}

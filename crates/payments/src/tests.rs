//! Unit tests of the payment logic over the in-memory store and a scripted CodePay.

use super::create::NewPayment;
use super::model::{JobKind, MerchantProfile};
use super::ports::*;
use super::refunds::NewRefund;
use super::settle::{InboundNotification, JobOutcome, NotificationEffect};
use super::{Engine, EngineConfig};
use crate::error::PaymentError;
use crate::testing::fake::{Cpm, FakeCodePay, ManualClock};
use crate::testing::memory::MemoryPaymentStore;
use chrono::Utc;
use domain::{
    Currency, EventType, MerchantId, Money, PaymentMode, PaymentStatus, RefundStatus, Secret,
    TransStatus, Wallet,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Fixture {
    engine: Engine,
    store: Arc<MemoryPaymentStore>,
    codepay: Arc<FakeCodePay>,
    clock: Arc<ManualClock>,
    merchant: MerchantProfile,
}

fn usd() -> Currency {
    Currency::from_code("USD").expect("usd")
}

fn fixture() -> Fixture {
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
        max_amount_minor: Some(100_000),
        gateway_account_id: None,
        routing: vec![],
    };
    Fixture {
        engine,
        store,
        codepay,
        clock,
        merchant,
    }
}

impl Fixture {
    /// Takes a payment for the fixture's merchant, expecting CodePay to accept it.
    async fn create(&self, r: NewPayment) -> super::model::Payment {
        self.engine
            .create_payment(&self.merchant, r)
            .await
            .expect("payment created")
    }
}

fn req(mode: PaymentMode, amount: i64, order: &str) -> NewPayment {
    NewPayment {
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
    }
}

/// The refusal code of a result, if it is one.
fn code<T>(r: &Result<T, PaymentError>) -> Option<&'static str> {
    r.as_ref().err().and_then(PaymentError::code)
}

fn event_types(f: &Fixture) -> Vec<EventType> {
    f.store.events().iter().map(|e| e.event_type).collect()
}

#[tokio::test]
async fn mpm_create_returns_the_qr_and_schedules_its_expiry() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 1250, "o1")).await;
    assert_eq!(p.status, PaymentStatus::Pending);
    assert!(
        p.qr_code
            .as_deref()
            .is_some_and(|q| q.contains(&p.merchant_order_no))
    );
    let jobs = f.store.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::ExpirePayment);
    assert_eq!(Some(jobs[0].run_at), p.expires_at);
    let dup = f
        .engine
        .create_payment(&f.merchant, req(PaymentMode::Mpm, 1250, "o1"))
        .await;
    assert_eq!(code(&dup), Some("merchant_order_id_taken"));
}

#[tokio::test]
async fn bad_requests_are_refused_before_codepay() {
    let f = fixture();
    let zero = f
        .engine
        .create_payment(&f.merchant, req(PaymentMode::Mpm, 0, "a"))
        .await;
    assert_eq!(code(&zero), Some("amount_invalid"));
    let over = f
        .engine
        .create_payment(&f.merchant, req(PaymentMode::Mpm, 100_001, "b"))
        .await;
    assert_eq!(code(&over), Some("amount_over_limit"));
    let mut suspended = f.merchant.clone();
    suspended.active = false;
    let s = f
        .engine
        .create_payment(&suspended, req(PaymentMode::Mpm, 10, "c"))
        .await;
    assert!(matches!(s, Err(PaymentError::MerchantInactive)));
    let mut limited = f.merchant.clone();
    limited.allowed_wallets = vec![Wallet::from_name("wechat_pay").expect("w")];
    let w = f
        .engine
        .create_payment(&limited, req(PaymentMode::Mpm, 10, "d"))
        .await;
    assert_eq!(code(&w), Some("wallet_not_allowed"));
    let mut no_code = req(PaymentMode::Cpm, 10, "e");
    no_code.auth_code = None;
    assert!(f.engine.create_payment(&f.merchant, no_code).await.is_err());
    assert!(f.store.events().is_empty());
    assert_eq!(f.codepay.submits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn cpm_approve_and_decline_settle_at_once_with_one_event() {
    let f = fixture();
    let ok = f.create(req(PaymentMode::Cpm, 500, "c1")).await;
    assert_eq!(ok.status, PaymentStatus::Succeeded);
    assert!(ok.paid_at.is_some());
    *f.codepay.cpm.lock() = Cpm::Decline;
    let no = f.create(req(PaymentMode::Cpm, 500, "c2")).await;
    assert_eq!(no.status, PaymentStatus::Failed);
    assert_eq!(no.failure_code.as_deref(), Some("payment_declined"));
    assert!(
        no.failure_message
            .as_deref()
            .is_some_and(|m| m.contains("insufficient funds"))
    );
    assert_eq!(
        event_types(&f),
        vec![EventType::PaymentSucceeded, EventType::PaymentFailed]
    );
    let seq = f.store.events()[0].payload["sequence"].as_i64();
    assert_eq!(seq, Some(ok.version));
}

#[tokio::test]
async fn cpm_pin_is_processing_then_settled_by_polling() {
    let f = fixture();
    *f.codepay.cpm.lock() = Cpm::Pin;
    let p = f.create(req(PaymentMode::Cpm, 500, "c1")).await;
    assert_eq!(p.status, PaymentStatus::Processing);
    f.clock.advance(2);
    assert!(matches!(
        f.engine.poll_payment(&p.id).await,
        Ok(JobOutcome::RetryAt(_))
    ));
    f.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
    assert_eq!(
        f.engine.poll_payment(&p.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let after = f.store.payment(&p.id).await.ok().flatten().expect("stored");
    assert_eq!(after.status, PaymentStatus::Succeeded);
    assert_eq!(
        event_types(&f),
        vec![EventType::PaymentProcessing, EventType::PaymentSucceeded]
    );
}

#[tokio::test]
async fn cpm_that_never_settles_is_reversed_after_the_deadline() {
    let f = fixture();
    *f.codepay.cpm.lock() = Cpm::Pin;
    let p = f.create(req(PaymentMode::Cpm, 500, "c1")).await;
    f.clock.advance(30);
    assert!(matches!(
        f.engine.poll_payment(&p.id).await,
        Ok(JobOutcome::RetryAt(_))
    ));
    assert_eq!(f.codepay.revokes.load(Ordering::SeqCst), 0);
    f.clock.advance(31);
    assert_eq!(
        f.engine.poll_payment(&p.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let after = f.store.payment(&p.id).await.ok().flatten().expect("stored");
    assert_eq!(
        after.status,
        PaymentStatus::Canceled,
        "a 1 after our revoke means canceled"
    );
    assert_eq!(after.failure_code.as_deref(), Some("reversed_unsettled"));
    assert_eq!(f.codepay.revokes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_lost_cpm_answer_is_settled_by_query_never_by_a_second_charge() {
    let f = fixture();
    *f.codepay.cpm.lock() = Cpm::ChargeButLoseAnswer;
    let p = f.create(req(PaymentMode::Cpm, 500, "c1")).await;
    assert_eq!(p.status, PaymentStatus::Processing);
    assert_eq!(
        f.engine.poll_payment(&p.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let after = f.store.payment(&p.id).await.ok().flatten().expect("stored");
    assert_eq!(after.status, PaymentStatus::Succeeded);
    assert_eq!(f.codepay.submits.load(Ordering::SeqCst), 1);
    assert_eq!(event_types(&f).last(), Some(&EventType::PaymentSucceeded));
}

#[tokio::test]
async fn mpm_expiry_closes_unpaid_and_accepts_a_success_before_expiry() {
    let f = fixture();
    let unpaid = f.create(req(PaymentMode::Mpm, 100, "m1")).await;
    let paid = f.create(req(PaymentMode::Mpm, 100, "m2")).await;
    assert!(
        matches!(
            f.engine.expire_payment(&unpaid.id).await,
            Ok(JobOutcome::RetryAt(_))
        ),
        "not yet due"
    );
    f.codepay
        .set(&paid.merchant_order_no, TransStatus::Succeeded);
    f.clock.advance(301);
    assert_eq!(
        f.engine.expire_payment(&unpaid.id).await.ok(),
        Some(JobOutcome::Done)
    );
    assert_eq!(
        f.engine.expire_payment(&paid.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let u = f.store.payment(&unpaid.id).await.ok().flatten().expect("u");
    let s = f.store.payment(&paid.id).await.ok().flatten().expect("p");
    assert_eq!(
        (u.status, u.failure_code.as_deref()),
        (PaymentStatus::Canceled, Some("expired"))
    );
    assert_eq!(s.status, PaymentStatus::Succeeded);
    assert_eq!(f.codepay.revokes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_success_after_a_local_close_is_refunded_automatically() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 700, "m1")).await;
    f.clock.advance(301);
    f.engine.expire_payment(&p.id).await.expect("expired");
    // CodePay nevertheless reports the order paid (e.g. a wallet that settled late).
    f.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
    let n = InboundNotification {
        merchant_no: "M1".into(),
        merchant_order_no: p.merchant_order_no.clone(),
        trans_type: 1,
        order: FakeCodePay::order(TransStatus::Succeeded, p.amount),
        verified: true,
        scope: AccountScope::unrouted(),
    };
    f.engine.apply_notification(&n).await.expect("applied");
    f.engine
        .apply_notification(&n)
        .await
        .expect("duplicate is harmless");
    let after = f.store.payment(&p.id).await.ok().flatten().expect("p");
    assert_eq!(
        after.status,
        PaymentStatus::Canceled,
        "a final state never changes"
    );
    let refunds = f.store.refunds_of(&p.id).await.expect("refunds");
    assert_eq!(refunds.len(), 1, "refunded exactly once");
    assert_eq!(
        refunds[0].merchant_refund_id,
        format!("late_success_{}", p.id)
    );
    assert_eq!(refunds[0].amount, p.amount);
    assert_eq!(
        f.engine.poll_refund(&refunds[0].id).await.ok(),
        Some(JobOutcome::Done)
    );
    assert_eq!(
        event_types(&f),
        vec![EventType::PaymentCanceled, EventType::RefundSucceeded]
    );
}

#[tokio::test]
async fn partial_and_multiple_refunds_stop_at_the_captured_amount() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Cpm, 1000, "c1")).await;
    let r = |amount, id: &str| NewRefund {
        amount_minor: amount,
        merchant_refund_id: id.into(),
        reason: None,
    };
    let a = f
        .engine
        .create_refund(&f.merchant.id, &p.id, r(Some(300), "r1"))
        .await
        .expect("r1");
    let b = f
        .engine
        .create_refund(&f.merchant.id, &p.id, r(Some(600), "r2"))
        .await
        .expect("r2");
    let over = f
        .engine
        .create_refund(&f.merchant.id, &p.id, r(Some(101), "r3"))
        .await;
    assert_eq!(code(&over), Some("refund_exceeds_captured"));
    let dup = f
        .engine
        .create_refund(&f.merchant.id, &p.id, r(Some(1), "r1"))
        .await;
    assert_eq!(code(&dup), Some("merchant_refund_id_taken"));
    let rest = f
        .engine
        .create_refund(&f.merchant.id, &p.id, r(None, "r4"))
        .await
        .expect("rest");
    assert_eq!(rest.amount.minor(), 100);
    for id in [&a.id, &b.id, &rest.id] {
        assert_eq!(f.engine.poll_refund(id).await.ok(), Some(JobOutcome::Done));
    }
    let after = f.store.payment(&p.id).await.ok().flatten().expect("p");
    assert_eq!(after.amount_refunded, 1000);
    let foreign = f
        .engine
        .create_refund(&MerchantId::generate(), &p.id, r(Some(1), "x"))
        .await;
    assert!(matches!(foreign, Err(PaymentError::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_refunds_never_exceed_the_capture() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Cpm, 1000, "c1")).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = f.engine.clone();
        let (m, id) = (f.merchant.id.clone(), p.id.clone());
        tasks.push(tokio::spawn(async move {
            let req = NewRefund {
                amount_minor: Some(300),
                merchant_refund_id: format!("r{i}"),
                reason: None,
            };
            engine.create_refund(&m, &id, req).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("joined").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "1000 fits three refunds of 300");
    let total: i64 = f
        .store
        .refunds_of(&p.id)
        .await
        .expect("r")
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
        .map(|r| r.amount.minor())
        .sum();
    assert_eq!(total, 900);
}

#[tokio::test]
async fn cancel_closes_a_pending_payment_and_refuses_a_paid_one() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 100, "m1")).await;
    let c = f
        .engine
        .cancel_payment(&f.merchant.id, &p.id)
        .await
        .expect("canceled");
    assert_eq!(
        (c.status, c.failure_code.as_deref()),
        (PaymentStatus::Canceled, Some("canceled_by_merchant"))
    );
    let again = f
        .engine
        .cancel_payment(&f.merchant.id, &p.id)
        .await
        .expect("idempotent");
    assert_eq!(again.version, c.version);
    let q = f.create(req(PaymentMode::Mpm, 100, "m2")).await;
    f.codepay.set(&q.merchant_order_no, TransStatus::Succeeded);
    let refused = f.engine.cancel_payment(&f.merchant.id, &q.id).await;
    assert_eq!(code(&refused), Some("payment_not_cancelable"));
    let settled = f.store.payment(&q.id).await.ok().flatten().expect("q");
    assert_eq!(
        settled.status,
        PaymentStatus::Succeeded,
        "the paid order was found, not reversed"
    );
}

#[tokio::test]
async fn an_unverified_or_mismatched_notification_is_only_a_trigger() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 100, "m1")).await;
    let forged = InboundNotification {
        merchant_no: "M1".into(),
        merchant_order_no: p.merchant_order_no.clone(),
        trans_type: 1,
        order: FakeCodePay::order(TransStatus::Succeeded, p.amount),
        verified: false,
        scope: AccountScope::unrouted(),
    };
    f.engine.apply_notification(&forged).await.expect("handled");
    let still = f.store.payment(&p.id).await.ok().flatten().expect("p");
    assert_eq!(
        still.status,
        PaymentStatus::Pending,
        "CodePay's query says unpaid"
    );
    let wrong_amount = InboundNotification {
        verified: true,
        order: FakeCodePay::order(TransStatus::Succeeded, Money::new(1, usd()).expect("m")),
        ..forged.clone()
    };
    f.engine
        .apply_notification(&wrong_amount)
        .await
        .expect("handled");
    let still = f.store.payment(&p.id).await.ok().flatten().expect("p");
    assert_eq!(still.status, PaymentStatus::Pending);
    assert!(f.store.events().is_empty());
}

#[tokio::test]
async fn an_unanswered_qr_request_is_502_and_the_payment_is_closed_by_the_poller() {
    let f = fixture();
    f.codepay.qr_unanswered.store(true, Ordering::SeqCst);
    let engine = f.engine.clone();
    let r = engine
        .create_payment(&f.merchant, req(PaymentMode::Mpm, 100, "m1"))
        .await;
    assert_eq!(code(&r), Some("upstream_unavailable"));
    let jobs = f.store.jobs();
    let poll = jobs
        .iter()
        .find(|j| j.kind == JobKind::PollPayment)
        .expect("poll job");
    let id = domain::PaymentId::parse(&poll.subject).expect("id");
    assert_eq!(engine.poll_payment(&id).await.ok(), Some(JobOutcome::Done));
    let p = f.store.payment(&id).await.ok().flatten().expect("p");
    assert_eq!(
        (p.status, p.failure_code.as_deref()),
        (PaymentStatus::Canceled, Some("upstream_unavailable"))
    );
}

/// The scope of a notification from the account `p` was routed through.
fn scope_of(p: &super::model::Payment) -> AccountScope {
    match &p.gateway_account_id {
        Some(a) => AccountScope::of(a.clone(), false),
        None => AccountScope::unrouted(),
    }
}

fn paid_notification(p: &super::model::Payment) -> InboundNotification {
    InboundNotification {
        merchant_no: "M1".into(),
        merchant_order_no: p.merchant_order_no.clone(),
        trans_type: 1,
        order: FakeCodePay::order(TransStatus::Succeeded, p.amount),
        verified: true,
        scope: scope_of(p),
    }
}

#[tokio::test]
async fn a_payment_made_while_payfac_closes_the_order_ends_as_codepay_ends_it() {
    let f = fixture();
    let (entered, gate) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    *f.codepay.revoke_gate.lock() = Some((entered.clone(), gate.clone()));
    let engine = f.engine.clone();
    let p = engine
        .create_payment(&f.merchant, req(PaymentMode::Mpm, 900, "race"))
        .await
        .expect("created");
    let cancel = tokio::spawn({
        let (engine, merchant, id) = (engine.clone(), f.merchant.id.clone(), p.id.clone());
        async move { engine.cancel_payment(&merchant, &id).await }
    });
    entered.notified().await;
    // The customer pays while the revoke is on its way; CodePay notifies the success.
    f.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
    engine
        .apply_notification(&paid_notification(&p))
        .await
        .expect("notification taken");
    gate.notify_one();
    let canceled = cancel.await.expect("joined").expect("cancel");
    // The revoker voided the paid order (3): payfac must end where CodePay ended.
    let at_codepay = f.codepay.orders.lock()[&p.merchant_order_no].0;
    assert_eq!(at_codepay, TransStatus::Canceled);
    assert_eq!(canceled.status, PaymentStatus::Canceled);
    assert_eq!(
        event_types(&f),
        vec![EventType::PaymentCanceled],
        "no payment.succeeded for money that went back to the customer"
    );
}

#[tokio::test]
async fn a_late_success_whose_confirming_query_fails_is_still_refunded() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 650, "late")).await;
    f.clock.advance(301);
    f.engine.expire_payment(&p.id).await.expect("expired");
    f.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);
    f.codepay
        .first_query_times_out
        .store(true, Ordering::SeqCst);
    let engine = f.engine.clone();
    engine
        .apply_notification(&paid_notification(&p))
        .await
        .expect("answered success to CodePay");
    assert!(
        f.store.refunds_of(&p.id).await.expect("refunds").is_empty(),
        "the confirming query timed out"
    );
    let confirm = f
        .store
        .jobs()
        .into_iter()
        .find(|j| j.kind == JobKind::ConfirmLateSuccess && j.subject == p.id.to_string())
        .expect("the confirmation is durable");
    f.clock.advance(5);
    let outcome = crate::jobs::handle(&engine, confirm.kind.as_str(), &confirm.subject).await;
    assert_eq!(outcome, JobOutcome::Done);
    let refunds = f.store.refunds_of(&p.id).await.expect("refunds");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount, p.amount);
    assert_eq!(
        crate::jobs::handle(&engine, confirm.kind.as_str(), &confirm.subject).await,
        JobOutcome::Done,
        "a second run finds the refund and does nothing"
    );
    assert_eq!(f.store.refunds_of(&p.id).await.expect("r").len(), 1);
}

#[tokio::test]
async fn a_limited_merchant_takes_payments_in_its_own_currency_only() {
    let f = fixture();
    let mut eur = req(PaymentMode::Mpm, 99_999_999_999, "eur");
    eur.currency = Some(Currency::from_code("EUR").expect("eur"));
    let refused = f.engine.create_payment(&f.merchant, eur).await;
    assert_eq!(code(&refused), Some("currency_not_allowed"));
    let mut unlimited = f.merchant.clone();
    unlimited.max_amount_minor = None;
    let mut eur = req(PaymentMode::Mpm, 5_000, "eur2");
    eur.currency = Some(Currency::from_code("EUR").expect("eur"));
    assert!(f.engine.create_payment(&unlimited, eur).await.is_ok());
}

#[tokio::test]
async fn a_merchant_cannot_take_the_automatic_refund_reference() {
    let f = fixture();
    *f.codepay.cpm.lock() = Cpm::Approve;
    let p = f.create(req(PaymentMode::Cpm, 800, "pre")).await;
    let r = f
        .engine
        .create_refund(
            &f.merchant.id,
            &p.id,
            NewRefund {
                amount_minor: Some(100),
                merchant_refund_id: format!("late_success_{}", p.id),
                reason: None,
            },
        )
        .await;
    assert_eq!(code(&r), Some("merchant_refund_id_reserved"));
}

#[tokio::test]
async fn a_cpm_answer_with_another_amount_is_reversed_and_fails() {
    let f = fixture();
    f.codepay.cpm_amount_skew.store(1, Ordering::SeqCst);
    let engine = f.engine.clone();
    let p = engine
        .create_payment(&f.merchant, req(PaymentMode::Cpm, 1_000, "wrong"))
        .await
        .expect("answered");
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.failure_code.as_deref(), Some("upstream_amount_mismatch"));
    assert_eq!(f.codepay.revokes.load(Ordering::SeqCst), 1, "reversed once");
    assert_eq!(
        f.codepay.orders.lock()[&p.merchant_order_no].0,
        TransStatus::Canceled,
        "the customer got the money back"
    );
    assert_eq!(event_types(&f), vec![EventType::PaymentFailed]);
    assert_eq!(
        engine.poll_payment(&p.id).await.expect("poll"),
        JobOutcome::Done,
        "nothing left to retry"
    );
}

#[tokio::test]
async fn a_resubmitted_refund_that_codepay_already_has_settles_by_query() {
    let f = fixture();
    let engine = f.engine.clone();
    let p = engine
        .create_payment(&f.merchant, req(PaymentMode::Cpm, 1_200, "dup"))
        .await
        .expect("paid");
    // The refund is applied but its answer lost, and CodePay's first query misses it.
    f.codepay.refund_answers_lost.store(true, Ordering::SeqCst);
    f.codepay
        .refund_not_found_queries
        .store(1, Ordering::SeqCst);
    let r = engine
        .create_refund(
            &f.merchant.id,
            &p.id,
            NewRefund {
                amount_minor: Some(500),
                merchant_refund_id: "r1".into(),
                reason: None,
            },
        )
        .await
        .expect("accepted");
    assert_eq!(r.status, RefundStatus::Pending);
    // First poll: "not found" → resubmit → "duplicate": still pending, not failed.
    assert!(matches!(
        engine.poll_refund(&r.id).await.expect("poll"),
        JobOutcome::RetryAt(_)
    ));
    let r = f.store.refund(&r.id).await.expect("r").expect("r");
    assert_eq!(
        r.status,
        RefundStatus::Pending,
        "a duplicate is not a refusal"
    );
    assert_eq!(
        engine.poll_refund(&r.id).await.expect("poll"),
        JobOutcome::Done
    );
    let r = f.store.refund(&r.id).await.expect("r").expect("r");
    assert_eq!(r.status, RefundStatus::Succeeded);
}

#[tokio::test]
async fn a_late_success_for_another_amount_is_still_refunded_in_full() {
    let f = fixture();
    let p = f.create(req(PaymentMode::Mpm, 650, "late-other")).await;
    f.clock.advance(301);
    f.engine.expire_payment(&p.id).await.expect("expired");
    let paid = Money::new(700, usd()).expect("m");
    f.codepay
        .orders
        .lock()
        .insert(p.merchant_order_no.clone(), (TransStatus::Succeeded, paid));
    let mut n = paid_notification(&p);
    n.order.amount = Some(paid);
    f.engine.apply_notification(&n).await.expect("taken");
    let after = f.store.payment(&p.id).await.ok().flatten().expect("p");
    assert_eq!(after.status, PaymentStatus::Canceled);
    let refunds = f.store.refunds_of(&p.id).await.expect("refunds");
    assert_eq!(
        refunds.len(),
        1,
        "what CodePay holds goes back to the customer"
    );
    assert_eq!(refunds[0].amount, paid);
}

// --- routing through gateway accounts ---

fn account() -> domain::GatewayAccountId {
    domain::GatewayAccountId::generate()
}

fn eur() -> Currency {
    Currency::from_code("EUR").expect("eur")
}

fn refund_of(amount: i64, id: &str) -> NewRefund {
    NewRefund {
        amount_minor: Some(amount),
        merchant_refund_id: id.into(),
        reason: None,
    }
}

#[tokio::test]
async fn the_first_matching_rule_then_the_merchant_account_then_the_default_carries_a_payment() {
    let mut f = fixture();
    let (own, euro, default) = (account(), account(), account());
    *f.codepay.default_account.lock() = Some(default.clone());
    f.merchant.max_amount_minor = None;
    f.merchant.gateway_account_id = Some(own.clone());
    f.merchant.routing = vec![domain::RoutingRule {
        currency: Some(eur()),
        wallet: None,
        gateway_account_id: euro.clone(),
    }];
    let usd_payment = f.create(req(PaymentMode::Mpm, 100, "usd")).await;
    let mut in_eur = req(PaymentMode::Cpm, 200, "eur");
    in_eur.currency = Some(eur());
    let eur_payment = f.create(in_eur).await;
    f.merchant.gateway_account_id = None;
    f.merchant.routing.clear();
    let plain = f.create(req(PaymentMode::Mpm, 300, "plain")).await;

    assert_eq!(usd_payment.gateway_account_id.as_ref(), Some(&own));
    assert_eq!(eur_payment.gateway_account_id.as_ref(), Some(&euro));
    assert_eq!(
        plain.gateway_account_id.as_ref(),
        Some(&default),
        "a merchant without account or rule is recorded on the default account"
    );
    assert_eq!(
        f.codepay.accounts_of("create_qr"),
        [Some(own), Some(default)]
    );
    assert_eq!(f.codepay.accounts_of("submit_cpm"), [Some(euro)]);
}

#[tokio::test]
async fn a_disabled_account_refuses_new_payments_but_its_payments_still_settle() {
    let mut f = fixture();
    let a = account();
    f.merchant.gateway_account_id = Some(a.clone());
    let paid = f.create(req(PaymentMode::Cpm, 500, "paid")).await;
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    *f.codepay.cpm.lock() = Cpm::Pin;
    let waiting = f.create(req(PaymentMode::Cpm, 400, "pin")).await;
    assert_eq!(waiting.status, PaymentStatus::Processing);
    let submits = f.codepay.submits.load(Ordering::SeqCst);

    f.codepay.disabled.lock().insert(a.clone());
    let refused = f
        .engine
        .create_payment(&f.merchant, req(PaymentMode::Cpm, 300, "refused"))
        .await;
    assert_eq!(code(&refused), Some("gateway_account_disabled"));
    assert!(
        matches!(&refused, Err(PaymentError::Unprocessable { param: Some(p), .. }) if p == "gateway_account_id")
    );
    assert_eq!(f.codepay.submits.load(Ordering::SeqCst), submits);
    let all = f
        .store
        .list_payments(&PaymentFilter::default(), 10)
        .await
        .expect("list");
    assert_eq!(all.len(), 2, "nothing written for the refused payment");

    // The existing payments keep settling through the disabled account.
    f.codepay
        .set(&waiting.merchant_order_no, TransStatus::Succeeded);
    assert_eq!(
        f.engine.poll_payment(&waiting.id).await.ok(),
        Some(JobOutcome::Done)
    );
    let settled = f.store.payment(&waiting.id).await.expect("p").expect("p");
    assert_eq!(settled.status, PaymentStatus::Succeeded);
    let refund = f
        .engine
        .create_refund(&f.merchant.id, &paid.id, refund_of(100, "r-disabled"))
        .await
        .expect("refund accepted");
    assert_eq!(refund.gateway_account_id.as_ref(), Some(&a));
    f.engine.poll_refund(&refund.id).await.expect("polled");
    let refund = f.store.refund(&refund.id).await.expect("r").expect("r");
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(f.codepay.accounts_of("query"), [Some(a.clone())]);
    assert_eq!(f.codepay.accounts_of("submit_refund"), [Some(a.clone())]);
    assert_eq!(f.codepay.accounts_of("query_refund"), [Some(a)]);
}

#[tokio::test]
async fn a_routing_change_does_not_move_an_existing_payment() {
    let mut f = fixture();
    let (before, after) = (account(), account());
    f.merchant.gateway_account_id = Some(before.clone());
    let paid = f.create(req(PaymentMode::Cpm, 500, "paid")).await;
    let open = f.create(req(PaymentMode::Mpm, 700, "open")).await;

    f.merchant.gateway_account_id = None;
    f.merchant.routing = vec![domain::RoutingRule {
        currency: None,
        wallet: None,
        gateway_account_id: after.clone(),
    }];
    let refund = f
        .engine
        .create_refund(&f.merchant.id, &paid.id, refund_of(200, "r1"))
        .await
        .expect("refund");
    let canceled = f
        .engine
        .cancel_payment(&f.merchant.id, &open.id)
        .await
        .expect("canceled");
    let next = f.create(req(PaymentMode::Mpm, 900, "next")).await;

    assert_eq!(canceled.status, PaymentStatus::Canceled);
    assert_eq!(canceled.gateway_account_id.as_ref(), Some(&before));
    assert_eq!(refund.gateway_account_id.as_ref(), Some(&before));
    assert_eq!(
        f.codepay.accounts_of("submit_refund"),
        [Some(before.clone())]
    );
    assert!(
        f.codepay
            .accounts_of("query")
            .iter()
            .chain(&f.codepay.accounts_of("revoke"))
            .all(|a| a.as_ref() == Some(&before)),
        "the cancel's query and revoke went through the payment's own account"
    );
    assert_eq!(next.gateway_account_id.as_ref(), Some(&after));
    assert_eq!(
        f.codepay.accounts_of("create_qr"),
        [Some(before), Some(after)]
    );
}

#[tokio::test]
async fn a_notification_touches_only_the_orders_of_the_account_that_verified_it() {
    let mut f = fixture();
    let (mine, other, default) = (account(), account(), account());
    *f.codepay.default_account.lock() = Some(default.clone());
    f.merchant.gateway_account_id = Some(mine.clone());
    let p = f.create(req(PaymentMode::Mpm, 800, "scoped")).await;
    f.codepay.set(&p.merchant_order_no, TransStatus::Succeeded);

    for scope in [
        AccountScope::of(other, false),
        AccountScope::of(default.clone(), true),
        AccountScope::unrouted(),
    ] {
        let n = InboundNotification {
            scope: scope.clone(),
            ..paid_notification(&p)
        };
        let effect = f.engine.apply_notification(&n).await.expect("handled");
        assert_eq!(effect, NotificationEffect::Unmatched, "{scope:?}");
    }
    let still = f.store.payment(&p.id).await.expect("p").expect("p");
    assert_eq!(still.status, PaymentStatus::Pending);
    let effect = f
        .engine
        .apply_notification(&paid_notification(&p))
        .await
        .expect("applied");
    assert_eq!(
        effect,
        NotificationEffect::Payment(p.id.clone(), PaymentStatus::Succeeded)
    );

    // An order recorded before payments carried an account is the default account's.
    let mut old = p.clone();
    old.id = domain::PaymentId::generate();
    old.merchant_order_id = "old".into();
    old.merchant_order_no = "P-OLD".into();
    old.gateway_account_id = None;
    old.status = PaymentStatus::Pending;
    f.store
        .commit(super::model::Change {
            insert_payment: Some(old.clone()),
            ..Default::default()
        })
        .await
        .expect("old row");
    let n = InboundNotification {
        scope: AccountScope::of(mine, false),
        ..paid_notification(&old)
    };
    assert_eq!(
        f.engine.apply_notification(&n).await.expect("handled"),
        NotificationEffect::Unmatched
    );
    let n = InboundNotification {
        scope: AccountScope::of(default, true),
        ..paid_notification(&old)
    };
    assert_eq!(
        f.engine.apply_notification(&n).await.expect("applied"),
        NotificationEffect::Payment(old.id.clone(), PaymentStatus::Succeeded)
    );
}

#[tokio::test]
async fn a_merchants_cancel_and_refund_are_audited_with_the_change_they_cause() {
    let f = fixture();
    let open = f.create(req(PaymentMode::Mpm, 100, "a1")).await;
    f.engine
        .cancel_payment_by(&f.merchant.id, &open.id, Some("key_1"))
        .await
        .expect("canceled");
    let paid = f.create(req(PaymentMode::Cpm, 500, "a2")).await;
    let refund = f
        .engine
        .create_refund_by(
            &f.merchant.id,
            &paid.id,
            refund_of(200, "r1"),
            Some("key_2"),
        )
        .await
        .expect("refund");
    // A cancel of a payment already closed changes nothing, so it records nothing.
    f.engine
        .cancel_payment_by(&f.merchant.id, &open.id, Some("key_1"))
        .await
        .expect("still canceled");
    let audit: Vec<_> = f
        .store
        .audit()
        .into_iter()
        .map(|a| (a.actor, a.action, a.target_id))
        .collect();
    assert_eq!(
        audit,
        vec![
            ("key_1".to_owned(), "payment.cancel", open.id.to_string()),
            ("key_2".to_owned(), "refund.create", refund.id.to_string()),
        ]
    );
}

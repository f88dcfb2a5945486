//! The create path's storage round trips, on SQLite and PostgreSQL: a payment created with an
//! `Idempotency-Key` is two payment commits and nothing else (the key is claimed in the first,
//! its response stored in the second, no re-read of the payment; a CPM create reads the price
//! list in force at its creation inside its first commit, to book the fee of a success), and
//! the guarantees hold: when CodePay is
//! called the payment row, its settling job and the in-flight claim are already committed;
//! replays, a reused key, a taken `merchant_order_id` and a declined order answer as before.

use async_trait::async_trait;
use diesel::prelude::*;
use domain::{MerchantId, PaymentId, RefundId};
use payments::PaymentError;
use payments::model::{Change, Payment, Refund};
use payments::ports::{
    AccountScope, CpmOrder, Outcome, PaymentFilter, PaymentStore, QrCreated, QrOrder, RefundFilter,
    RefundOrder, Upstream, UpstreamMerchant, UpstreamOrder,
};
use payments::sql_store::SqlPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::TestApp;
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::idempotency::SqlIdempotencyStore;
use tenant_api::idempotency::{Claim, IdempotencyStore, StoredResponse};
use test_support::on_both_backends;

mod support;

/// Counts what the engine asks of the payment store.
struct CountingPayments {
    inner: SqlPaymentStore,
    commits: AtomicUsize,
    reads: AtomicUsize,
}

#[async_trait]
impl PaymentStore for CountingPayments {
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, PaymentError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.payment(id).await
    }
    async fn payment_by_order_no(
        &self,
        scope: &AccountScope,
        m: &str,
        no: &str,
    ) -> Result<Option<Payment>, PaymentError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.payment_by_order_no(scope, m, no).await
    }
    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>, PaymentError> {
        self.inner.refund(id).await
    }
    async fn refund_by_order_no(
        &self,
        scope: &AccountScope,
        m: &str,
        no: &str,
    ) -> Result<Option<Refund>, PaymentError> {
        self.inner.refund_by_order_no(scope, m, no).await
    }
    async fn refund_by_merchant_ref(
        &self,
        m: &MerchantId,
        r: &str,
    ) -> Result<Option<Refund>, PaymentError> {
        self.inner.refund_by_merchant_ref(m, r).await
    }
    async fn refunds_of(&self, p: &PaymentId) -> Result<Vec<Refund>, PaymentError> {
        self.inner.refunds_of(p).await
    }
    async fn unsettled_payments(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, PaymentError> {
        self.inner.unsettled_payments(before, limit).await
    }
    async fn unsettled_refunds(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<Refund>, PaymentError> {
        self.inner.unsettled_refunds(before, limit).await
    }
    async fn list_payments(
        &self,
        f: &PaymentFilter,
        limit: usize,
    ) -> Result<Vec<Payment>, PaymentError> {
        self.inner.list_payments(f, limit).await
    }
    async fn list_refunds(
        &self,
        f: &RefundFilter,
        limit: usize,
    ) -> Result<Vec<Refund>, PaymentError> {
        self.inner.list_refunds(f, limit).await
    }
    async fn price_list_at(
        &self,
        m: &MerchantId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<ledger::PriceList>, PaymentError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.price_list_at(m, at).await
    }
    async fn commit(&self, change: Change) -> Result<(), PaymentError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(change).await
    }
    async fn commit_and_price(
        &self,
        change: Change,
        m: &MerchantId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<ledger::PriceList>, PaymentError> {
        // One transaction: a commit, not a read.
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit_and_price(change, m, at).await
    }
}

/// Counts the separate idempotency round trips.
struct CountingIdempotency {
    inner: SqlIdempotencyStore,
    calls: AtomicUsize,
}

#[async_trait]
impl IdempotencyStore for CountingIdempotency {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fp: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> tenant_api::Result<Claim> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.claim(scope, key, fp, now).await
    }
    async fn complete(&self, scope: &str, key: &str, r: &StoredResponse) -> tenant_api::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.complete(scope, key, r).await
    }
    async fn release(&self, scope: &str, key: &str) -> tenant_api::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.release(scope, key).await
    }
}

/// CodePay that looks at payfac's database when called: what is committed at that moment.
struct WitnessUpstream {
    db: store::Database,
    /// (payment row, its job, the in-flight claim) as seen by each call.
    seen: parking_lot::Mutex<Vec<(bool, bool, Option<String>)>>,
    calls: AtomicUsize,
    /// When set, the next CPM submit reports its order here (CodePay notifying the success)
    /// and answers 100 ms later.
    notify_early: parking_lot::Mutex<Option<tokio::sync::oneshot::Sender<CpmOrder>>>,
}

impl WitnessUpstream {
    async fn witness(&self, merchant_no: &str, order_no: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (m, no) = (merchant_no.to_owned(), order_no.to_owned());
        let seen = self
            .db
            .read(move |c| {
                let p = store::payments::find_by_upstream_order_no(c, &m, &no)?;
                let Some(p) = p else {
                    return Ok((false, false, None));
                };
                use store::schema::{idempotency_keys as ik, jobs};
                let pid = p.id.clone();
                let jobs: i64 = store::on_backend!(c, |c| jobs::table
                    .filter(jobs::dedupe_key.eq(&pid))
                    .count()
                    .get_result(c))?;
                let key = p.merchant_order_id.clone();
                let state: Option<String> = store::on_backend!(c, |c| ik::table
                    .filter(ik::idem_key.eq(&key))
                    .select(ik::state)
                    .first(c)
                    .optional())?;
                Ok((true, jobs == 1, state))
            })
            .await
            .expect("witness read");
        self.seen.lock().push(seen);
    }
}

#[async_trait]
impl Upstream for WitnessUpstream {
    async fn create_qr(&self, order: &QrOrder) -> Outcome<QrCreated> {
        self.witness(&order.merchant.merchant_no, &order.merchant_order_no)
            .await;
        if order.amount.minor() == 666 {
            return Outcome::Declined {
                code: "E01001".into(),
                msg: "risk".into(),
            };
        }
        Outcome::Success(QrCreated {
            trans_no: Some(format!("T{}", order.merchant_order_no)),
            qr_code: format!("https://qr.example/{}", order.merchant_order_no),
        })
    }
    async fn submit_cpm(&self, order: &CpmOrder) -> Outcome<UpstreamOrder> {
        self.witness(&order.merchant.merchant_no, &order.merchant_order_no)
            .await;
        let early = self.notify_early.lock().take();
        if let Some(tx) = early {
            let _ = tx.send(order.clone());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Outcome::Success(UpstreamOrder::reported(
            domain::TransStatus::Succeeded,
            "T-cpm".into(),
            order.amount,
        ))
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::unknown("not used")
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        Outcome::unknown("not used")
    }
    async fn submit_refund(&self, _: &RefundOrder) -> Outcome<Option<String>> {
        Outcome::unknown("not used")
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::unknown("not used")
    }
}

async fn create_round_trips(db: store::Database) {
    let keyring = test_support::keyring();
    let payments = Arc::new(CountingPayments {
        inner: SqlPaymentStore::new(db.clone(), std::time::Duration::from_secs(60))
            .with_idempotency(keyring.clone()),
        commits: AtomicUsize::new(0),
        reads: AtomicUsize::new(0),
    });
    let idem = Arc::new(CountingIdempotency {
        inner: SqlIdempotencyStore::new(db.clone()).with_keyring(keyring),
        calls: AtomicUsize::new(0),
    });
    let upstream = Arc::new(WitnessUpstream {
        db: db.clone(),
        seen: parking_lot::Mutex::new(Vec::new()),
        calls: AtomicUsize::new(0),
        notify_early: parking_lot::Mutex::new(None),
    });
    let engine = Engine::new(
        payments.clone(),
        upstream.clone(),
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .with_idempotent_creates();
    let notified = engine.clone();
    let idempotency = idem.clone();
    let app = TestApp::builder(db.clone())
        .state(move |p| {
            support::app_state(engine, Arc::new(SqlAccountStore::new(p.db)), idempotency)
        })
        .start()
        .await;
    let merchant = app.merchant(Some("S1")).await;
    let sk = app
        .key(Some(&merchant), tenant_api::auth::jwt::ALL_SCOPES)
        .await;
    // The merchant_order_id doubles as the Idempotency-Key, so the witness can find the claim.
    let post = async |key: &str, body: Value| {
        app.request(Method::POST, "/v1/payments", &sk)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("send")
    };
    let mpm = |order: &str, amount: i64| json!({"mode":"mpm","amount":amount,"currency":"USD","merchant_order_id":order,"wallet":"alipay"});
    let counts = || {
        (
            payments.commits.load(Ordering::SeqCst),
            payments.reads.load(Ordering::SeqCst),
            idem.calls.load(Ordering::SeqCst),
            upstream.calls.load(Ordering::SeqCst),
        )
    };

    // MPM: two commits, no read, no separate idempotency round trip.
    let resp = post("o-1", mpm("o-1", 1250)).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_none());
    let first: Value = resp.json().await.expect("json");
    assert_eq!(first["status"], "pending");
    assert!(
        first["qr_code"]
            .as_str()
            .is_some_and(|q| q.contains("qr.example"))
    );
    assert_eq!(
        counts(),
        (2, 0, 0, 1),
        "(commits, reads, idempotency calls, upstream)"
    );
    // When CodePay was called, the row, its job and the in-flight claim were committed.
    assert_eq!(
        upstream.seen.lock().last().cloned(),
        Some((true, true, Some("in_flight".to_owned())))
    );

    // The replay is the stored answer, and CodePay is not called again.
    let resp = post("o-1", mpm("o-1", 1250)).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replay: Value = resp.json().await.expect("json");
    assert_eq!(replay, first);
    assert_eq!(counts().3, 1);
    // The stored body is sealed, not readable JSON.
    let stored: String = db
        .read(|c| {
            use store::schema::idempotency_keys as ik;
            Ok(store::on_backend!(c, |c| ik::table
                .filter(ik::idem_key.eq("o-1"))
                .select(ik::response_body.assume_not_null())
                .first(c))?)
        })
        .await
        .expect("stored");
    assert!(!stored.contains("qr.example"), "sealed: {stored}");

    // Same key, other body: 422. A taken merchant_order_id under a new key: 409, replayed.
    let resp = post("o-1", mpm("o-1", 999)).await;
    assert_eq!(resp.status().as_u16(), 422);
    let resp = post("o-1-again", mpm("o-1", 1250)).await;
    assert_eq!(resp.status().as_u16(), 409);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"]["code"], "merchant_order_id_taken");
    let resp = post("o-1-again", mpm("o-1", 1250)).await;
    assert_eq!(resp.status().as_u16(), 409);
    assert!(resp.headers().get("idempotent-replayed").is_some());
    assert_eq!(counts().3, 1, "CodePay saw one order");

    // A declined order is a stored 201 `failed`, still two commits.
    let (c0, ..) = counts();
    let resp = post("o-2", mpm("o-2", 666)).await;
    assert_eq!(resp.status().as_u16(), 201);
    let declined: Value = resp.json().await.expect("json");
    assert_eq!(declined["status"], "failed");
    assert_eq!(counts().0 - c0, 2);
    let resp = post("o-2", mpm("o-2", 666)).await;
    let replay: Value = resp.json().await.expect("json");
    assert_eq!(replay, declined);

    // CPM approve: two commits, the success event and its journals written with the second;
    // no read: the merchant's price list in force is read in the first commit's transaction,
    // and the poll job committed with the row is retired by the second.
    let (c0, r0, i0, _) = counts();
    let cpm = json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"o-3","wallet":"alipay","auth_code":"2800001"});
    let resp = post("o-3", cpm).await;
    assert_eq!(resp.status().as_u16(), 201);
    let paid: Value = resp.json().await.expect("json");
    assert_eq!(paid["status"], "succeeded");
    // The CodePay store_no went in with the row (one statement).
    let pid = paid["id"].as_str().expect("id").to_owned();
    let row = db
        .read(move |c| store::payments::find(c, &pid))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.codepay_store_no.as_deref(), Some("S1"));
    let (c1, r1, i1, _) = counts();
    assert_eq!((c1 - c0, r1 - r0, i1 - i0), (2, 0, 0));
    let paid_id = paid["id"].as_str().expect("id").to_owned();
    let poll_states: Vec<String> = db
        .read(move |c| {
            use store::schema::jobs;
            Ok(store::on_backend!(c, |c| jobs::table
                .filter(jobs::kind.eq("payment.poll"))
                .filter(jobs::dedupe_key.eq(&paid_id))
                .select(jobs::state)
                .load(c))?)
        })
        .await
        .expect("jobs");
    assert_eq!(
        poll_states,
        vec!["done".to_owned()],
        "the poll job is retired"
    );

    // CodePay's notification of that success, which repeats it, is answered without reading
    // the payment (this process saw it paid); one for another amount is read and checked.
    let notification = |amount: i64| payments::settle::InboundNotification {
        merchant_no: row.codepay_merchant_no.clone(),
        merchant_order_no: row.upstream_order_no.clone(),
        trans_type: 1,
        order: UpstreamOrder {
            trans_no: row.trans_no.clone(),
            status: domain::TransStatus::Succeeded,
            amount: Some(
                domain::Money::new(amount, domain::Currency::from_code("USD").expect("usd"))
                    .expect("money"),
            ),
            end_time: None,
            error_code: None,
            error_msg: None,
            fee: None,
        },
        verified: true,
        scope: AccountScope::unrouted(),
    };
    let r0 = counts().1;
    let effect = notified
        .apply_notification(&notification(800))
        .await
        .expect("apply");
    assert_eq!(
        effect,
        payments::settle::NotificationEffect::Payment(
            PaymentId::parse(&row.id).expect("id"),
            domain::PaymentStatus::Succeeded
        )
    );
    assert_eq!(counts().1 - r0, 0, "a repeated success reads nothing");
    notified
        .apply_notification(&notification(801))
        .await
        .expect("apply");
    assert!(counts().1 - r0 >= 1, "another amount is read");

    // CodePay notifies the success while the create still waits for its answer: the
    // notification waits for the create to commit and then changes nothing, so the payment is
    // still two commits and no read, the notification included.
    let (tx, rx) = tokio::sync::oneshot::channel::<CpmOrder>();
    *upstream.notify_early.lock() = Some(tx);
    let early = {
        let notified = notified.clone();
        tokio::spawn(async move {
            let order = rx.await.expect("the submit reports its order");
            let n = payments::settle::InboundNotification {
                merchant_no: order.order.merchant.merchant_no.clone(),
                merchant_order_no: order.order.merchant_order_no.clone(),
                trans_type: 1,
                order: UpstreamOrder::reported(
                    domain::TransStatus::Succeeded,
                    "T-cpm".into(),
                    order.order.amount,
                ),
                verified: true,
                scope: AccountScope::unrouted(),
            };
            notified.apply_notification(&n).await.expect("apply")
        })
    };
    let (c0, r0, _, _) = counts();
    let cpm = json!({"mode":"cpm","amount":900,"currency":"USD","merchant_order_id":"o-4","wallet":"alipay","auth_code":"2800002"});
    let resp = post("o-4", cpm).await;
    assert_eq!(resp.status().as_u16(), 201);
    let paid: Value = resp.json().await.expect("json");
    assert_eq!(paid["status"], "succeeded");
    let effect = early.await.expect("notification task");
    assert_eq!(
        effect,
        payments::settle::NotificationEffect::Payment(
            PaymentId::parse(paid["id"].as_str().expect("id")).expect("id"),
            domain::PaymentStatus::Succeeded
        )
    );
    let (c1, r1, _, _) = counts();
    assert_eq!(
        (c1 - c0, r1 - r0),
        (2, 0),
        "(commits, reads) of the create and its notification"
    );
    assert_eq!(
        upstream.seen.lock().last().cloned(),
        Some((true, true, Some("in_flight".to_owned())))
    );
    let events: i64 = db
        .read(|c| {
            use store::schema::events;
            Ok(store::on_backend!(c, |c| events::table
                .filter(events::event_type.eq("payment.succeeded"))
                .count()
                .get_result(c))?)
        })
        .await
        .expect("events");
    assert_eq!(
        events, 2,
        "one success event each, however they were learned"
    );
}

on_both_backends!(create_round_trips);

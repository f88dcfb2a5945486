//! A create cut off by a crash, retried with its `Idempotency-Key`, on SQLite and PostgreSQL.
//!
//! A "dead" payfac process (its instance last beat six seconds ago) commits a create's first
//! transaction (the claim with the payment row, or the claim then the refund row) and hangs in
//! its CodePay call until the test kills it. A live process then gets the client's retry: it
//! must answer at once with `201` and the object the dead one committed (not 409
//! `idempotency_key_in_flight` after a wait, not `merchant_order_id_taken`), without calling
//! CodePay again, and replay that answer afterwards.

use async_trait::async_trait;
use diesel::prelude::*;
use domain::{Currency, PaymentId, PaymentMode, Wallet};
use payments::create::NewPayment;
use payments::idempotency::IdempotentCreate;
use payments::ports::{
    CpmOrder, Outcome, QrCreated, QrOrder, RefundOrder, Upstream, UpstreamMerchant, UpstreamOrder,
};
use payments::refunds::NewRefund;
use payments::sql_store::SqlPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::TestApp;
use tenant_api::accounts::AccountStore;
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::idempotency::SqlIdempotencyStore;
use tenant_api::idempotency::{Claim, IdempotencyStore, fingerprint};
use test_support::on_both_backends;

mod support;

const DEAD: &str = "01DEADDEADDEADDEADDEADDEAD";
const LIVE: &str = "01L1VEL1VEL1VEL1VEL1VEL1VE";

/// CodePay as the dead process saw it: each call is announced, then never answered.
#[derive(Default)]
struct Hanging {
    called: tokio::sync::Notify,
}

impl Hanging {
    async fn hang<T>(&self) -> T {
        self.called.notify_one();
        std::future::pending().await
    }
}

#[async_trait]
impl Upstream for Hanging {
    async fn create_qr(&self, _: &QrOrder) -> Outcome<QrCreated> {
        self.hang().await
    }
    async fn submit_cpm(&self, _: &CpmOrder) -> Outcome<UpstreamOrder> {
        self.hang().await
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        self.hang().await
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        self.hang().await
    }
    async fn submit_refund(&self, _: &RefundOrder) -> Outcome<Option<String>> {
        self.hang().await
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        self.hang().await
    }
}

/// CodePay as the live process sees it: approves everything, counting each order.
#[derive(Default)]
struct Approving {
    orders: AtomicUsize,
}

#[async_trait]
impl Upstream for Approving {
    async fn create_qr(&self, order: &QrOrder) -> Outcome<QrCreated> {
        self.orders.fetch_add(1, Ordering::SeqCst);
        Outcome::Success(QrCreated {
            trans_no: Some(format!("T{}", order.merchant_order_no)),
            qr_code: format!("https://qr.example/{}", order.merchant_order_no),
        })
    }
    async fn submit_cpm(&self, order: &CpmOrder) -> Outcome<UpstreamOrder> {
        self.orders.fetch_add(1, Ordering::SeqCst);
        Outcome::Success(UpstreamOrder::reported(
            domain::TransStatus::Succeeded,
            format!("T{}", order.merchant_order_no),
            order.amount,
        ))
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::unknown("not used")
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        Outcome::unknown("not used")
    }
    async fn submit_refund(&self, order: &RefundOrder) -> Outcome<Option<String>> {
        self.orders.fetch_add(1, Ordering::SeqCst);
        Outcome::Success(Some(format!("T{}", order.merchant_order_no)))
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::unknown("not used")
    }
}

/// One process's engine over `db`, claiming keys as `instance`.
fn engine(
    db: &store::Database,
    keyring: &Arc<store::sealing::MasterKeyring>,
    instance: &str,
    upstream: Arc<dyn Upstream>,
) -> Engine {
    let store = SqlPaymentStore::new(db.clone(), Duration::from_secs(60))
        .with_idempotency(keyring.clone())
        .with_claimant(instance);
    Engine::new(
        Arc::new(store),
        upstream,
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .with_idempotent_creates()
}

/// Runs `work` as the dead process would, until it reaches CodePay, and kills it there.
async fn die_at_codepay<F>(hanging: &Hanging, work: F)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio::spawn(work);
    tokio::time::timeout(Duration::from_secs(10), hanging.called.notified())
        .await
        .expect("the dead process reached CodePay");
    task.abort();
    let _ = task.await;
}

fn claim_of(db: &store::Database, key: &'static str) -> Option<(String, Option<String>)> {
    db.read_blocking(move |c| {
        use store::schema::idempotency_keys as ik;
        Ok(store::on_backend!(c, |c| ik::table
            .filter(ik::idem_key.eq(key))
            .select((ik::state, ik::claimed_by))
            .first(c)
            .optional())?)
    })
    .expect("claim row")
}

async fn a_retry_after_a_crash_answers_what_the_dead_process_committed(db: store::Database) {
    let keyring = test_support::keyring();
    db.write(|c| {
        let now = store::clock::now_ms();
        store::instances::beat(c, LIVE, now)?;
        // killed six seconds ago: its last beat
        store::instances::beat(c, DEAD, now - 6_000)
    })
    .await
    .expect("instances");

    // The live process's API.
    let approving = Arc::new(Approving::default());
    let live = engine(&db, &keyring, LIVE, approving.clone());
    let live_idem = SqlIdempotencyStore::new(db.clone())
        .with_keyring(keyring.clone())
        .with_claimant(LIVE);
    let app = TestApp::builder(db.clone())
        .state(move |p| {
            support::app_state(
                live,
                Arc::new(SqlAccountStore::new(p.db)),
                Arc::new(live_idem),
            )
        })
        .start()
        .await;
    let (merchant_id, sk) = app.merchant_with_key().await;
    let merchant = SqlAccountStore::new(db.clone())
        .merchant(&merchant_id)
        .await
        .expect("read")
        .expect("merchant");
    let scope = merchant.id.to_string();
    // The exact bytes the dead process fingerprinted: sent as they are, not re-serialized.
    let post = async |path: &str, key: &str, body: &str| {
        app.request(Method::POST, path, &sk)
            .header("Idempotency-Key", key)
            .body(body.to_owned())
            .send()
            .await
            .expect("send")
    };

    // --- A payment: the dead process committed the claim with the payment row (one
    // transaction) and died in CodePay's getqrcode.
    let body = json!({"mode":"mpm","amount":1250,"currency":"USD","merchant_order_id":"crash-1","wallet":"alipay"}).to_string();
    let hanging = Arc::new(Hanging::default());
    let dead = engine(&db, &keyring, DEAD, hanging.clone());
    let once = IdempotentCreate {
        scope: scope.clone(),
        key: "pay-key".into(),
        fingerprint: fingerprint("POST", "/v1/payments", body.as_bytes()),
    };
    let asked = NewPayment {
        mode: PaymentMode::Mpm,
        amount_minor: 1250,
        currency: Some(Currency::from_code("USD").expect("usd")),
        merchant_order_id: "crash-1".into(),
        wallet: Wallet::from_name("alipay").expect("wallet"),
        description: None,
        auth_code: None,
        expires_in: None,
        metadata: json!({}),
        location: None,
    };
    let profile = merchant.profile();
    die_at_codepay(&hanging, async move {
        dead.create_payment_once(&profile, asked, &once).await;
    })
    .await;
    assert_eq!(
        claim_of(&db, "pay-key"),
        Some(("in_flight".into(), Some(DEAD.into()))),
        "the dead process left its claim in flight"
    );

    let started = Instant::now();
    let resp = post("/v1/payments", "pay-key", &body).await;
    let (status, took) = (resp.status().as_u16(), started.elapsed());
    let paid: Value = resp.json().await.expect("json");
    assert_eq!(status, 201, "{paid}");
    assert!(took < Duration::from_secs(3), "answered at once: {took:?}");
    assert_eq!(paid["merchant_order_id"], "crash-1");
    assert_eq!(
        paid["status"], "pending",
        "the payment as it stands: {paid}"
    );
    let pid = paid["id"].as_str().expect("id").to_owned();
    let rows: i64 = db
        .read(|c| {
            use store::schema::payments as p;
            Ok(store::on_backend!(c, |c| p::table
                .filter(p::merchant_order_id.eq("crash-1"))
                .count()
                .get_result(c))?)
        })
        .await
        .expect("payments");
    assert_eq!(rows, 1, "the dead process's payment, not a second one");
    assert_eq!(
        approving.orders.load(Ordering::SeqCst),
        0,
        "no second order"
    );
    assert_eq!(
        claim_of(&db, "pay-key"),
        Some(("completed".into(), Some(LIVE.into())))
    );

    // Replayed from now on; under another key the reference is still taken.
    let resp = post("/v1/payments", "pay-key", &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_some());
    let replay: Value = resp.json().await.expect("json");
    assert_eq!(replay["id"], pid.as_str());
    let resp = post("/v1/payments", "other-key", &body).await;
    assert_eq!(resp.status().as_u16(), 409);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"]["code"], "merchant_order_id_taken");

    // --- A refund: a succeeded payment; the dead process claimed the key, committed the refund
    // row and died in CodePay's refund call.
    let cpm = json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"paid-1","wallet":"alipay","auth_code":"2800001"}).to_string();
    let resp = post("/v1/payments", "paid-key", &cpm).await;
    let paid: Value = resp.json().await.expect("json");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    let pid = PaymentId::parse(paid["id"].as_str().expect("id")).expect("pid");
    let orders = approving.orders.load(Ordering::SeqCst);

    let path = format!("/v1/payments/{pid}/refunds");
    let body = json!({"amount":300,"merchant_refund_id":"r-crash"}).to_string();
    let dead_idem = SqlIdempotencyStore::new(db.clone())
        .with_keyring(keyring.clone())
        .with_claimant(DEAD);
    let fp = fingerprint("POST", &path, body.as_bytes());
    let claimed = dead_idem
        .claim(&scope, "refund-key", &fp, chrono::Utc::now())
        .await
        .expect("claim");
    assert_eq!(claimed, Claim::Proceed);
    let hanging = Arc::new(Hanging::default());
    let dead = engine(&db, &keyring, DEAD, hanging.clone());
    let (m, p) = (merchant.id.clone(), pid.clone());
    die_at_codepay(&hanging, async move {
        let asked = NewRefund {
            amount_minor: Some(300),
            merchant_refund_id: "r-crash".into(),
            reason: None,
        };
        let _ = dead.create_refund(&m, &p, asked).await;
    })
    .await;

    let started = Instant::now();
    let resp = post(&path, "refund-key", &body).await;
    let (status, took) = (resp.status().as_u16(), started.elapsed());
    let refund: Value = resp.json().await.expect("json");
    assert_eq!(status, 201, "{refund}");
    assert!(took < Duration::from_secs(3), "answered at once: {took:?}");
    assert_eq!(refund["merchant_refund_id"], "r-crash");
    assert_eq!(refund["payment_id"], pid.as_str());
    assert_eq!(refund["amount"], 300);
    assert_eq!(
        approving.orders.load(Ordering::SeqCst),
        orders,
        "no second refund order"
    );
    let resp = post(&path, "refund-key", &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_some());
    let replay: Value = resp.json().await.expect("json");
    assert_eq!(replay["id"], refund["id"]);
}

on_both_backends!(a_retry_after_a_crash_answers_what_the_dead_process_committed);

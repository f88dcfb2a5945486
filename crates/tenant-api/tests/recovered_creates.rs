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
use domain::{ApiKeyId, Currency, MerchantId, PaymentId, PaymentMode, Secret, Wallet};
use payments::create::NewPayment;
use payments::idempotency::IdempotentCreate;
use payments::ports::{
    CpmOrder, Outcome, QrCreated, QrOrder, RefundOrder, Upstream, UpstreamMerchant, UpstreamOrder,
};
use payments::refunds::NewRefund;
use payments::sql_store::SqlPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tenant_api::accounts::{AccountStore, ApiKeyRecord, MerchantRecord, MerchantStatus};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::idempotency::SqlIdempotencyStore;
use tenant_api::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use tenant_api::idempotency::{Claim, IdempotencyStore, fingerprint};
use tenant_api::{AppState, request_id};

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
        Outcome::Success(UpstreamOrder {
            trans_no: Some(format!("T{}", order.merchant_order_no)),
            status: domain::TransStatus::Succeeded,
            amount: Some(order.amount),
            end_time: None,
            error_code: None,
            error_msg: None,
        })
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::Unknown {
            reason: "not used".into(),
        }
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        Outcome::Unknown {
            reason: "not used".into(),
        }
    }
    async fn submit_refund(&self, order: &RefundOrder) -> Outcome<Option<String>> {
        self.orders.fetch_add(1, Ordering::SeqCst);
        Outcome::Success(Some(format!("T{}", order.merchant_order_no)))
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::Unknown {
            reason: "not used".into(),
        }
    }
}

fn keyring() -> Arc<store::sealing::MasterKeyring> {
    let key = store::sealing::MasterKeyring::generate_key().expect("key");
    Arc::new(store::sealing::MasterKeyring::new(key.expose(), &[]).expect("keyring"))
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

/// A merchant and its secret key.
async fn onboard(accounts: &SqlAccountStore) -> (MerchantRecord, String) {
    let now = chrono::Utc::now();
    let merchant = MerchantRecord {
        id: MerchantId::generate(),
        name: "Shop".into(),
        status: MerchantStatus::Active,
        merchant_no: "M1".into(),
        store_no: None,
        default_currency: Currency::from_code("USD").expect("usd"),
        allowed_wallets: vec![],
        max_amount_minor: None,
        contact_email: None,
        created_at: now,
        updated_at: now,
    };
    accounts.insert_merchant(&merchant).await.expect("merchant");
    let sk = keys::generate_secret(keys::MERCHANT_PREFIX);
    accounts
        .insert_api_key(&ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: Some(merchant.id.clone()),
            secret_hash: keys::hash_secret(&sk),
            prefix: keys::display_prefix(&sk),
            label: None,
            scopes: tenant_api::auth::jwt::ALL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            created_at: now,
            revoked_at: None,
            expires_at: None,
        })
        .await
        .expect("key");
    (merchant, sk)
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

async fn retries(db: store::Database) {
    use actix_web::test;
    let keyring = keyring();
    let accounts = Arc::new(SqlAccountStore::new(db.clone()));
    let (merchant, sk) = onboard(&accounts).await;
    let scope = merchant.id.to_string();
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
    let state = actix_web::web::Data::new(AppState {
        engine: engine(&db, &keyring, LIVE, approving.clone()),
        accounts: accounts.clone(),
        idempotency: Arc::new(
            SqlIdempotencyStore::new(db.clone())
                .with_keyring(keyring.clone())
                .with_claimant(LIVE),
        ),
        tokens: Arc::new(
            TokenIssuer::new(vec![(
                "k1".into(),
                Secret::new("0123456789abcdef0123456789abcdef"),
            )])
            .expect("issuer"),
        ),
        rate_limiter: Arc::new(LocalRateLimiter::new(10_000)),
        notifications: None,
        sandbox: None,
    });
    let app = test::init_service(
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .configure(move |cfg| tenant_api::configure(cfg, state)),
    )
    .await;
    let post = |path: &str, key: &str, body: &str| {
        test::TestRequest::post()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {sk}")))
            .insert_header(("Idempotency-Key", key.to_owned()))
            .set_payload(body.to_owned())
            .to_request()
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
    let resp = test::call_service(&app, post("/v1/payments", "pay-key", &body)).await;
    let (status, took) = (resp.status().as_u16(), started.elapsed());
    let paid: Value = test::read_body_json(resp).await;
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
    let resp = test::call_service(&app, post("/v1/payments", "pay-key", &body)).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_some());
    let replay: Value = test::read_body_json(resp).await;
    assert_eq!(replay["id"], pid.as_str());
    let resp = test::call_service(&app, post("/v1/payments", "other-key", &body)).await;
    assert_eq!(resp.status().as_u16(), 409);
    let err: Value = test::read_body_json(resp).await;
    assert_eq!(err["error"]["code"], "merchant_order_id_taken");

    // --- A refund: a succeeded payment; the dead process claimed the key, committed the refund
    // row and died in CodePay's refund call.
    let cpm = json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"paid-1","wallet":"alipay","auth_code":"2800001"}).to_string();
    let resp = test::call_service(&app, post("/v1/payments", "paid-key", &cpm)).await;
    let paid: Value = test::read_body_json(resp).await;
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
    let resp = test::call_service(&app, post(&path, "refund-key", &body)).await;
    let (status, took) = (resp.status().as_u16(), started.elapsed());
    let refund: Value = test::read_body_json(resp).await;
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
    let resp = test::call_service(&app, post(&path, "refund-key", &body)).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_some());
    let replay: Value = test::read_body_json(resp).await;
    assert_eq!(replay["id"], refund["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_retry_after_a_crash_answers_what_the_dead_process_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let db = store::Database::connect(&url, 4).await.expect("db");
    db.migrate().await.expect("migrate");
    retries(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_retry_after_a_crash_answers_what_the_dead_process_committed() {
    let admin = std::env::var("PAYFAC_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first")
    });
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = diesel::PgConnection::establish(&admin).expect("admin");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create db");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    let db = store::Database::connect(url.as_str(), 4).await.expect("db");
    db.migrate().await.expect("migrate");
    retries(db).await;
}

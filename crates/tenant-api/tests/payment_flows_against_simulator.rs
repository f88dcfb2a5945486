//! End to end through real HTTP: payfac's app on 127.0.0.1:0, the real CodePay simulator beside
//! it over HTTP (signed requests, signed notifications to `/callbacks/codepay`), the real
//! gateway client. Payments are kept in the engine's in-memory store (`payments::testing`), so
//! these flows check the engine and the API against CodePay's behaviour without SQL; the
//! merchant and keys live in SQLite.

use codepay_sim::{SimConfig, Simulator};
use domain::{ApiKeyId, Secret};
use gateway_client::{GatewayClient, GatewayConfig, PrivateKey, PublicKey};
use payments::codepay::CodePayUpstream;
use payments::intake::CodePayIntake;
use payments::jobs::{JobOutcome, handle};
use payments::testing::memory::MemoryPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tenant_api::accounts::{AccountStore, ApiKeyRecord};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use tenant_api::idempotency::MemoryIdempotencyStore;
use tenant_api::{AppState, request_id};

struct Harness {
    base: String,
    sim_base: String,
    op: String,
    http: reqwest::Client,
    store: Arc<MemoryPaymentStore>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let sim = Simulator::new(SimConfig {
        time_scale: 50,
        ..SimConfig::default()
    })
    .expect("sim");
    let app_key = PrivateKey::generate_2048().expect("key");
    let app_id = sim
        .register_app(None, &app_key.public_key().to_pem())
        .expect("app");
    let sim_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let sim_base = format!(
        "http://{}/sandbox/codepay",
        sim_listener.local_addr().expect("addr")
    );
    let served = sim.clone();
    let server = actix_web::HttpServer::new(move || {
        let s = served.clone();
        actix_web::App::new()
            .service(actix_web::web::scope("/sandbox/codepay").configure(move |c| s.configure(c)))
    })
    .workers(1)
    .listen(sim_listener)
    .expect("listen")
    .run();
    tokio::spawn(server);

    let gateway_key = PublicKey::from_pem_or_base64(&sim.gateway_public_key_pem()).expect("gw key");
    let client = GatewayClient::new(
        GatewayConfig::new(sim_base.clone(), app_id, app_key, gateway_key.clone()),
        None,
    )
    .expect("client");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let store = Arc::new(MemoryPaymentStore::new());
    let engine = Engine::new(
        store.clone(),
        Arc::new(CodePayUpstream::new(
            client,
            Some(format!("{base}/callbacks/codepay")),
        )),
        EngineConfig {
            public_url: base.clone(),
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store::Database::connect(
        &format!("sqlite://{}", dir.path().join("p.db").display()),
        4,
    )
    .await
    .expect("db");
    db.migrate().await.expect("migrate");
    let accounts = Arc::new(SqlAccountStore::new(db));
    let op = keys::generate_secret(keys::OPERATOR_PREFIX);
    accounts
        .insert_api_key(&ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: None,
            secret_hash: keys::hash_secret(&op),
            prefix: keys::display_prefix(&op),
            label: None,
            scopes: vec![],
            created_at: chrono::Utc::now(),
            revoked_at: None,
            expires_at: None,
        })
        .await
        .expect("op key");
    let state = actix_web::web::Data::new(AppState {
        engine: engine.clone(),
        accounts,
        idempotency: Arc::new(MemoryIdempotencyStore::default()),
        tokens: Arc::new(
            TokenIssuer::new(vec![(
                "k1".into(),
                Secret::new("0123456789abcdef0123456789abcdef"),
            )])
            .expect("issuer"),
        ),
        rate_limiter: Arc::new(LocalRateLimiter::new(10_000)),
        notifications: Some(Arc::new(CodePayIntake::new(gateway_key, None))),
        sandbox: None,
    });
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(2)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    Harness {
        base,
        sim_base,
        op,
        http: reqwest::Client::new(),
        store,
        engine,
        _dir: dir,
    }
}

impl Harness {
    async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, key: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }

    async fn sim(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.sim_base))
            .json(&body)
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("json")
    }

    /// A merchant registered with the simulator, and its secret key.
    async fn merchant(&self) -> String {
        let m = self.sim("/sim/merchants", json!({})).await;
        let no = m["merchant_no"].as_str().expect("merchant_no").to_owned();
        let (s, mer) = self
            .post(
                "/v1/merchants",
                &self.op,
                json!({"name":"Shop","codepay":{"merchant_no":no}}),
            )
            .await;
        assert_eq!(s, 201, "{mer}");
        let id = mer["id"].as_str().expect("id");
        let (_, k) = self
            .post(&format!("/v1/merchants/{id}/api-keys"), &self.op, json!({}))
            .await;
        k["secret"].as_str().expect("secret").to_owned()
    }

    /// Runs every job due, as the server's runner would, until `done` or a timeout.
    async fn run_jobs_until(&self, mut done: impl AsyncFnMut() -> bool) {
        for _ in 0..100 {
            if done().await {
                return;
            }
            for job in self.store.jobs() {
                if job.run_at <= chrono::Utc::now() {
                    let _: JobOutcome = handle(&self.engine, job.kind.as_str(), &job.subject).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("jobs did not settle in time");
    }
}

async fn wait_status(h: &Harness, sk: &str, id: &str, want: &str) -> Value {
    for _ in 0..100 {
        let p = h.get(&format!("/v1/payments/{id}"), sk).await;
        if p["status"] == want {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("payment {id} never became {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mpm_paid_in_the_simulator_succeeds_by_notification_and_refunds_settle() {
    let h = start().await;
    let sk = h.merchant().await;
    let (s, p) = h.post("/v1/payments", &sk, json!({"mode":"mpm","amount":1250,"currency":"USD","merchant_order_id":"m-1","wallet":"alipay"})).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["status"], "pending");
    let qr = p["qr_code"].as_str().expect("qr").to_owned();
    assert!(
        p["qr_code_svg_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/qr.svg"))
    );
    let svg = h
        .http
        .get(p["qr_code_svg_url"].as_str().unwrap_or_default())
        .bearer_auth(&sk)
        .send()
        .await
        .expect("svg")
        .text()
        .await
        .expect("text");
    assert!(svg.contains("<svg"));
    h.sim("/sim/mpm/pay", json!({"qr_code": qr})).await;
    let id = p["id"].as_str().expect("id");
    let paid = wait_status(&h, &sk, id, "succeeded").await;
    assert!(paid["paid_at"].is_string());
    let events: Vec<_> = h
        .store
        .events()
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        events,
        vec!["payment.succeeded"],
        "one event, from the notification"
    );

    // Partial + multiple refunds, over-refund refused, then settled by order.refund.query.
    let (s1, r1) = h
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            json!({"amount":500,"merchant_refund_id":"r-1"}),
        )
        .await;
    let (s2, _) = h
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            json!({"amount":700,"merchant_refund_id":"r-2"}),
        )
        .await;
    let (s3, over) = h
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            json!({"amount":100,"merchant_refund_id":"r-3"}),
        )
        .await;
    assert_eq!((s1, s2, s3), (201, 201, 422), "{r1} {over}");
    assert_eq!(over["error"]["code"], "refund_exceeds_captured");
    let (h2, sk2, id2) = (&h, sk.clone(), id.to_owned());
    h.run_jobs_until(async || {
        h2.get(&format!("/v1/payments/{id2}"), &sk2).await["amount_refunded"] == 1200
    })
    .await;
    let list = h.get(&format!("/v1/payments/{id}/refunds"), &sk).await;
    assert!(
        list["data"]
            .as_array()
            .is_some_and(|d| d.len() == 2 && d.iter().all(|r| r["status"] == "succeeded"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cpm_approve_decline_and_pin_settle() {
    let h = start().await;
    let sk = h.merchant().await;
    let code = |scenario: &'static str| {
        let h = &h;
        async move {
            h.sim("/sim/auth-codes", json!({"scenario": scenario}))
                .await["auth_code"]
                .as_str()
                .expect("code")
                .to_owned()
        }
    };
    let body = |order: &str, auth: String| json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":order,"wallet":"alipay","auth_code":auth});
    let (_, ok) = h
        .post("/v1/payments", &sk, body("c-1", code("approve").await))
        .await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let (_, no) = h
        .post("/v1/payments", &sk, body("c-2", code("decline").await))
        .await;
    assert_eq!(no["status"], "failed", "{no}");
    assert_eq!(no["failure_code"], "payment_declined");
    let (_, pin) = h
        .post("/v1/payments?wait=20", &sk, body("c-3", code("pin").await))
        .await;
    assert_eq!(
        pin["status"], "succeeded",
        "pin settles within ?wait: {pin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_notification_is_rejected() {
    let h = start().await;
    let r = h.http.post(format!("{}/callbacks/codepay", h.base)).json(&json!({"method":"payment.result.notify","merchant_order_no":"P1","trans_status":2,"sign":"AAAA","sign_type":"RSA2"})).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_ne!(r.text().await.unwrap_or_default(), "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_merchants_ids_are_404_everywhere_and_leak_nothing() {
    let h = start().await;
    let (sk_a, sk_b) = (h.merchant().await, h.merchant().await);
    let auth = h
        .sim("/sim/auth-codes", json!({"scenario": "approve"}))
        .await["auth_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let (_, paid) = h.post("/v1/payments", &sk_a, json!({"mode":"cpm","amount":900,"merchant_order_id":"secret-order-A","wallet":"alipay","auth_code":auth})).await;
    let (_, mpm) = h
        .post(
            "/v1/payments",
            &sk_a,
            json!({"mode":"mpm","amount":900,"merchant_order_id":"secret-qr-A","wallet":"alipay"}),
        )
        .await;
    let pay = paid["id"].as_str().expect("id").to_owned();
    let qr_pay = mpm["id"].as_str().expect("id").to_owned();
    let (_, refund) = h
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            &sk_a,
            json!({"amount":100,"merchant_refund_id":"secret-ref-A"}),
        )
        .await;
    let refund_id = refund["id"].as_str().expect("id").to_owned();
    let gets = [
        format!("/v1/payments/{pay}"),
        format!("/v1/payments/{qr_pay}/qr.svg"),
        format!("/v1/payments/{qr_pay}/qr.png"),
        format!("/v1/payments/{pay}/refunds"),
        format!("/v1/refunds/{refund_id}"),
    ];
    for path in gets {
        let r = h
            .http
            .get(format!("{}{path}", h.base))
            .bearer_auth(&sk_b)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 404, "{path}");
        let text = r.text().await.unwrap_or_default();
        assert!(!text.contains("secret-"), "{path} leaked: {text}");
    }
    let posts = [
        (format!("/v1/payments/{qr_pay}/cancel"), json!({})),
        (
            format!("/v1/payments/{pay}/refunds"),
            json!({"amount":1,"merchant_refund_id":"b-1"}),
        ),
    ];
    for (path, body) in posts {
        let (status, v) = h.post(&path, &sk_b, body).await;
        assert_eq!(status, 404, "{path}");
        assert!(!v.to_string().contains("secret-"));
    }
    let list = h.get("/v1/payments", &sk_b).await;
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(0),
        "B sees none of A's payments"
    );
    let filtered = h
        .get("/v1/payments?merchant_order_id=secret-order-A", &sk_b)
        .await;
    assert_eq!(filtered["data"].as_array().map(Vec::len), Some(0));
    // A's own view is intact.
    assert_eq!(
        h.get(&format!("/v1/payments/{pay}"), &sk_a).await["merchant_order_id"],
        "secret-order-A"
    );
}

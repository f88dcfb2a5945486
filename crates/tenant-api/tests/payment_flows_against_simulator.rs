//! End to end through real HTTP: payfac's app on 127.0.0.1:0, the real CodePay simulator beside
//! it over HTTP (signed requests, signed notifications to `/callbacks/codepay`), the real
//! gateway client. Payments are kept in the engine's in-memory store (`payments::testing`), so
//! these flows check the engine and the API against CodePay's behaviour without SQL; the
//! merchant and keys live in SQLite.

use payments::codepay::CodePayUpstream;
use payments::intake::CodePayIntake;
use payments::jobs::{JobOutcome, handle};
use payments::testing::memory::MemoryPaymentStore;
use payments::{Engine, SystemClock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{TestApp, sim_merchant, sim_post};
use tenant_api::AppState;
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::idempotency::MemoryIdempotencyStore;
use test_support::SimServer;

mod support;

/// The app with payments in the engine's in-memory store, CodePay the simulator over HTTP.
struct Harness {
    app: TestApp,
    sim: SimServer,
    op: String,
    store: Arc<MemoryPaymentStore>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Harness {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn start() -> Harness {
    let sim = SimServer::start(50);
    let store = Arc::new(MemoryPaymentStore::new());
    let payments = store.clone();
    // Merchants and keys live in SQLite.
    let (db, dir) = test_support::fresh_sqlite().await;
    let app = TestApp::builder(db)
        .simulator(&sim)
        .state(move |p| {
            let callback = format!("{}/callbacks/codepay", p.base);
            let engine = Engine::new(
                payments,
                Arc::new(CodePayUpstream::new(p.gateway, Some(callback))),
                p.engine,
                Arc::new(SystemClock),
            );
            AppState {
                notifications: Some(Arc::new(CodePayIntake::new(p.gateway_public_key, None))),
                ..support::app_state(
                    engine,
                    Arc::new(SqlAccountStore::new(p.db)),
                    Arc::new(MemoryIdempotencyStore::default()),
                )
            }
        })
        .start()
        .await;
    let op = app.operator_key().await;
    Harness {
        app,
        sim,
        op,
        store,
        _dir: dir,
    }
}

impl Harness {
    /// `POST` to the simulator's control API.
    async fn sim(&self, path: &str, body: Value) -> Value {
        sim_post(&self.sim, path, body).await
    }

    /// A merchant registered with the simulator, and its secret key.
    async fn merchant(&self) -> String {
        let no = sim_merchant(&self.sim, json!({})).await;
        self.app.onboard(&self.op, &no).await.1
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
    let (s, p) = h.post("/v1/payments", &sk, None, json!({"mode":"mpm","amount":1250,"currency":"USD","merchant_order_id":"m-1","wallet":"alipay"})).await;
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
            None,
            json!({"amount":500,"merchant_refund_id":"r-1"}),
        )
        .await;
    let (s2, _) = h
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            None,
            json!({"amount":700,"merchant_refund_id":"r-2"}),
        )
        .await;
    let (s3, over) = h
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            None,
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
        .post(
            "/v1/payments",
            &sk,
            None,
            body("c-1", code("approve").await),
        )
        .await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let (_, no) = h
        .post(
            "/v1/payments",
            &sk,
            None,
            body("c-2", code("decline").await),
        )
        .await;
    assert_eq!(no["status"], "failed", "{no}");
    assert_eq!(no["failure_code"], "payment_declined");
    let (_, pin) = h
        .post(
            "/v1/payments?wait=20",
            &sk,
            None,
            body("c-3", code("pin").await),
        )
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
    let (_, paid) = h.post("/v1/payments", &sk_a, None, json!({"mode":"cpm","amount":900,"merchant_order_id":"secret-order-A","wallet":"alipay","auth_code":auth})).await;
    let (_, mpm) = h
        .post(
            "/v1/payments",
            &sk_a,
            None,
            json!({"mode":"mpm","amount":900,"merchant_order_id":"secret-qr-A","wallet":"alipay"}),
        )
        .await;
    let pay = paid["id"].as_str().expect("id").to_owned();
    let qr_pay = mpm["id"].as_str().expect("id").to_owned();
    let (_, refund) = h
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            &sk_a,
            None,
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
        let (status, v) = h.post(&path, &sk_b, None, body).await;
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

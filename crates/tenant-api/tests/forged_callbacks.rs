//! Issue 12 "hold under abuse", forged callbacks: a flood of rejected `/callbacks/codepay`
//! bodies adds a bounded sample of rows, and one source is rate-limited.

mod support;

use diesel::prelude::*;
use std::sync::Arc;
use store::schema::upstream_notifications as un;
use support::TestApp;
use tenant_api::AppState;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::auth::rate_limit::LocalRateLimiter;
use tenant_api::routes::public::{REJECTED_SAMPLE_BYTES, REJECTED_SAMPLE_PER_MINUTE};

fn forged(i: usize) -> String {
    format!(
        r#"{{"method":"payment.result.notify","merchant_order_no":"P{i}","trans_status":2,"sign":"AAAA","sign_type":"RSA2","junk":"{}"}}"#,
        "x".repeat(8 * 1024)
    )
}

async fn rows(db: &store::Database) -> Vec<(bool, usize)> {
    db.read(|c| {
        let rows: Vec<(bool, String)> = store::on_backend!(c, |c| un::table
            .select((un::verified, un::raw_body))
            .load(c))?;
        Ok(rows.into_iter().map(|(v, b)| (v, b.len())).collect())
    })
    .await
    .expect("rows")
}

/// POSTs forged notification `i` to the app's CodePay callback.
async fn post_forged(app: &TestApp, i: usize) -> reqwest::Response {
    app.http
        .post(format!("{}/callbacks/codepay", app.base))
        .header("content-type", "application/json")
        .body(forged(i))
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_forged_callbacks_add_a_bounded_sample() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db.clone()).await;
    for i in 0..500 {
        let r = post_forged(&app, i).await;
        assert_eq!(r.status().as_u16(), 400, "forged {i}");
    }
    let kept = rows(&db).await;
    assert!(
        kept.len() <= REJECTED_SAMPLE_PER_MINUTE as usize,
        "{} rows kept of 500 forged callbacks",
        kept.len()
    );
    assert!(
        kept.iter()
            .all(|(verified, len)| !verified && *len <= REJECTED_SAMPLE_BYTES)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_source_is_rate_limited() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::builder(db.clone())
        .state(|p| {
            let registry = prometheus::Registry::new();
            AppState {
                rate_limiter: Arc::new(LocalRateLimiter::new(5)),
                ..app_state_from(Wiring {
                    db: p.db,
                    coordinator: Arc::new(store::InProcessCoordinator::new()),
                    gateway: p.gateway,
                    gateway_public_key: p.gateway_public_key,
                    default_gateway_account: None,
                    gateway_metrics: None,
                    engine: p.engine,
                    token_keys: support::token_keys(),
                    rate_limit_per_sec: 5,
                    sandbox: None,
                    keyring: p.keyring,
                    registry,
                    claimant: None,
                })
                .expect("state")
            }
        })
        .start()
        .await;
    let mut limited = 0;
    for i in 0..50 {
        let r = post_forged(&app, i).await;
        if r.status().as_u16() == 429 {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "50 rapid callbacks from one address, none limited"
    );
    app.stop().await;
}

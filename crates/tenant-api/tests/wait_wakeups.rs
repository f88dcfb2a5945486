//! Issue 12 "hold under abuse", `?wait=`: a waiting create is woken by the commit that settles
//! its payment, not by polling the database.
//!
//! The proof does not time anything: the payment is settled *silently* (a write through a
//! database handle without the commit hook, as no real settlement is), and the waiter must not
//! notice within 1.5 s, which a 200 ms poll would; then a commit through the hooked handle wakes
//! it. The fallback re-read is set to a minute so that it cannot be what answers.

mod support;

use diesel::prelude::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use store::coord::{EVENTS_WAKE_CHANNEL, commit_waker};
use store::schema::payments as pm;
use support::{TestApp, sim_merchant};
use tenant_api::AppState;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::wakeups::CommitWakeups;
use test_support::SimServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_create_is_woken_by_the_commit_not_by_polling() {
    let sim = SimServer::start(50);
    let (silent, _dir) = test_support::fresh_sqlite().await;
    let coordinator: Arc<dyn store::Coordinator> = Arc::new(store::InProcessCoordinator::new());
    let hooked = silent
        .clone()
        .with_event_hook(commit_waker(coordinator.clone(), EVENTS_WAKE_CHANNEL));
    let coord = coordinator.clone();
    let app = TestApp::builder(hooked.clone())
        .simulator(&sim)
        .state(move |p| AppState {
            commits: Some(CommitWakeups::start(coord.clone(), Duration::from_secs(60))),
            ..app_state_from(Wiring {
                db: p.db,
                coordinator: coord,
                gateway: p.gateway,
                gateway_public_key: p.gateway_public_key,
                default_gateway_account: None,
                gateway_metrics: None,
                engine: p.engine,
                token_keys: support::token_keys(),
                rate_limit_per_sec: support::RATE_LIMIT,
                sandbox: None,
                keyring: p.keyring,
                registry: prometheus::Registry::new(),
                claimant: None,
            })
            .expect("state")
        })
        .start()
        .await;
    let op = app.operator_key().await;
    let (_, sk) = app.onboard(&op, &sim_merchant(&sim, json!({})).await).await;

    let waiting = tokio::spawn(
        app.request(reqwest::Method::POST, "/v1/payments?wait=30", &sk)
            .json(&json!({"mode":"mpm","amount":900,"currency":"USD","merchant_order_id":"wait-1","wallet":"alipay"}))
            .send(),
    );
    let (id, merchant) = loop {
        let row = silent
            .read(|c| {
                // Once the QR is stored: the create's own last commit is behind us, so it
                // cannot write the payment back over the silent settlement below.
                Ok(store::on_backend!(c, |c| pm::table
                    .filter(pm::merchant_order_id.eq("wait-1"))
                    .filter(pm::qr_code.is_not_null())
                    .select((pm::id, pm::merchant_id))
                    .first::<(String, String)>(c)
                    .optional())?)
            })
            .await
            .expect("read");
        if let Some(row) = row {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // settled without a commit hook: only a poll could see it
    let pid = id.clone();
    silent
        .write(move |c| {
            store::on_backend!(c, |c| diesel::update(pm::table.find(&pid))
                .set(pm::status.eq("succeeded"))
                .execute(c))?;
            Ok(())
        })
        .await
        .expect("silent settle");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        !waiting.is_finished(),
        "the waiter answered without a wake-up: it polls the database"
    );

    // a commit that writes the payment's event wakes it
    let event = store::events::Event {
        id: domain::EventId::generate().into_string(),
        merchant_id: merchant,
        event_type: "payment.succeeded".into(),
        object_id: id.clone(),
        payload: "{}".into(),
        created_at: store::clock::now_ms(),
    };
    hooked
        .write(move |c| store::events::insert(c, &event))
        .await
        .expect("event commit");
    let answer = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("woken well before the 60 s fallback")
        .expect("task")
        .expect("response");
    assert_eq!(answer.status().as_u16(), 201);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(id.as_str()), Some("succeeded")),
        "{body}"
    );
    app.stop().await;
}

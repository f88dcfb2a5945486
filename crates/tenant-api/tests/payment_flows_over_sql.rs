//! End to end over the real storage: payfac's app on 127.0.0.1:0 with payments, refunds,
//! events, jobs and idempotency in SQLite, or in PostgreSQL (fresh database per test) with rate
//! limits on Redis; the real CodePay simulator beside it over HTTP; jobs run as the server's
//! runner runs them (claim with a lease, handle, complete or retry).

use payments::EngineConfig;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::{TestApp, auth_code, sim_get, sim_merchant, sim_send};
use test_support::SimServer;

mod support;

const KINDS: [&str; 3] = ["payment.poll", "payment.expire", "refund.poll"];

/// One payfac process over `db`; several may be started over the same database (a restart).
async fn start_payfac(
    db: store::Database,
    sim: &SimServer,
    coord: Arc<dyn store::Coordinator>,
) -> TestApp {
    TestApp::over_simulator(db, sim, coord)
        // Short, so the "CodePay answered after commit but payfac never heard" case is quick.
        .gateway_timeout(Duration::from_secs(2))
        .engine(EngineConfig {
            poll_interval: Duration::from_millis(200),
            cpm_deadline: Duration::from_secs(3),
            ..EngineConfig::default()
        })
        .start()
        .await
}

async fn flows(db: store::Database, coord: Arc<dyn store::Coordinator>) {
    let sim = SimServer::start(50);
    let p = start_payfac(db.clone(), &sim, coord.clone()).await;
    let op = p.operator_key().await;
    let (_, sk) = p.onboard(&op, &sim_merchant(&sim, json!({})).await).await;

    // 50 concurrent identical Idempotency-Key requests: one CodePay order, 50 identical answers.
    let code = auth_code(&sim, "approve").await;
    let body = json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"idem-1","wallet":"alipay","auth_code":code});
    let answers = futures::future::join_all(
        (0..50).map(|_| p.post("/v1/payments", &sk, Some("same-key"), body.clone())),
    )
    .await;
    assert!(
        answers.iter().all(|a| a.0 == 201 && a.1 == answers[0].1),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert_eq!(answers[0].1["status"], "succeeded");
    let orders = sim_get(&sim, "/sim/orders").await;
    let n = orders["orders"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(n, 1, "one CodePay order: {orders}");

    // Refunds racing each other never exceed the capture.
    let pay_id = answers[0].1["id"].as_str().expect("id").to_owned();
    let refunds = format!("/v1/payments/{pay_id}/refunds");
    let racers = futures::future::join_all((0..6).map(|i| {
        p.post(
            &refunds,
            &sk,
            None,
            json!({"amount":300,"merchant_refund_id":format!("race-{i}")}),
        )
    }))
    .await;
    let ok = racers.iter().filter(|r| r.0 == 201).count();
    assert_eq!(
        ok,
        2,
        "800 fits two refunds of 300: {:?}",
        racers
            .iter()
            .map(|r| (r.0, r.1["error"]["code"].clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        racers
            .iter()
            .all(|r| r.0 == 201 || r.1["error"]["code"] == "refund_exceeds_captured" || r.0 == 409)
    );

    // never_settles → revoked after the deadline: shortened by running the poll past it.
    let code = auth_code(&sim, "never_settles").await;
    let (_, ns) = p.post("/v1/payments", &sk, None, json!({"mode":"cpm","amount":100,"merchant_order_id":"ns-1","wallet":"alipay","auth_code":code})).await;
    assert_eq!(ns["status"], "processing", "{ns}");

    // A restart between "CodePay answered" and "payfac replied": CodePay commits the charge but
    // its answer comes too late (timeout); a NEW payfac process over the same database settles it by polling.
    let fault = sim_send(
        &sim,
        "/sim/faults",
        json!({"method":"bscanc.pay.submit","kind":"timeout","delay_ms":4000,"count":1}),
    )
    .await;
    assert!(fault.status().is_success(), "{:?}", fault.text().await);
    // ...and its notifications never reach this process either, so only the poller can settle it.
    let fault = sim_send(
        &sim,
        "/sim/faults",
        json!({"method": codepay_sim::NOTIFY_METHOD, "kind":"drop","count":50}),
    )
    .await;
    assert!(fault.status().is_success(), "{:?}", fault.text().await);
    let code = auth_code(&sim, "approve").await;
    let (_, lost) = p.post("/v1/payments", &sk, None, json!({"mode":"cpm","amount":250,"merchant_order_id":"crash-1","wallet":"alipay","auth_code":code})).await;
    assert_eq!(lost["status"], "processing", "{lost}");
    let lost_id = lost["id"].as_str().expect("id").to_owned();
    p.stop().await;
    let p2 = start_payfac(db, &sim, coord).await;
    p2.run_jobs_until(&KINDS, &format!("/v1/payments/{lost_id}"), &sk, |v| {
        v["status"] == "succeeded"
    })
    .await;
    assert_eq!(
        p2.get(&format!("/v1/payments/{lost_id}"), &sk).await["status"],
        "succeeded"
    );
    assert_eq!(
        p2.events_of(&lost_id).await,
        vec!["payment.processing", "payment.succeeded"]
    );
    let orders = sim_get(&sim, "/sim/orders").await;
    let crash_orders = orders.to_string().matches("crash").count();
    assert!(crash_orders <= 1, "never charged twice");

    // never_settles: past the (test-shortened, 3 s) deadline the poller calls order.revoker and
    // confirms; the payment ends canceled, announced once.
    let ns_id = ns["id"].as_str().expect("id").to_owned();
    p2.run_jobs_until(&KINDS, &format!("/v1/payments/{ns_id}"), &sk, |v| {
        v["status"] == "canceled"
    })
    .await;
    let ns = p2.get(&format!("/v1/payments/{ns_id}"), &sk).await;
    assert_eq!(
        (ns["status"].as_str(), ns["failure_code"].as_str()),
        (Some("canceled"), Some("reversed_unsettled")),
        "{ns}"
    );
    assert_eq!(
        p2.events_of(&ns_id).await,
        vec!["payment.processing", "payment.canceled"]
    );

    // The refunds settle by order.refund.query through the job runner.
    p2.run_jobs_until(&KINDS, &format!("/v1/payments/{pay_id}"), &sk, |v| {
        v["amount_refunded"] == 600
    })
    .await;
    assert_eq!(
        p2.get(&format!("/v1/payments/{pay_id}"), &sk).await["amount_refunded"],
        600
    );
}

on_both_stacks!(flows);

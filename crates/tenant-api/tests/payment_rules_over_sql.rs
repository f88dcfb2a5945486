//! Payment rules over real storage and the real CodePay simulator over HTTP: the store number kept on
//! the payment, MPM expiry closed upstream, the late-success rule, sealed idempotent replays,
//! transition metrics, and the self-rescheduling `payment.reconcile` job.

use diesel::prelude::*;
use domain::PaymentId;
use payments::EngineConfig;
use payments::jobs::JobOutcome;
use payments::jobs::{KINDS as PAYMENT_JOB_KINDS, seed_jobs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{TestApp, sim_get, sim_post, sim_send};
use test_support::SimServer;

mod support;

/// Short polls; very short QR lifetimes allowed (the sandbox may ask for them), so expiry is
/// testable; reconciliation examines payments of any age.
fn engine() -> EngineConfig {
    EngineConfig {
        poll_interval: Duration::from_millis(200),
        min_mpm_expiry: Duration::from_secs(1),
        reconcile_interval: Duration::from_secs(60),
        reconcile_min_age: Duration::ZERO,
        ..EngineConfig::default()
    }
}

/// The simulator's order for `merchant_order_no` (`Null` when it has none).
async fn sim_order(sim: &SimServer, merchant_order_no: &str) -> Value {
    let v = sim_get(sim, "/sim/orders").await;
    v["orders"]
        .as_array()
        .and_then(|o| {
            o.iter()
                .find(|o| o["merchant_order_no"] == merchant_order_no)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

async fn upstream_no(p: &TestApp, id: &str) -> String {
    let id = PaymentId::parse(id).expect("id");
    let pay = p
        .engine
        .store()
        .payment(&id)
        .await
        .expect("read")
        .expect("row");
    pay.merchant_order_no
}

async fn payment_rules(db: store::Database, coord: Arc<dyn store::Coordinator>) {
    // The simulator at real speed (its default).
    let sim = SimServer::start(1);
    let p = TestApp::over_simulator(db, &sim, coord)
        .engine(engine())
        .start()
        .await;
    let op = p.operator_key().await;

    // A CodePay merchant with a store: the store number must survive every re-read.
    let m = sim_post(&sim, "/sim/merchants", json!({"store_no": "S-7"})).await;
    let (st, mer) = p
        .post(
            "/v1/merchants",
            &op,
            None,
            json!({"name":"Shop","codepay":{"merchant_no":m["merchant_no"],"store_no":"S-7"}}),
        )
        .await;
    assert_eq!(st, 201, "{mer}");
    let mid = mer["id"].as_str().expect("id").to_owned();

    // An API key created under an Idempotency-Key: the replay shows the secret again, the
    // stored record does not hold it readable.
    let path = format!("/v1/merchants/{mid}/api-keys");
    let (st, k) = p.post(&path, &op, Some("key-once"), json!({})).await;
    assert_eq!(st, 201, "{k}");
    let sk = k["secret"].as_str().expect("secret").to_owned();
    let (st, again) = p.post(&path, &op, Some("key-once"), json!({})).await;
    assert_eq!((st, &again), (201, &k));
    let bodies: Vec<Option<String>> =
        p.db.read(|c| {
            use store::schema::idempotency_keys as ik;
            Ok(store::on_backend!(c, |c| ik::table
                .select(ik::response_body)
                .load::<Option<String>>(c))?)
        })
        .await
        .expect("bodies");
    assert!(!bodies.is_empty());
    for b in bodies.iter().flatten() {
        assert!(!b.contains(&sk), "secret stored in plaintext");
        assert!(!b.contains("secret"), "stored body is not sealed: {b}");
    }

    // MPM with a 1 s expiry: unpaid → payfac closes it upstream → canceled, announced once.
    let (st, a) = p
        .post("/v1/payments", &sk, None, json!({"mode":"mpm","amount":1200,"currency":"USD","merchant_order_id":"exp-1","wallet":"alipay","expires_in":1}))
        .await;
    assert_eq!((st, a["status"].as_str()), (201, Some("pending")), "{a}");
    let a_id = a["id"].as_str().expect("id").to_owned();
    let stored = p
        .engine
        .store()
        .payment(&PaymentId::parse(&a_id).expect("id"))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(stored.upstream_store_no.as_deref(), Some("S-7"));
    assert_eq!(
        sim_order(&sim, &stored.merchant_order_no).await["store_no"],
        "S-7"
    );
    let before = p.counter("payfac_payment_transitions_total", "pending", "canceled");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.run_jobs_until(
        &PAYMENT_JOB_KINDS,
        &format!("/v1/payments/{a_id}"),
        &sk,
        |v| v["status"] == "canceled",
    )
    .await;
    let a = p.get(&format!("/v1/payments/{a_id}"), &sk).await;
    assert_eq!(
        (a["status"].as_str(), a["failure_code"].as_str()),
        (Some("canceled"), Some("expired")),
        "{a}"
    );
    let upstream = sim_order(&sim, &stored.merchant_order_no).await;
    assert!(
        upstream["trans_status"] != 2 && upstream["trans_status"] != 0,
        "closed upstream: {upstream}"
    );
    let events = p.events_of(&a_id).await;
    assert_eq!(
        events.iter().filter(|e| *e == "payment.canceled").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        p.counter("payfac_payment_transitions_total", "pending", "canceled"),
        before + 1
    );
    // Paying the closed QR in the wallet is refused by CodePay: nothing to reconcile.
    let qr = a["qr_code"].as_str().unwrap_or_default().to_owned();
    let refused = sim_send(&sim, "/sim/mpm/pay", json!({"qr_code": qr})).await;
    assert!(!refused.status().is_success());

    // The late success: payfac holds the payment canceled (a local close CodePay did not apply)
    // and the customer pays anyway. The signed success notification is reconciled by the rule:
    // confirmed by query, refunded in full automatically, the payment stays canceled.
    let (_, b) = p
        .post("/v1/payments", &sk, None, json!({"mode":"mpm","amount":700,"currency":"USD","merchant_order_id":"late-1","wallet":"alipay","expires_in":600}))
        .await;
    let b_id = b["id"].as_str().expect("id").to_owned();
    let b_no = upstream_no(&p, &b_id).await;
    let id = b_id.clone();
    p.db.write(move |c| {
        use store::schema::payments;
        store::on_backend!(c, |c| diesel::update(payments::table.find(&id))
            .set((
                payments::status.eq("canceled"),
                payments::closed_by_us.eq(true),
                payments::failure_code.eq("canceled_by_merchant"),
                payments::version.eq(payments::version + 1),
            ))
            .execute(c))?;
        Ok(())
    })
    .await
    .expect("local close");
    let paid = sim_post(&sim, "/sim/mpm/pay", json!({"qr_code": b["qr_code"]})).await;
    assert_eq!(sim_order(&sim, &b_no).await["trans_status"], 2, "{paid}");
    let refunds = p
        .run_jobs_until(
            &PAYMENT_JOB_KINDS,
            &format!("/v1/payments/{b_id}/refunds"),
            &sk,
            |v| v["data"][0]["status"] == "succeeded",
        )
        .await;
    let r = &refunds["data"][0];
    assert_eq!(
        (
            r["status"].as_str(),
            r["amount"].as_i64(),
            r["reason"].as_str()
        ),
        (
            Some("succeeded"),
            Some(700),
            Some("late_success_after_close")
        ),
        "{refunds}"
    );
    let b = p.get(&format!("/v1/payments/{b_id}"), &sk).await;
    assert_eq!(
        (b["status"].as_str(), b["amount_refunded"].as_i64()),
        (Some("canceled"), Some(700))
    );
    let r_id = r["id"].as_str().expect("refund id").to_owned();
    let r_events = p.events_of(&r_id).await;
    assert!(
        r_events.contains(&"refund.succeeded".to_owned()),
        "{r_events:?}"
    );
    assert!(p.counter("payfac_refund_transitions_total", "pending", "succeeded") >= 1);

    // Periodic reconciliation: seeded once however often, runs, and reschedules itself.
    assert_eq!(seed_jobs(&p.db).await.expect("seed"), 1);
    assert_eq!(seed_jobs(&p.db).await.expect("seed"), 0);
    let ran = p.run_jobs(&PAYMENT_JOB_KINDS).await;
    let rec: Vec<_> = ran
        .iter()
        .filter(|(k, _)| k == "payment.reconcile")
        .collect();
    assert_eq!(rec.len(), 1, "{ran:?}");
    let JobOutcome::RetryAt(next) = rec[0].1 else {
        panic!("reconcile must reschedule itself: {ran:?}")
    };
    let wait = next - chrono::Utc::now();
    assert!(wait > chrono::Duration::seconds(50) && wait <= chrono::Duration::seconds(60));
    assert_eq!(
        seed_jobs(&p.db).await.expect("seed"),
        0,
        "still queued: not seeded twice"
    );
    let _ = &p.keyring;
}

on_both_stacks!(payment_rules);

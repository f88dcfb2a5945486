//! Every fault kind is observable on the wire.

use crate::helpers::*;
use gateway_client::verify_message;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

async fn arm(t: &TestSim, body: Value) {
    let (status, v) = t.control("/sim/faults", body).await;
    assert_eq!(status, 200, "{v}");
}

fn qr(order_no: &str) -> Value {
    json!({"merchant_order_no": order_no, "pay_method_id": "Alipay",
           "price_currency": "USD", "order_amount": "1.00"})
}

#[actix_web::test]
async fn http_500_does_not_apply_the_operation() {
    let t = TestSim::start(1).await;
    arm(
        &t,
        json!({"method": "cscanb.pay.getqrcode", "kind": "http_500", "count": 1}),
    )
    .await;
    let resp = t
        .post_raw(&t.request("cscanb.pay.getqrcode", qr("f500")))
        .await
        .expect("http");
    assert_eq!(resp.status(), 500);
    assert_eq!(
        t.call("order.query", json!({"merchant_order_no": "f500"}))
            .await
            .code,
        "E04111"
    );
    // Used up: the retry goes through.
    assert_eq!(t.call("cscanb.pay.getqrcode", qr("f500")).await.code, "0");
}

#[actix_web::test]
async fn timeout_applies_the_operation_and_holds_the_answer() {
    let t = TestSim::start(1).await;
    arm(
        &t,
        json!({"method": "cscanb.pay.getqrcode", "kind": "timeout", "count": 1, "delay_ms": 5000}),
    )
    .await;
    let err = t
        .http
        .post(format!("{}/api/entry", t.base))
        .timeout(Duration::from_millis(1500))
        .json(&t.request("cscanb.pay.getqrcode", qr("ftimeout")))
        .send()
        .await
        .expect_err("the client must time out");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        i(&t.query("ftimeout").await, "trans_status"),
        9,
        "applied despite the timeout"
    );
}

#[actix_web::test]
async fn drop_response_after_commit_cuts_the_connection() {
    let t = TestSim::start(1).await;
    arm(
        &t,
        json!({"method": "cscanb.pay.getqrcode", "kind": "drop_response_after_commit", "count": 1}),
    )
    .await;
    // Not even a status line: the connection closes where the answer should be.
    let err = t
        .post_raw(&t.request("cscanb.pay.getqrcode", qr("fdrop")))
        .await
        .expect_err("no response at all");
    assert!(err.is_request(), "{err}");
    assert_eq!(
        i(&t.query("fdrop").await, "trans_status"),
        9,
        "the order exists"
    );
    let again = t.call("cscanb.pay.getqrcode", qr("fdrop")).await;
    assert_eq!(
        again.code, "E04101",
        "a blind retry hits the duplicate check"
    );
}

#[actix_web::test]
async fn unsigned_and_bad_signature_responses() {
    let t = TestSim::start(1).await;
    arm(
        &t,
        json!({"method": "order.query", "kind": "unsigned", "count": 1}),
    )
    .await;
    arm(
        &t,
        json!({"method": "order.query", "kind": "bad_signature", "count": 1}),
    )
    .await;
    t.mpm_order("fsig", "1.00", None).await;
    let key = t.gateway_public_key();
    let mut raws = Vec::new();
    for _ in 0..3 {
        let resp = t
            .post_raw(&t.request("order.query", json!({"merchant_order_no": "fsig"})))
            .await
            .expect("http");
        let raw: Map<String, Value> = resp.json().await.expect("json");
        assert_eq!(raw["code"], "0");
        raws.push(raw);
    }
    assert!(raws[0].get("sign").is_none(), "unsigned: {:?}", raws[0]);
    assert!(raws[1]["sign"].as_str().is_some_and(|s| s.len() == 344));
    assert!(
        verify_message(&raws[1], &key).is_err(),
        "bad_signature must not verify"
    );
    assert!(verify_message(&raws[2], &key).is_ok(), "faults are used up");
}

#[actix_web::test]
async fn slow_answers_after_the_delay() {
    let t = TestSim::start(1).await;
    arm(
        &t,
        json!({"method": "*", "kind": "slow", "count": 1, "delay_ms": 600}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(t.call("cscanb.pay.getqrcode", qr("fslow")).await.code, "0");
    assert!(started.elapsed() >= Duration::from_millis(600));
    let started = Instant::now();
    t.query("fslow").await;
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[actix_web::test]
async fn operation_faults_are_refused_for_notifications_and_vice_versa() {
    let t = TestSim::start(1).await;
    let (status, _) = t
        .control(
            "/sim/faults",
            json!({"method": "payment.result.notify", "kind": "http_500", "count": 1}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = t
        .control(
            "/sim/faults",
            json!({"method": "order.query", "kind": "explode", "count": 1}),
        )
        .await;
    assert_eq!(status, 400);
}

async fn pay(t: &TestSim, order_no: &str, url: &str) -> String {
    let (trans_no, qr) = t.mpm_order(order_no, "1.00", Some(url)).await;
    let (status, _) = t.control("/sim/mpm/pay", json!({ "qr_code": qr })).await;
    assert_eq!(status, 200);
    trans_no
}

#[actix_web::test]
async fn notification_drop_sends_nothing() {
    let t = TestSim::start(100).await;
    let rx = Receiver::start(0).await;
    arm(
        &t,
        json!({"method": "payment.result.notify", "kind": "drop", "count": 1}),
    )
    .await;
    let dropped = pay(&t, "n-drop", &rx.url).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 0);
    let log = t
        .get(&format!("/sim/notifications?trans_no={dropped}"))
        .await;
    assert_eq!(log["attempts"][0]["outcome"], "dropped");
    pay(&t, "n-after", &rx.url).await;
    rx.wait_for(1, Duration::from_secs(5)).await;
}

#[actix_web::test]
async fn notification_duplicate_arrives_twice() {
    let t = TestSim::start(100).await;
    let rx = Receiver::start(0).await;
    arm(
        &t,
        json!({"method": "payment.result.notify", "kind": "duplicate", "count": 1}),
    )
    .await;
    pay(&t, "n-dup", &rx.url).await;
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(s(&got[0], "http_request_id"), s(&got[1], "http_request_id"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 2);
}

#[actix_web::test]
async fn notification_reorder_lets_the_next_one_overtake() {
    let t = TestSim::start(1).await;
    let rx = Receiver::start(0).await;
    arm(
        &t,
        json!({"method": "payment.result.notify", "kind": "reorder", "count": 1}),
    )
    .await;
    pay(&t, "n-first", &rx.url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 0, "held back");
    pay(&t, "n-second", &rx.url).await;
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let order: Vec<String> = got.iter().map(|n| s(n, "merchant_order_no")).collect();
    assert_eq!(order, ["n-second", "n-first"]);
}

#[actix_web::test]
async fn notification_delay_postpones_the_first_attempt_on_the_scaled_clock() {
    let t = TestSim::start(1000).await;
    let rx = Receiver::start(0).await;
    arm(
        &t,
        json!({"method": "payment.result.notify", "kind": "delay", "count": 1, "delay_ms": 600000}),
    )
    .await;
    let started = Instant::now();
    pay(&t, "n-delay", &rx.url).await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    // 600 s at 1000× is 600 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
}

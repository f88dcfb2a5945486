//! MPM: QR code, the customer's wallet, expiry and notifications.

use crate::helpers::*;
use gateway_client::verify_message;
use serde_json::json;
use std::time::Duration;

#[actix_web::test]
async fn mpm_order_paid_by_the_wallet_is_notified_until_the_receiver_says_success() {
    let t = TestSim::start(100).await;
    let rx = Receiver::start(2).await;
    let (trans_no, qr) = t.mpm_order("mpm-1", "12.34", Some(&rx.url)).await;
    assert!(
        qr.starts_with("https://qr.sandbox.codepay.local/q/"),
        "{qr}"
    );
    assert_eq!(i(&t.query("mpm-1").await, "trans_status"), 9);

    let (status, paid) = t.control("/sim/mpm/pay", json!({ "qr_code": qr })).await;
    assert_eq!(status, 200, "{paid}");
    let d = t.query("mpm-1").await;
    assert_eq!(i(&d, "trans_status"), 2);
    assert_eq!(s(&d, "trans_no"), trans_no);
    assert_eq!(s(&d, "paid_amount"), "12.34");
    assert_eq!(s(&d, "pay_scenario"), "SCANQR_PAY");
    assert!(!s(&d, "trans_end_time").is_empty());

    // Two replies that are not exactly `success`, then `success`: three attempts, then silence.
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 3, "retries must stop after `success`");
    let key = t.gateway_public_key();
    for n in &got {
        verify_message(n, &key).expect("notification signed by the gateway");
        assert_eq!(s(n, "method"), "payment.result.notify");
        assert_eq!(s(n, "trans_no"), trans_no);
        assert_eq!(s(n, "merchant_order_no"), "mpm-1");
        assert_eq!(i(n, "trans_status"), 2);
        assert_eq!(i(n, "trans_type"), 1);
        assert_eq!(s(n, "order_amount"), "12.34");
        assert_eq!(s(n, "price_currency"), "USD");
        assert_eq!(s(n, "http_request_id"), s(&got[0], "http_request_id"));
    }
    let log = t
        .get(&format!("/sim/notifications?trans_no={trans_no}"))
        .await;
    let outcomes: Vec<&str> = log["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "delivered"]);

    // A paid code cannot be paid again.
    let (status, _) = t.control("/sim/mpm/pay", json!({ "qr_code": qr })).await;
    assert_eq!(status, 409);
}

#[actix_web::test]
async fn unpaid_mpm_order_closes_at_expiry_on_the_gateway_clock() {
    let t = TestSim::start(1).await;
    let data = t
        .call(
            "cscanb.pay.getqrcode",
            json!({"merchant_order_no": "exp-1", "pay_method_id": "WeChatPay",
                   "price_currency": "JPY", "order_amount": "500", "expires": 60}),
        )
        .await
        .ok();
    assert_eq!(s(&data, "trans_amount"), "500");
    assert_eq!(i(&t.query("exp-1").await, "trans_status"), 9);
    t.control("/sim/clock", json!({ "advance_seconds": 61 }))
        .await;
    let d = t.query("exp-1").await;
    assert_eq!(i(&d, "trans_status"), 1);
    assert_eq!(s(&d, "trans_error_code"), "ORDER_EXPIRED");
    let (status, _) = t
        .control("/sim/mpm/pay", json!({ "qr_code": s(&data, "qrcode_url") }))
        .await;
    assert_eq!(status, 409, "an expired code cannot be paid");
}

#[actix_web::test]
async fn expiry_runs_on_the_compressed_clock() {
    let t = TestSim::start(1000).await;
    let (_, _) = t.mpm_order("exp-fast", "1.00", None).await;
    t.call(
        "cscanb.pay.getqrcode",
        json!({"merchant_order_no": "exp-fast-2", "pay_method_id": "Alipay",
               "price_currency": "USD", "order_amount": "1.00", "expires": 120}),
    )
    .await
    .ok();
    // 120 s at 1000× is 120 ms: the timer closes it without anyone asking.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ledger = t.get("/sim/orders?merchant_order_no=exp-fast-2").await;
    assert_eq!(ledger["orders"][0]["trans_status"], 1, "{ledger}");
    assert_eq!(
        i(&t.query("exp-fast").await, "trans_status"),
        9,
        "default expiry is 30 min"
    );
}

#[actix_web::test]
async fn wallet_scan_then_decline_goes_9_0_1() {
    let t = TestSim::start(1).await;
    let rx = Receiver::start(0).await;
    let (_, qr) = t.mpm_order("dec-1", "3.00", Some(&rx.url)).await;
    let (status, v) = t.control("/sim/mpm/scan", json!({ "qr_code": qr })).await;
    assert_eq!((status, v["trans_status"].as_i64()), (200, Some(0)));
    assert_eq!(i(&t.query("dec-1").await, "trans_status"), 0);
    let (status, _) = t
        .control("/sim/mpm/decline", json!({ "qr_code": qr }))
        .await;
    assert_eq!(status, 200);
    let d = t.query("dec-1").await;
    assert_eq!(i(&d, "trans_status"), 1);
    assert_eq!(s(&d, "trans_error_code"), "USER_DECLINED");
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        i(&got[0], "trans_status"),
        1,
        "closed and failed orders are notified too"
    );
    let (status, _) = t
        .control("/sim/mpm/pay", json!({ "qr_code": "nope" }))
        .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn duplicate_merchant_order_no_is_rejected() {
    let t = TestSim::start(1).await;
    t.mpm_order("dup-1", "1.00", None).await;
    let a = t
        .call(
            "cscanb.pay.getqrcode",
            json!({"merchant_order_no": "dup-1", "pay_method_id": "Alipay",
                   "price_currency": "USD", "order_amount": "2.00"}),
        )
        .await;
    assert_eq!(a.code, "E04101", "{}", a.msg);
    // The same number is free for another merchant.
    let other = t
        .sim
        .register_merchant(None, None)
        .expect("merchant")
        .merchant_no;
    let mut msg = t.request(
        "cscanb.pay.getqrcode",
        json!({"merchant_order_no": "dup-1", "pay_method_id": "Alipay",
               "price_currency": "USD", "order_amount": "2.00"}),
    );
    msg.insert("merchant_no".into(), json!(other));
    gateway_client::sign_message(&mut msg, app_key());
    assert_eq!(t.send(&msg).await.code, "0");
    let ledger = t.get(&format!("/sim/orders?merchant_no={other}")).await;
    assert_eq!(ledger["orders"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn state_file_keeps_keys_merchants_and_orders_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(1);
    cfg.gateway_private_key = None;
    cfg.state_file = Some(dir.path().join("sim.json"));
    let t = TestSim::start_with(cfg.clone()).await;
    let (trans_no, _) = t.mpm_order("persist-1", "9.99", None).await;
    let key = t.sim.gateway_public_key_pem();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let again = codepay_sim::Simulator::new(cfg).expect("reload");
    assert_eq!(again.gateway_public_key_pem(), key, "generated key is kept");
    assert!(again.app_ids().contains(&t.app_id));
    assert!(
        again
            .merchants()
            .iter()
            .any(|m| m.merchant_no == t.merchant_no)
    );
    let text = std::fs::read_to_string(dir.path().join("sim.json")).expect("state file");
    assert!(text.contains(&trans_no));
}

//! CPM: wallet auth codes and their scenarios, and revocation.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

fn submit_fields(order_no: &str, auth_code: &str) -> Value {
    json!({
        "merchant_order_no": order_no,
        "price_currency": "USD",
        "order_amount": "25.00",
        "auth_code": auth_code,
        "description": "till 3",
    })
}

#[actix_web::test]
async fn approve_pays_at_once() {
    let t = TestSim::start(1).await;
    let code = t.auth_code(json!({ "scenario": "approve" })).await;
    assert_eq!(code.len(), 18);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let d = t
        .call("bscanc.pay.submit", submit_fields("cpm-a", &code))
        .await
        .ok();
    assert_eq!(i(&d, "trans_status"), 2);
    assert_eq!(s(&d, "paid_amount"), "25.00");
    assert_eq!(s(&d, "pay_method_id"), "Alipay");
    assert!(!s(&d, "pay_user_account_id").is_empty());
    assert!(!s(&d, "pay_channel_trans_no").is_empty());
    assert!(!s(&d, "trans_end_time").is_empty());
    assert_eq!(s(&t.query("cpm-a").await, "pay_scenario"), "BSCANQR_PAY");

    // A payment code is single use; an unknown one is refused like a wallet would.
    let again = t
        .call("bscanc.pay.submit", submit_fields("cpm-a2", &code))
        .await;
    assert_eq!(again.code, "E04202");
    let unknown = t
        .call(
            "bscanc.pay.submit",
            submit_fields("cpm-a3", "281234567890123456"),
        )
        .await;
    assert_eq!(unknown.code, "E04201");
    // Neither attempt created an order.
    let q = t
        .call("order.query", json!({ "merchant_order_no": "cpm-a3" }))
        .await;
    assert_eq!(q.code, "E04111");
}

#[actix_web::test]
async fn pin_answers_0_then_succeeds() {
    let t = TestSim::start(100).await;
    let rx = Receiver::start(0).await;
    let code = t
        .auth_code(json!({ "scenario": "pin", "delay_ms": 3000 }))
        .await;
    let mut f = submit_fields("cpm-pin", &code);
    f["notify_url"] = json!(rx.url);
    let d = t.call("bscanc.pay.submit", f).await.ok();
    assert_eq!(i(&d, "trans_status"), 0);
    assert!(d.get("trans_end_time").is_none());
    t.wait_status("cpm-pin", 2, Duration::from_secs(5)).await;
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(i(&got[0], "trans_status"), 2);
}

#[actix_web::test]
async fn pin_then_failure_closes_the_order() {
    let t = TestSim::start(100).await;
    for (n, body) in [
        json!({ "scenario": "pin", "then": "fail", "delay_ms": 2000 }),
        json!({ "scenario": "pin_fail", "delay_ms": 2000 }),
    ]
    .into_iter()
    .enumerate()
    {
        let code = t.auth_code(body).await;
        let no = format!("cpm-pinf-{n}");
        let d = t
            .call("bscanc.pay.submit", submit_fields(&no, &code))
            .await
            .ok();
        assert_eq!(i(&d, "trans_status"), 0);
        let d = t.wait_status(&no, 1, Duration::from_secs(5)).await;
        assert_eq!(s(&d, "trans_error_code"), "PIN_FAILED");
    }
}

#[actix_web::test]
async fn decline_fails_at_once() {
    let t = TestSim::start(1).await;
    let code = t
        .auth_code(json!({ "scenario": "decline", "pay_method_id": "WeChatPay" }))
        .await;
    assert!(code.starts_with("13"), "WeChat-like code: {code}");
    let d = t
        .call("bscanc.pay.submit", submit_fields("cpm-d", &code))
        .await
        .ok();
    assert_eq!(i(&d, "trans_status"), 1);
    assert_eq!(s(&d, "trans_error_code"), "USER_DECLINED");
    assert_eq!(s(&d, "pay_method_id"), "WeChatPay");
}

#[actix_web::test]
async fn never_settles_stays_0_until_revoked() {
    let t = TestSim::start(1000).await;
    let code = t.auth_code(json!({ "scenario": "never_settles" })).await;
    let d = t
        .call("bscanc.pay.submit", submit_fields("cpm-n", &code))
        .await
        .ok();
    assert_eq!(i(&d, "trans_status"), 0);
    // 400 ms at 1000× is more than 6 minutes of gateway time.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(i(&t.query("cpm-n").await, "trans_status"), 0);
    let r = t
        .call("order.revoker", json!({ "merchant_order_no": "cpm-n" }))
        .await
        .ok();
    assert_eq!(i(&r, "trans_status"), 1);
    let d = t.query("cpm-n").await;
    assert_eq!(i(&d, "trans_status"), 1);
    assert_eq!(s(&d, "trans_error_code"), "ORDER_CLOSED");
    // Revoking again is harmless.
    let again = t
        .call("order.revoker", json!({ "merchant_order_no": "cpm-n" }))
        .await
        .ok();
    assert_eq!(i(&again, "trans_status"), 1);
}

#[actix_web::test]
async fn revoking_a_paid_order_voids_it() {
    let t = TestSim::start(1).await;
    let rx = Receiver::start(0).await;
    let code = t.auth_code(json!({ "scenario": "approve" })).await;
    let mut f = submit_fields("cpm-v", &code);
    f["notify_url"] = json!(rx.url);
    t.call("bscanc.pay.submit", f).await.ok();
    let r = t
        .call("order.revoker", json!({ "merchant_order_no": "cpm-v" }))
        .await
        .ok();
    assert_eq!(i(&r, "trans_status"), 3);
    assert_eq!(i(&t.query("cpm-v").await, "trans_status"), 3);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let mut statuses: Vec<i64> = got.iter().map(|n| i(n, "trans_status")).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [2, 3]);
    let missing = t
        .call("order.revoker", json!({ "merchant_order_no": "no-such" }))
        .await;
    assert_eq!(missing.code, "E04111");
}

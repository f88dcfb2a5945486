//! Refund outcomes tests can force: failed refunds (fault `refund_fails`) and merchants whose
//! wallets refuse partial refunds (`E04132`); plus the Rust counterparts of the control API.

use crate::helpers::*;
use codepay_sim::{AuthScenario, Fault, FaultKind, REFUND_METHOD, SimError, WalletAction};
use serde_json::{Value, json};
use std::time::Duration;

async fn refund(
    t: &TestSim,
    orig: &str,
    order_no: &str,
    amount: &str,
    notify: Option<&str>,
) -> Answer {
    let mut fields = json!({"orig_merchant_order_no": orig, "merchant_order_no": order_no,
                            "price_currency": "USD", "order_amount": amount});
    if let Some(u) = notify {
        fields["notify_url"] = json!(u);
    }
    t.call("order.refund.submit", fields).await
}

async fn refund_status(t: &TestSim, order_no: &str) -> serde_json::Map<String, Value> {
    t.call(
        "order.refund.query",
        json!({ "merchant_order_no": order_no }),
    )
    .await
    .ok()
}

async fn wait_refund(t: &TestSim, order_no: &str, want: i64) -> serde_json::Map<String, Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let q = refund_status(t, order_no).await;
        if i(&q, "trans_status") == want {
            return q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund never reached {want}: {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn refund_fails_fault_fails_the_next_accepted_refunds_and_frees_their_amount() {
    let t = TestSim::start(1).await;
    let rx = Receiver::start(0).await;
    t.paid_order("f-sale", "10.00").await;
    let (status, v) = t
        .control(
            "/sim/faults",
            json!({"method": "order.refund.submit", "kind": "refund_fails", "count": 2}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // A refused submit does not use the fault up.
    assert_eq!(
        refund(&t, "f-sale", "f-0", "10.01", None).await.code,
        "E04126"
    );
    // Other faults on the same method still hit the call, and leave refund_fails armed.
    let (status, _) = t
        .control(
            "/sim/faults",
            json!({"method": "order.refund.submit", "kind": "unsigned", "count": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let raw = t
        .post_raw(&t.request(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "f-sale", "merchant_order_no": "f-1",
                   "price_currency": "USD", "order_amount": "4.00", "notify_url": rx.url}),
        ))
        .await
        .expect("http")
        .json::<Value>()
        .await
        .expect("json");
    assert!(
        raw.get("sign").is_none(),
        "the unsigned fault hit the call: {raw}"
    );
    assert_eq!(raw["code"], "0", "{raw}");
    refund(&t, "f-sale", "f-2", "6.00", None).await.ok();
    let faults = t.get("/sim/faults").await;
    assert_eq!(
        faults["faults"],
        json!([]),
        "both uses consumed by accepted refunds"
    );
    // Pending refunds still count: nothing is left to refund yet.
    assert_eq!(
        refund(&t, "f-sale", "f-3", "0.01", None).await.code,
        "E04130"
    );
    let q = refund_status(&t, "f-1").await;
    assert_eq!(i(&q, "trans_status"), 0);
    assert!(q.get("trans_error_code").is_none());

    t.control("/sim/clock", json!({ "time_scale": 1000 })).await;
    let q1 = wait_refund(&t, "f-1", 1).await;
    assert_eq!(s(&q1, "trans_error_code"), "REFUND_FAILED");
    assert!(!s(&q1, "trans_error_msg").is_empty());
    assert!(q1.get("trans_end_time").is_some());
    let q2 = wait_refund(&t, "f-2", 1).await;
    assert_eq!(s(&q2, "trans_error_code"), "REFUND_FAILED");
    let got = rx.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(i(&got[0], "trans_type"), 3);
    assert_eq!(i(&got[0], "trans_status"), 1);
    assert_eq!(s(&got[0], "trans_error_code"), "REFUND_FAILED");
    assert_eq!(s(&got[0], "merchant_order_no"), "f-1");

    // The failed refunds no longer count: the whole amount can be refunded, and it succeeds.
    assert_eq!(s(&t.query("f-sale").await, "refund_amount"), "0.00");
    refund(&t, "f-sale", "f-4", "10.00", None).await.ok();
    let q4 = wait_refund(&t, "f-4", 2).await;
    assert!(q4.get("trans_error_code").is_none());
    assert_eq!(s(&t.query("f-sale").await, "refund_amount"), "10.00");
    assert_eq!(
        refund(&t, "f-sale", "f-5", "0.01", None).await.code,
        "E04130"
    );
}

#[actix_web::test]
async fn refund_fails_is_only_accepted_for_refund_submits() {
    let t = TestSim::start(1).await;
    for method in ["*", "order.query", "payment.result.notify"] {
        let (status, v) = t
            .control(
                "/sim/faults",
                json!({"method": method, "kind": "refund_fails", "count": 1}),
            )
            .await;
        assert_eq!(status, 400, "{method}: {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("order.refund.submit")),
            "{v}"
        );
    }
}

#[actix_web::test]
async fn merchants_registered_without_partial_refunds_refuse_them_with_e04132() {
    let t = TestSim::start(1).await;
    let (status, m) = t
        .control("/sim/merchants", json!({ "partial_refunds": false }))
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["partial_refunds"], json!(false));
    let strict = TestSim {
        sim: t.sim.clone(),
        base: t.base.clone(),
        app_id: t.app_id.clone(),
        merchant_no: m["merchant_no"].as_str().expect("merchant_no").to_owned(),
        http: t.http.clone(),
    };
    let listed = t.get("/sim/merchants").await;
    let flags: Vec<(String, bool)> = listed["merchants"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["merchant_no"].as_str().unwrap_or("").to_owned(),
                m["partial_refunds"] == json!(true),
            )
        })
        .collect();
    assert!(
        flags.contains(&(strict.merchant_no.clone(), false)),
        "{listed}"
    );
    assert!(flags.contains(&(t.merchant_no.clone(), true)), "{listed}");

    strict.paid_order("w-sale", "10.00").await;
    let partial = refund(&strict, "w-sale", "w-1", "9.99", None).await;
    assert_eq!(partial.code, "E04132", "{}", partial.msg);
    refund(&strict, "w-sale", "w-2", "10.00", None).await.ok();
    // The default merchant still refunds in parts.
    t.paid_order("p-sale", "10.00").await;
    refund(&t, "p-sale", "p-1", "1.00", None).await.ok();
    // Turning partial refunds back on, by re-registering the number, lifts the refusal.
    let (status, m) = t
        .control(
            "/sim/merchants",
            json!({ "merchant_no": strict.merchant_no, "partial_refunds": true }),
        )
        .await;
    assert_eq!((status, &m["partial_refunds"]), (200, &json!(true)));
    strict.paid_order("w-sale2", "10.00").await;
    refund(&strict, "w-sale2", "w-3", "2.00", None).await.ok();
}

#[actix_web::test]
async fn rust_methods_drive_the_same_customer_and_fault_actions() {
    let t = TestSim::start(1000).await;
    let (_, qr) = t.mpm_order("rs-pay", "3.00", None).await;
    let view = t.sim.pay_mpm(&qr).expect("pay");
    assert_eq!(view["trans_status"], json!(2));
    assert_eq!(i(&t.query("rs-pay").await, "trans_status"), 2);
    assert!(matches!(
        t.sim.decline_mpm(&qr),
        Err(SimError::NotPayable(_))
    ));
    let (_, qr2) = t.mpm_order("rs-decline", "3.00", None).await;
    let scanned = t.sim.mpm_action(&qr2, WalletAction::Scan).expect("scan");
    assert_eq!(scanned["trans_status"], json!(0));
    t.sim.decline_mpm(&qr2).expect("decline");
    let d = t.query("rs-decline").await;
    assert_eq!(
        (i(&d, "trans_status"), s(&d, "trans_error_code")),
        (1, "USER_DECLINED".into())
    );
    assert!(matches!(
        t.sim.pay_mpm("https://nowhere/q/x"),
        Err(SimError::UnknownQrCode)
    ));

    let code = t
        .sim
        .new_auth_code(AuthScenario::Approve, Some("WeChatPay"), None)
        .expect("auth code");
    assert!(code.expose().starts_with("13") && code.expose().len() == 18);
    assert!(
        !format!("{code:?}").contains(code.expose()),
        "auth codes stay out of Debug"
    );
    assert!(
        t.sim
            .new_auth_code(AuthScenario::Approve, Some("alipay"), None)
            .is_err()
    );
    let d = t
        .call(
            "bscanc.pay.submit",
            json!({"merchant_order_no": "rs-cpm", "price_currency": "USD", "order_amount": "5.00",
                   "auth_code": code.expose(), "pay_method_id": "WeChatPay"}),
        )
        .await
        .ok();
    assert_eq!(i(&d, "trans_status"), 2);

    let fails = Fault {
        method: REFUND_METHOD.into(),
        kind: FaultKind::RefundFails,
        count: 1,
        delay_ms: None,
    };
    t.sim.add_fault(fails.clone()).expect("fault");
    assert_eq!(t.sim.faults(), vec![fails.clone()]);
    assert!(
        t.sim
            .add_fault(Fault {
                method: "*".into(),
                ..fails
            })
            .is_err()
    );
    refund(&t, "rs-cpm", "rs-r1", "5.00", None).await.ok();
    assert!(t.sim.faults().is_empty());
    wait_refund(&t, "rs-r1", 1).await;
    t.sim
        .add_fault(Fault {
            method: "order.query".into(),
            kind: FaultKind::Http500,
            count: 1,
            delay_ms: None,
        })
        .expect("fault");
    t.sim.clear_faults();
    assert!(t.sim.faults().is_empty());
}

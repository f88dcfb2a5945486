//! The gateway refuses what CodePay refuses, in a signed envelope with a non-"0" code.

use crate::helpers::*;
use gateway_client::sign_message;
use serde_json::{Value, json};

fn qr_fields(order_no: &str, currency: &str, amount: Value) -> Value {
    json!({"merchant_order_no": order_no, "pay_method_id": "Alipay",
           "price_currency": currency, "order_amount": amount})
}

#[actix_web::test]
async fn signature_must_verify_with_the_apps_key() {
    let t = TestSim::start(1).await;
    let mut msg = t.request("order.query", json!({ "merchant_order_no": "x" }));
    sign_message(&mut msg, other_key());
    let a = t.send(&msg).await;
    assert_eq!(a.code, "E01003");
    assert!(a.raw.get("data").is_none());

    let mut tampered = t.request(
        "cscanb.pay.getqrcode",
        qr_fields("sig-1", "USD", json!("1.00")),
    );
    tampered.insert("order_amount".into(), json!("0.01"));
    assert_eq!(t.send(&tampered).await.code, "E01003");

    let mut unsigned = t.request("order.query", json!({ "merchant_order_no": "x" }));
    unsigned.remove("sign");
    assert_eq!(t.send(&unsigned).await.code, "E01001");

    let mut unknown_app = t.request("order.query", json!({ "merchant_order_no": "x" }));
    unknown_app.insert("app_id".into(), json!("wz0000000000000000"));
    sign_message(&mut unknown_app, app_key());
    assert_eq!(t.send(&unknown_app).await.code, "E01005");
}

#[actix_web::test]
async fn timestamps_outside_15_minutes_of_gateway_time_are_refused() {
    let t = TestSim::start(1).await;
    let with_ts = |ts: i64| {
        let mut m = t.request(
            "cscanb.pay.getqrcode",
            qr_fields(&format!("ts{ts}"), "USD", json!("1.00")),
        );
        m.insert("timestamp".into(), json!(ts.to_string()));
        sign_message(&mut m, app_key());
        m
    };
    let now = now_ms();
    assert_eq!(t.send(&with_ts(now - 16 * 60_000)).await.code, "E01004");
    assert_eq!(t.send(&with_ts(now + 16 * 60_000)).await.code, "E01004");
    assert_eq!(t.send(&with_ts(now - 14 * 60_000)).await.code, "0");
    // Jumping the gateway clock moves the window with it.
    t.control("/sim/clock", json!({ "advance_seconds": 3600 }))
        .await;
    assert_eq!(t.send(&with_ts(now_ms())).await.code, "E01004");
    assert_eq!(t.send(&with_ts(now_ms() + 3_600_000)).await.code, "0");
}

#[actix_web::test]
async fn unknown_method_and_unknown_merchant_get_error_codes() {
    let t = TestSim::start(1).await;
    let a = t.call("order.close.everything", json!({})).await;
    assert_eq!(a.code, "E07303");
    let mut msg = t.request("order.query", json!({ "merchant_order_no": "x" }));
    msg.insert("merchant_no".into(), json!("999999"));
    sign_message(&mut msg, app_key());
    assert_eq!(t.send(&msg).await.code, "E01006");
    let not_found = t
        .call("order.query", json!({ "merchant_order_no": "x" }))
        .await;
    assert_eq!(not_found.code, "E04111");
    let by_trans_no = t.call("order.query", json!({ "trans_no": "2000" })).await;
    assert_eq!(by_trans_no.code, "E04110");
    let refund = t
        .call("order.refund.query", json!({ "merchant_order_no": "x" }))
        .await;
    assert_eq!(refund.code, "E04111");
    let missing = t.call("order.query", json!({})).await;
    assert_eq!(missing.code, "E01001");
}

#[actix_web::test]
async fn amount_format_follows_the_currency() {
    let t = TestSim::start(1).await;
    let cases = [
        ("USD", json!("1.005"), "E04103"),
        ("USD", json!("1.5"), "0"),
        ("USD", json!("-1.00"), "E04103"),
        ("USD", json!("0.00"), "E04103"),
        ("USD", json!("1e2"), "E04103"),
        ("JPY", json!("20.5"), "E04103"),
        ("JPY", json!("20"), "0"),
        ("KWD", json!("1.005"), "0"),
        ("KWD", json!("1.0005"), "E04103"),
        ("XYZ", json!("1.00"), "E04104"),
        ("USD", json!(12), "E01002"),
    ];
    for (n, (currency, amount, code)) in cases.into_iter().enumerate() {
        let a = t
            .call(
                "cscanb.pay.getqrcode",
                qr_fields(&format!("amt-{n}"), currency, amount.clone()),
            )
            .await;
        assert_eq!(a.code, code, "{currency} {amount}: {}", a.msg);
    }
    let d = t.query("amt-7").await;
    assert_eq!(s(&d, "order_amount"), "1.005");
}

#[actix_web::test]
async fn order_numbers_fields_and_wallets_are_checked() {
    let t = TestSim::start(1).await;
    for bad in ["has space", "slash/no", &"x".repeat(33)] {
        let a = t
            .call("cscanb.pay.getqrcode", qr_fields(bad, "USD", json!("1.00")))
            .await;
        assert_eq!(a.code, "E01002", "{bad}");
    }
    let ok = t
        .call(
            "cscanb.pay.getqrcode",
            qr_fields("A-z_0|9*@", "USD", json!("1.00")),
        )
        .await;
    assert_eq!(ok.code, "0", "{}", ok.msg);
    let mut f = qr_fields("wallet-1", "USD", json!("1.00"));
    f["pay_method_id"] = json!("alipay");
    assert_eq!(t.call("cscanb.pay.getqrcode", f).await.code, "E04105");
    let mut f = qr_fields("url-1", "USD", json!("1.00"));
    f["notify_url"] = json!("not a url");
    assert_eq!(t.call("cscanb.pay.getqrcode", f).await.code, "E01002");
    let mut f = qr_fields("miss-1", "USD", json!("1.00"));
    f.as_object_mut().map(|m| m.remove("price_currency"));
    let a = t.call("cscanb.pay.getqrcode", f).await;
    assert_eq!(
        (a.code.as_str(), a.msg.contains("price_currency")),
        ("E01001", true)
    );
}

#[actix_web::test]
async fn entry_accepts_a_path_suffix_and_refuses_non_json() {
    let t = TestSim::start(1).await;
    let msg = t.request(
        "cscanb.pay.getqrcode",
        qr_fields("path-1", "USD", json!("1.00")),
    );
    let resp = t
        .http
        .post(format!("{}/api/entry/cscanb.pay.getqrcode", t.base))
        .json(&msg)
        .send()
        .await
        .expect("http");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "0");
    assert!(body["data"].is_string(), "data is a JSON string: {body}");
    let resp = t
        .http
        .post(format!("{}/api/entry", t.base))
        .body("not json")
        .send()
        .await
        .expect("http");
    assert_eq!(
        resp.status(),
        200,
        "HTTP status only says the exchange happened"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "E01002");
    assert!(body["sign"].is_string(), "errors are signed too");
}

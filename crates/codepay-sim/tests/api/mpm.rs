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
async fn state_file_keeps_keys_apps_merchants_orders_and_timers_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = sim_config(1);
    cfg.gateway_private_key = None;
    cfg.state_file = Some(dir.path().join("state").join("sim.json"));
    let t = TestSim::start_with(cfg.clone()).await;
    let (trans_no, _) = t.mpm_order("persist-1", "9.99", None).await;
    let code = t.auth_code(json!({ "scenario": "approve" })).await;
    t.call(
        "bscanc.pay.submit",
        json!({"merchant_order_no": "persist-2", "price_currency": "USD",
               "order_amount": "4.00", "auth_code": code}),
    )
    .await
    .ok();
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "persist-2", "merchant_order_no": "persist-r",
               "price_currency": "USD", "order_amount": "1.00"}),
    )
    .await
    .ok();
    let key = t.sim.gateway_public_key_pem();
    tokio::time::sleep(Duration::from_millis(800)).await;

    // A second gateway from the same file, 1000× faster: the refund's pending settlement resumes.
    cfg.time_scale = 1000;
    let again = codepay_sim::Simulator::new(cfg).expect("reload");
    assert_eq!(again.gateway_public_key_pem(), key, "generated key is kept");
    let t2 = TestSim::serve(again, t.app_id.clone(), t.merchant_no.clone());
    let d = t2.query("persist-1").await;
    assert_eq!((s(&d, "trans_no"), i(&d, "trans_status")), (trans_no, 9));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = t2
            .call(
                "order.refund.query",
                json!({ "merchant_order_no": "persist-r" }),
            )
            .await
            .ok();
        if i(&r, "trans_status") == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refund never settled after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dup = t2
        .call(
            "cscanb.pay.getqrcode",
            json!({"merchant_order_no": "persist-1",
        "pay_method_id": "Alipay", "price_currency": "USD", "order_amount": "1.00"}),
        )
        .await;
    assert_eq!(dup.code, "E04101", "uniqueness survives the restart");
}

#[actix_web::test]
async fn standalone_server_serves_the_gateway_and_control_api() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let sim = codepay_sim::Simulator::new(sim_config(1)).expect("sim");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tokio::spawn(codepay_sim::run_standalone(sim.clone(), addr));
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let pem = loop {
        match http
            .get(format!("http://{addr}/sim/gateway-key"))
            .send()
            .await
        {
            Ok(r) => break r.text().await.expect("pem"),
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(pem, sim.gateway_public_key_pem());
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(
        sim.merchants().len(),
        1,
        "a merchant is registered when none is configured"
    );
    let (status, v) = {
        let r = http
            .post(format!("http://{addr}/sim/apps"))
            .json(&json!({ "public_key": app_key().public_key().to_pem() }))
            .send()
            .await
            .expect("register app");
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.expect("json"),
        )
    };
    assert_eq!(status, 200);
    let app_id = v["app_id"].as_str().expect("app_id").to_owned();
    assert!(app_id.starts_with("wz") && app_id.len() == 18, "{app_id}");
    let t = TestSim {
        sim: sim.clone(),
        base: format!("http://{addr}"),
        app_id,
        merchant_no: sim.merchants()[0].merchant_no.clone(),
        http,
    };
    t.mpm_order("standalone-1", "1.00", None).await;
    let (status, v) = t
        .control("/sim/apps", json!({ "public_key": "not a key" }))
        .await;
    assert_eq!(status, 400, "{v}");
}

#[actix_web::test]
async fn concurrent_duplicates_create_exactly_one_order() {
    let t = TestSim::start(1).await;
    let calls = (0..20).map(|n| {
        let msg = t.request(
            "cscanb.pay.getqrcode",
            json!({"merchant_order_no": "race-1", "pay_method_id": "Alipay",
                   "price_currency": "USD", "order_amount": format!("{}.00", n + 1)}),
        );
        let t = &t;
        async move { t.send(&msg).await.code }
    });
    let codes = futures::future::join_all(calls).await;
    assert_eq!(codes.iter().filter(|c| *c == "0").count(), 1, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| *c == "E04101").count(),
        19,
        "{codes:?}"
    );
    let ledger = t.get("/sim/orders?merchant_order_no=race-1").await;
    assert_eq!(ledger["orders"].as_array().map(Vec::len), Some(1));
}

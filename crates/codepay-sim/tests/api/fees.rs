//! CodePay's fee (`trans_fee_c`): per-merchant rate, half-up rounding to the minor unit,
//! reported on queries and notifications of paid sales, kept in the ledger, "0" on refunds.

use crate::helpers::*;
use gateway_client::parse_notification;
use serde_json::{Value, json};
use std::time::Duration;

/// A CPM sale of `amount` `currency` paid at once; the `order.query` answer.
async fn paid(
    t: &TestSim,
    order_no: &str,
    currency: &str,
    amount: &str,
) -> serde_json::Map<String, Value> {
    let code = t.auth_code(json!({ "scenario": "approve" })).await;
    t.call(
        "bscanc.pay.submit",
        json!({"merchant_order_no": order_no, "price_currency": currency,
               "order_amount": amount, "auth_code": code}),
    )
    .await
    .ok();
    t.query(order_no).await
}

#[actix_web::test]
async fn the_fee_is_reported_on_query_and_notification_rounded_half_up() {
    let t = TestSim::start(100).await;
    let rx = Receiver::start(0).await;
    // The default rate, 60 bps: 1.00 USD → 0.006 → 0.01.
    let (_, qr) = t.mpm_order("fee-1", "1.00", Some(&rx.url)).await;
    let unpaid = t.query("fee-1").await;
    assert!(
        !unpaid.contains_key("trans_fee_c"),
        "no fee before payment: {unpaid:?}"
    );
    let (status, _) = t.control("/sim/mpm/pay", json!({ "qr_code": qr })).await;
    assert_eq!(status, 200);
    let d = t.query("fee-1").await;
    assert_eq!(s(&d, "trans_fee_c"), "0.01");
    assert_eq!(t.ledger_entry("fee-1").await["fee_minor"], json!(1));

    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(s(&got[0], "trans_fee_c"), "0.01");
    assert_eq!(s(&got[0], "app_id"), t.app_id);
    // What payfac's client reads from it.
    let body = serde_json::to_vec(&got[0]).expect("json");
    let n = parse_notification(&body, &t.gateway_public_key()).expect("verified");
    assert_eq!(
        n.trans_fee_c.map(|m| (m.minor(), m.currency().code())),
        Some((1, "USD"))
    );
    assert_eq!(n.app_id.as_deref(), Some(t.app_id.as_str()));

    // Half up at the cent: 0.83 → 0.498 cents → 0.00; 0.84 → 0.504 → 0.01; 123.45 → 74.07 → 0.74.
    assert_eq!(
        s(&paid(&t, "fee-2", "USD", "0.83").await, "trans_fee_c"),
        "0.00"
    );
    assert_eq!(
        s(&paid(&t, "fee-3", "USD", "0.84").await, "trans_fee_c"),
        "0.01"
    );
    assert_eq!(
        s(&paid(&t, "fee-4", "USD", "123.45").await, "trans_fee_c"),
        "0.74"
    );
    // JPY has no minor unit: 250 → 1.5 → 2, 249 → 1.494 → 1, 1000 → 6.
    assert_eq!(
        s(&paid(&t, "fee-5", "JPY", "250").await, "trans_fee_c"),
        "2"
    );
    assert_eq!(
        s(&paid(&t, "fee-6", "JPY", "249").await, "trans_fee_c"),
        "1"
    );
    assert_eq!(
        s(&paid(&t, "fee-7", "JPY", "1000").await, "trans_fee_c"),
        "6"
    );
    assert_eq!(t.ledger_entry("fee-5").await["fee_minor"], json!(2));
}

#[actix_web::test]
async fn the_rate_is_set_at_registration_or_patched_and_applies_to_later_payments() {
    let t = TestSim::start(1).await;
    let m = t.merchant_no.clone();
    let merchant = format!("/sim/merchants/{m}");

    let listed = t.get("/sim/merchants").await;
    assert_eq!(listed["merchants"][0]["fee_bps"], json!(60), "{listed}");
    assert_eq!(
        s(&paid(&t, "p-1", "USD", "100.00").await, "trans_fee_c"),
        "0.60"
    );

    let (status, v) = t.patch(&merchant, json!({ "fee_bps": 250 })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["fee_bps"], json!(250));
    assert_eq!(v["merchant_no"], json!(m));
    assert_eq!(t.sim.fee_bps(&m), Some(250));
    assert_eq!(
        s(&paid(&t, "p-2", "USD", "100.00").await, "trans_fee_c"),
        "2.50"
    );
    // A paid sale keeps the fee of its time.
    assert_eq!(s(&t.query("p-1").await, "trans_fee_c"), "0.60");
    // Re-registering without a rate keeps it; with one sets it.
    let (_, again) = t
        .control("/sim/merchants", json!({ "merchant_no": m }))
        .await;
    assert_eq!(again["fee_bps"], json!(250), "{again}");
    let (_, other) = t.control("/sim/merchants", json!({ "fee_bps": 0 })).await;
    assert_eq!(other["fee_bps"], json!(0), "{other}");

    let refusals = [
        (
            "/sim/merchants/nobody".to_owned(),
            json!({ "fee_bps": 10 }),
            404,
        ),
        (merchant.clone(), json!({ "fee_bps": 10_001 }), 400),
        (merchant.clone(), json!({ "fee_bps": -1 }), 400),
        (merchant.clone(), json!({ "fee_bps": 0.5 }), 400),
        (merchant.clone(), json!({}), 400),
    ];
    for (path, body, want) in refusals {
        let (status, v) = t.patch(&path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (status, v) = t
        .control("/sim/merchants", json!({ "fee_bps": 10_001 }))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(t.sim.fee_bps(&m), Some(250), "refusals changed nothing");
    // 100 % is the most, and takes the whole amount.
    let (status, _) = t.patch(&merchant, json!({ "fee_bps": 10_000 })).await;
    assert_eq!(status, 200);
    assert_eq!(s(&paid(&t, "p-3", "JPY", "77").await, "trans_fee_c"), "77");
}

#[actix_web::test]
async fn refunds_carry_a_zero_fee_and_the_sale_keeps_its_own() {
    let t = TestSim::start(1000).await;
    let rx = Receiver::start(0).await;
    paid(&t, "rf-sale", "USD", "10.00").await;
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "rf-sale", "merchant_order_no": "rf-1",
               "price_currency": "USD", "order_amount": "10.00", "notify_url": rx.url}),
    )
    .await
    .ok();
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(i(&got[0], "trans_type"), 3);
    assert_eq!(i(&got[0], "trans_status"), 2);
    assert_eq!(s(&got[0], "trans_fee_c"), "0.00");
    assert_eq!(s(&got[0], "app_id"), t.app_id);
    let refund = t
        .call("order.refund.query", json!({ "merchant_order_no": "rf-1" }))
        .await
        .ok();
    assert_eq!(s(&refund, "trans_fee_c"), "0.00");
    assert_eq!(t.ledger_entry("rf-1").await["fee_minor"], json!(0));
    // Refunded in full, the sale still shows the fee CodePay kept.
    let sale = t.query("rf-sale").await;
    assert_eq!(s(&sale, "refund_amount"), "10.00");
    assert_eq!(s(&sale, "trans_fee_c"), "0.06");
}

#[actix_web::test]
async fn rates_stores_and_terminals_survive_a_restart_from_the_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = sim_config(1);
    cfg.state_file = Some(dir.path().join("sim.json"));
    let t = TestSim::start_with(cfg.clone()).await;
    let m = t.merchant_no.clone();
    let (status, _) = t
        .patch(&format!("/sim/merchants/{m}"), json!({ "fee_bps": 125 }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = t
        .control(
            &format!("/sim/merchants/{m}/stores"),
            json!({ "store_no": "S1" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = t
        .control(
            &format!("/sim/merchants/{m}/stores/S1/terminals"),
            json!({ "terminal_sn": "T1" }),
        )
        .await;
    assert_eq!(status, 200);

    // Another default rate for the restarted gateway: the saved merchant keeps its own.
    cfg.default_fee_bps = 10;
    let again = codepay_sim::Simulator::new(cfg).expect("reload");
    let t2 = TestSim::serve(again, t.app_id.clone(), m.clone());
    let code = t2.auth_code(json!({ "scenario": "approve" })).await;
    let d = t2
        .call(
            "bscanc.pay.submit",
            json!({"merchant_order_no": "after", "price_currency": "USD",
                   "order_amount": "100.00", "auth_code": code,
                   "store_no": "S1", "terminal_sn": "T1"}),
        )
        .await
        .ok();
    assert_eq!(s(&t2.query("after").await, "trans_fee_c"), "1.25");
    assert_eq!(s(&d, "terminal_sn"), "T1");
    let a = t2
        .call(
            "order.query",
            json!({"merchant_order_no": "after", "store_no": "S1", "terminal_sn": "T2"}),
        )
        .await;
    assert_eq!(a.code, "E01007");
    // A merchant registered after the restart gets the new default.
    let (_, fresh) = t2.control("/sim/merchants", json!({})).await;
    assert_eq!(fresh["fee_bps"], json!(10), "{fresh}");
}

//! Stores and terminals: registration over the control API, the gateway refusing ones the
//! merchant does not have, and the ledger recording them.

use crate::helpers::*;
use gateway_client::codes::{self, CodeClass};
use serde_json::{Value, json};

/// `POST path body` that must answer 200: the answer.
async fn registered(t: &TestSim, path: &str, body: Value) -> Value {
    let (status, v) = t.control(path, body).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

#[actix_web::test]
async fn stores_and_terminals_are_registered_once_and_found_again() {
    let t = TestSim::start(1).await;
    let m = t.merchant_no.clone();
    let stores = format!("/sim/merchants/{m}/stores");

    // A generated store_no, then the same one again: idempotent.
    let generated = registered(&t, &stores, json!({})).await;
    assert_eq!(generated["merchant_no"], m.as_str());
    let store = generated["store_no"].as_str().expect("store_no").to_owned();
    assert!(
        store.len() == 10
            && store.starts_with('S')
            && store[1..].bytes().all(|b| b.is_ascii_digit()),
        "{store}"
    );
    let again = registered(&t, &stores, json!({ "store_no": store })).await;
    assert_eq!(again, generated);
    // A given one; an empty body is a generated one.
    let named = registered(&t, &stores, json!({ "store_no": "HQ-1" })).await;
    assert_eq!(named, json!({"merchant_no": m, "store_no": "HQ-1"}));
    let resp = t
        .http
        .post(format!("{}{stores}", t.base))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let third: Value = resp.json().await.expect("json");
    assert_ne!(third["store_no"], json!(store));
    assert_eq!(t.sim.stores(&m).len(), 3);

    // Terminals of a store, the same way.
    let terminals = format!("/sim/merchants/{m}/stores/HQ-1/terminals");
    let generated = registered(&t, &terminals, json!({})).await;
    let sn = generated["terminal_sn"]
        .as_str()
        .expect("terminal_sn")
        .to_owned();
    assert!(sn.len() == 13 && sn.starts_with('T'), "{sn}");
    assert_eq!(
        generated,
        json!({"merchant_no": m, "store_no": "HQ-1", "terminal_sn": sn})
    );
    let again = registered(&t, &terminals, json!({ "terminal_sn": sn })).await;
    assert_eq!(again, generated);
    registered(&t, &terminals, json!({ "terminal_sn": "POS_2" })).await;
    let mut listed = t.sim.stores(&m).remove("HQ-1").expect("HQ-1");
    listed.sort();
    let mut want = vec![sn.clone(), "POS_2".to_owned()];
    want.sort();
    assert_eq!(listed, want);

    // A store the merchant was registered with counts as one of its stores.
    let (status, other) = t
        .control("/sim/merchants", json!({ "store_no": "MAIN" }))
        .await;
    assert_eq!(status, 200, "{other}");
    let other_no = other["merchant_no"].as_str().expect("merchant_no");
    registered(
        &t,
        &format!("/sim/merchants/{other_no}/stores/MAIN/terminals"),
        json!({ "terminal_sn": "T1" }),
    )
    .await;

    // Refusals: unknown merchant or store 404; malformed number or body 400.
    let refusals = [
        ("/sim/merchants/999/stores".to_owned(), json!({}), 404),
        (
            format!("/sim/merchants/{m}/stores/NOPE/terminals"),
            json!({}),
            404,
        ),
        (
            format!("/sim/merchants/{other_no}/stores/HQ-1/terminals"),
            json!({}),
            404,
        ),
        (stores.clone(), json!({ "store_no": "a b" }), 400),
        (stores.clone(), json!({ "store_no": "x".repeat(33) }), 400),
        (stores.clone(), json!({ "store_no": 7 }), 400),
        (stores.clone(), json!({ "store": "typo" }), 400),
        (terminals.clone(), json!({ "terminal_sn": "é" }), 400),
    ];
    for (path, body, want) in refusals {
        let (status, v) = t.control(&path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(t.sim.stores(&m).len(), 3, "refusals registered nothing");
}

#[actix_web::test]
async fn every_operation_refuses_a_store_or_terminal_the_merchant_does_not_have() {
    let t = TestSim::start(1).await;
    let m = t.merchant_no.clone();
    t.sim.register_store(&m, Some("S1")).expect("store");
    t.sim
        .register_terminal(&m, "S1", Some("T1"))
        .expect("terminal");
    t.sim.register_store(&m, Some("S2")).expect("store");
    t.paid_order("sale-1", "5.00").await;
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "sale-1", "merchant_order_no": "ref-1",
               "price_currency": "USD", "order_amount": "1.00"}),
    )
    .await
    .ok();
    let code = t.auth_code(json!({ "scenario": "approve" })).await;

    let operations = [
        (
            "cscanb.pay.getqrcode",
            json!({"merchant_order_no": "new-1", "pay_method_id": "Alipay",
                   "price_currency": "USD", "order_amount": "1.00"}),
        ),
        (
            "bscanc.pay.submit",
            json!({"merchant_order_no": "new-2", "price_currency": "USD",
                   "order_amount": "1.00", "auth_code": code}),
        ),
        ("order.query", json!({ "merchant_order_no": "sale-1" })),
        ("order.revoker", json!({ "merchant_order_no": "sale-1" })),
        (
            "order.refund.submit",
            json!({"orig_merchant_order_no": "sale-1", "merchant_order_no": "new-3",
                   "price_currency": "USD", "order_amount": "1.00"}),
        ),
        (
            "order.refund.query",
            json!({ "merchant_order_no": "ref-1" }),
        ),
    ];
    let wrong = [
        json!({ "store_no": "S9" }),    // not a store of the merchant
        json!({ "terminal_sn": "T1" }), // a terminal without its store
        json!({ "store_no": "S1", "terminal_sn": "T2" }), // not a terminal of the store
        json!({ "store_no": "S2", "terminal_sn": "T1" }), // another store's terminal
    ];
    for (method, fields) in &operations {
        for w in &wrong {
            let mut f = fields.clone();
            f.as_object_mut()
                .expect("object")
                .extend(w.as_object().cloned().expect("object"));
            let a = t.call(method, f).await;
            assert_eq!(a.code, "E01007", "{method} {w}: {} {}", a.code, a.msg);
            assert!(a.data.is_empty());
        }
    }
    // The client reads the code as a refusal that applied nothing.
    assert_eq!(codes::classify("E01007"), CodeClass::NotPermitted);
    assert!(codes::classify("E01007").is_definitive());

    // Nothing was applied: no order created, the sale neither voided nor refunded again, and the
    // auth code is still unused.
    let orders = t.get(&format!("/sim/orders?merchant_no={m}")).await;
    assert_eq!(
        orders["orders"].as_array().map(Vec::len),
        Some(2),
        "{orders}"
    );
    let sale = t.query("sale-1").await;
    assert_eq!(i(&sale, "trans_status"), 2);
    assert_eq!(s(&sale, "refund_amount"), "1.00");
    let (method, fields) = &operations[1];
    let mut f = fields.clone();
    f["store_no"] = json!("S1");
    f["terminal_sn"] = json!("T1");
    let paid = t.call(method, f).await.ok();
    assert_eq!(i(&paid, "trans_status"), 2, "the code was not used up");
    // A store without a terminal is fine too.
    let (method, fields) = &operations[0];
    let mut f = fields.clone();
    f["store_no"] = json!("S2");
    t.call(method, f).await.ok();
}

#[actix_web::test]
async fn orders_and_their_refunds_record_store_and_terminal() {
    let t = TestSim::start(1000).await;
    let m = t.merchant_no.clone();
    let store = t.sim.register_store(&m, None).expect("store");
    let terminal = t.sim.register_terminal(&m, &store, None).expect("terminal");
    let code = t.auth_code(json!({ "scenario": "approve" })).await;
    let sale = t
        .call(
            "bscanc.pay.submit",
            json!({"merchant_order_no": "st-1", "price_currency": "USD",
                   "order_amount": "8.00", "auth_code": code,
                   "store_no": store, "terminal_sn": terminal}),
        )
        .await
        .ok();
    assert_eq!(s(&sale, "store_no"), store);
    assert_eq!(s(&sale, "terminal_sn"), terminal);
    // The refund names neither: it inherits the sale's.
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "st-1", "merchant_order_no": "st-r",
               "price_currency": "USD", "order_amount": "2.00"}),
    )
    .await
    .ok();
    // An order without store has none.
    t.mpm_order("st-2", "1.00", None).await;

    for no in ["st-1", "st-r"] {
        let entry = t.ledger_entry(no).await;
        assert_eq!(entry["store_no"], json!(store), "{entry}");
        assert_eq!(entry["terminal_sn"], json!(terminal), "{entry}");
    }
    let plain = t.ledger_entry("st-2").await;
    assert_eq!(plain["store_no"], Value::Null, "{plain}");
    assert_eq!(plain["terminal_sn"], Value::Null, "{plain}");
    let refund = t
        .call("order.refund.query", json!({ "merchant_order_no": "st-r" }))
        .await
        .ok();
    assert_eq!(s(&refund, "store_no"), store);
    assert_eq!(s(&refund, "terminal_sn"), terminal);
}

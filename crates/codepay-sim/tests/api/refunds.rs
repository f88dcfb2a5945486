//! Refunds: totals, asynchronous settlement, notifications.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

#[actix_web::test]
async fn partial_refunds_add_up_to_at_most_the_paid_amount() {
    let t = TestSim::start(1).await;
    let sale = t.paid_order("r-sale", "10.00").await;
    let r1 = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-1",
                   "price_currency": "USD", "order_amount": "3.00"}),
        )
        .await
        .ok();
    assert_eq!(s(&r1, "orig_trans_no"), sale);
    assert_eq!(s(&r1, "trans_amount"), "3.00");
    // Older samples name the amount `trans_amount`; the original can be named by trans_no.
    t.call(
        "order.refund.submit",
        json!({"orig_trans_no": sale, "merchant_order_no": "r-2",
               "price_currency": "USD", "trans_amount": "2.5"}),
    )
    .await
    .ok();
    let too_much = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-3",
                   "price_currency": "USD", "order_amount": "4.51"}),
        )
        .await;
    assert_eq!(too_much.code, "E04130", "{}", too_much.msg);
    let above_order = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-4",
                   "price_currency": "USD", "order_amount": "10.01"}),
        )
        .await;
    assert_eq!(above_order.code, "E04126");
    // The rest, exactly, is fine.
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-5",
               "price_currency": "USD", "order_amount": "4.50"}),
    )
    .await
    .ok();
    let one_cent = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-6",
                   "price_currency": "USD", "order_amount": "0.01"}),
        )
        .await;
    assert_eq!(one_cent.code, "E04130");
    let d = t.query("r-sale").await;
    assert_eq!(s(&d, "refund_amount"), "10.00");
    // A refund number is a merchant_order_no like any other: reuse is refused.
    let reuse = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "r-sale", "merchant_order_no": "r-1",
                   "price_currency": "USD", "order_amount": "0.01"}),
        )
        .await;
    assert_eq!(reuse.code, "E04101");
}

#[actix_web::test]
async fn refund_query_shows_0_then_2_and_the_refund_is_notified() {
    let t = TestSim::start(1).await;
    let rx = Receiver::start(0).await;
    t.paid_order("rq-sale", "8.00").await;
    let r = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "rq-sale", "merchant_order_no": "rq-1",
                   "price_currency": "USD", "order_amount": "8.00", "notify_url": rx.url}),
        )
        .await
        .ok();
    assert!(
        r.get("trans_status").is_none(),
        "submit answers no status: query it"
    );
    let q = t
        .call("order.refund.query", json!({ "merchant_order_no": "rq-1" }))
        .await
        .ok();
    assert_eq!(i(&q, "trans_status"), 0);
    assert_eq!(i(&q, "trans_type"), 3);
    // Refunds are not sales: order.query does not find them.
    let wrong = t
        .call("order.query", json!({ "merchant_order_no": "rq-1" }))
        .await;
    assert_eq!(wrong.code, "E04111");
    // Compress time: the 5 s settlement now takes 5 ms.
    let (status, clock) = t.control("/sim/clock", json!({ "time_scale": 1000 })).await;
    assert_eq!((status, clock["time_scale"].as_u64()), (200, Some(1000)));
    let got = rx.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(i(&got[0], "trans_type"), 3);
    assert_eq!(i(&got[0], "trans_status"), 2);
    assert_eq!(s(&got[0], "orig_merchant_order_no"), "rq-sale");
    let q = t
        .call(
            "order.refund.query",
            json!({ "trans_no": s(&r, "trans_no") }),
        )
        .await
        .ok();
    assert_eq!(i(&q, "trans_status"), 2);
    assert_eq!(s(&q, "order_amount"), "8.00");
}

#[actix_web::test]
async fn refunds_of_missing_or_unpaid_orders_are_refused() {
    let t = TestSim::start(1).await;
    let by_no = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "ghost", "merchant_order_no": "x-1",
                   "price_currency": "USD", "order_amount": "1.00"}),
        )
        .await;
    assert_eq!(by_no.code, "E04111");
    let by_trans = t
        .call(
            "order.refund.submit",
            json!({"orig_trans_no": "2000", "merchant_order_no": "x-2",
                   "price_currency": "USD", "order_amount": "1.00"}),
        )
        .await;
    assert_eq!(by_trans.code, "E04110");
    t.mpm_order("unpaid", "1.00", None).await;
    let unpaid = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "unpaid", "merchant_order_no": "x-3",
                   "price_currency": "USD", "order_amount": "1.00"}),
        )
        .await;
    assert_eq!(unpaid.code, "E04127");
    t.paid_order("paid-usd", "1.00").await;
    let currency = t
        .call(
            "order.refund.submit",
            json!({"orig_merchant_order_no": "paid-usd", "merchant_order_no": "x-4",
                   "price_currency": "EUR", "order_amount": "1.00"}),
        )
        .await;
    assert_eq!(currency.code, "E04128");
    // A refunded order cannot be revoked any more.
    t.call(
        "order.refund.submit",
        json!({"orig_merchant_order_no": "paid-usd", "merchant_order_no": "x-5",
               "price_currency": "USD", "order_amount": "0.50"}),
    )
    .await
    .ok();
    let revoke = t
        .call("order.revoker", json!({ "merchant_order_no": "paid-usd" }))
        .await;
    assert_eq!(revoke.code, "E04131");
}

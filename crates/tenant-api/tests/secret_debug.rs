//! Request and response types that carry credentials never print them through `Debug` (a
//! `tracing` field or a panic message would otherwise put them into the logs).

use tenant_api::routes::payments::CreatePaymentRequest;

#[test]
fn cpm_request_debug_hides_the_auth_code() {
    let body: CreatePaymentRequest = serde_json::from_value(serde_json::json!({
        "mode": "cpm",
        "amount": 1250,
        "merchant_order_id": "order-1",
        "wallet": "alipay",
        "auth_code": "281234567890123456"
    }))
    .expect("valid body");
    let shown = format!("{body:?}");
    assert!(!shown.contains("281234567890123456"), "{shown}");
    assert!(shown.contains("auth_code"), "{shown}");
    assert!(shown.contains("order-1"), "{shown}");
}

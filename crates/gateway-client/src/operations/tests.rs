use super::*;
use serde_json::json;

fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

fn payment() -> PaymentFields {
    PaymentFields {
        merchant: MerchantRef::new("302100041048"),
        merchant_order_no: "PF01HZY".into(),
        pay_method_id: "Alipay".into(),
        amount: Money::new(3450, usd()).unwrap(),
        description: "Coffee & cake".into(),
        notify_url: Some("https://payfac.example/callbacks/codepay".into()),
        attach: None,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn mpm_request_sends_amount_as_exact_major_string() {
    let op = MpmCreate {
        payment: payment(),
        expires_secs: Some(300),
    };
    let f = op.fields();
    assert_eq!(f["order_amount"], json!("34.50"));
    assert_eq!(f["price_currency"], json!("USD"));
    assert_eq!(f["expires"], json!("300"));
    assert!(!f.contains_key("attach"), "absent fields are not sent");
    let data =
        obj(json!({"trans_no": "T1", "qrcode_url": "https://qr/x", "trans_amount": "34.50"}));
    let r = op.parse(&data).unwrap();
    assert_eq!(r.trans_amount, Some(Money::new(3450, usd()).unwrap()));
    assert_eq!(
        op.parse(&obj(json!({"trans_no": "T1"}))).unwrap_err().field,
        "qrcode_url"
    );
}

#[test]
fn cpm_sends_auth_code_but_never_debug_prints_it() {
    let op = CpmSubmit {
        payment: payment(),
        auth_code: Secret::new("287654321098765432"),
    };
    assert_eq!(op.fields()["auth_code"], json!("287654321098765432"));
    assert!(!format!("{op:?}").contains("287654321098765432"));
    let data = obj(json!({"trans_no": "T1", "trans_status": 2, "paid_amount": "34.50"}));
    let r = op.parse(&data).unwrap();
    assert_eq!(r.trans_status, TransStatus::Succeeded);
    assert_eq!(r.paid_amount.map(|m| m.minor()), Some(3450));
}

#[test]
fn refund_sends_order_amount_and_reads_either_amount_field() {
    let op = RefundSubmit {
        merchant: MerchantRef::new("302100041048"),
        original: OrderRef::TransNo("T1".into()),
        merchant_order_no: "PF01R".into(),
        amount: Money::new(1000, usd()).unwrap(),
        description: "return".into(),
        notify_url: None,
    };
    let f = op.fields();
    assert_eq!(f["order_amount"], json!("10.00"));
    assert_eq!(f["orig_trans_no"], json!("T1"));
    assert!(!f.contains_key("trans_amount") && !f.contains_key("orig_merchant_order_no"));
    for field in ["order_amount", "trans_amount"] {
        let r = op
            .parse(&obj(json!({"trans_no": "R1", field: "10.00"})))
            .unwrap();
        assert_eq!(r.amount.map(|m| m.minor()), Some(1000), "{field}");
    }
}

#[test]
fn query_reads_amounts_in_the_stated_currency_and_refuses_bad_ones() {
    let op = OrderQuery {
        merchant: MerchantRef::new("m"),
        order: OrderRef::MerchantOrderNo("PF01".into()),
        currency: None,
    };
    assert_eq!(op.fields()["merchant_order_no"], json!("PF01"));
    let r = op
        .parse(&obj(
            json!({"trans_no": "T", "trans_status": "1", "price_currency": "JPY",
            "order_amount": "20", "trans_error_code": "E1"}),
        ))
        .unwrap();
    assert_eq!(
        r.order_amount.map(|m| (m.minor(), m.currency().code())),
        Some((20, "JPY"))
    );
    assert_eq!(r.trans_status, TransStatus::Failed);
    let amount_without_currency =
        obj(json!({"trans_no": "T", "trans_status": 2, "order_amount": "1.00"}));
    assert_eq!(
        op.parse(&amount_without_currency).unwrap_err().field,
        "order_amount"
    );
    let too_precise = obj(
        json!({"trans_no": "T", "trans_status": 2, "price_currency": "USD", "order_amount": "1.001"}),
    );
    assert_eq!(op.parse(&too_precise).unwrap_err().field, "order_amount");
}

#[test]
fn the_fee_is_read_when_there_and_readable_and_never_fails_the_answer() {
    let op = OrderQuery {
        merchant: MerchantRef::new("m"),
        order: OrderRef::MerchantOrderNo("PF01".into()),
        currency: None,
    };
    let answer = |fee: Value| {
        let mut d = obj(
            json!({"trans_no": "T", "trans_status": 2, "price_currency": "JPY",
            "order_amount": "1000", "paid_amount": "1000"}),
        );
        if !fee.is_null() {
            d.insert("trans_fee_c".into(), fee);
        }
        op.parse(&d).unwrap()
    };
    assert_eq!(
        answer(json!("6"))
            .trans_fee_c
            .map(|m| (m.minor(), m.currency().code())),
        Some((6, "JPY"))
    );
    assert_eq!(answer(json!(6)).trans_fee_c.map(|m| m.minor()), Some(6));
    assert_eq!(answer(Value::Null).trans_fee_c, None);
    for bad in [json!("6.5"), json!("six"), json!(true), json!("-1")] {
        let r = answer(bad.clone());
        assert_eq!(r.trans_fee_c, None, "{bad}");
        assert_eq!(
            r.paid_amount.map(|m| m.minor()),
            Some(1000),
            "{bad}: the rest is read"
        );
        assert_eq!(r.trans_status, TransStatus::Succeeded);
    }
}

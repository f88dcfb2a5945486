use super::*;
use crate::test_support::{app_key, gateway_key};
use serde_json::json;

fn signed(v: Value) -> Vec<u8> {
    let mut m = v.as_object().cloned().unwrap();
    sign_message(&mut m, gateway_key());
    serde_json::to_vec(&m).unwrap()
}

fn read(body: &[u8]) -> ResponseVerdict {
    read_response(body, &gateway_key().public_key(), false)
}

#[test]
fn request_carries_common_fields_and_verifies() {
    let mut merchant = MerchantRef::new("302100041048");
    merchant.store_no = Some("S1".into());
    let fields = json!({"merchant_order_no": "PF1"})
        .as_object()
        .cloned()
        .unwrap();
    let req = build_request(
        "wz1",
        "order.query",
        &merchant,
        fields,
        1_700_000_000_000,
        app_key(),
    );
    for (k, v) in [
        ("app_id", "wz1"),
        ("format", "JSON"),
        ("charset", "UTF-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("timestamp", "1700000000000"),
        ("method", "order.query"),
        ("merchant_no", "302100041048"),
        ("store_no", "S1"),
        ("merchant_order_no", "PF1"),
    ] {
        assert_eq!(req[k], json!(v), "{k}");
    }
    assert!(!req.contains_key("terminal_sn"));
    assert_eq!(verify_message(&req, &app_key().public_key()), Ok(()));
}

#[test]
fn signed_success_with_data_as_string_or_object() {
    let body = signed(
        json!({"code": "0", "msg": "success", "psn": "P1", "data": "{\"trans_no\":\"T1\"}"}),
    );
    let ResponseVerdict::Success { psn, data } = read(&body) else {
        panic!("{:?}", read(&body))
    };
    assert_eq!(psn.as_deref(), Some("P1"));
    assert_eq!(data["trans_no"], json!("T1"));
    let body = signed(json!({"code": "0", "msg": "success", "data": {"trans_no": "T2"}}));
    assert!(
        matches!(read(&body), ResponseVerdict::Success { data, .. } if data["trans_no"] == json!("T2"))
    );
}

#[test]
fn unsigned_success_is_unknown_unless_configured() {
    let body = serde_json::to_vec(&json!({"code": "0", "msg": "success", "data": "{}"})).unwrap();
    assert_eq!(
        read(&body),
        ResponseVerdict::Unknown(UnknownReason::UnsignedSuccess)
    );
    let lenient = read_response(&body, &gateway_key().public_key(), true);
    assert!(matches!(lenient, ResponseVerdict::Success { .. }));
}

#[test]
fn unsigned_or_signed_error_is_declined_but_badly_signed_error_is_unknown() {
    let unsigned =
        serde_json::to_vec(&json!({"code": "E04111", "msg": "order not found"})).unwrap();
    let declined = ResponseVerdict::Declined {
        code: "E04111".into(),
        msg: "order not found".into(),
    };
    assert_eq!(read(&unsigned), declined);
    assert_eq!(
        read(&signed(json!({"code": "E04111", "msg": "order not found"}))),
        declined
    );
    let mut forged: Map<String, Value> =
        serde_json::from_slice(&signed(json!({"code": "E04111", "msg": "x"}))).unwrap();
    forged.insert("msg".into(), json!("y"));
    assert_eq!(
        read(&serde_json::to_vec(&forged).unwrap()),
        ResponseVerdict::Unknown(UnknownReason::BadSignature)
    );
}

#[test]
fn success_signed_by_another_key_is_unknown() {
    let mut m = json!({"code": "0", "msg": "success", "data": "{}"})
        .as_object()
        .cloned()
        .unwrap();
    sign_message(&mut m, app_key());
    assert_eq!(
        read(&serde_json::to_vec(&m).unwrap()),
        ResponseVerdict::Unknown(UnknownReason::BadSignature)
    );
}

#[test]
fn garbage_is_unparsable() {
    for body in [&b"<html>502</html>"[..], b"[]", b"{\"msg\":\"no code\"}"] {
        assert!(matches!(
            read(body),
            ResponseVerdict::Unknown(UnknownReason::Unparsable(_))
        ));
    }
    let bad_data = signed(json!({"code": "0", "msg": "success", "data": "{not json"}));
    assert!(matches!(
        read(&bad_data),
        ResponseVerdict::Unknown(UnknownReason::Unparsable(_))
    ));
}

//! `parse_notification` and the `payfac codepay canonical|sign|verify` helpers.

use domain::TransStatus;
use gateway_client::{NotificationError, cli, parse_notification, sign_message};
use serde_json::{Map, Value, json};
use test_support::gateway_key as gateway;

fn notification() -> Map<String, Value> {
    json!({
        "method": "payment.result.notify", "http_request_id": "H1", "merchant_no": "302100041048",
        "merchant_order_no": "PF01", "trans_no": "T1", "trans_type": 1, "trans_status": 2,
        "price_currency": "USD", "order_amount": "34.50", "trans_amount": "34.50",
        "trans_end_time": "2026-11-26 05:00:00", "pay_method_id": "Alipay", "sign_type": "RSA2"
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn body(msg: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(msg).unwrap()
}

#[test]
fn signed_notification_is_read() {
    let mut msg = notification();
    sign_message(&mut msg, gateway());
    let n = parse_notification(&body(&msg), &gateway().public_key()).unwrap();
    assert_eq!(n.trans_status, TransStatus::Succeeded);
    assert_eq!(n.order_amount.map(|m| m.minor()), Some(3450));
    assert_eq!(n.merchant_order_no.as_deref(), Some("PF01"));
    assert_eq!(n.raw["http_request_id"], json!("H1"));
}

#[test]
fn forged_notifications_are_told_apart_from_malformed_ones() {
    let key = gateway().public_key();
    let unsigned = notification();
    let err = parse_notification(&body(&unsigned), &key).unwrap_err();
    assert_eq!(err, NotificationError::Unsigned);
    assert!(err.is_forgery());

    let mut tampered = notification();
    sign_message(&mut tampered, gateway());
    tampered.insert("order_amount".into(), json!("0.01"));
    let err = parse_notification(&body(&tampered), &key).unwrap_err();
    assert_eq!(err, NotificationError::BadSignature);
    assert!(err.is_forgery());

    let other_key = test_support::other_key();
    let mut wrong = notification();
    sign_message(&mut wrong, other_key);
    assert_eq!(
        parse_notification(&body(&wrong), &key).unwrap_err(),
        NotificationError::BadSignature
    );

    let mut malformed = notification();
    malformed.insert("order_amount".into(), json!("34.505"));
    sign_message(&mut malformed, gateway());
    let err = parse_notification(&body(&malformed), &key).unwrap_err();
    assert!(
        matches!(
            err,
            NotificationError::InvalidField {
                field: "order_amount",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_forgery());

    assert!(matches!(
        parse_notification(b"success", &key),
        Err(NotificationError::NotJson(_))
    ));
    assert!(matches!(
        parse_notification(b"[1]", &key),
        Err(NotificationError::NotJson(_))
    ));
}

#[test]
fn cli_canonical_sign_verify_round_trip() {
    let input =
        r#"{"method":"order.query","sign":"old","sign_type":"RSA2","empty":"","n":5,"a":"x y&z"}"#;
    assert_eq!(
        cli::canonical(input).unwrap(),
        "a=x y&z&method=order.query&n=5&sign_type=RSA2"
    );
    let private_pem = gateway().to_pkcs8_pem();
    let public_pem = gateway().public_key().to_pem();
    let signed = cli::sign(input, private_pem.expose()).unwrap();
    assert!(
        signed.starts_with(r#"{"method":"order.query","sign":""#),
        "field order kept: {signed}"
    );
    assert_eq!(cli::verify(&signed, &public_pem), Ok(true));
    assert_eq!(cli::verify(input, &public_pem), Ok(false));
    assert_eq!(
        cli::verify(&signed.replace("x y&z", "x y&Z"), &public_pem),
        Ok(false)
    );
    assert_eq!(
        cli::canonical("[1]"),
        Err(gateway_client::CliError::NotObject)
    );
    assert!(matches!(
        cli::canonical("{"),
        Err(gateway_client::CliError::Json(_))
    ));
    assert!(matches!(
        cli::sign(input, "garbage"),
        Err(gateway_client::CliError::Key(_))
    ));
}

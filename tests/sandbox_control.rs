//! In sandbox mode the simulator's control API is mounted at `/sandbox/codepay/sim/…` on
//! payfac's own listener. Wallet actions stay open; faults, the clock, apps and merchants need
//! the operator key, and bad bodies are a 400 in the API's error envelope.

use crate::support::payfac::{Backend, Payfac};
use reqwest::Method;
use serde_json::{Value, json};

async fn post(payfac: &Payfac, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = payfac
        .http
        .post(format!("{}/sandbox/codepay{path}", payfac.base))
        .json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    for field in ["type", "message", "request_id"] {
        assert!(body["error"].get(field).is_some(), "{field} in {body}");
    }
}

#[tokio::test]
async fn faults_clock_apps_and_merchants_need_the_operator_key() {
    let payfac = Payfac::start(Backend::Embedded, &[]).await;
    let fault = json!({"method": "cscanb.pay.getqrcode", "kind": "timeout", "count": 1});
    let (status, body) = post(&payfac, "/sim/faults", None, fault.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_envelope(&body, "missing_api_key");
    let (status, body) = post(&payfac, "/sim/faults", Some("op_not_a_key"), fault.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (_, merchant_key) = payfac.merchant_with_key().await;
    let (status, body) = post(&payfac, "/sim/faults", Some(&merchant_key), fault.clone()).await;
    assert_eq!(status, 403, "{body}");
    for (path, body) in [
        ("/sim/apps", json!({"public_key": "x"})),
        ("/sim/merchants", json!({})),
        ("/sim/clock", json!({"advance_ms": 1000})),
    ] {
        let (status, answer) = post(&payfac, path, None, body).await;
        assert_eq!(status, 401, "{path}: {answer}");
    }
    for path in ["/sim/faults", "/sim/clock", "/sim/orders", "/sim/apps"] {
        let resp = payfac
            .http
            .get(format!("{}/sandbox/codepay{path}", payfac.base))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 401, "GET {path}");
    }
    let op = payfac.operator_key.clone();
    let (status, body) = post(&payfac, "/sim/faults", Some(&op), fault).await;
    assert!((200..300).contains(&status), "{status} {body}");
    // Wallet actions stay open.
    let code = payfac.auth_code("approve", None).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn a_bad_wallet_body_is_a_400_in_the_error_envelope() {
    let payfac = Payfac::start(Backend::Embedded, &[]).await;
    let (status, body) = post(&payfac, "/sim/mpm/pay", None, json!({"qr_code": null})).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_request");
    let op = payfac.operator_key.clone();
    let (status, body) = post(&payfac, "/sim/faults", Some(&op), json!({"kind": 7})).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_request");
    // The operator API itself is unaffected.
    let (status, _) = payfac.call(Method::GET, "/v1/merchants", &op, None).await;
    assert_eq!(status, 200);
}

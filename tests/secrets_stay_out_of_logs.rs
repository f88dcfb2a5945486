//! Keys, tokens, auth codes and the master key never reach the logs, while the logs carry the
//! request, merchant and payment ids.

use crate::support::{Backend, Payfac};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_the_logs() {
    let payfac = Payfac::start(Backend::PostgresRedis, &[]).await;
    let (merchant, sk) = payfac.merchant_with_key().await;
    payfac.paid_mpm(&sk, "secret-1").await;
    let auth_code = payfac.auth_code("approve", None).await;
    let (status, cpm) = payfac
        .call(
            Method::POST,
            "/v1/payments",
            &sk,
            Some(json!({"mode": "cpm", "amount": 500, "currency": "USD",
            "merchant_order_id": "secret-2", "wallet": "alipay", "auth_code": auth_code})),
        )
        .await;
    assert_eq!(status, 201, "{cpm}");
    let (status, token) = payfac
        .call(
            Method::POST,
            "/v1/tokens",
            &sk,
            Some(json!({"scopes": ["payments:read"]})),
        )
        .await;
    assert!(status == 200 || status == 201, "{token}");
    let (status, _) = payfac
        .call(
            Method::GET,
            &format!("/v1/merchants/{merchant}"),
            &payfac.operator_key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    // a wrong key is logged as a refusal, never echoed
    let (status, _) = payfac
        .call(
            Method::GET,
            "/v1/payments",
            "sk_wrong_secret_value_123",
            None,
        )
        .await;
    assert_eq!(status, 401);

    let logs = payfac.logs();
    assert!(logs.len() > 1_000, "the flows were logged at debug level");
    assert!(
        logs.lines().any(|l| l.contains("\"request_id\":\"req_")
            && l.contains(&format!("\"merchant_id\":\"{merchant}\""))),
        "request logs carry request_id and merchant_id"
    );
    assert!(
        logs.contains("\"payment_id\":\"pay_"),
        "request logs carry payment_id"
    );
    let mut secrets = vec![
        payfac.operator_key.clone(),
        sk.clone(),
        auth_code.clone(),
        "sk_wrong_secret_value_123".to_owned(),
        test_support::TEST_MASTER_KEY.to_owned(),
        "BEGIN PRIVATE KEY".to_owned(),
    ];
    if let Some(t) = token["token"].as_str() {
        secrets.push(t.to_owned());
    }
    for secret in secrets {
        assert!(
            !logs.contains(&secret),
            "secret {secret:.12}… found in the logs"
        );
    }
}

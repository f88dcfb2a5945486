//! A merchant's webhook endpoint receives signed payment and refund events from the real binary.

use crate::support::{Backend, Behaviour, Payfac, Receiver};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use webhook_fanout::{WebhookSecret, verify};

async fn webhook_reaches_the_endpoint(backend: Backend, extra: &[(&str, &str)]) {
    let payfac = Payfac::start(backend, extra).await;
    let (_, sk) = payfac.merchant_with_key().await;
    let rx = Receiver::start();
    let url = rx.url("/hooks", Behaviour::Ok);
    let (status, endpoint) = payfac
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            &sk,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = WebhookSecret::parse(endpoint["secret"].as_str().expect("secret shown once"))
        .expect("whsec");

    let payment = payfac.mpm_payment(&sk, "hook-1", 2000, "wechat_pay").await;
    payfac.pay_in_sandbox(&payment).await;

    let mut delivered: Option<Value> = None;
    for _ in 0..200 {
        let found = rx
            .hits("/hooks", "payment.succeeded")
            .into_iter()
            .find_map(|h| {
                let event: Value = serde_json::from_slice(&h.body).ok()?;
                Some((h.id, h.timestamp, h.signature, h.body, event))
            });
        if let Some((id, ts, sig, body, event)) = found {
            let now = chrono::Utc::now().timestamp();
            verify(
                std::slice::from_ref(&secret),
                &id,
                &ts,
                &sig,
                &body,
                now,
                300,
            )
            .expect("Standard Webhooks signature verifies");
            assert_eq!(event["id"], id.as_str(), "webhook-id is the event id");
            delivered = Some(event);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = delivered.expect("payment.succeeded delivered to the endpoint");
    assert_eq!(event["data"]["id"], payment["id"]);
    assert_eq!(event["data"]["status"], "succeeded");
    assert_eq!(event["data"]["amount"], 2000);

    let (status, attempts) = payfac
        .call(
            Method::GET,
            &format!("/v1/events/{}/attempts", event["id"].as_str().expect("id")),
            &sk,
            None,
        )
        .await;
    assert_eq!(status, 200, "{attempts}");
    assert!(
        !attempts["data"].as_array().expect("list").is_empty(),
        "the attempt is logged: {attempts}"
    );

    let metrics = payfac
        .http
        .get(format!("{}/metrics", payfac.base))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("payfac_webhook_deliveries_total{outcome=\"delivered\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_webhook_reaches_the_merchant_endpoint_embedded() {
    webhook_reaches_the_endpoint(Backend::Embedded, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_webhook_reaches_the_merchant_endpoint_postgres_redis() {
    // Production defaults refuse http and loopback receivers; this test's receiver is both.
    webhook_reaches_the_endpoint(
        Backend::PostgresRedis,
        &[
            ("PAYFAC_WEBHOOK_ALLOW_HTTP", "true"),
            ("PAYFAC_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
    )
    .await;
}

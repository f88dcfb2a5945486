//! Issue 12 "hold under abuse", fan-out amplification: a merchant's endpoints and an event's
//! redeliveries are capped (the defaults the server registers: 20 endpoints, 10 redeliveries).

mod support;

use reqwest::Method;
use serde_json::json;
use store::Database;
use support::TestApp;
use test_support::on_both_backends;
use test_support::webhooks::payment_event;

async fn the_21st_endpoint_is_refused_with_a_documented_code(db: Database) {
    let api = TestApp::start(db.clone()).await;
    let (_, sk) = api.merchant_with_key().await;
    let (_, sk_other) = api.merchant_with_key().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (st, ep) = api
            .post(
                "/v1/webhook-endpoints",
                &sk,
                None,
                json!({"url": format!("https://hooks.example/{i}")}),
            )
            .await;
        assert_eq!(st, 201, "endpoint {i}: {ep}");
        ids.push(ep["id"].as_str().unwrap().to_owned());
    }
    let (st, body) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            json!({"url": "https://hooks.example/21"}),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (422, Some("webhook_endpoint_limit_reached")),
        "{body}"
    );
    // the cap is per merchant, and a deleted endpoint frees its place
    let (st, _) = api
        .post(
            "/v1/webhook-endpoints",
            &sk_other,
            None,
            json!({"url": "https://hooks.example/other"}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = api
        .json(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{}", ids[0]),
            &sk,
            None,
        )
        .await;
    assert!((200..300).contains(&st), "delete: {st}");
    let (st, body) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            json!({"url": "https://hooks.example/again"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    api.stop().await;
}

async fn an_event_is_redelivered_at_most_10_times(db: Database) {
    let api = TestApp::start(db.clone()).await;
    let (m, sk) = api.merchant_with_key().await;
    let (st, _) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            json!({"url": "https://hooks.example/hook"}),
        )
        .await;
    assert_eq!(st, 201);
    let (ev, _) = payment_event(&db, &m, "pay_redeliver_cap").await;
    let path = format!("/v1/events/{}/redeliver", ev.id);
    for i in 0..10 {
        let (st, body) = api.json(Method::POST, &path, &sk, None).await;
        assert_eq!(st, 202, "redelivery {i}: {body}");
    }
    let (st, body) = api.json(Method::POST, &path, &sk, None).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (422, Some("redelivery_limit_reached")),
        "{body}"
    );
    api.stop().await;
}

on_both_backends!(
    the_21st_endpoint_is_refused_with_a_documented_code,
    an_event_is_redelivered_at_most_10_times,
);

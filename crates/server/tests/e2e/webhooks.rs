//! A merchant's webhook endpoint receives signed payment and refund events from the real binary.

use crate::harness::{Backend, Payfac};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webhook_fanout::{WebhookSecret, verify};

/// What the receiver saw: headers and body of every request.
type Inbox = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

fn start_receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let seen = inbox.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/hooks",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    seen.lock().expect("lock").push((
                        header("webhook-id"),
                        header("webhook-timestamp"),
                        header("webhook-signature"),
                        body.to_vec(),
                    ));
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (url, inbox)
}

async fn webhook_reaches_the_endpoint(backend: Backend, extra: &[(&str, &str)]) {
    let payfac = Payfac::start(backend, extra).await;
    let (_, sk) = payfac.merchant_with_key().await;
    let (url, inbox) = start_receiver();
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

    let (status, payment) = payfac
        .call(
            Method::POST,
            "/v1/payments",
            &sk,
            Some(json!({"mode": "mpm", "amount": 2000, "currency": "USD",
            "merchant_order_id": "hook-1", "wallet": "wechat_pay"})),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    payfac
        .http
        .post(format!("{}/sandbox/codepay/sim/mpm/pay", payfac.base))
        .json(&json!({"qr_code": payment["qr_code"]}))
        .send()
        .await
        .expect("pay");

    let mut delivered: Option<Value> = None;
    for _ in 0..200 {
        let found = inbox
            .lock()
            .expect("lock")
            .iter()
            .find_map(|(id, ts, sig, body)| {
                let event: Value = serde_json::from_slice(body).ok()?;
                (event["type"] == "payment.succeeded")
                    .then(|| (id.clone(), ts.clone(), sig.clone(), body.clone(), event))
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

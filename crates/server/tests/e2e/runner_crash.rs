//! A worker process killed mid-delivery (SIGKILL while its webhook request is open, lease held):
//! another process makes the delivery after the lease, and once the receiver has acknowledged
//! it, it is never sent again.

use crate::harness::{Backend, Payfac, TEST_MASTER_KEY};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every request the receiver saw: (`webhook-id`, event type, answered).
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A receiver that never answers its first `payment.succeeded` request (the one the doomed
/// process sends) and acknowledges every later request with 204.
fn start_receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let server = HttpServer::new(move || {
        let log = log.clone();
        App::new().route(
            "/hooks",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let log = log.clone();
                async move {
                    let id = req
                        .headers()
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let kind = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let hang = {
                        let mut log = log.lock().expect("lock");
                        let first = kind == "payment.succeeded"
                            && !log.iter().any(|(_, k, _)| k == "payment.succeeded");
                        log.push((id, kind, !first));
                        first
                    };
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(2)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (url, seen)
}

fn succeeded_requests(seen: &Seen) -> Vec<(String, bool)> {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|(_, kind, _)| kind == "payment.succeeded")
        .map(|(id, _, answered)| (id.clone(), *answered))
        .collect()
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn killed_mid_delivery(backend: Backend) {
    let postgres = matches!(backend, Backend::PostgresRedis);
    // A short lease so the test waits seconds, not the production 60 s; the request timeout
    // stays below it (the lease must outlive any request).
    let tuning = [
        ("PAYFAC_WEBHOOK_ALLOW_HTTP", "true"),
        ("PAYFAC_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("PAYFAC_WEBHOOK_TIMEOUT", "3s"),
        ("PAYFAC_WEBHOOK_LEASE", "6s"),
        ("PAYFAC_WEBHOOK_RETRY_SCHEDULE", "0s,1s,1s,1s,1s"),
    ];
    let mut first = Payfac::start(backend, &tuning).await;
    let (_, sk) = first.merchant_with_key().await;
    let (url, seen) = start_receiver();
    let (status, endpoint) = first
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            &sk,
            Some(json!({"url": url, "events": ["payment.succeeded"]})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let (status, payment) = first
        .call(
            Method::POST,
            "/v1/payments",
            &sk,
            Some(json!({"mode": "mpm", "amount": 1250, "currency": "USD",
                "merchant_order_id": "crash-1", "wallet": "wechat_pay"})),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    first
        .http
        .post(format!("{}/sandbox/codepay/sim/mpm/pay", first.base))
        .json(&json!({"qr_code": payment["qr_code"]}))
        .send()
        .await
        .expect("pay");

    wait_for(
        "the first process's delivery request",
        Duration::from_secs(20),
        || !succeeded_requests(&seen).is_empty(),
    )
    .await;
    let killed_at = Instant::now();
    first.kill_hard();
    let event_id = succeeded_requests(&seen)[0].0.clone();

    // The same database (and sandbox state), a new process: it must wait out the dead
    // process's lease, then deliver.
    let data_dir = first.data_dir().display().to_string();
    let mut env: Vec<(&str, &str)> = tuning.to_vec();
    env.push(("PAYFAC_DATABASE_URL", &first.database_url));
    env.push(("PAYFAC_DATA_DIR", &data_dir));
    let redis = std::env::var("PAYFAC_TEST_REDIS_URL").unwrap_or_default();
    if postgres {
        env.push(("PAYFAC_REDIS_URL", &redis));
        env.push(("PAYFAC_MASTER_KEY", TEST_MASTER_KEY));
    }
    let second = Payfac::start(Backend::Embedded, &env).await;
    wait_for(
        "the redelivery by the second process",
        Duration::from_secs(30),
        || succeeded_requests(&seen).len() >= 2,
    )
    .await;
    let waited = killed_at.elapsed();
    let requests = succeeded_requests(&seen);
    assert_eq!(
        requests[1],
        (event_id.clone(), true),
        "same event, answered"
    );
    assert!(
        waited >= Duration::from_secs(3),
        "re-sent after {waited:?}: before the dead process's lease could have run out"
    );

    // Acknowledged: never sent again, however long we wait (several leases and retry steps).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let requests = succeeded_requests(&seen);
    assert_eq!(
        requests.len(),
        2,
        "an acknowledged delivery was sent again: {requests:?}\n{}",
        second.logs()
    );
    let (status, attempts) = second
        .call(
            Method::GET,
            &format!("/v1/events/{event_id}/attempts"),
            &sk,
            None,
        )
        .await;
    assert_eq!(status, 200, "{attempts}");
    let list = attempts["data"].as_array().expect("attempts");
    assert_eq!(list.len(), 1, "one recorded attempt: {attempts}");
    assert!(
        list[0]["http_status"] == 204 || list[0]["status"] == 204,
        "{attempts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_killed_mid_delivery_is_taken_over_after_its_lease_embedded() {
    killed_mid_delivery(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_killed_mid_delivery_is_taken_over_after_its_lease_postgres_redis() {
    killed_mid_delivery(Backend::PostgresRedis).await;
}

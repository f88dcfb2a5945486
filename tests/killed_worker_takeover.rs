//! A worker process killed mid-delivery (SIGKILL while its webhook request is open, lease held):
//! another process makes the delivery after the lease, and once the receiver has acknowledged
//! it, it is never sent again.

use crate::support::{Backend, Behaviour, Payfac, Receiver, wait_for};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

fn succeeded_requests(rx: &Receiver) -> Vec<String> {
    rx.hits("/hooks", "payment.succeeded")
        .into_iter()
        .map(|h| h.id)
        .collect()
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
    // The first request (the doomed process's) is never answered; later ones get 204.
    let seen = Receiver::start();
    let url = seen.url("/hooks", Behaviour::HangFirst);
    let (status, endpoint) = first
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            &sk,
            Some(json!({"url": url, "events": ["payment.succeeded"]})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let payment = first.mpm_payment(&sk, "crash-1", 1250, "wechat_pay").await;
    first.pay_in_sandbox(&payment).await;

    wait_for(
        "the first process's delivery request",
        Duration::from_secs(20),
        || !succeeded_requests(&seen).is_empty(),
    )
    .await;
    let killed_at = Instant::now();
    first.kill_hard();
    let event_id = succeeded_requests(&seen)[0].clone();

    // The same database (and sandbox state), a new process: it must wait out the dead
    // process's lease, then deliver.
    let data_dir = first.data_dir().display().to_string();
    let mut env: Vec<(&str, &str)> = tuning.to_vec();
    env.push(("PAYFAC_DATABASE_URL", &first.database_url));
    env.push(("PAYFAC_DATA_DIR", &data_dir));
    let redis;
    if postgres {
        redis = test_support::redis_url();
        env.push(("PAYFAC_REDIS_URL", &redis));
        env.push(("PAYFAC_MASTER_KEY", test_support::TEST_MASTER_KEY));
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
    assert_eq!(requests[1], event_id, "the same event, re-sent");
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

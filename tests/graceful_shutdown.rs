//! SIGTERM while traffic flows: readiness turns false at once, routed requests are answered and
//! the in-flight POS request completes.

use crate::support::{Backend, Payfac};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// SIGTERM with traffic flowing: readiness turns false at once, the test's load balancer stops
/// routing, and every request it did route is answered; the in-flight POS request completes.
async fn sigterm_during_a_stream_of_requests(backend: Backend) {
    let mut payfac = Payfac::start(
        backend,
        &[
            ("PAYFAC_CPM_POLL_INTERVAL_MS", "200"),
            ("PAYFAC_SHUTDOWN_DRAIN_MS", "1500"),
            ("PAYFAC_RATE_LIMIT_PER_SECOND", "1000000"),
        ],
    )
    .await;
    let (_, sk) = payfac.merchant_with_key().await;
    let auth_code = payfac.auth_code("pin", Some(1_500)).await;

    // A POS blocking on a CPM payment whose customer is still entering a PIN.
    let pos = {
        let (http, base, sk) = (payfac.http.clone(), payfac.base.clone(), sk.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/v1/payments?wait=10"))
                .bearer_auth(&sk)
                .json(&json!({"mode": "cpm", "amount": 990, "currency": "USD",
                              "merchant_order_id": "pos-1", "wallet": "alipay", "auth_code": auth_code}))
                .send()
                .await
        })
    };

    let answered = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    // The load balancer: stops routing new requests once readiness turns false.
    let routing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let balancer = {
        let (http, base, routing) = (payfac.http.clone(), payfac.base.clone(), routing.clone());
        tokio::spawn(async move {
            loop {
                let ready = http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .map(|r| r.status().is_success());
                if !matches!(ready, Ok(true)) {
                    routing.store(false, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut stream = Vec::new();
    for _ in 0..4 {
        // A fresh connection per request: keep-alive reuse would blur "refused" and "dropped".
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let (base, sk, answered, failed) = (
            payfac.base.clone(),
            sk.clone(),
            answered.clone(),
            failed.clone(),
        );
        let routing = routing.clone();
        stream.push(tokio::spawn(async move {
            while routing.load(Ordering::SeqCst) {
                match http
                    .get(format!("{base}/v1/payments?limit=5"))
                    .bearer_auth(&sk)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        eprintln!("failed request: {other:?}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = answered.load(Ordering::SeqCst);
    assert!(before > 0, "the stream is flowing");
    payfac.terminate();

    let pos = pos
        .await
        .expect("task")
        .expect("the in-flight request was answered");
    assert_eq!(pos.status().as_u16(), 201);
    let payment: serde_json::Value = pos.json().await.expect("json");
    assert_eq!(
        payment["status"], "succeeded",
        "settled while draining: {payment}"
    );
    balancer.await.expect("balancer");
    for task in stream {
        task.await.expect("stream task");
    }
    assert!(
        answered.load(Ordering::SeqCst) > before,
        "requests kept being answered after SIGTERM"
    );
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no accepted request failed"
    );
    let code = payfac.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "exit code: {}", payfac.logs());

    let db = store::Database::connect(&payfac.database_url, 1)
        .await
        .expect("db");
    let held = db
        .read(|tx| {
            store::jobs::claim(
                tx,
                &["payment.poll", "payment.expire", "refund.poll"],
                "probe",
                Duration::from_secs(1),
                0,
                0,
            )
        })
        .await
        .expect("read");
    assert!(held.is_empty());
    let logs = payfac.logs();
    assert!(logs.contains("job runner stopped"), "{logs}");
    assert!(
        logs.contains("\"drained\":true"),
        "jobs drained within the grace period: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_stream_of_requests_embedded() {
    sigterm_during_a_stream_of_requests(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_stream_of_requests_postgres_redis() {
    sigterm_during_a_stream_of_requests(Backend::PostgresRedis).await;
}

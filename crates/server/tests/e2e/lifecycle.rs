//! Process lifecycle: graceful shutdown, metrics, and secrets kept out of the logs.

use crate::harness::{Backend, Payfac};
use reqwest::Method;
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

async fn pay_mpm(payfac: &Payfac, sk: &str, order: &str) -> String {
    let (status, payment) = payfac
        .call(
            Method::POST,
            "/v1/payments",
            sk,
            Some(json!({"mode": "mpm", "amount": 1250, "currency": "USD",
            "merchant_order_id": order, "wallet": "alipay"})),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    let id = payment["id"].as_str().expect("id").to_owned();
    let paid = payfac
        .http
        .post(format!("{}/sandbox/codepay/sim/mpm/pay", payfac.base))
        .json(&json!({"qr_code": payment["qr_code"]}))
        .send()
        .await
        .expect("pay");
    assert!(paid.status().is_success());
    for _ in 0..100 {
        let (_, p) = payfac
            .call(Method::GET, &format!("/v1/payments/{id}"), sk, None)
            .await;
        if p["status"] == "succeeded" {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {id} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_after_a_payment_flow_show_every_series() {
    let payfac = Payfac::start(Backend::Embedded, &[]).await;
    let (_, sk) = payfac.merchant_with_key().await;
    let id = pay_mpm(&payfac, &sk, "metrics-1").await;
    let (status, refund) = payfac
        .call(
            Method::POST,
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            Some(json!({"amount": 250, "merchant_refund_id": "r-1"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let text = payfac
        .http
        .get(format!("{}/metrics", payfac.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for series in [
        "payfac_build_info{version=",
        "payfac_http_requests_total{method=\"POST\",route=\"/v1/payments\",status=\"201\"}",
        "payfac_http_requests_total{method=\"GET\",route=\"/v1/payments/{id}\",status=\"200\"}",
        "payfac_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/payments\",le=",
        "payfac_upstream_calls_total{method=\"cscanb.pay.getqrcode\",outcome=\"success\"}",
        "payfac_upstream_calls_total{method=\"order.refund.submit\",outcome=\"success\"}",
        "payfac_upstream_call_duration_seconds_bucket{method=\"cscanb.pay.getqrcode\",le=",
        "payfac_payment_transitions_total{from=\"pending\",to=\"succeeded\"}",
        "payfac_jobs_queue_depth{kind=",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(!text.contains(&id), "no ids in labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_the_logs() {
    let payfac = Payfac::start(Backend::PostgresRedis, &[]).await;
    let (merchant, sk) = payfac.merchant_with_key().await;
    pay_mpm(&payfac, &sk, "secret-1").await;
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
        "dGVzdC1tYXN0ZXIta2V5LXRlc3QtbWFzdGVyLWtleSE=".to_owned(),
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

/// Readiness follows the database; liveness does not (no restart storms during an outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_goes_false_while_the_database_is_unreachable_and_liveness_stays_true() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let payfac = Payfac::start(Backend::PostgresRedis, &[]).await;
    let name = url::Url::parse(&payfac.database_url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let admin = std::env::var("PAYFAC_TEST_DATABASE_URL").expect("PAYFAC_TEST_DATABASE_URL");
    let mut conn = PgConnection::establish(&admin).expect("admin connection");
    let status = |path: &'static str| {
        let (http, base) = (payfac.http.clone(), payfac.base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(status("/readyz").await, 200);

    // The outage: no new connections, and the existing ones are cut.
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .expect("block");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .expect("terminate");
    let mut saw_unready = false;
    for _ in 0..100 {
        if status("/readyz").await == 503 {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_unready, "readiness reports the outage");
    assert_eq!(status("/healthz").await, 200, "liveness stays true");

    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .expect("unblock");
    let mut ready_again = false;
    for _ in 0..200 {
        if status("/readyz").await == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready_again, "ready again once the database is back");
}

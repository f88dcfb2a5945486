//! A process killed (SIGKILL) while a create with an `Idempotency-Key` waits on CodePay: the
//! claim and the payment row are committed, the answer never left. The client's retry on
//! another process is answered within seconds with that payment, not held for the 2-minute
//! lease and then refused as `merchant_order_id_taken`.

use crate::support::payfac::{Backend, Payfac};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use test_support::TEST_MASTER_KEY;

async fn killed_mid_create(backend: Backend) {
    let postgres = matches!(backend, Backend::PostgresRedis);
    let mut first = Payfac::start(backend, &[]).await;
    let (_, sk) = first.merchant_with_key().await;
    // getqrcode answers only after the process is dead.
    let fault = first
        .http
        .post(format!("{}/sandbox/codepay/sim/faults", first.base))
        .json(&json!({"method": "cscanb.pay.getqrcode", "kind": "timeout", "delay_ms": 60_000, "count": 1}))
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success(), "{:?}", fault.text().await);
    let body = json!({"mode": "mpm", "amount": 1250, "currency": "USD",
        "merchant_order_id": "crash-create-1", "wallet": "alipay"});
    let post = |base: String, http: reqwest::Client| {
        let (sk, body) = (sk.clone(), body.clone());
        async move {
            let resp = http
                .post(format!("{base}/v1/payments"))
                .bearer_auth(&sk)
                .header("Idempotency-Key", "crash-key-1")
                .json(&body)
                .send()
                .await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    let doomed = tokio::spawn(post(first.base.clone(), first.http.clone()));
    // Wait until the create's first commit (claim + payment row) is in.
    let started = Instant::now();
    let payment_id = loop {
        let (status, list) = first
            .call(
                Method::GET,
                "/v1/payments?merchant_order_id=crash-create-1",
                &sk,
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        if let Some(id) = list["data"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no payment row"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    first.kill_hard();
    assert!(
        doomed.await.expect("task").is_err(),
        "the doomed request got no answer"
    );

    let data_dir = first.data_dir().display().to_string();
    let redis = std::env::var("PAYFAC_TEST_REDIS_URL").unwrap_or_default();
    let mut env = vec![
        ("PAYFAC_DATABASE_URL", first.database_url.as_str()),
        ("PAYFAC_DATA_DIR", data_dir.as_str()),
    ];
    if postgres {
        env.push(("PAYFAC_REDIS_URL", &redis));
        env.push(("PAYFAC_MASTER_KEY", TEST_MASTER_KEY));
    }
    let second = Payfac::start(Backend::Embedded, &env).await;
    let retried = Instant::now();
    let (status, payment) = post(second.base.clone(), second.http.clone())
        .await
        .expect("retry");
    let took = retried.elapsed();
    assert_eq!(status, 201, "{payment}\n{}", second.logs());
    assert_eq!(
        payment["id"],
        payment_id.as_str(),
        "the dead process's payment"
    );
    // The dead process is judged dead 5 s after its last heartbeat (the wait for an in-flight
    // claim is 10 s, the lease 2 minutes).
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    let (status, replay) = post(second.base.clone(), second.http.clone())
        .await
        .expect("replay");
    assert_eq!((status, &replay["id"]), (201, &payment["id"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_killed_mid_call_is_answered_on_retry_at_once_embedded() {
    killed_mid_create(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_killed_mid_call_is_answered_on_retry_at_once_postgres_redis() {
    killed_mid_create(Backend::PostgresRedis).await;
}

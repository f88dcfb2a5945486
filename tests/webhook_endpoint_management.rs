//! The webhook promises of issue 5, through the real binary and its own job runner, on the
//! embedded default and on PostgreSQL + Redis: fan-out to a merchant's endpoints only, retries
//! with an attempt log, 410 disabling, redeliver and recover, and secret rotation.

use crate::support::{Backend, Behaviour, Hit, Payfac, Receiver, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use webhook_fanout::{WebhookSecret, verify};

async fn eventually(what: &str, done: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(30), done).await;
}

fn signed_by(hit: &Hit, secret: &WebhookSecret) -> bool {
    let now = chrono::Utc::now().timestamp();
    verify(
        std::slice::from_ref(secret),
        &hit.id,
        &hit.timestamp,
        &hit.signature,
        &hit.body,
        now,
        300,
    )
    .is_ok()
}

async fn add_endpoint(payfac: &Payfac, key: &str, url: &str) -> (String, WebhookSecret) {
    let (status, endpoint) = payfac
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            key,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = WebhookSecret::parse(endpoint["secret"].as_str().expect("secret")).expect("whsec");
    (endpoint["id"].as_str().expect("id").to_owned(), secret)
}

/// Creates an MPM payment and pays it in the sandbox; returns the payment id.
async fn paid_payment(payfac: &Payfac, key: &str, order: &str) -> String {
    let payment = payfac.mpm_payment(key, order, 990, "wechat_pay").await;
    payfac.pay_in_sandbox(&payment).await;
    payment["id"].as_str().expect("id").to_owned()
}

fn event_of_payment(hits: &[Hit], payment: &str) -> Option<Hit> {
    hits.iter()
        .find(|h| {
            serde_json::from_slice::<Value>(&h.body)
                .is_ok_and(|v| v["data"]["id"] == payment && v["type"] == "payment.succeeded")
        })
        .cloned()
}

async fn webhook_flows(backend: Backend) {
    let payfac = Payfac::start(
        backend,
        &[
            ("PAYFAC_WEBHOOK_ALLOW_HTTP", "true"),
            ("PAYFAC_WEBHOOK_ALLOW_PRIVATE", "true"),
            (
                "PAYFAC_WEBHOOK_RETRY_SCHEDULE",
                "0s,200ms,200ms,200ms,200ms",
            ),
            ("PAYFAC_WEBHOOK_SECRET_OVERLAP", "3s"),
            // /down's five failures open its circuit; a production cool-down would hold the
            // recovered delivery back longer than this test waits.
            ("PAYFAC_WEBHOOK_BREAKER_COOL_DOWN", "1s"),
        ],
    )
    .await;
    let rx = Receiver::start();
    let (_, key_a) = payfac.merchant_with_key().await;
    let (_, key_b) = payfac.merchant_with_key().await;
    let (a1, a1_secret) = add_endpoint(&payfac, &key_a, &rx.url("/a1", Behaviour::Ok)).await;
    let (a2, _) = add_endpoint(&payfac, &key_a, &rx.url("/a2", Behaviour::FailFirst(2))).await;
    add_endpoint(&payfac, &key_b, &rx.url("/b1", Behaviour::Ok)).await;

    // Fan-out: both of merchant A's endpoints, none of merchant B's; /a2 on its third attempt.
    let p1 = paid_payment(&payfac, &key_a, "flow-1").await;
    eventually(
        "payment.succeeded at /a1 and, after two failures, /a2",
        || {
            event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p1).is_some()
                && rx.hits("/a2", "payment.succeeded").len() >= 3
        },
    )
    .await;
    let first = event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p1).expect("delivered");
    assert!(signed_by(&first, &a1_secret), "signed with /a1's secret");
    assert!(
        rx.all().iter().all(|h| h.path != "/b1"),
        "another merchant's endpoint got merchant A's events"
    );
    let (status, attempts) = payfac
        .call(
            Method::GET,
            &format!("/v1/events/{}/attempts", first.id),
            &key_a,
            None,
        )
        .await;
    assert_eq!(status, 200, "{attempts}");
    let mut at_a2: Vec<(i64, i64)> = attempts["data"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["endpoint_id"] == a2.as_str())
        .map(|a| {
            (
                a["attempt"].as_i64().expect("attempt"),
                a["http_status"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    at_a2.sort_unstable();
    assert_eq!(
        at_a2,
        vec![(1, 500), (2, 500), (3, 204)],
        "attempt log: {attempts}"
    );
    let (status, _) = payfac
        .call(
            Method::GET,
            &format!("/v1/events/{}", first.id),
            &key_b,
            None,
        )
        .await;
    assert_eq!(status, 404, "merchant B must not see merchant A's event");

    // Redeliver: the same event (same webhook-id, same bytes) reaches /a1 again.
    let (status, body) = payfac
        .call(
            Method::POST,
            &format!("/v1/events/{}/redeliver", first.id),
            &key_a,
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    eventually("the redelivery at /a1", || {
        rx.hits("/a1", "payment.succeeded")
            .iter()
            .filter(|h| h.id == first.id)
            .count()
            == 2
    })
    .await;
    let again = rx.hits("/a1", "payment.succeeded");
    assert_eq!(
        again[0].body, again[1].body,
        "the body bytes are fixed once"
    );

    // Recover: an endpoint that was down for the whole schedule gets its dead deliveries.
    let since = chrono::Utc::now().to_rfc3339();
    let (down, _) = add_endpoint(&payfac, &key_a, &rx.url("/down", Behaviour::Down)).await;
    let p2 = paid_payment(&payfac, &key_a, "flow-2").await;
    eventually("five failed attempts at /down", || {
        rx.hits("/down", "payment.succeeded").len() >= 5
    })
    .await;
    let down_event = event_of_payment(&rx.hits("/down", "payment.succeeded"), &p2)
        .expect("p2 at /down")
        .id;
    let mut dead = false;
    for _ in 0..100 {
        let (_, event) = payfac
            .call(
                Method::GET,
                &format!("/v1/events/{down_event}"),
                &key_a,
                None,
            )
            .await;
        dead = event["deliveries"].as_array().is_some_and(|ds| {
            ds.iter()
                .any(|d| d["endpoint_id"] == down.as_str() && d["status"] == "dead")
        });
        if dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dead, "the /down delivery should be dead after its schedule");
    rx.set("/down", Behaviour::Ok);
    let (status, body) = payfac
        .call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{down}/recover"),
            &key_a,
            Some(json!({"since": since})),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    assert_eq!(body["deliveries_queued"], 1, "{body}");
    eventually("the recovered delivery at /down", || {
        rx.hits("/down", "payment.succeeded").len() == 6
    })
    .await;

    // Rotation: both secrets sign during the overlap, then only the new one.
    let (status, rotated) = payfac
        .call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{a1}/rotate-secret"),
            &key_a,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret =
        WebhookSecret::parse(rotated["secret"].as_str().expect("new secret")).expect("whsec");
    let p3 = paid_payment(&payfac, &key_a, "flow-3").await;
    eventually("payment 3 at /a1", || {
        event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p3).is_some()
    })
    .await;
    let during = event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p3).expect("p3");
    assert!(signed_by(&during, &a1_secret) && signed_by(&during, &new_secret));
    assert_eq!(
        during.signature.split(' ').count(),
        2,
        "{}",
        during.signature
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p4 = paid_payment(&payfac, &key_a, "flow-4").await;
    eventually("payment 4 at /a1", || {
        event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p4).is_some()
    })
    .await;
    let after = event_of_payment(&rx.hits("/a1", "payment.succeeded"), &p4).expect("p4");
    assert!(signed_by(&after, &new_secret), "signed with the new secret");
    assert!(
        !signed_by(&after, &a1_secret),
        "the old secret still signs after its window"
    );

    // 410 disables the endpoint and the merchant hears of it at its other endpoints.
    let (gone, _) = add_endpoint(&payfac, &key_a, &rx.url("/gone", Behaviour::Gone)).await;
    paid_payment(&payfac, &key_a, "flow-5").await;
    eventually("endpoint.disabled at /a1", || {
        !rx.hits("/a1", "endpoint.disabled").is_empty()
    })
    .await;
    assert_eq!(
        rx.hits("/gone", "payment.succeeded").len(),
        1,
        "410 is final"
    );
    let (status, endpoint) = payfac
        .call(
            Method::GET,
            &format!("/v1/webhook-endpoints/{gone}"),
            &key_a,
            None,
        )
        .await;
    assert_eq!(status, 200, "{endpoint}");
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    let notice = &rx.hits("/a1", "endpoint.disabled")[0];
    let notice: Value = serde_json::from_slice(&notice.body).expect("json");
    assert_eq!(notice["data"]["id"], gone.as_str(), "{notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_flows_through_the_binary_embedded() {
    webhook_flows(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_flows_through_the_binary_postgres_redis() {
    webhook_flows(Backend::PostgresRedis).await;
}

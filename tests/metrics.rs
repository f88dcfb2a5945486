//! `/metrics` after a payment and a refund: every promised series, and no ids in labels.

use crate::support::{Backend, Payfac};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_after_a_payment_flow_show_every_series() {
    let payfac = Payfac::start(Backend::Embedded, &[]).await;
    let (_, sk) = payfac.merchant_with_key().await;
    let id = payfac.paid_mpm(&sk, "metrics-1").await;
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
        "payfac_reconciliation_breaks_open{kind=\"status_mismatch\"} 0",
        "payfac_http_own_seconds_bucket{method=\"POST\",route=\"/v1/payments\",le=",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    // payfac's own time is the request's time less its waits on the database and CodePay:
    // a create waited on both, and its own time is less than its whole time.
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("missing {series} in:\n{text}"))
    };
    let create = "method=\"POST\",route=\"/v1/payments\"";
    let waited_db = value(
        "payfac_http_wait_seconds_total{method=\"POST\",on=\"database\",route=\"/v1/payments\"}",
    );
    let waited_up = value(
        "payfac_http_wait_seconds_total{method=\"POST\",on=\"upstream\",route=\"/v1/payments\"}",
    );
    let own = value(&format!("payfac_http_own_seconds_sum{{{create}}}"));
    let whole = value(&format!(
        "payfac_http_request_duration_seconds_sum{{{create}}}"
    ));
    assert!(
        waited_db > 0.0 && waited_up > 0.0,
        "{waited_db} {waited_up}"
    );
    assert!(own > 0.0 && own < whole, "own {own} of {whole}");
    assert!(
        (own + waited_db + waited_up - whole).abs() < 0.005,
        "own {own} + waits {waited_db} + {waited_up} ≠ {whole}"
    );
    assert!(!text.contains(&id), "no ids in labels");
}

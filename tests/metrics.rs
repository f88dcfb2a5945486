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
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(!text.contains(&id), "no ids in labels");
}

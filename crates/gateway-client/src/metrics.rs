//! Prometheus metrics of upstream calls.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and latency of CodePay calls; register once per registry and share (cheap to clone).
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    calls: IntCounterVec,
    duration: HistogramVec,
}

impl GatewayMetrics {
    /// Registers `payfac_upstream_calls_total{method,outcome}` and
    /// `payfac_upstream_call_duration_seconds{method}` in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new(
                "payfac_upstream_calls_total",
                "CodePay calls by method and outcome (success, declined, unknown)",
            ),
            &["method", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "payfac_upstream_call_duration_seconds",
                "CodePay call latency, signing and verification included",
            )
            .buckets(vec![0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { calls, duration })
    }

    pub(crate) fn observe(&self, method: &str, outcome: &str, seconds: f64) {
        self.calls.with_label_values(&[method, outcome]).inc();
        self.duration.with_label_values(&[method]).observe(seconds);
    }
}

//! Prometheus metrics of webhook delivery, registered on the registry the binary serves.

use crate::WebhookError;
use crate::sender::AttemptRecord;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Handles to every webhook metric; cheap to clone. Queue depth and lag are the job runner's
/// `payfac_jobs_queue_depth{kind="webhook.deliver"}` and `payfac_jobs_oldest_age_seconds{…}`.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
    attempts_per_delivery: Histogram,
    attempt_outcomes: IntCounterVec,
    attempt_duration: HistogramVec,
    endpoints_disabled: IntCounterVec,
    deferred: IntCounterVec,
}

impl WebhookMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, WebhookError> {
        let m = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "payfac_webhook_deliveries_total",
                    "Deliveries finished, by outcome (delivered, failed, endpoint_disabled).",
                ),
                &["outcome"],
            )?,
            attempts_per_delivery: Histogram::with_opts(
                HistogramOpts::new(
                    "payfac_webhook_attempts",
                    "Attempts a delivery took until it finished.",
                )
                .buckets(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0]),
            )?,
            attempt_outcomes: IntCounterVec::new(
                Opts::new(
                    "payfac_webhook_attempts_total",
                    "HTTP attempts, by outcome (delivered, failed, throttled, gone).",
                ),
                &["outcome"],
            )?,
            attempt_duration: HistogramVec::new(
                HistogramOpts::new(
                    "payfac_webhook_delivery_duration_seconds",
                    "Duration of one delivery attempt (request to response excerpt), by outcome.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
                ]),
                &["outcome"],
            )?,
            endpoints_disabled: IntCounterVec::new(
                Opts::new(
                    "payfac_webhook_endpoints_disabled_total",
                    "Endpoints disabled automatically, by reason (gone, failing).",
                ),
                &["reason"],
            )?,
            deferred: IntCounterVec::new(
                Opts::new(
                    "payfac_webhook_deferred_total",
                    "Deliveries postponed without a request, by reason (endpoint_busy, circuit_open).",
                ),
                &["reason"],
            )?,
        };
        registry.register(Box::new(m.deliveries.clone()))?;
        registry.register(Box::new(m.attempts_per_delivery.clone()))?;
        registry.register(Box::new(m.attempt_outcomes.clone()))?;
        registry.register(Box::new(m.attempt_duration.clone()))?;
        registry.register(Box::new(m.endpoints_disabled.clone()))?;
        registry.register(Box::new(m.deferred.clone()))?;
        Ok(m)
    }

    /// Counts one HTTP attempt and its duration.
    pub fn attempt(&self, record: &AttemptRecord) {
        let label = record.outcome.label();
        self.attempt_outcomes.with_label_values(&[label]).inc();
        self.attempt_duration
            .with_label_values(&[label])
            .observe(record.duration.as_secs_f64());
    }

    /// Counts a delivery that finished (`delivered`, `failed` or `endpoint_disabled`) after
    /// `attempts` attempts.
    pub fn delivery_finished(&self, outcome: &str, attempts: u32) {
        self.deliveries.with_label_values(&[outcome]).inc();
        self.attempts_per_delivery.observe(f64::from(attempts));
    }

    /// Counts an endpoint disabled automatically (`gone` or `failing`).
    pub fn endpoint_disabled(&self, reason: &str) {
        self.endpoints_disabled.with_label_values(&[reason]).inc();
    }

    /// Counts a postponed delivery.
    pub fn deferred(&self, reason: &str) {
        self.deferred.with_label_values(&[reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::AttemptOutcome;
    use prometheus::{Encoder, TextEncoder};
    use std::time::{Duration, SystemTime};

    #[test]
    fn metrics_register_once_and_render_with_their_names() {
        let registry = Registry::new();
        let m = WebhookMetrics::register(&registry).unwrap();
        assert!(
            WebhookMetrics::register(&registry).is_err(),
            "double registration is refused"
        );
        m.attempt(&AttemptRecord {
            started_at: SystemTime::now(),
            timestamp: 0,
            status: Some(503),
            duration: Duration::from_millis(30),
            response_excerpt: String::new(),
            error: None,
            transport_failure: None,
            outcome: AttemptOutcome::Failed { throttled: true },
            retry_after: None,
        });
        m.delivery_finished("delivered", 3);
        m.endpoint_disabled("gone");
        m.deferred("circuit_open");
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        for needle in [
            "payfac_webhook_deliveries_total{outcome=\"delivered\"} 1",
            "payfac_webhook_attempts_sum 3",
            "payfac_webhook_attempts_total{outcome=\"throttled\"} 1",
            "payfac_webhook_delivery_duration_seconds_count{outcome=\"throttled\"} 1",
            "payfac_webhook_endpoints_disabled_total{reason=\"gone\"} 1",
            "payfac_webhook_deferred_total{reason=\"circuit_open\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}

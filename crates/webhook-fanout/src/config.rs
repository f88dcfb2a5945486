//! Delivery settings, read from `PAYFAC_WEBHOOK_*` environment variables.

use crate::WebhookError;
use crate::breaker::BreakerConfig;
use crate::dispatcher::DispatcherConfig;
use crate::schedule::RetrySchedule;
use crate::sender::SenderConfig;
use crate::ssrf::NetworkPolicy;
use std::time::Duration;

/// How long a claimed delivery job is held beyond the request timeout, so the lease can never
/// expire while its request is still legitimately in flight.
const LEASE_MARGIN: Duration = Duration::from_secs(45);
/// The least a configured lease may exceed the request timeout by.
const MIN_LEASE_MARGIN: Duration = Duration::from_secs(1);

/// Everything the delivery side needs to know.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// `PAYFAC_WEBHOOK_RETRY_SCHEDULE` (default `0s,5s,5m,30m,2h,5h,10h,14h,20h,24h`).
    pub schedule: RetrySchedule,
    /// HTTP client settings; `PAYFAC_WEBHOOK_TIMEOUT` (default `15s`),
    /// `PAYFAC_WEBHOOK_ALLOW_HTTP`, `PAYFAC_WEBHOOK_ALLOW_PRIVATE` (default `false`).
    pub sender: SenderConfig,
    /// Isolation; `PAYFAC_WEBHOOK_CONCURRENCY`, `PAYFAC_WEBHOOK_ENDPOINT_CONCURRENCY`,
    /// `PAYFAC_WEBHOOK_BREAKER_FAILURES`, `PAYFAC_WEBHOOK_BREAKER_COOL_DOWN`.
    pub dispatcher: DispatcherConfig,
    /// `PAYFAC_WEBHOOK_DISABLE_AFTER`: an endpoint failing this long is disabled (default `5d`).
    pub disable_after: Duration,
    /// `PAYFAC_WEBHOOK_SECRET_OVERLAP`: how long a rotated-out secret keeps signing (default `24h`).
    pub secret_overlap: Duration,
    /// `PAYFAC_WEBHOOK_LEASE`: the lease on a claimed delivery job (default: the request
    /// timeout + 45 s; at least the timeout + 1 s).
    pub lease: Option<Duration>,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            sender: SenderConfig::default(),
            dispatcher: DispatcherConfig::default(),
            disable_after: Duration::from_secs(5 * 86_400),
            secret_overlap: Duration::from_secs(86_400),
            lease: None,
        }
    }
}

impl FanoutConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, WebhookError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests); unset means default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, WebhookError> {
        let mut c = Self::default();
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("PAYFAC_WEBHOOK_RETRY_SCHEDULE") {
            c.schedule = v.parse()?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_ALLOW_HTTP") {
            c.sender.policy.allow_http = parse_bool("PAYFAC_WEBHOOK_ALLOW_HTTP", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_ALLOW_PRIVATE") {
            c.sender.policy.allow_private = parse_bool("PAYFAC_WEBHOOK_ALLOW_PRIVATE", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_TIMEOUT") {
            c.sender.timeout = parse_positive_duration("PAYFAC_WEBHOOK_TIMEOUT", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_CONCURRENCY") {
            c.dispatcher.global_concurrency = parse_count("PAYFAC_WEBHOOK_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_ENDPOINT_CONCURRENCY") {
            c.dispatcher.per_endpoint_in_flight =
                parse_count("PAYFAC_WEBHOOK_ENDPOINT_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_BREAKER_FAILURES") {
            let n = parse_count("PAYFAC_WEBHOOK_BREAKER_FAILURES", &v)?;
            c.dispatcher.breaker = BreakerConfig {
                failure_threshold: u32::try_from(n).unwrap_or(u32::MAX),
                ..c.dispatcher.breaker
            };
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_BREAKER_COOL_DOWN") {
            c.dispatcher.breaker.cool_down =
                parse_positive_duration("PAYFAC_WEBHOOK_BREAKER_COOL_DOWN", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_DISABLE_AFTER") {
            c.disable_after = parse_positive_duration("PAYFAC_WEBHOOK_DISABLE_AFTER", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_SECRET_OVERLAP") {
            c.secret_overlap = parse_positive_duration("PAYFAC_WEBHOOK_SECRET_OVERLAP", &v)?;
        }
        if let Some(v) = get("PAYFAC_WEBHOOK_LEASE") {
            let lease = parse_positive_duration("PAYFAC_WEBHOOK_LEASE", &v)?;
            // A lease that can run out while its request is still in flight lets a second
            // runner send the same delivery concurrently.
            if lease < c.sender.timeout + MIN_LEASE_MARGIN {
                return Err(WebhookError::Config {
                    name: "PAYFAC_WEBHOOK_LEASE",
                    reason: format!(
                        "`{v}` must exceed the request timeout ({} ms) by at least 1 s",
                        c.sender.timeout.as_millis()
                    ),
                });
            }
            c.lease = Some(lease);
        }
        Ok(c)
    }

    /// The lease a runner takes on a delivery job: always longer than the request timeout
    /// (a configured lease too short for the timeout is stretched to timeout + 1 s).
    pub fn job_lease(&self) -> Duration {
        match self.lease {
            Some(lease) => lease.max(self.sender.timeout + MIN_LEASE_MARGIN),
            None => self.sender.timeout + LEASE_MARGIN,
        }
    }

    /// Lines to log at start when the SSRF guard is relaxed, so nobody runs that way unknowingly.
    pub fn startup_warnings(&self) -> Vec<String> {
        let NetworkPolicy {
            allow_http,
            allow_private,
        } = self.sender.policy;
        let mut out = Vec::new();
        if allow_http {
            out.push(
                "PAYFAC_WEBHOOK_ALLOW_HTTP=true: webhooks may be sent over plain http (development only)"
                    .to_owned(),
            );
        }
        if allow_private {
            out.push(
                "PAYFAC_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback and private addresses (development only)"
                    .to_owned(),
            );
        }
        out
    }
}

fn parse_bool(name: &'static str, v: &str) -> Result<bool, WebhookError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(WebhookError::Config {
            name,
            reason: format!("`{v}` is not true/false"),
        }),
    }
}

fn parse_count(name: &'static str, v: &str) -> Result<usize, WebhookError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(WebhookError::Config {
            name,
            reason: format!("`{v}` is not a positive integer"),
        }),
    }
}

/// One duration in the schedule syntax (`15s`, `5d`, `500ms`).
fn parse_positive_duration(name: &'static str, v: &str) -> Result<Duration, WebhookError> {
    let one: RetrySchedule = v.parse().map_err(|e: WebhookError| WebhookError::Config {
        name,
        reason: e.to_string(),
    })?;
    match one.delays() {
        [d] if !d.is_zero() => Ok(*d),
        _ => Err(WebhookError::Config {
            name,
            reason: format!("`{v}` is not one positive duration"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<FanoutConfig, WebhookError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FanoutConfig::from_lookup(|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_strict_and_documented() {
        let c = from(&[]).unwrap();
        assert_eq!(c.sender.policy, NetworkPolicy::STRICT);
        assert_eq!(c.sender.timeout, Duration::from_secs(15));
        assert_eq!(c.schedule, RetrySchedule::default());
        assert_eq!(c.disable_after, Duration::from_secs(432_000));
        assert!(c.startup_warnings().is_empty());
        assert!(c.job_lease() > c.sender.timeout);
    }

    #[test]
    fn environment_overrides_apply_and_relaxed_guards_are_announced() {
        let c = from(&[
            ("PAYFAC_WEBHOOK_RETRY_SCHEDULE", "1s,2s,4s"),
            ("PAYFAC_WEBHOOK_ALLOW_HTTP", "true"),
            ("PAYFAC_WEBHOOK_ALLOW_PRIVATE", "1"),
            ("PAYFAC_WEBHOOK_TIMEOUT", "2s"),
            ("PAYFAC_WEBHOOK_ENDPOINT_CONCURRENCY", "3"),
            ("PAYFAC_WEBHOOK_DISABLE_AFTER", "1h"),
        ])
        .unwrap();
        assert_eq!(c.schedule.to_string(), "1s,2s,4s");
        assert!(c.sender.policy.allow_http && c.sender.policy.allow_private);
        assert_eq!(c.sender.timeout, Duration::from_secs(2));
        assert_eq!(c.job_lease(), Duration::from_secs(47));
        assert_eq!(c.dispatcher.per_endpoint_in_flight, 3);
        assert_eq!(c.disable_after, Duration::from_secs(3600));
        assert_eq!(c.startup_warnings().len(), 2);
    }

    #[test]
    fn the_lease_defaults_to_timeout_plus_margin_and_must_exceed_the_timeout() {
        let c = from(&[("PAYFAC_WEBHOOK_TIMEOUT", "2s")]).unwrap();
        assert_eq!(c.job_lease(), Duration::from_secs(47));
        let c = from(&[
            ("PAYFAC_WEBHOOK_TIMEOUT", "2s"),
            ("PAYFAC_WEBHOOK_LEASE", "3s"),
        ])
        .unwrap();
        assert_eq!(c.job_lease(), Duration::from_secs(3));
        for lease in ["2500ms", "2s", "1s"] {
            let err = from(&[
                ("PAYFAC_WEBHOOK_TIMEOUT", "2s"),
                ("PAYFAC_WEBHOOK_LEASE", lease),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.contains("PAYFAC_WEBHOOK_LEASE"), "{lease}: {err}");
        }
        let c = FanoutConfig {
            lease: Some(Duration::from_secs(1)),
            ..FanoutConfig::default()
        };
        assert_eq!(
            c.job_lease(),
            Duration::from_secs(16),
            "never shorter than timeout + 1 s"
        );
    }

    #[test]
    fn bad_values_are_named_errors() {
        for (k, v) in [
            ("PAYFAC_WEBHOOK_ALLOW_HTTP", "maybe"),
            ("PAYFAC_WEBHOOK_TIMEOUT", "0s"),
            ("PAYFAC_WEBHOOK_TIMEOUT", "1s,2s"),
            ("PAYFAC_WEBHOOK_CONCURRENCY", "0"),
            ("PAYFAC_WEBHOOK_RETRY_SCHEDULE", "soon"),
        ] {
            assert!(from(&[(k, v)]).is_err(), "{k}={v}");
        }
    }
}

//! What one attempt's result means for the delivery and the endpoint.
//!
//! Only a 2xx delivers. A 3xx is a failure and is never followed: following a redirect would let
//! an endpoint bounce our signed request to an address the SSRF guard never checked. 410 Gone is
//! the receiver saying the endpoint no longer exists, so the endpoint is disabled.

use crate::schedule::{Jitter, RetrySchedule, RetrySignal};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// 2xx: the receiver has the event.
    Delivered,
    /// Any other answer, or none: retry per schedule.
    Failed {
        /// 429/502/503/504 or a timeout: back off at least the throttle floor.
        throttled: bool,
    },
    /// 410: the endpoint is gone; disable it and stop.
    Gone,
}

impl AttemptOutcome {
    /// The metric / log label (`delivered`, `failed`, `throttled`, `gone`).
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed { throttled: false } => "failed",
            AttemptOutcome::Failed { throttled: true } => "throttled",
            AttemptOutcome::Gone => "gone",
        }
    }
}

/// Why an attempt got no HTTP status at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportFailure {
    /// No full response within the request timeout.
    Timeout,
    /// Could not connect (refused, unreachable, TLS handshake, DNS).
    Connect,
    /// The SSRF guard refused the URL or every address it resolved to.
    Refused,
    /// Anything else (malformed response, connection reset mid-request).
    Other,
}

/// Classifies an HTTP status.
pub fn classify_status(status: u16) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Delivered,
        410 => AttemptOutcome::Gone,
        429 | 502 | 503 | 504 => AttemptOutcome::Failed { throttled: true },
        _ => AttemptOutcome::Failed { throttled: false },
    }
}

/// Classifies an attempt that got no status.
pub fn classify_transport(failure: TransportFailure) -> AttemptOutcome {
    AttemptOutcome::Failed {
        throttled: failure == TransportFailure::Timeout,
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (relative to `now`).
/// A date in the past means "now"; anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What to do with a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Done: mark delivered.
    Delivered,
    /// Try again after this delay.
    RetryIn(Duration),
    /// The schedule is exhausted: mark failed for good (it can still be redelivered by hand).
    GiveUp,
    /// 410: mark failed and disable the endpoint.
    DisableEndpoint,
}

/// Decides the next step after attempt number `attempts_made` ended with `outcome`.
pub fn decide(
    schedule: &RetrySchedule,
    attempts_made: u32,
    outcome: AttemptOutcome,
    retry_after: Option<Duration>,
    jitter: Jitter,
) -> Decision {
    match outcome {
        AttemptOutcome::Delivered => Decision::Delivered,
        AttemptOutcome::Gone => Decision::DisableEndpoint,
        AttemptOutcome::Failed { throttled } => {
            let signal = RetrySignal {
                throttled,
                retry_after,
            };
            match schedule.next_retry(attempts_made, signal, jitter) {
                Some(delay) => Decision::RetryIn(delay),
                None => Decision::GiveUp,
            }
        }
    }
}

/// True when an endpoint that has been failing since `failing_since` has failed long enough to
/// be disabled (default 5 days).
pub fn failing_too_long(
    failing_since: Option<SystemTime>,
    now: SystemTime,
    threshold: Duration,
) -> bool {
    failing_since
        .and_then(|since| now.duration_since(since).ok())
        .is_some_and(|failing_for| failing_for >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_classify_as_the_contract_says() {
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(classify_status(ok), AttemptOutcome::Delivered);
        }
        for redirect in [300, 301, 302, 303, 307, 308] {
            assert_eq!(
                classify_status(redirect),
                AttemptOutcome::Failed { throttled: false }
            );
        }
        for throttled in [429, 502, 503, 504] {
            assert_eq!(
                classify_status(throttled),
                AttemptOutcome::Failed { throttled: true }
            );
        }
        for plain in [100, 400, 401, 404, 409, 500, 501, 505] {
            assert_eq!(
                classify_status(plain),
                AttemptOutcome::Failed { throttled: false }
            );
        }
        assert_eq!(classify_status(410), AttemptOutcome::Gone);
        assert_eq!(
            classify_transport(TransportFailure::Timeout),
            AttemptOutcome::Failed { throttled: true }
        );
        assert_eq!(
            classify_transport(TransportFailure::Connect),
            AttemptOutcome::Failed { throttled: false }
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        // RFC 850 and asctime forms are valid HTTP-dates too.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:47 1994", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for junk in ["", "-5", "soon", "1.5", "Sun, 99 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn decisions_follow_outcome_then_schedule() {
        let fast: RetrySchedule = "0s,1s,2s".parse().unwrap();
        let d = |n, o| decide(&fast, n, o, None, Jitter::NONE);
        assert_eq!(d(1, AttemptOutcome::Delivered), Decision::Delivered);
        assert_eq!(d(1, AttemptOutcome::Gone), Decision::DisableEndpoint);
        let failed = AttemptOutcome::Failed { throttled: false };
        assert_eq!(d(1, failed), Decision::RetryIn(Duration::from_secs(1)));
        assert_eq!(d(2, failed), Decision::RetryIn(Duration::from_secs(2)));
        assert_eq!(d(3, failed), Decision::GiveUp);
        assert_eq!(
            decide(
                &fast,
                1,
                failed,
                Some(Duration::from_millis(1500)),
                Jitter::NONE
            ),
            Decision::RetryIn(Duration::from_millis(1500))
        );
    }

    #[test]
    fn endpoints_are_disabled_only_after_failing_for_the_whole_threshold() {
        let day = Duration::from_secs(86_400);
        let now = SystemTime::UNIX_EPOCH + day * 100;
        assert!(!failing_too_long(None, now, day * 5));
        assert!(!failing_too_long(Some(now - day * 4), now, day * 5));
        assert!(failing_too_long(Some(now - day * 5), now, day * 5));
        assert!(!failing_too_long(Some(now + day), now, day * 5));
    }

    proptest! {
        #[test]
        fn only_2xx_delivers(status in 100u16..1000) {
            let delivered = classify_status(status) == AttemptOutcome::Delivered;
            prop_assert_eq!(delivered, (200..300).contains(&status));
        }

        #[test]
        fn retry_after_never_panics(input in ".{0,40}") {
            let _ = parse_retry_after(&input, SystemTime::now());
        }
    }
}

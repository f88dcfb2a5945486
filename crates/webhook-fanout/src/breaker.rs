//! A per-endpoint circuit breaker.
//!
//! After `failure_threshold` consecutive failed attempts the circuit opens: deliveries to that
//! endpoint are deferred without a request for `cool_down`. Then one probe is let through
//! (half-open); its success closes the circuit, its failure opens it for another cool-down.
//! A probe whose result never comes back (its task was cancelled) is replaced after a cool-down,
//! so a circuit cannot stay half-open forever.

use std::time::{Duration, Instant};

/// Breaker tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// The circuit's state, for health views and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cool-down ends.
    Open,
    /// One probe is allowed (or in flight).
    HalfOpen,
}

/// What [`CircuitBreaker::try_acquire`] allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A normal request through a closed circuit.
    Normal,
    /// The single probe of a half-open circuit.
    Probe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

/// The breaker of one endpoint. Time is passed in, so the state machine is pure.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Inner,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Inner::Closed { failures: 0 },
        }
    }

    /// The state at `now` (an open circuit past its cool-down reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to send one request; `Err(wait)` says how long until asking again makes sense.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Admission, Duration> {
        match self.inner {
            Inner::Closed { .. } => Ok(Admission::Normal),
            Inner::Open { until } if now < until => Err(until - now),
            Inner::Open { .. } => {
                self.inner = Inner::HalfOpen { probe_since: now };
                Ok(Admission::Probe)
            }
            Inner::HalfOpen { probe_since } => {
                let stale_at = probe_since + self.config.cool_down;
                if now >= stale_at {
                    self.inner = Inner::HalfOpen { probe_since: now };
                    Ok(Admission::Probe)
                } else {
                    Err(stale_at - now)
                }
            }
        }
    }

    /// Records the result of a request that was admitted.
    pub fn record(&mut self, success: bool, now: Instant) {
        self.inner = match (self.inner, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.failure_threshold {
                    self.open(now)
                } else {
                    Inner::Closed { failures }
                }
            }
            (Inner::HalfOpen { .. }, false) => self.open(now),
            // A late failure from before the circuit opened changes nothing.
            (open @ Inner::Open { .. }, false) => open,
        };
    }

    fn open(&self, now: Instant) -> Inner {
        Inner::Open {
            until: now + self.config.cool_down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const COOL: Duration = Duration::from_secs(30);

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            cool_down: COOL,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t = Instant::now();
        let mut b = breaker();
        b.record(false, t);
        b.record(false, t);
        b.record(true, t); // a success resets the count
        b.record(false, t);
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Closed);
        assert_eq!(b.try_acquire(t), Ok(Admission::Normal));
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Open);
        assert_eq!(
            b.try_acquire(t + Duration::from_secs(10)),
            Err(Duration::from_secs(20))
        );
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_its_success_closes() {
        let t = Instant::now();
        let mut b = breaker();
        (0..3).for_each(|_| b.record(false, t));
        let later = t + COOL;
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert_eq!(b.try_acquire(later), Ok(Admission::Probe));
        assert!(b.try_acquire(later).is_err(), "only one probe at a time");
        b.record(true, later);
        assert_eq!(b.state(later), BreakerState::Closed);
        assert_eq!(b.try_acquire(later), Ok(Admission::Normal));
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_cool_down() {
        let t = Instant::now();
        let mut b = breaker();
        (0..3).for_each(|_| b.record(false, t));
        let probe_at = t + COOL;
        assert_eq!(b.try_acquire(probe_at), Ok(Admission::Probe));
        b.record(false, probe_at + Duration::from_secs(1));
        assert_eq!(
            b.state(probe_at + Duration::from_secs(2)),
            BreakerState::Open
        );
        assert_eq!(b.try_acquire(probe_at + Duration::from_secs(1)), Err(COOL));
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cool_down() {
        let t = Instant::now();
        let mut b = breaker();
        (0..3).for_each(|_| b.record(false, t));
        assert_eq!(b.try_acquire(t + COOL), Ok(Admission::Probe));
        // The probe's task vanished without recording.
        assert_eq!(b.try_acquire(t + COOL * 2), Ok(Admission::Probe));
    }

    proptest! {
        #[test]
        fn never_admits_while_open_before_the_cool_down(
            events in prop::collection::vec((any::<bool>(), 0u64..20_000), 0..60)
        ) {
            let start = Instant::now();
            let mut b = breaker();
            let mut now = start;
            let mut consecutive = 0u32;
            for (success, step_ms) in events {
                now += Duration::from_millis(step_ms);
                let admitted = b.try_acquire(now);
                if b.state(now) == BreakerState::Open {
                    prop_assert!(admitted.is_err());
                }
                if admitted.is_ok() {
                    b.record(success, now);
                    consecutive = if success { 0 } else { consecutive + 1 };
                    if success {
                        prop_assert_eq!(b.state(now), BreakerState::Closed);
                    }
                    if consecutive >= 3 {
                        prop_assert_eq!(b.state(now), BreakerState::Open);
                    }
                }
            }
        }
    }
}

//! [`RateLimiter`] over the store's `Coordinator` (Redis or in-process), counted locally and
//! shared in batches: a request costs a map lookup, not a Redis round trip.
//!
//! Each process keeps, per key and one-second window, the shared count it last read from the
//! coordinator plus the requests it admitted since (`pending`). A request is refused when
//! `shared + pending` reaches the limit. Pending counts are added to the shared count by a
//! flush every [`FLUSH_EVERY`], and at once, in the request, when a key's pending count reaches
//! its *local share* (a tenth of the limit), so one process never admits more than a tenth of
//! the limit unseen by the others. With `R` processes a key can therefore exceed its limit by
//! at most `R ×` a tenth of it in one window; with one process the count is exact.

use crate::auth::rate_limit::RateLimiter;
use crate::error::{Error, Result};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often pending counts are shared with the other processes.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The window of every limit: one second.
const WINDOW: Duration = Duration::from_secs(1);

/// Keys kept before windows that ended are swept (bounds memory under a flood of new keys).
const SWEEP_ABOVE: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// When the current window ends.
    window_ends: Instant,
    /// Count of the window as last read from the coordinator (every process's requests).
    shared: u64,
    /// Requests this process admitted in the window and has not yet shared.
    pending: u32,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            window_ends: now + WINDOW,
            shared: 0,
            pending: 0,
        }
    }
}

/// Per-key fixed windows, counted locally and shared through the coordinator.
pub struct CoordinatedRateLimiter {
    coord: Arc<dyn store::Coordinator>,
    per_second: u32,
    local_share: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl CoordinatedRateLimiter {
    /// `per_second` requests per key per second. Starts the periodic flush on the current
    /// tokio runtime when there is one (it stops when the limiter is dropped); without a
    /// runtime counts are shared only when a key reaches its local share.
    pub fn new(coord: Arc<dyn store::Coordinator>, per_second: u32) -> Arc<Self> {
        let limiter = Arc::new(Self {
            coord,
            per_second,
            local_share: (per_second / 10).max(1),
            buckets: Mutex::new(HashMap::new()),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(flush_loop(Arc::downgrade(&limiter)));
        }
        limiter
    }

    fn bucket_key(key: &str) -> String {
        format!("rl:key:{key}")
    }

    /// Shares every pending count (the periodic flush).
    pub async fn flush(&self) {
        let due: Vec<(String, u32)> = {
            let mut buckets = self.buckets.lock();
            let now = Instant::now();
            if buckets.len() > SWEEP_ABOVE {
                buckets.retain(|_, b| b.window_ends > now || b.pending > 0);
            }
            buckets
                .iter_mut()
                .filter(|(_, b)| b.pending > 0)
                .map(|(k, b)| (k.clone(), std::mem::take(&mut b.pending)))
                .collect()
        };
        for (key, calls) in due {
            // Best effort: a lost flush only lets the others see these calls later.
            let _ = self.share(&key, calls).await;
        }
    }

    /// Adds `calls` to the shared count of `key`; returns the shared count after.
    async fn share(&self, key: &str, calls: u32) -> Option<u64> {
        match self
            .coord
            .rate_add(&Self::bucket_key(key), calls, WINDOW)
            .await
        {
            Ok(c) => {
                let mut buckets = self.buckets.lock();
                let b = buckets
                    .entry(key.to_owned())
                    .or_insert_with(|| Bucket::new(Instant::now()));
                let now = Instant::now();
                // The shared window's count and end replace our guess of them.
                b.shared = c.count;
                b.window_ends = now + c.window_left.max(Duration::from_millis(1));
                Some(c.count)
            }
            Err(e) => {
                // A coordination outage must not take the API down: fail open, log it.
                tracing::warn!(error = %e, "rate limiter unavailable; counting locally");
                None
            }
        }
    }
}

async fn flush_loop(limiter: Weak<CoordinatedRateLimiter>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        limiter.flush().await;
    }
}

/// What a request's local check decided.
enum Local {
    Refused(Duration),
    Admitted,
    /// Admitted, and the key's local share is used up: share `calls` now.
    AdmittedShareNow(u32),
}

#[async_trait]
impl RateLimiter for CoordinatedRateLimiter {
    async fn check(&self, key: &str) -> Result<()> {
        let decision = {
            let now = Instant::now();
            let mut buckets = self.buckets.lock();
            let b = buckets
                .entry(key.to_owned())
                .or_insert_with(|| Bucket::new(now));
            if b.window_ends <= now {
                // Calls of an ended window are not worth sharing any more.
                *b = Bucket::new(now);
            }
            if b.shared + u64::from(b.pending) >= u64::from(self.per_second) {
                Local::Refused(b.window_ends.saturating_duration_since(now))
            } else {
                b.pending += 1;
                if b.pending >= self.local_share {
                    Local::AdmittedShareNow(std::mem::take(&mut b.pending))
                } else {
                    Local::Admitted
                }
            }
        };
        match decision {
            Local::Admitted => Ok(()),
            Local::Refused(left) => Err(Error::RateLimited {
                retry_after_secs: left.as_secs().max(1),
            }),
            Local::AdmittedShareNow(calls) => match self.share(key, calls).await {
                // Another process used the window up meanwhile: this request is over it.
                Some(count) if count > u64::from(self.per_second) => Err(Error::RateLimited {
                    retry_after_secs: 1,
                }),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_process_counts_exactly_and_shares_in_batches() {
        let coord: Arc<dyn store::Coordinator> = Arc::new(store::InProcessCoordinator::new());
        let l = CoordinatedRateLimiter::new(coord.clone(), 20);
        for i in 0..20 {
            assert!(l.check("a").await.is_ok(), "request {i}");
        }
        assert!(matches!(l.check("a").await, Err(Error::RateLimited { .. })));
        assert!(l.check("b").await.is_ok());
        // 20 admitted in batches of the local share (2): all of them are shared already.
        let c = coord.rate_add("rl:key:a", 0, WINDOW).await.unwrap();
        assert_eq!(c.count, 20);
    }

    #[tokio::test]
    async fn two_processes_share_one_limit() {
        let coord: Arc<dyn store::Coordinator> = Arc::new(store::InProcessCoordinator::new());
        let a = CoordinatedRateLimiter::new(coord.clone(), 100);
        let b = CoordinatedRateLimiter::new(coord.clone(), 100);
        let mut admitted = 0;
        for i in 0..400 {
            let l = if i % 2 == 0 { &a } else { &b };
            if l.check("k").await.is_ok() {
                admitted += 1;
            }
        }
        // At most one local share (10) per process beyond the limit.
        assert!((100..=120).contains(&admitted), "admitted {admitted}");
    }
}

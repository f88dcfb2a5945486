//! Per-key rate limits: a narrow trait (Redis or in-process behind it) and a fixed-window
//! in-process implementation.

use crate::error::{Error, Result};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Counts requests per key; `Err(RateLimited)` when over the limit.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Records one request of `key`, refusing it with [`Error::RateLimited`] when over limit.
    async fn check(&self, key: &str) -> Result<()>;
}

/// Fixed one-second windows in a map (one process).
pub struct LocalRateLimiter {
    per_second: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LocalRateLimiter {
    /// Allows `per_second` requests per key per second.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &str) -> Result<()> {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_second {
            return Err(Error::RateLimited {
                retry_after_secs: 1,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_applies_per_key() {
        let l = LocalRateLimiter::new(3);
        for _ in 0..3 {
            assert!(l.check("a").await.is_ok());
        }
        assert!(matches!(l.check("a").await, Err(Error::RateLimited { .. })));
        assert!(l.check("b").await.is_ok());
    }
}

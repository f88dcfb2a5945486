//! [`RateLimiter`] over the store's `Coordinator` (Redis or in-process).

use crate::auth::rate_limit::RateLimiter;
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Per-key fixed windows counted by the coordinator, shared by every payfac process.
pub struct CoordinatedRateLimiter {
    coord: Arc<dyn store::Coordinator>,
    per_second: u32,
}

impl CoordinatedRateLimiter {
    /// `per_second` requests per key per second.
    pub fn new(coord: Arc<dyn store::Coordinator>, per_second: u32) -> Self {
        Self { coord, per_second }
    }
}

#[async_trait]
impl RateLimiter for CoordinatedRateLimiter {
    async fn check(&self, key: &str) -> Result<()> {
        let bucket = format!("rl:key:{key}");
        match self
            .coord
            .rate_limit(&bucket, self.per_second, Duration::from_secs(1))
            .await
        {
            Ok(d) if d.allowed => Ok(()),
            Ok(d) => Err(Error::RateLimited {
                retry_after_secs: d.retry_after.as_secs().max(1),
            }),
            // A coordination outage must not take the API down: fail open, log it.
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; allowing the request");
                Ok(())
            }
        }
    }
}

//! Coordination between payfac processes: short locks, per-key rate limits, wake-ups.
//!
//! One trait, two implementations chosen in config: [`RedisCoordinator`] when several processes
//! share work, [`InProcessCoordinator`] for the single-process embedded mode. Nothing durable
//! lives here: jobs are rows in the database and a wake-up only makes a runner look sooner, so
//! when Redis is down callers get fast errors (locks, rate limits) or nothing (wake-ups), never a
//! hang.

mod memory;
mod redis_impl;

pub use memory::InProcessCoordinator;
pub use redis_impl::RedisCoordinator;

use crate::StoreResult;
use async_trait::async_trait;
use rand::RngCore;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Proof of holding a lock: only the holder's token releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken(String);

impl LockToken {
    /// A fresh random token (128 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A shared rate-limit count ([`Coordinator::rate_add`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCount {
    /// Calls counted in the current window, by every process.
    pub count: u64,
    /// Time until the window ends.
    pub window_left: Duration,
}

/// The answer of a rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this call may proceed.
    pub allowed: bool,
    /// Calls left in the current window.
    pub remaining: u32,
    /// When refused, how long until the window resets (the `Retry-After`); zero when allowed.
    pub retry_after: Duration,
}

impl RateDecision {
    fn from_count(count: u64, limit: u32, window_left: Duration) -> Self {
        let allowed = count <= u64::from(limit);
        Self {
            allowed,
            remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
            retry_after: if allowed { Duration::ZERO } else { window_left },
        }
    }
}

/// Yields once per wake-up of a channel (bursts may coalesce into one).
pub struct WakeReceiver {
    inner: WakeInner,
}

enum WakeInner {
    Local(broadcast::Receiver<()>),
    Remote(mpsc::Receiver<()>),
}

impl WakeReceiver {
    /// Waits for the next wake-up; `None` when the source is gone (e.g. the Redis subscription
    /// dropped), after which the caller should subscribe again and rely on polling meanwhile.
    pub async fn recv(&mut self) -> Option<()> {
        match &mut self.inner {
            WakeInner::Local(rx) => match rx.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(()),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            WakeInner::Remote(rx) => rx.recv().await,
        }
    }
}

/// The wake-up channel a commit that wrote an outbox event (a payment or refund changed state)
/// is announced on; `?wait=` waiters listen to it.
pub const EVENTS_WAKE_CHANNEL: &str = "events";

/// A commit hook ([`crate::Database::with_enqueue_hook`], [`crate::Database::with_event_hook`])
/// that wakes `channel` through `coordinator`. The hook only sets a flag; one task turns flags
/// into wake-ups, so a burst of commits costs one publish in flight and at most one more
/// queued behind it. Must be called inside the Tokio runtime (it starts that task).
pub fn commit_waker(
    coordinator: std::sync::Arc<dyn Coordinator>,
    channel: &'static str,
) -> crate::EnqueueHook {
    let pending = std::sync::Arc::new(tokio::sync::Notify::new());
    let signalled = pending.clone();
    tokio::spawn(async move {
        loop {
            signalled.notified().await;
            // best-effort by contract: a lost wake-up only delays the waiter to its next poll
            coordinator.wake(channel).await;
        }
    });
    std::sync::Arc::new(move || pending.notify_one())
}

/// Locks, rate limits and wake-ups shared by payfac processes.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// Takes `key` for `ttl` if nobody holds it; the token releases it early.
    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<LockToken>>;

    /// Releases `key` only if `token` still holds it (compare-and-release); `false` otherwise.
    async fn unlock(&self, key: &str, token: &LockToken) -> StoreResult<bool>;

    /// Counts one call against `limit` calls per fixed `window` (starting at the first call).
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision>;

    /// Adds `calls` to `key`'s count in the current fixed `window` (starting at the first
    /// call) and returns the count so far; how a limiter shares its counts between processes
    /// without a round trip per request.
    async fn rate_add(&self, key: &str, calls: u32, window: Duration) -> StoreResult<RateCount>;

    /// Wakes every subscriber of `channel`; best-effort, never fails the caller.
    async fn wake(&self, channel: &str);

    /// Subscribes to wake-ups of `channel`.
    async fn subscribe(&self, channel: &str) -> StoreResult<WakeReceiver>;

    /// Readiness check.
    async fn ping(&self) -> StoreResult<()>;
}

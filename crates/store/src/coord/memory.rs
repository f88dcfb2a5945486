//! Coordination inside one process: a mutex'd map and tokio broadcast channels.

use super::{Coordinator, LockToken, RateCount, RateDecision, WakeInner, WakeReceiver};
use crate::StoreResult;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Above this many entries, expired ones are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
struct State {
    locks: HashMap<String, (LockToken, Instant)>,
    windows: HashMap<String, (Instant, Duration, u64)>,
    channels: HashMap<String, broadcast::Sender<()>>,
}

/// The embedded-mode coordinator: correct within one process only.
#[derive(Clone, Default)]
pub struct InProcessCoordinator {
    state: Arc<Mutex<State>>,
}

impl InProcessCoordinator {
    /// An empty coordinator.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Coordinator for InProcessCoordinator {
    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<LockToken>> {
        let now = Instant::now();
        let mut s = self.state.lock();
        if s.locks.len() > SWEEP_ABOVE {
            s.locks.retain(|_, (_, exp)| *exp > now);
        }
        if s.locks.get(key).is_some_and(|(_, expires)| *expires > now) {
            return Ok(None);
        }
        let token = LockToken::generate();
        s.locks.insert(key.to_owned(), (token.clone(), now + ttl));
        Ok(Some(token))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> StoreResult<bool> {
        let now = Instant::now();
        let mut s = self.state.lock();
        match s.locks.get(key) {
            Some((held, expires)) if held == token && *expires > now => {
                s.locks.remove(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        let c = self.rate_add(key, 1, window).await?;
        Ok(RateDecision::from_count(c.count, limit, c.window_left))
    }

    async fn rate_add(&self, key: &str, calls: u32, window: Duration) -> StoreResult<RateCount> {
        let now = Instant::now();
        let mut s = self.state.lock();
        if s.windows.len() > SWEEP_ABOVE {
            s.windows.retain(|_, (start, w, _)| *start + *w > now);
        }
        let entry = s.windows.entry(key.to_owned()).or_insert((now, window, 0));
        if entry.0 + entry.1 <= now {
            *entry = (now, window, 0);
        }
        entry.2 += u64::from(calls);
        Ok(RateCount {
            count: entry.2,
            window_left: (entry.0 + entry.1).saturating_duration_since(now),
        })
    }

    async fn wake(&self, channel: &str) {
        let s = self.state.lock();
        if let Some(tx) = s.channels.get(channel) {
            // no receivers is fine: nobody is waiting
            let _ = tx.send(());
        }
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<WakeReceiver> {
        let mut s = self.state.lock();
        let tx = s
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(16).0);
        Ok(WakeReceiver {
            inner: WakeInner::Local(tx.subscribe()),
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

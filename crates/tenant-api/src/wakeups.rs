//! One process-wide listener for "a payment or refund changed" wake-ups, shared by every
//! `?wait=` request of the process.
//!
//! Each commit that writes an outbox event wakes [`store::coord::EVENTS_WAKE_CHANNEL`] (the
//! server installs [`store::Database::with_event_hook`]). A single task here holds the one
//! subscription (one Redis connection, not one per waiting request) and bumps a watch counter;
//! waiters re-read their payment when it moves instead of polling the database every 200 ms.
//! The wake-up names no payment, so each wake-up costs every waiter one read; a waiter reads at
//! most once per 200 ms however many commits wake it, so the load never exceeds the old poll's
//! and is nil while nothing commits.

use std::sync::{Arc, Weak};
use std::time::Duration;
use store::Coordinator;
use store::coord::EVENTS_WAKE_CHANNEL;
use tokio::sync::watch;

/// How often a waiter re-reads its payment anyway, in case a wake-up was lost (Redis
/// reconnecting, the listener starting): a safety net, not the mechanism.
pub const DEFAULT_FALLBACK: Duration = Duration::from_secs(2);

/// The process's wake-up listener.
pub struct CommitWakeups {
    tx: watch::Sender<u64>,
    fallback: Duration,
}

impl CommitWakeups {
    /// Starts listening on `coordinator` (must run inside the Tokio runtime); waiters re-read
    /// at least every `fallback`.
    pub fn start(coordinator: Arc<dyn Coordinator>, fallback: Duration) -> Arc<Self> {
        let (tx, _) = watch::channel(0);
        let hub = Arc::new(Self { tx, fallback });
        tokio::spawn(listen(coordinator, Arc::downgrade(&hub)));
        hub
    }

    /// A receiver that changes at every wake-up from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// The longest a waiter sleeps between two reads without a wake-up.
    pub fn fallback(&self) -> Duration {
        self.fallback
    }
}

/// Forwards wake-ups to the hub while it lives; resubscribes when the subscription drops.
async fn listen(coordinator: Arc<dyn Coordinator>, hub: Weak<CommitWakeups>) {
    loop {
        match coordinator.subscribe(EVENTS_WAKE_CHANNEL).await {
            Ok(mut rx) => {
                while rx.recv().await.is_some() {
                    let Some(hub) = hub.upgrade() else { return };
                    hub.tx.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to commit wake-ups; waiters poll")
            }
        }
        if hub.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

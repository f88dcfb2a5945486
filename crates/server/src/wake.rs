//! Waking job runners as soon as a due job commits, on every replica.
//!
//! The job row is the truth and runners poll for it; this only shortens the wait. The store
//! calls the hook after a commit that enqueued a due job; the hook just sets a flag, and one
//! task turns flags into a coordinator wake-up (Redis PUBLISH or in-process broadcast), so a
//! burst of commits costs one publish in flight and at most one more queued behind it.

use crate::runner::WAKE_CHANNEL;
use std::sync::Arc;
use store::{Coordinator, EnqueueHook};
use tokio::sync::Notify;

/// A hook for [`store::Database::with_enqueue_hook`] that wakes runners on [`WAKE_CHANNEL`].
/// Must be called inside the Tokio runtime (it starts the publishing task).
pub fn enqueue_waker(coordinator: Arc<dyn Coordinator>) -> EnqueueHook {
    let pending = Arc::new(Notify::new());
    let signalled = pending.clone();
    tokio::spawn(async move {
        loop {
            signalled.notified().await;
            // best-effort by contract: a lost wake-up only delays the job until the next poll
            coordinator.wake(WAKE_CHANNEL).await;
        }
    });
    Arc::new(move || pending.notify_one())
}

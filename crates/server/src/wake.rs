//! Waking job runners as soon as a due job commits, and `?wait=` waiters as soon as a payment
//! changes, on every replica.
//!
//! The rows are the truth and runners poll for them; this only shortens the wait. The store
//! calls a hook after a commit that enqueued a due job (or wrote an event); the hook just sets
//! a flag, and one task turns flags into a coordinator wake-up (Redis PUBLISH or in-process
//! broadcast), so a burst of commits costs one publish in flight and at most one more queued
//! behind it ([`store::coord::commit_waker`]).

use crate::runner::WAKE_CHANNEL;
use std::sync::Arc;
use store::coord::EVENTS_WAKE_CHANNEL;
use store::{Coordinator, EnqueueHook};

/// A hook for [`store::Database::with_enqueue_hook`] that wakes runners on [`WAKE_CHANNEL`].
/// Must be called inside the Tokio runtime (it starts the publishing task).
pub fn enqueue_waker(coordinator: Arc<dyn Coordinator>) -> EnqueueHook {
    store::coord::commit_waker(coordinator, WAKE_CHANNEL)
}

/// A hook for [`store::Database::with_event_hook`] that wakes `?wait=` waiters on
/// [`EVENTS_WAKE_CHANNEL`]. Must be called inside the Tokio runtime.
pub fn event_waker(coordinator: Arc<dyn Coordinator>) -> EnqueueHook {
    store::coord::commit_waker(coordinator, EVENTS_WAKE_CHANNEL)
}

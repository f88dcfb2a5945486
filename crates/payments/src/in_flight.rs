//! CPM creates this process is still waiting on CodePay for, by CodePay order number.
//!
//! CodePay notifies a CPM payment's success as soon as it answers it, so the notification
//! often arrives while the create that asked is still reading that same answer. Applied then, it
//! races the create: both read, price and write the same success, and the loser retries. A
//! notification for an order whose create is in flight here waits (briefly, bounded) for the
//! create to commit, and then finds the payment paid ([`crate::settled`]) and changes nothing.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Creates in flight, by `merchant_order_no`.
#[derive(Default)]
pub(crate) struct InFlight(Arc<Mutex<HashMap<String, watch::Receiver<()>>>>);

/// Held while a create waits on CodePay; dropping it (answer committed, error, panic) releases
/// every notification waiting for it.
pub(crate) struct CreateGuard {
    map: Arc<Mutex<HashMap<String, watch::Receiver<()>>>>,
    order_no: String,
    _done: watch::Sender<()>,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        self.map.lock().remove(&self.order_no);
    }
}

impl InFlight {
    /// Marks the create of `order_no` in flight until the guard is dropped.
    pub fn start(&self, order_no: &str) -> CreateGuard {
        let (tx, rx) = watch::channel(());
        self.0.lock().insert(order_no.to_owned(), rx);
        CreateGuard {
            map: self.0.clone(),
            order_no: order_no.to_owned(),
            _done: tx,
        }
    }

    /// Waits until the create of `order_no` is no longer in flight, at most `limit`; returns
    /// at once when none is.
    pub async fn settled(&self, order_no: &str, limit: Duration) {
        let rx = self.0.lock().get(order_no).cloned();
        if let Some(mut rx) = rx {
            // The sender is never used: `changed` returns when the guard drops it.
            let _ = tokio::time::timeout(limit, rx.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_waiter_is_released_when_the_create_finishes_and_bounded_otherwise() {
        let flights = Arc::new(InFlight::default());
        let started = Instant::now();
        flights.settled("none", Duration::from_secs(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "nothing to wait for"
        );

        let guard = flights.start("P1");
        let waiter = {
            let flights = flights.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                flights.settled("P1", Duration::from_secs(5)).await;
                t.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(guard);
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(40) && waited < Duration::from_secs(2));

        let _held = flights.start("P2");
        let t = Instant::now();
        flights.settled("P2", Duration::from_millis(30)).await;
        assert!(t.elapsed() >= Duration::from_millis(30) && t.elapsed() < Duration::from_secs(2));
    }
}

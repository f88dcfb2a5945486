//! Time one request spends waiting on the database and on CodePay, so the HTTP layer can
//! report payfac's *own* time (request time minus those waits) per route.
//!
//! The HTTP middleware runs each request inside [`scope`]; [`crate::Database`] calls,
//! coordinator (Redis) calls and the gateway client add their wall time to the request's
//! [`RequestWaits`] through [`database`] and [`upstream`]. Outside a scope (jobs, workers,
//! tests) recording does nothing. Waits are added up, so two waits awaited side by side in
//! one request count twice; the request paths await them one after another.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    static WAITS: Cell<RequestWaits>;
}

/// What one request has waited for so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestWaits {
    /// On SQL (including the blocking-pool hand-off and pool checkout) and on Redis.
    pub database: Duration,
    /// On CodePay's HTTP answer (signing and verifying are payfac's own time).
    pub upstream: Duration,
}

/// Runs `f` with a fresh wait account; returns its output and what it waited for.
pub async fn scope<F: Future>(f: F) -> (F::Output, RequestWaits) {
    WAITS
        .scope(Cell::new(RequestWaits::default()), async move {
            let out = f.await;
            (out, WAITS.with(Cell::get))
        })
        .await
}

/// Adds `d` to the current request's database wait (no-op outside [`scope`]).
pub fn database(d: Duration) {
    let _ = WAITS.try_with(|w| {
        let mut v = w.get();
        v.database += d;
        w.set(v);
    });
}

/// Adds `d` to the current request's upstream wait (no-op outside [`scope`]).
pub fn upstream(d: Duration) {
    let _ = WAITS.try_with(|w| {
        let mut v = w.get();
        v.upstream += d;
        w.set(v);
    });
}

/// Awaits `f`, adding its wall time to the request's database wait.
pub async fn timed_database<F: Future>(f: F) -> F::Output {
    let started = std::time::Instant::now();
    let out = f.await;
    database(started.elapsed());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_add_up_inside_a_scope_and_are_ignored_outside() {
        database(Duration::from_millis(5));
        let ((), w) = scope(async {
            database(Duration::from_millis(2));
            upstream(Duration::from_millis(7));
            timed_database(tokio::time::sleep(Duration::from_millis(3))).await;
        })
        .await;
        assert!(w.database >= Duration::from_millis(5), "{w:?}");
        assert!(w.database < Duration::from_millis(200), "{w:?}");
        assert_eq!(w.upstream, Duration::from_millis(7));
    }
}

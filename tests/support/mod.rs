//! The harness: the `payfac` binary under test ([`binary`]), a started process ([`payfac`]) and a
//! webhook receiver ([`receiver`]). Databases, ports and the test services come from
//! `test-support`.

pub mod binary;
pub mod ledger;
pub mod payfac;
pub mod receiver;
pub mod stack;

pub use payfac::{Backend, Payfac};
pub use receiver::{Behaviour, Hit, Receiver};

use std::time::{Duration, Instant};

/// Polls `done` every 50 ms until it holds, failing the test with `what` after `within`.
pub async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

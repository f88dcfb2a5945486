//! The same coordination suite on Redis and in-process.

use std::sync::Arc;
use std::time::Duration;
use store::{Coordinator, InProcessCoordinator, LockToken, RedisCoordinator};

async fn redis() -> Arc<dyn Coordinator> {
    let prefix = format!("t_{}:", test_support::random_suffix());
    Arc::new(
        RedisCoordinator::connect(&test_support::redis_url(), &prefix, Duration::from_secs(2))
            .await
            .expect("connect to redis"),
    )
}

fn in_process() -> Arc<dyn Coordinator> {
    Arc::new(InProcessCoordinator::new())
}

macro_rules! on_both_coordinators {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::redis().await).await;
                }
            )*
        }
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::in_process()).await;
                }
            )*
        }
    };
}

on_both_coordinators!(
    a_held_lock_is_refused_and_released_only_by_its_owner,
    a_lock_expires_after_its_ttl,
    rate_limit_refuses_over_the_limit_with_retry_after,
    rate_add_counts_batches_in_one_window,
    wake_reaches_a_subscriber,
    ping_answers,
);

async fn a_held_lock_is_refused_and_released_only_by_its_owner(c: Arc<dyn Coordinator>) {
    let ttl = Duration::from_secs(30);
    let token = c
        .try_lock("idem:k1", ttl)
        .await
        .expect("lock")
        .expect("free");
    assert!(
        c.try_lock("idem:k1", ttl).await.expect("lock").is_none(),
        "held"
    );

    let stranger = LockToken::generate();
    assert!(
        !c.unlock("idem:k1", &stranger).await.expect("unlock"),
        "non-owner"
    );
    assert!(
        c.try_lock("idem:k1", ttl).await.expect("lock").is_none(),
        "still held after a non-owner's unlock"
    );

    assert!(c.unlock("idem:k1", &token).await.expect("unlock"), "owner");
    assert!(
        !c.unlock("idem:k1", &token).await.expect("unlock"),
        "only once"
    );
    assert!(
        c.try_lock("idem:k1", ttl).await.expect("lock").is_some(),
        "free again"
    );
    assert!(
        c.try_lock("idem:k2", ttl).await.expect("lock").is_some(),
        "keys independent"
    );
}

async fn a_lock_expires_after_its_ttl(c: Arc<dyn Coordinator>) {
    let first = c
        .try_lock("short", Duration::from_millis(150))
        .await
        .expect("lock")
        .expect("free");
    assert!(
        c.try_lock("short", Duration::from_secs(5))
            .await
            .expect("lock")
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = c
        .try_lock("short", Duration::from_secs(5))
        .await
        .expect("lock")
        .expect("expired lock is free");
    assert!(
        !c.unlock("short", &first).await.expect("unlock"),
        "old owner cannot release"
    );
    assert!(c.unlock("short", &second).await.expect("unlock"));
}

async fn rate_add_counts_batches_in_one_window(c: Arc<dyn Coordinator>) {
    let window = Duration::from_millis(600);
    let first = c.rate_add("batched", 7, window).await.expect("add");
    assert_eq!(first.count, 7);
    assert!(first.window_left > Duration::ZERO && first.window_left <= window);
    assert_eq!(
        c.rate_add("batched", 5, window).await.expect("add").count,
        12
    );
    // rate_limit counts in the same window as rate_add.
    assert!(
        !c.rate_limit("batched", 12, window)
            .await
            .expect("rate")
            .allowed
    );
    tokio::time::sleep(first.window_left + Duration::from_millis(50)).await;
    assert_eq!(
        c.rate_add("batched", 2, window).await.expect("add").count,
        2
    );
}

async fn rate_limit_refuses_over_the_limit_with_retry_after(c: Arc<dyn Coordinator>) {
    let window = Duration::from_millis(800);
    for i in 0..3u32 {
        let d = c.rate_limit("key_a", 3, window).await.expect("rate");
        assert!(d.allowed, "call {i} within the limit");
        assert_eq!(d.remaining, 2 - i);
        assert_eq!(d.retry_after, Duration::ZERO);
    }
    let refused = c.rate_limit("key_a", 3, window).await.expect("rate");
    assert!(!refused.allowed);
    assert!(
        refused.retry_after > Duration::ZERO && refused.retry_after <= window,
        "{refused:?}"
    );
    assert!(
        c.rate_limit("key_b", 3, window)
            .await
            .expect("rate")
            .allowed,
        "per key"
    );
    tokio::time::sleep(refused.retry_after + Duration::from_millis(50)).await;
    assert!(
        c.rate_limit("key_a", 3, window)
            .await
            .expect("rate")
            .allowed,
        "new window"
    );
}

async fn wake_reaches_a_subscriber(c: Arc<dyn Coordinator>) {
    let mut rx = c.subscribe("jobs").await.expect("subscribe");
    let mut other = c.subscribe("other").await.expect("subscribe");
    // PUBLISH may race the subscription becoming active; wake until it is seen
    let waker = c.clone();
    let publisher = tokio::spawn(async move {
        for _ in 0..50 {
            waker.wake("jobs").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let got = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    publisher.abort();
    assert_eq!(got.expect("woken within 2 s"), Some(()));
    let quiet = tokio::time::timeout(Duration::from_millis(100), other.recv()).await;
    assert!(quiet.is_err(), "another channel is not woken");
}

async fn ping_answers(c: Arc<dyn Coordinator>) {
    c.ping().await.expect("ping");
}

#[tokio::test]
async fn redis_down_fails_fast_and_wakes_are_best_effort() {
    // nothing listens on port 1
    let started = std::time::Instant::now();
    let result =
        RedisCoordinator::connect("redis://127.0.0.1:1/", "x:", Duration::from_millis(300)).await;
    assert!(result.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

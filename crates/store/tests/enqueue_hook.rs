//! The post-commit enqueue hook: runners are woken for committed jobs only, on both backends.

use test_support::on_both_backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use store::jobs::{self, NewJob};
use store::{Database, StoreError, clock::now_ms};

on_both_backends!(
    the_hook_fires_once_per_committed_transaction_that_enqueued,
    a_rolled_back_or_duplicate_enqueue_wakes_nobody,
);

fn counting(db: Database) -> (Database, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let db = db.with_enqueue_hook(Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }));
    (db, calls)
}

fn job(key: &str, now: i64) -> NewJob<'_> {
    NewJob {
        kind: "hook.test",
        dedupe_key: Some(key),
        payload: "{}",
        run_at: now,
    }
}

async fn the_hook_fires_once_per_committed_transaction_that_enqueued(db: Database) {
    let (db, calls) = counting(db);
    db.write(|c| {
        let now = now_ms();
        jobs::enqueue(c, &job("a", now), now)?;
        jobs::enqueue(c, &job("b", now), now)?;
        Ok(())
    })
    .await
    .expect("enqueue two");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one wake-up per commit");
    db.write(|c| jobs::depth_by_kind(c).map(drop))
        .await
        .expect("a write without enqueue");
    db.read(|c| jobs::depth_by_kind(c).map(drop))
        .await
        .expect("a read");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no job, no wake-up");
    db.write(|c| {
        let now = now_ms();
        jobs::enqueue(c, &job("later", now + 60_000), now).map(drop)
    })
    .await
    .expect("enqueue a job due in a minute");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a job due later is found by the poll"
    );
    let sync_db = db.clone();
    tokio::task::spawn_blocking(move || {
        sync_db.write_blocking(|c| {
            let now = now_ms();
            jobs::enqueue(c, &job("c", now), now).map(drop)
        })
    })
    .await
    .expect("join")
    .expect("blocking enqueue");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "write_blocking wakes too");
}

async fn a_rolled_back_or_duplicate_enqueue_wakes_nobody(db: Database) {
    let (db, calls) = counting(db);
    let failed = db
        .write(|c| {
            let now = now_ms();
            jobs::enqueue(c, &job("x", now), now)?;
            Err::<(), _>(StoreError::Conflict("caller changed its mind".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "rolled back: no job exists"
    );
    // The flag must not leak from the rolled-back transaction into the next one on the thread.
    db.write(|c| jobs::depth_by_kind(c).map(drop))
        .await
        .expect("a write without enqueue");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    db.write(|c| {
        let now = now_ms();
        jobs::enqueue(c, &job("y", now), now).map(drop)
    })
    .await
    .expect("enqueue");
    db.write(|c| {
        let now = now_ms();
        jobs::enqueue(c, &job("y", now), now).map(drop)
    })
    .await
    .expect("duplicate enqueue");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a duplicate adds no job");
}

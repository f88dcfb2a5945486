//! The job queue: dedupe, claim, fencing and lease expiry on both backends, and concurrent
//! runners on real PostgreSQL.

use test_support::on_both_backends;

use std::collections::HashSet;
use std::time::Duration;
use store::jobs::{self, Enqueued, NewJob};
use store::{Database, clock::now_ms};

/// `owner` claims up to 10 due jobs of kind `a` with a 30 s lease.
async fn claim_a(db: &Database, owner: &'static str, now: i64) -> Vec<jobs::Job> {
    db.write(move |c| jobs::claim(c, &["a"], owner, Duration::from_secs(30), 10, now))
        .await
        .expect("claim")
}

fn job<'a>(kind: &'a str, key: Option<&'a str>, run_at: i64) -> NewJob<'a> {
    NewJob {
        kind,
        dedupe_key: key,
        payload: "{}",
        run_at,
    }
}

on_both_backends!(
    an_unfinished_job_is_never_queued_twice,
    only_due_jobs_of_the_asked_kinds_are_claimed,
    jobs_in_a_lane_are_left_to_the_lane_claimer,
    a_runner_whose_lease_was_taken_over_cannot_complete_or_retry,
    a_job_whose_runner_died_is_claimed_again_after_its_lease,
    retry_requeues_and_release_owner_hands_jobs_back,
    queue_metrics_count_depth_and_lag,
);

async fn an_unfinished_job_is_never_queued_twice(db: Database) {
    let now = now_ms();
    let (first, second) = db
        .write(move |c| {
            let a = jobs::enqueue(c, &job("poll_payment", Some("pay_1"), now), now)?;
            let b = jobs::enqueue(c, &job("poll_payment", Some("pay_1"), now), now)?;
            Ok((a, b))
        })
        .await
        .expect("enqueue");
    assert!(matches!(first, Enqueued::Created(_)));
    assert_eq!(second, Enqueued::Duplicate);
    // another kind, or no key, is not a duplicate
    let other = db
        .write(move |c| {
            let a = jobs::enqueue(c, &job("expire_payment", Some("pay_1"), now), now)?;
            let b = jobs::enqueue(c, &job("poll_payment", None, now), now)?;
            let d = jobs::enqueue(c, &job("poll_payment", None, now), now)?;
            Ok([a, b, d])
        })
        .await
        .expect("enqueue");
    assert!(other.iter().all(|e| matches!(e, Enqueued::Created(_))));

    // once finished, the same key may be queued again
    let claimed = db
        .write(move |c| jobs::claim(c, &["poll_payment"], "r1", Duration::from_secs(30), 10, now))
        .await
        .expect("claim");
    let keyed = claimed
        .iter()
        .find(|j| j.dedupe_key.as_deref() == Some("pay_1"))
        .expect("keyed job claimed")
        .id
        .clone();
    let again = db
        .write(move |c| {
            let dup = jobs::enqueue(c, &job("poll_payment", Some("pay_1"), now), now)?;
            assert!(jobs::complete(c, &keyed, "r1", now)?);
            let fresh = jobs::enqueue(c, &job("poll_payment", Some("pay_1"), now), now)?;
            Ok((dup, fresh))
        })
        .await
        .expect("enqueue");
    assert_eq!(again.0, Enqueued::Duplicate, "still running");
    assert!(
        matches!(again.1, Enqueued::Created(_)),
        "done frees the key"
    );
}

async fn only_due_jobs_of_the_asked_kinds_are_claimed(db: Database) {
    let now = now_ms();
    db.write(move |c| {
        jobs::enqueue(c, &job("a", None, now - 10), now)?;
        jobs::enqueue(c, &job("a", None, now + 60_000), now)?;
        jobs::enqueue(c, &job("b", None, now - 10), now)?;
        Ok(())
    })
    .await
    .expect("enqueue");
    let got = claim_a(&db, "r1", now).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, "a");
    assert_eq!(got[0].state, jobs::RUNNING);
    assert_eq!(got[0].attempts, 1);
    assert_eq!(got[0].lease_owner.as_deref(), Some("r1"));
    let none = claim_a(&db, "r2", now).await;
    assert!(none.is_empty(), "claimed and future jobs are not due");
}

async fn jobs_in_a_lane_are_left_to_the_lane_claimer(db: Database) {
    let now = now_ms();
    db.write(move |c| {
        jobs::enqueue_in_lane(c, &job("a", Some("k1"), now - 20), Some("lane_1"), now)?;
        jobs::enqueue(c, &job("a", Some("k2"), now - 10), now)?;
        Ok(())
    })
    .await
    .expect("enqueue");
    let got = claim_a(&db, "r1", now).await;
    let keys: Vec<_> = got.iter().map(|j| j.dedupe_key.as_deref()).collect();
    assert_eq!(
        keys,
        [Some("k2")],
        "the older job is in a lane: not this claimer's"
    );
    let lanes = db
        .read(store::delivery_queue::queued_lanes)
        .await
        .expect("lanes");
    assert_eq!(lanes, ["lane_1"]);
}

async fn a_runner_whose_lease_was_taken_over_cannot_complete_or_retry(db: Database) {
    let now = now_ms();
    db.write(move |c| jobs::enqueue(c, &job("k", None, now), now))
        .await
        .expect("enqueue");
    let first = db
        .write(move |c| jobs::claim(c, &["k"], "old", Duration::from_millis(1), 1, now))
        .await
        .expect("claim");
    let id = first[0].id.clone();
    let later = now + 1_000;
    let second = db
        .write(move |c| jobs::claim(c, &["k"], "new", Duration::from_secs(30), 1, later))
        .await
        .expect("claim");
    assert_eq!(second.len(), 1, "expired lease is claimable");
    assert_eq!(second[0].id, id);
    assert_eq!(second[0].attempts, 2);
    let (done, retried, failed) = {
        let id = id.clone();
        db.write(move |c| {
            Ok((
                jobs::complete(c, &id, "old", later)?,
                jobs::retry(c, &id, "old", later, "late", later)?,
                jobs::fail(c, &id, "old", "late", later)?,
            ))
        })
        .await
        .expect("fenced calls")
    };
    assert!(!done && !retried && !failed, "the old owner is fenced off");
    let row = {
        let id = id.clone();
        db.read(move |c| jobs::get(c, &id)).await.expect("get")
    };
    assert_eq!(row.state, jobs::RUNNING);
    assert_eq!(row.lease_owner.as_deref(), Some("new"));
    let ok = db
        .write(move |c| jobs::complete(c, &id, "new", later))
        .await
        .expect("complete");
    assert!(ok, "the current owner completes");
}

async fn a_job_whose_runner_died_is_claimed_again_after_its_lease(db: Database) {
    let now = now_ms();
    db.write(move |c| jobs::enqueue(c, &job("k", None, now), now))
        .await
        .expect("enqueue");
    // "dies": claims with a short real lease and never completes
    let lost = db
        .write(|c| {
            jobs::claim(
                c,
                &["k"],
                "dead-runner",
                Duration::from_millis(200),
                1,
                now_ms(),
            )
        })
        .await
        .expect("claim");
    assert_eq!(lost.len(), 1);
    let early = db
        .write(|c| jobs::claim(c, &["k"], "survivor", Duration::from_secs(30), 1, now_ms()))
        .await
        .expect("claim");
    assert!(early.is_empty(), "not before the lease runs out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = db
        .write(|c| jobs::claim(c, &["k"], "survivor", Duration::from_secs(30), 1, now_ms()))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, lost[0].id);
    assert_eq!(again[0].lease_owner.as_deref(), Some("survivor"));
}

async fn retry_requeues_and_release_owner_hands_jobs_back(db: Database) {
    let now = now_ms();
    db.write(move |c| {
        jobs::enqueue(c, &job("k", None, now), now)?;
        jobs::enqueue(c, &job("k", None, now), now)
    })
    .await
    .expect("enqueue");
    let got = db
        .write(move |c| jobs::claim(c, &["k"], "r1", Duration::from_secs(30), 10, now))
        .await
        .expect("claim");
    assert_eq!(got.len(), 2);
    let id = got[0].id.clone();
    let retried = {
        let id = id.clone();
        db.write(move |c| {
            assert!(jobs::retry(c, &id, "r1", now + 5_000, "upstream 502", now)?);
            jobs::get(c, &id)
        })
        .await
        .expect("retry")
    };
    assert_eq!(retried.state, jobs::QUEUED);
    assert_eq!(retried.run_at, now + 5_000);
    assert_eq!(retried.last_error.as_deref(), Some("upstream 502"));
    assert!(retried.lease_owner.is_none());

    let released = db
        .write(move |c| jobs::release_owner(c, "r1", now))
        .await
        .expect("release");
    assert_eq!(released, 1, "only the job r1 still held");
    let back = db
        .write(move |c| jobs::claim(c, &["k"], "r2", Duration::from_secs(30), 10, now))
        .await
        .expect("claim");
    assert_eq!(back.len(), 1, "released job due now; retried one waits");
    assert_eq!(
        back[0].attempts, 1,
        "the interrupted attempt is not counted"
    );
}

async fn queue_metrics_count_depth_and_lag(db: Database) {
    let now = now_ms();
    db.write(move |c| {
        jobs::enqueue(c, &job("a", None, now - 4_000), now)?;
        jobs::enqueue(c, &job("a", None, now - 1_000), now)?;
        jobs::enqueue(c, &job("b", None, now + 60_000), now)?;
        Ok(())
    })
    .await
    .expect("enqueue");
    let (depth, lag) = db
        .read(move |c| {
            Ok((
                jobs::depth_by_kind(c)?,
                jobs::oldest_due_age_by_kind(c, now)?,
            ))
        })
        .await
        .expect("metrics");
    assert_eq!(depth, vec![("a".to_owned(), 2), ("b".to_owned(), 1)]);
    assert_eq!(lag, vec![("a".to_owned(), 4_000)]);
}

/// Two runners, each with its own pool, claim from one queue concurrently: every job is claimed
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_runners_never_claim_the_same_job() {
    let url = test_support::fresh_postgres_url();
    let a = Database::connect(&url, 4).await.expect("connect a");
    a.migrate().await.expect("migrate");
    let b = Database::connect(&url, 4).await.expect("connect b");
    const JOBS: usize = 400;
    a.write(|c| {
        let now = now_ms();
        for _ in 0..JOBS {
            jobs::enqueue(c, &job("deliver", None, now - 1), now)?;
        }
        Ok(())
    })
    .await
    .expect("enqueue");

    let mut tasks = Vec::new();
    for (i, db) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let owner = format!("runner-{i}");
            let mut mine = Vec::new();
            loop {
                let owner2 = owner.clone();
                let batch = db
                    .write(move |c| {
                        jobs::claim(
                            c,
                            &["deliver"],
                            &owner2,
                            Duration::from_secs(60),
                            7,
                            now_ms(),
                        )
                    })
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut per_runner = Vec::new();
    for t in tasks {
        let ids = t.await.expect("runner");
        per_runner.push(ids.len());
        all.extend(ids);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "every job claimed once: {per_runner:?}");
    assert_eq!(unique.len(), JOBS, "no job claimed twice");
    assert!(
        per_runner.iter().filter(|n| **n > 0).count() >= 2,
        "work was actually shared: {per_runner:?}"
    );
}

/// A runner on one connection dies mid-job; a runner on another connection picks the job up once
/// the lease runs out, on real PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dead_runners_job_is_reclaimed_by_another_connection() {
    let url = test_support::fresh_postgres_url();
    let a = Database::connect(&url, 1).await.expect("connect a");
    a.migrate().await.expect("migrate");
    let b = Database::connect(&url, 1).await.expect("connect b");
    a.write(|c| jobs::enqueue(c, &job("poll", Some("pay_x"), now_ms()), now_ms()))
        .await
        .expect("enqueue");
    let lost = a
        .write(|c| jobs::claim(c, &["poll"], "a", Duration::from_millis(300), 5, now_ms()))
        .await
        .expect("claim");
    assert_eq!(lost.len(), 1);
    drop(a); // the runner and its connections are gone
    let none = b
        .write(|c| jobs::claim(c, &["poll"], "b", Duration::from_secs(30), 5, now_ms()))
        .await
        .expect("claim");
    assert!(none.is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = b
        .write(|c| jobs::claim(c, &["poll"], "b", Duration::from_secs(30), 5, now_ms()))
        .await
        .expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, lost[0].id);
    let id = got[0].id.clone();
    assert!(
        b.write(move |c| jobs::complete(c, &id, "b", now_ms()))
            .await
            .expect("complete")
    );
}

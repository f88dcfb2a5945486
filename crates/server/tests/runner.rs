//! The job runner on real SQLite and PostgreSQL: every job runs exactly once across runners,
//! retries come back, and shutdown hands leases back.

use server::runner::{Handler, Outcome, Runner, RunnerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::jobs::{self, NewJob};
use store::{Coordinator, Database, InProcessCoordinator, clock};
use test_support::on_both_backends;
use tokio::sync::watch;

on_both_backends!(
    two_runners_run_every_job_exactly_once,
    a_retried_job_runs_again_and_shutdown_releases_leases,
);

fn config(owner: &str) -> RunnerConfig {
    RunnerConfig {
        owner: owner.into(),
        lease: Duration::from_secs(30),
        concurrency: 8,
        poll_interval: Duration::from_millis(50),
    }
}

type Seen = Arc<Mutex<HashMap<String, Vec<String>>>>;

fn recording(seen: Seen, runner_name: &'static str) -> Handler {
    Arc::new(move |job| {
        let seen = seen.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            seen.lock()
                .expect("lock")
                .entry(job.id.clone())
                .or_default()
                .push(runner_name.into());
            Outcome::Done
        })
    })
}

async fn enqueue(db: &Database, n: usize) {
    db.write(move |tx| {
        let now = clock::now_ms();
        for _ in 0..n {
            jobs::enqueue(
                tx,
                &NewJob {
                    kind: "test.record",
                    dedupe_key: None,
                    payload: "{}",
                    run_at: now,
                },
                now,
            )?;
        }
        Ok(())
    })
    .await
    .expect("enqueue");
}

async fn two_runners_run_every_job_exactly_once(db: Database) {
    enqueue(&db, 200).await;
    let coordinator: Arc<dyn Coordinator> = Arc::new(InProcessCoordinator::new());
    let seen: Seen = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for name in ["runner-a", "runner-b"] {
        let mut runner = Runner::new(db.clone(), coordinator.clone(), config(name));
        runner.register("test.record", recording(seen.clone(), name));
        tasks.push(tokio::spawn(
            runner.run(stopped.clone(), Duration::from_secs(5)),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().expect("lock").len() < 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).expect("stop");
    for t in tasks {
        t.await.expect("runner task");
    }
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 200, "every job ran");
        assert!(
            seen.values().all(|runs| runs.len() == 1),
            "no job ran twice"
        );
    }
    let depth = db.read(jobs::depth_by_kind).await.expect("depth");
    assert!(
        depth.iter().all(|(_, n)| *n == 0),
        "queue drained: {depth:?}"
    );
}

async fn a_retried_job_runs_again_and_shutdown_releases_leases(db: Database) {
    enqueue(&db, 1).await;
    let coordinator: Arc<dyn Coordinator> = Arc::new(InProcessCoordinator::new());
    let calls = Arc::new(Mutex::new(0u32));
    let (stop, stopped) = watch::channel(false);
    let mut runner = Runner::new(db.clone(), coordinator.clone(), config("runner-retry"));
    let counter = calls.clone();
    runner.register(
        "test.record",
        Arc::new(move |_job| {
            let counter = counter.clone();
            Box::pin(async move {
                let n = {
                    let mut c = counter.lock().expect("lock");
                    *c += 1;
                    *c
                };
                if n == 1 {
                    Outcome::RetryAt {
                        at_ms: clock::now_ms() + 50,
                        error: "upstream timeout".into(),
                    }
                } else {
                    // the second run hangs until shutdown: its lease must be handed back
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Outcome::Done
                }
            })
        }),
    );
    let task = tokio::spawn(runner.run(stopped, Duration::from_millis(200)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while *calls.lock().expect("lock") < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*calls.lock().expect("lock"), 2, "retried job ran again");
    stop.send(true).expect("stop");
    task.await.expect("runner");
    let claimable = db
        .write(|tx| {
            jobs::claim(
                tx,
                &["test.record"],
                "someone-else",
                Duration::from_secs(30),
                10,
                clock::now_ms(),
            )
        })
        .await
        .expect("claim");
    assert_eq!(
        claimable.len(),
        1,
        "the interrupted job is claimable at once after shutdown"
    );
    assert_eq!(claimable[0].last_error.as_deref(), Some("upstream timeout"));
}

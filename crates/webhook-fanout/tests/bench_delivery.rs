//! Delivery benchmarks (run with `cargo test -p webhook-fanout --test bench_delivery -- --ignored
//! --nocapture --test-threads 1`): deliveries per second to a fast local receiver on PostgreSQL
//! and SQLite, and the healthy endpoints' rate beside 20 timing-out ones versus alone. The runner
//! loop is the server's: bounded slots, claim as many jobs as there are free slots, record each
//! job's decision as it finishes.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Database, clock, jobs};
use support::store::{self as s, endpoint, keyring, merchant};
use support::{Receiver, Reply};
use tokio::sync::Semaphore;
use webhook_fanout::{DELIVER_JOB_KIND, DeliveryWorker, FanoutConfig, JobDecision};

/// Runs delivery jobs like the server's runner until `done` holds; returns the elapsed time.
async fn run(
    db: &Database,
    worker: &Arc<DeliveryWorker>,
    slots: usize,
    done: impl Fn() -> bool,
) -> Duration {
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(slots));
    while !done() {
        let free = sem.available_permits();
        if free == 0 {
            drop(sem.clone().acquire_owned().await);
            continue;
        }
        let lease = worker.job_lease();
        let claimed = db
            .write(move |c| {
                jobs::claim(
                    c,
                    &[DELIVER_JOB_KIND],
                    "bench",
                    lease,
                    i64::try_from(free).unwrap_or(1),
                    clock::now_ms(),
                )
            })
            .await
            .expect("claim");
        if claimed.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        for job in claimed {
            let permit = sem.clone().acquire_owned().await.expect("permit");
            let (db, worker) = (db.clone(), worker.clone());
            tokio::spawn(async move {
                let decision = worker.handle(&job).await;
                // after the measurement the runtime stops and may cancel this; that is fine here
                let _ = record(&db, &job.id, decision).await;
                drop(permit);
            });
        }
    }
    start.elapsed()
}

async fn record(db: &Database, id: &str, decision: JobDecision) -> store::StoreResult<bool> {
    let id = id.to_owned();
    db.write(move |c| {
        let now = clock::now_ms();
        match &decision {
            JobDecision::Done => jobs::complete(c, &id, "bench", now),
            JobDecision::RetryAt { at_ms, error } => {
                jobs::retry(c, &id, "bench", *at_ms, error, now)
            }
            JobDecision::Dead(e) => jobs::fail(c, &id, "bench", e, now),
        }
    })
    .await
}

fn cfg(timeout: Duration, per_endpoint: usize) -> FanoutConfig {
    let mut c = s::config("0s,1s,1s,1s,1s,1s,1s,1s,1s,1s");
    c.sender.timeout = timeout;
    c.sender.pool_max_idle_per_host = 64;
    c.dispatcher.per_endpoint_in_flight = per_endpoint;
    c.dispatcher.global_concurrency = 512;
    c
}

/// `events` events to each of `endpoints` endpoints on one fast receiver.
async fn throughput(
    db: Database,
    label: &str,
    endpoints: usize,
    events: usize,
    slots: usize,
) -> f64 {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    for _ in 0..endpoints {
        endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    }
    for i in 0..events {
        s::payment_event(&db, &m, &format!("pay_{i}")).await;
    }
    let total = endpoints * events;
    let w = Arc::new(
        DeliveryWorker::build(db.clone(), kr, None, cfg(Duration::from_secs(5), 64)).unwrap(),
    );
    let rx2 = rx.clone();
    let took = run(&db, &w, slots, move || rx2.count() >= total).await;
    let rate = total as f64 / took.as_secs_f64();
    println!(
        "{label}: {total} deliveries in {:.2} s = {rate:.0}/s ({slots} slots)",
        took.as_secs_f64()
    );
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_postgres() {
    let db = s::fresh_postgres_sized(32).await;
    throughput(db, "PostgreSQL", 20, 250, 256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_sqlite() {
    let (db, _dir) = s::fresh_sqlite().await;
    throughput(db, "SQLite", 20, 100, 64).await;
}

/// Healthy endpoints' delivery rate with 20 timing-out endpoints beside them, versus alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_isolation_postgres() {
    let events = 100;
    let mut rates = Vec::new();
    for with_bad in [false, true] {
        let db = s::fresh_postgres_sized(32).await;
        let kr = keyring();
        let good = Receiver::start(Reply::status(200));
        let bad = Receiver::start(Reply::status(200).delayed(Duration::from_secs(30)));
        let m = merchant(&db).await;
        for _ in 0..20 {
            endpoint(&db, &kr, &m, &good.url("/"), &["*"]).await;
            if with_bad {
                endpoint(&db, &kr, &m, &bad.url("/"), &["*"]).await;
            }
        }
        for i in 0..events {
            s::payment_event(&db, &m, &format!("pay_{i}")).await;
        }
        let total = 20 * events;
        let w = Arc::new(
            DeliveryWorker::build(db.clone(), kr, None, cfg(Duration::from_secs(1), 8)).unwrap(),
        );
        let g = good.clone();
        let took = run(&db, &w, 256, move || g.count() >= total).await;
        let rate = total as f64 / took.as_secs_f64();
        println!(
            "healthy endpoints {}: {total} deliveries in {:.2} s = {rate:.0}/s (timing-out endpoint requests: {})",
            if with_bad {
                "beside 20 timing-out ones"
            } else {
                "alone"
            },
            took.as_secs_f64(),
            bad.count()
        );
        rates.push(rate);
    }
    println!("ratio: {:.0} %", rates[1] / rates[0] * 100.0);
}

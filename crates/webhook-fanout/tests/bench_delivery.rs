//! Delivery benchmarks, run in release:
//! `cargo test --release -p webhook-fanout --test bench_delivery -- --ignored --nocapture
//! --test-threads 1`. Deliveries per second to a fast local receiver on PostgreSQL (also with
//! `synchronous_commit=on`) and SQLite, the receiver's own ceiling, and the healthy endpoints'
//! rate beside 20 timing-out ones versus alone (both backends). Deliveries go through the pump exactly as the
//! server's worker role runs it. Each line prints the machine's load average, since other
//! builds share the cores.

use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Database;
use test_support::keyring;
use test_support::receiver::{Receiver, Reply};
use test_support::webhooks::{self as s, endpoint, merchant};
use webhook_fanout::{DeliveryWorker, FanoutConfig, Pump, PumpConfig};

const GLOBAL_CONCURRENCY: usize = 512;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs the delivery pump (as the server's worker role does) until `done` holds; returns the
/// elapsed time. The pump is then shut down (records flushed, leases handed back).
async fn run(worker: &Arc<DeliveryWorker>, done: impl Fn() -> bool) -> Duration {
    let mut config = PumpConfig::new("bench");
    config.poll_interval = Duration::from_millis(20);
    config.max_in_flight = 2 * GLOBAL_CONCURRENCY;
    let pump = Arc::new(Pump::new(worker.clone(), config));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let task = tokio::spawn(pump.run(None, stopped, Duration::from_secs(5)));
    let mut ticks = 0u32;
    while !done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        ticks += 1;
        if std::env::var_os("BENCH_TRACE").is_some() && ticks.is_multiple_of(1000) {
            println!("  t={:.1}s", start.elapsed().as_secs_f64());
        }
    }
    let took = start.elapsed();
    stop.send(true).expect("stop");
    task.await.expect("pump");
    took
}

fn rand_tick() -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000)
}

/// A numeric knob from the environment, or its default.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cfg(timeout: Duration, per_endpoint: usize) -> FanoutConfig {
    let mut c = s::config("0s,1s,1s,1s,1s,1s,1s,1s,1s,1s");
    c.sender.timeout = timeout;
    c.sender.pool_max_idle_per_host = 64;
    c.dispatcher.per_endpoint_in_flight = per_endpoint;
    c.dispatcher.global_concurrency = GLOBAL_CONCURRENCY;
    c
}

/// `events` events to each of `endpoints` endpoints on one fast receiver.
async fn throughput(db: Database, label: &str, endpoints: usize, events: usize) -> f64 {
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
    let took = run(&w, move || rx2.count() >= total).await;
    let rate = total as f64 / took.as_secs_f64();
    println!(
        "{label}: {total} deliveries in {:.2} s = {rate:.0}/s (load {})",
        took.as_secs_f64(),
        load()
    );
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_postgres() {
    let db = test_support::fresh_postgres_sized(32).await;
    throughput(db, "PostgreSQL", 20, 500).await;
}

/// The same with every transaction waiting for its WAL write (`synchronous_commit=on` as the
/// database default of the bench's connections). The test cluster runs with `fsync=off`, a
/// server-wide setting the shared cluster keeps, so this measures the commit round trip, not
/// a disk flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_postgres_synchronous_commit() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = test_support::pg_admin_url();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = PgConnection::establish(&admin).expect("admin");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create");
    diesel::sql_query(format!("ALTER DATABASE {name} SET synchronous_commit = on"))
        .execute(&mut conn)
        .expect("alter");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    let db = Database::connect(url.as_str(), 32).await.expect("connect");
    db.migrate().await.expect("migrate");
    let on: Vec<(String,)> = {
        let mut c = PgConnection::establish(url.as_str()).expect("connect");
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            synchronous_commit: String,
        }
        diesel::sql_query("SHOW synchronous_commit")
            .load::<Setting>(&mut c)
            .expect("show")
            .into_iter()
            .map(|s| (s.synchronous_commit,))
            .collect()
    };
    assert_eq!(on[0].0, "on");
    throughput(db, "PostgreSQL synchronous_commit=on", 20, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_sqlite() {
    let (db, _dir) = test_support::fresh_sqlite_sized(8).await;
    throughput(db, "SQLite", 20, 250).await;
}

/// The receiver alone, driven by the same HTTP client settings: the ceiling of the benches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_receiver_alone() {
    let rx = Receiver::start(Reply::status(200));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let total = 20_000;
    let url = rx.url("/");
    let start = Instant::now();
    let per_task = total / 64;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let r = client.post(&url).body("{}").send().await.unwrap();
                    let _ = r.bytes().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    println!(
        "receiver alone: {} requests in {:.2} s = {:.0}/s (load {})",
        rx.count(),
        took.as_secs_f64(),
        rx.count() as f64 / took.as_secs_f64(),
        load()
    );
}

/// Healthy endpoints' delivery rate with 20 timing-out endpoints beside them, versus alone.
/// Each round measures both, in alternating order, so that drift in the machine's speed hits
/// both sides alike; the result is the median of the rounds' ratios (and the medians' ratio).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_isolation_postgres() {
    isolation(true).await;
}

/// [`bench_isolation_postgres`] on SQLite (WAL), where each lane is one in-process query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_isolation_sqlite() {
    isolation(false).await;
}

async fn isolation(postgres: bool) {
    // Long enough for the steady state (slow endpoints at their cap) to dominate the first
    // claims' transient; production's 15 s timeout unless BENCH_TIMEOUT_S says else.
    let events: usize = env_or("BENCH_ISOLATION_EVENTS", 1500);
    let timeout = Duration::from_secs(env_or("BENCH_TIMEOUT_S", 15));
    let rounds: usize = env_or("BENCH_ISOLATION_ROUNDS", 5);
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alone first in even rounds, beside first in odd ones: a machine that drifts slower
        // (or faster) over the run then biases neither side.
        for with_bad in [round % 2 == 1, round % 2 == 0] {
            let rate = isolation_round(postgres, with_bad, events, timeout).await;
            if with_bad {
                beside.push(rate);
            } else {
                alone.push(rate);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Per round, beside / alone: robust to the machine drifting over the rounds.
    let mut ratios: Vec<f64> = alone
        .iter()
        .zip(&beside)
        .map(|(a, b)| b / a * 100.0)
        .collect();
    println!("ratio per round (beside / alone, %): {ratios:.0?}");
    let r = median(&mut ratios);
    let (a, b) = (median(&mut alone), median(&mut beside));
    println!(
        "median alone {a:.0}/s, beside {b:.0}/s: ratio of medians {:.0} %, median of round ratios {r:.0} %",
        b / a * 100.0
    );
}

/// One round: 20 healthy endpoints (and, `with_bad`, 20 that never answer) each owed `events`
/// deliveries; returns the healthy endpoints' deliveries per second.
async fn isolation_round(postgres: bool, with_bad: bool, events: usize, timeout: Duration) -> f64 {
    let (db, url, _dir) = if postgres {
        let (db, url) = test_support::fresh_postgres_with_url(32).await;
        (db, Some(url), None)
    } else {
        let (db, dir) = test_support::fresh_sqlite_sized(8).await;
        (db, None, Some(dir))
    };
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
    // Settle the set-up's writes first, so that autovacuum or a checkpoint does not start
    // inside one round's measurement and not another's.
    if let Some(url) = url.clone() {
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection, PgConnection, RunQueryDsl};
            let mut c = PgConnection::establish(&url).expect("connect");
            diesel::sql_query("VACUUM ANALYZE")
                .execute(&mut c)
                .expect("vacuum");
            diesel::sql_query("CHECKPOINT")
                .execute(&mut c)
                .expect("checkpoint");
        })
        .await
        .expect("vacuum task");
    }
    let total = 20 * events;
    let w = Arc::new(DeliveryWorker::build(db.clone(), kr, None, cfg(timeout, 8)).unwrap());
    let (g, b) = (good.clone(), bad.clone());
    let took = run(&w, move || {
        if std::env::var_os("BENCH_TRACE").is_some() && rand_tick() {
            println!("  good {} bad {}", g.count(), b.count());
        }
        g.count() >= total
    })
    .await;
    let rate = total as f64 / took.as_secs_f64();
    let failed = db
        .read(|c| {
            use diesel::prelude::*;
            use store::schema::delivery_attempts::dsl as a;
            Ok(store::on_backend!(c, |c| a::delivery_attempts
                .filter(a::http_status.is_null().or(a::http_status.ne(200)))
                .count()
                .get_result::<i64>(c))?)
        })
        .await
        .unwrap();
    println!(
        "healthy endpoints {}: {total} deliveries in {:.2} s = {rate:.0}/s (requests to the timing-out ones: {}, failed attempts: {failed}, load {})",
        if with_bad {
            "beside 20 timing-out ones"
        } else {
            "alone"
        },
        took.as_secs_f64(),
        bad.count(),
        load()
    );
    good.stop().await;
    bad.stop().await;
    drop((w, db));
    // Leftover databases make later rounds slower (autovacuum visits each, more to checkpoint).
    if let Some(url) = url {
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection, PgConnection, RunQueryDsl};
            let mut c = PgConnection::establish(&test_support::pg_admin_url()).expect("connect");
            let name = url.rsplit('/').next().unwrap_or_default().to_owned();
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .expect("drop the round's database");
        })
        .await
        .expect("drop task");
    }
    rate
}

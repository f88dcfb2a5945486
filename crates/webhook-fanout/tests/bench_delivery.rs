//! Delivery benchmarks, run in release:
//! `cargo test --release -p webhook-fanout --test bench_delivery -- --ignored --nocapture
//! --test-threads 1`.
//!
//! Throughput (`bench_throughput_*`): deliveries per second through the pump exactly as the
//! server's worker role runs it, against the receiver alone measured in the same test run
//! (right before and right after the pump's phase, same request concurrency and HTTP client
//! settings, same body size and headers), on PostgreSQL (also with `synchronous_commit=on`)
//! and SQLite. The pump's phase drains `BENCH_EVENTS` events (default 10 000) × 20 endpoints;
//! each receiver-alone phase lasts `BENCH_PHASE_S` seconds (default 5). Isolation
//! (`bench_isolation_*`): the healthy endpoints' rate beside 20 timing-out ones versus alone.
//! Every line prints the machine's load average, since other builds share the cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use store::Database;
use test_support::keyring;
use test_support::receiver::{Receiver, Reply};
use test_support::webhooks::{self as s, endpoint, merchant};
use webhook_fanout::{DeliveryWorker, FanoutConfig, Pump, PumpConfig};

const GLOBAL_CONCURRENCY: usize = 512;
/// Endpoints of the throughput benches (all on one receiver).
const ENDPOINTS: usize = 20;
/// Per-endpoint in-flight cap of the throughput benches.
const PER_ENDPOINT: usize = 64;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The 1-minute load average alone.
fn load1() -> String {
    load().split_whitespace().next().unwrap_or("?").to_owned()
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
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
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
    c.dispatcher.per_endpoint_in_flight = per_endpoint;
    c.dispatcher.global_concurrency = GLOBAL_CONCURRENCY;
    c
}

/// The payload the throughput benches' events carry (the fixtures' `payment.succeeded`).
fn payment_payload(object_id: &str) -> String {
    serde_json::json!({"id": object_id, "object": "payment", "status": "succeeded", "amount": 1250, "currency": "USD", "sequence": 2}).to_string()
}

/// Writes `events` `payment.succeeded` events of `m`, each fanned out in its own transaction's
/// `events::insert` as the server writes them, 100 events a transaction, 4 writers at once
/// (the set-up of 200 000 deliveries takes seconds instead of minutes).
async fn write_events(db: &Database, m: &domain::MerchantId, events: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (db, m, next) = (db.clone(), m.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let from = next.fetch_add(100, Ordering::Relaxed);
                    if from >= events {
                        break;
                    }
                    let rows: Vec<store::events::Event> = (from..(from + 100).min(events))
                        .map(|i| store::events::Event {
                            id: domain::EventId::generate().to_string(),
                            merchant_id: m.to_string(),
                            event_type: domain::EventType::PaymentSucceeded.as_str().to_owned(),
                            object_id: format!("pay_{i}"),
                            payload: payment_payload(&format!("pay_{i}")),
                            created_at: store::clock::now_ms(),
                        })
                        .collect();
                    db.write(move |c| {
                        for row in &rows {
                            store::events::insert(c, row)?;
                        }
                        Ok(())
                    })
                    .await
                    .expect("events");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
}

/// VACUUM ANALYZE and CHECKPOINT, so that autovacuum or a checkpoint catching up with the
/// set-up's writes does not land inside one measurement and not another.
async fn settle_postgres(url: String) {
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

/// Drops a bench database (leftover databases slow later runs: autovacuum visits each).
async fn drop_postgres(url: String) {
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        let mut c = PgConnection::establish(&test_support::pg_admin_url()).expect("connect");
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .expect("drop the bench database");
    })
    .await
    .expect("drop task");
}

/// The receiver alone for `length`: `concurrency` clients, each posting one request after the
/// other through one client built like the sender's (same pool setting, timeouts, no proxy,
/// no redirects), each request a webhook of the bench's size with the three Standard Webhooks
/// headers, to a fresh receiver answering 200 at once (stopped after). Returns requests/s.
async fn receiver_alone(
    config: &FanoutConfig,
    concurrency: usize,
    length: Duration,
) -> (f64, String) {
    let rx = Receiver::start(Reply::status(200));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(config.sender.timeout)
        .connect_timeout(config.sender.connect_timeout)
        // As DeliveryWorker::build sets it for the sender.
        .pool_max_idle_per_host(
            config
                .sender
                .pool_max_idle_per_host
                .max(config.dispatcher.global_concurrency),
        )
        .user_agent(config.sender.user_agent.clone())
        .build()
        .expect("client");
    let event_id = domain::EventId::generate();
    let body: Arc<[u8]> = webhook_fanout::event_body_from_stored(
        &event_id,
        domain::EventType::PaymentSucceeded,
        chrono::Utc::now(),
        &payment_payload("pay_0"),
    )
    .expect("body")
    .into();
    // A signature of the real length: the receiver's work per request is the pump's.
    let secret = webhook_fanout::WebhookSecret::generate().expect("secret");
    let signature = secret.signature(event_id.as_str(), 1_700_000_000, &body);
    let (url, stop, sent) = (
        rx.url("/"),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let cpu_before = CpuSample::take(None).await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, body, stop, sent) = (
                client.clone(),
                url.clone(),
                body.clone(),
                stop.clone(),
                sent.clone(),
            );
            let (id, signature) = (event_id.to_string(), signature.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .post(&url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", "1700000000")
                        .header("webhook-signature", &signature)
                        .body(body.to_vec())
                        .send()
                        .await
                        .expect("receiver answers");
                    let _ = r.bytes().await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    // The count at the deadline; requests still open then are not counted.
    let (done, took) = (sent.load(Ordering::Relaxed), start.elapsed());
    let cpu = CpuSample::take(None).await.per_op(&cpu_before, done);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    rx.stop().await;
    rx.clear();
    (done as f64 / took.as_secs_f64(), cpu)
}

/// CPU ticks (utime + stime, in clock ticks) of this process's threads by name, and of the
/// PostgreSQL backends serving the bench's database (by pid).
#[derive(Default)]
struct CpuSample {
    threads: std::collections::BTreeMap<String, u64>,
    backends: std::collections::HashMap<u32, u64>,
}

/// utime + stime of a `/proc/…/stat` line (fields 14 and 15, after the parenthesised name).
fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, ticks))
}

impl CpuSample {
    /// Samples now; `pg_url` names the database whose backends are counted.
    async fn take(pg_url: Option<&str>) -> Self {
        let mut sample = Self::default();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                if let Some((name, ticks)) = stat_ticks(&stat) {
                    *sample.threads.entry(name).or_default() += ticks;
                }
            }
        }
        if let Some(url) = pg_url.map(str::to_owned) {
            let pids = tokio::task::spawn_blocking(move || {
                use diesel::{Connection, PgConnection, RunQueryDsl};
                #[derive(diesel::QueryableByName)]
                struct Pid {
                    #[diesel(sql_type = diesel::sql_types::Integer)]
                    pid: i32,
                }
                let mut c = PgConnection::establish(&url).expect("connect");
                diesel::sql_query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid()",
                )
                .load::<Pid>(&mut c)
                .expect("backends")
            })
            .await
            .expect("backends task");
            for p in pids {
                let pid = u32::try_from(p.pid).unwrap_or(0);
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if let Some((_, ticks)) = stat_ticks(&stat) {
                    sample.backends.insert(pid, ticks);
                }
            }
        }
        sample
    }

    /// CPU microseconds per operation (`ops` of them) since `before`: the process's threads by
    /// name and the backends, as one line.
    fn per_op(&self, before: &Self, ops: usize) -> String {
        // Linux's USER_HZ: 100 ticks a second, 10 000 µs a tick.
        let us = |ticks: u64| ticks as f64 * 10_000.0 / ops.max(1) as f64;
        let mut parts: Vec<String> = self
            .threads
            .iter()
            .map(|(name, t)| {
                (
                    name,
                    t.saturating_sub(before.threads.get(name).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, spent)| *spent > 0)
            .map(|(name, spent)| format!("{name} {:.1}", us(spent)))
            .collect();
        if !self.backends.is_empty() {
            let pg: u64 = self
                .backends
                .iter()
                .map(|(pid, t)| t.saturating_sub(before.backends.get(pid).copied().unwrap_or(0)))
                .sum();
            parts.push(format!("PostgreSQL {:.1}", us(pg)));
        }
        parts.join(", ")
    }

    /// CPU seconds spent since `before`, by thread name and for the backends, as one line.
    fn since(&self, before: &Self) -> String {
        // Linux's USER_HZ, which /proc reports ticks in.
        let hz = 100.0;
        let mut parts: Vec<String> = self
            .threads
            .iter()
            .map(|(name, t)| {
                let spent = t.saturating_sub(before.threads.get(name).copied().unwrap_or(0));
                (name, spent)
            })
            .filter(|(_, spent)| *spent > 0)
            .map(|(name, spent)| format!("{name} {:.1} s", spent as f64 / hz))
            .collect();
        if !self.backends.is_empty() {
            let pg: u64 = self
                .backends
                .iter()
                .map(|(pid, t)| t.saturating_sub(before.backends.get(pid).copied().unwrap_or(0)))
                .sum();
            parts.push(format!(
                "PostgreSQL backends ({}) {:.1} s",
                self.backends.len(),
                pg as f64 / hz
            ));
        }
        parts.join(", ")
    }
}

/// With `BENCH_PG_STATS` set: per table and index of the bench database, PostgreSQL's
/// counters (index scans, index entries read, heap tuples fetched, buffer hits, row versions
/// written), to print what the pump's phase changed.
async fn pg_stats(url: Option<&str>) -> std::collections::BTreeMap<String, [i64; 4]> {
    let Some(url) = url.filter(|_| std::env::var_os("BENCH_PG_STATS").is_some()) else {
        return Default::default();
    };
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            a: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            b: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            c: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            d: i64,
        }
        let mut c = PgConnection::establish(&url).expect("connect");
        // Counters reach the views when a backend reports them; give the pump's a moment.
        std::thread::sleep(Duration::from_millis(600));
        diesel::sql_query(
            "SELECT 'index ' || s.indexrelname AS name, s.idx_scan AS a, s.idx_tup_read AS b, \
               s.idx_tup_fetch AS c, io.idx_blks_hit + io.idx_blks_read AS d \
             FROM pg_stat_user_indexes s JOIN pg_statio_user_indexes io USING (indexrelid) \
             UNION ALL \
             SELECT 'table ' || s.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, \
               io.heap_blks_hit + io.heap_blks_read \
             FROM pg_stat_user_tables s JOIN pg_statio_user_tables io USING (relid)",
        )
        .load::<Row>(&mut c)
        .expect("statistics")
        .into_iter()
        .map(|r| (r.name, [r.a, r.b, r.c, r.d]))
        .collect()
    })
    .await
    .expect("statistics task")
}

/// Prints the counters that moved between two [`pg_stats`] samples.
fn print_pg_stats(
    before: &std::collections::BTreeMap<String, [i64; 4]>,
    after: &std::collections::BTreeMap<String, [i64; 4]>,
) {
    for (name, now) in after {
        let was = before.get(name).copied().unwrap_or_default();
        let d: Vec<i64> = now.iter().zip(was).map(|(n, w)| n - w).collect();
        if d.iter().all(|x| *x == 0) {
            continue;
        }
        let labels = if name.starts_with("index") {
            ["scans", "entries read", "heap fetches", "buffer hits"]
        } else {
            ["inserted", "updated", "HOT updated", "buffer hits"]
        };
        let parts: Vec<String> = labels
            .iter()
            .zip(&d)
            .map(|(l, v)| format!("{l} {v}"))
            .collect();
        println!("  {name}: {}", parts.join(", "));
    }
}

/// With `BENCH_PG_EXPLAIN_MS`: the plans (with row counts and buffers) of the pump's statements
/// slower than that go to the server log (auto_explain, for this database's new sessions
/// only); returns a new pool on `url` whose sessions log them, so the set-up's are not.
async fn explaining(db: Database, url: Option<&str>) -> Database {
    let (Ok(ms), Some(url)) = (std::env::var("BENCH_PG_EXPLAIN_MS"), url) else {
        return db;
    };
    let admin = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        let mut c = PgConnection::establish(&admin).expect("connect");
        let name = admin.rsplit('/').next().unwrap_or_default().to_owned();
        for sql in [
            format!("ALTER DATABASE {name} SET session_preload_libraries = 'auto_explain'"),
            format!("ALTER DATABASE {name} SET auto_explain.log_min_duration = {ms}"),
            format!("ALTER DATABASE {name} SET auto_explain.log_analyze = on"),
            format!("ALTER DATABASE {name} SET auto_explain.log_buffers = on"),
            format!("ALTER DATABASE {name} SET auto_explain.log_timing = off"),
        ] {
            diesel::sql_query(sql)
                .execute(&mut c)
                .expect("auto_explain");
        }
    })
    .await
    .expect("auto_explain task");
    drop(db);
    Database::connect(url, 32).await.expect("reconnect")
}

/// With `BENCH_PERF_CTL` naming the control FIFO of `perf record --control fifo:…` (started
/// with `-D -1`, disabled), the profile covers only the pump's phase.
fn perf_control(command: &str) {
    if let Some(path) = std::env::var_os("BENCH_PERF_CTL") {
        use std::io::Write;
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("perf control fifo");
        fifo.write_all(format!("{command}\n").as_bytes())
            .expect("perf control");
    }
}

/// One throughput run on `db`: set-up (20 endpoints on one receiver, `BENCH_EVENTS` events),
/// then the receiver alone, the pump draining every delivery, and the receiver alone again;
/// prints deliveries/s, receiver alone/s (both phases and their mean), the ratio, the pump
/// phase's length and the 1-minute load average at start and end. `url` is the PostgreSQL
/// database, settled before and dropped after.
async fn throughput(db: Database, url: Option<String>, label: &str) {
    let load_start = load1();
    let events: usize = env_or("BENCH_EVENTS", 10_000);
    let phase = Duration::from_secs_f64(env_or("BENCH_PHASE_S", 5.0));
    let config = cfg(Duration::from_secs(5), PER_ENDPOINT);
    // What the pump keeps in flight: every endpoint's cap, bounded by the global concurrency.
    let concurrency = (ENDPOINTS * PER_ENDPOINT).min(GLOBAL_CONCURRENCY);
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    for _ in 0..ENDPOINTS {
        endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    }
    let setup = Instant::now();
    write_events(&db, &m, events).await;
    let setup = setup.elapsed();
    if let Some(url) = url.clone() {
        settle_postgres(url).await;
    }
    let total = ENDPOINTS * events;
    let db = explaining(db, url.as_deref()).await;
    let (alone_before, alone_cpu) = receiver_alone(&config, concurrency, phase).await;
    let w = Arc::new(DeliveryWorker::build(db.clone(), kr, None, config.clone()).unwrap());
    let rx2 = rx.clone();
    let stats_before = pg_stats(url.as_deref()).await;
    let cpu_before = CpuSample::take(url.as_deref()).await;
    perf_control("enable");
    let took = run(&w, move || rx2.count() >= total).await;
    perf_control("disable");
    let cpu_after = CpuSample::take(url.as_deref()).await;
    let cpu = cpu_after.since(&cpu_before);
    let cpu_each = cpu_after.per_op(&cpu_before, total);
    let rate = total as f64 / took.as_secs_f64();
    rx.stop().await;
    rx.clear();
    let (alone_after, _) = receiver_alone(&config, concurrency, phase).await;
    let alone = f64::midpoint(alone_before, alone_after);
    println!(
        "{label}: {total} deliveries ({events} events × {ENDPOINTS} endpoints, set up in {:.1} s) \
         in {:.2} s = {rate:.0}/s; receiver alone ({concurrency} concurrent, {:.0} s each) \
         {alone_before:.0}/s before, {alone_after:.0}/s after, mean {alone:.0}/s; \
         ratio {:.1} %; load (1 min) {load_start} at start, {} at end",
        setup.as_secs_f64(),
        took.as_secs_f64(),
        phase.as_secs_f64(),
        rate / alone * 100.0,
        load1(),
    );
    println!("  CPU in the pump's phase: {cpu}");
    println!(
        "  CPU µs per delivery: {cpu_each}; per request of the receiver alone (before): {alone_cpu}"
    );
    print_pg_stats(&stats_before, &pg_stats(url.as_deref()).await);
    if took < Duration::from_secs(5) {
        println!("  note: the pump's phase lasted under 5 s; raise BENCH_EVENTS");
    }
    drop((w, db));
    if let Some(url) = url {
        drop_postgres(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_postgres() {
    let (db, url) = test_support::fresh_postgres_with_url(32).await;
    throughput(db, Some(url), "PostgreSQL").await;
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
    throughput(
        db,
        Some(url.to_string()),
        "PostgreSQL synchronous_commit=on",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_throughput_sqlite() {
    let (db, _dir) = test_support::fresh_sqlite_sized(8).await;
    throughput(db, None, "SQLite").await;
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

/// Runs the `webhook.fan_out` jobs as the server's job runner does: a merchant with more than
/// `INLINE_FANOUT_MAX` (20) endpoints gets one such job per event instead of inline deliveries.
async fn run_fan_out_jobs(db: &Database) {
    loop {
        let ran = db
            .write(|c| {
                let now = store::clock::now_ms();
                let jobs = store::jobs::claim(
                    c,
                    &[store::events::FANOUT_JOB_KIND],
                    "bench-fan-out",
                    Duration::from_secs(60),
                    50,
                    now,
                )?;
                for job in &jobs {
                    let event = job.dedupe_key.clone().unwrap_or_default();
                    store::events::fan_out_later(c, &event, now)?;
                    store::jobs::complete(c, &job.id, "bench-fan-out", now)?;
                }
                Ok(jobs.len())
            })
            .await
            .expect("fan-out jobs");
        if ran == 0 {
            break;
        }
    }
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
    // 40 endpoints beside the timing-out ones: the events were fanned out by jobs.
    run_fan_out_jobs(&db).await;
    // Settle the set-up's writes first, so that autovacuum or a checkpoint does not start
    // inside one round's measurement and not another's.
    if let Some(url) = url.clone() {
        settle_postgres(url).await;
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
    if let Some(url) = url {
        drop_postgres(url).await;
    }
    rate
}

//! The delivery pump on real SQLite and PostgreSQL with a real HTTP receiver: a batch recorded
//! by group commit, busy endpoints left unclaimed, wake-ups through the coordinator, and
//! shutdown handing back the leases of requests still in flight.

mod support;

use std::sync::Arc;
use std::time::Duration;
use store::{Coordinator, Database, InProcessCoordinator, clock, deliveries, jobs};
use support::store::{self as s, config, endpoint, keyring, merchant, payment_event, worker};
use support::{Receiver, Reply};
use webhook_fanout::{DELIVER_JOB_KIND, Pump};

async fn job_states(db: &Database) -> Vec<(String, Option<String>)> {
    db.read(|c| {
        use diesel::prelude::*;
        use store::schema::jobs::dsl as j;
        Ok(store::on_backend!(c, |c| j::jobs
            .filter(j::kind.eq(DELIVER_JOB_KIND))
            .select((j::state, j::lease_owner))
            .load::<(String, Option<String>)>(c))?)
    })
    .await
    .expect("jobs")
}

async fn a_batch_is_sent_and_recorded_together(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    for _ in 0..3 {
        endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    }
    for i in 0..30 {
        payment_event(&db, &m, &format!("pay_{i}")).await;
    }
    let w = worker(&db, &kr, config("0s,1s"));
    let pump = Arc::new(Pump::new(w, s::pump_config("p")));
    assert_eq!(pump.run_once().await, 90);
    assert_eq!(rx.count(), 90);
    let states = job_states(&db).await;
    assert!(states.iter().all(|(st, _)| st == jobs::DONE), "{states:?}");
    let (all, attempts) = db
        .read(|c| {
            let all = deliveries::due(c, i64::MAX, 1000)?;
            use diesel::prelude::*;
            use store::schema::delivery_attempts::dsl as a;
            let n: i64 = store::on_backend!(c, |c| a::delivery_attempts.count().get_result(c))?;
            Ok((all, n))
        })
        .await
        .unwrap();
    assert!(all.is_empty(), "nothing left due: {all:?}");
    assert_eq!(attempts, 90, "one attempt row per delivery");
    // nothing is due any more: a second batch claims nothing and sends nothing
    assert_eq!(pump.run_once().await, 0);
    assert_eq!(rx.count(), 90);
}

async fn an_endpoint_at_its_cap_is_not_claimed_for(db: Database) {
    let kr = keyring();
    let slow = Receiver::start(Reply::status(200).delayed(Duration::from_millis(1500)));
    let m = merchant(&db).await;
    endpoint(&db, &kr, &m, &slow.url("/"), &["*"]).await;
    for i in 0..4 {
        payment_event(&db, &m, &format!("pay_{i}")).await;
    }
    let mut cfg = config("0s,1s");
    cfg.dispatcher.per_endpoint_in_flight = 1;
    let w = worker(&db, &kr, cfg);
    let mut pc = s::pump_config("p");
    pc.batch = 1;
    let pump = Arc::new(Pump::new(w, pc));
    let first = {
        let pump = pump.clone();
        tokio::spawn(async move { pump.run_once().await })
    };
    for _ in 0..100 {
        if slow.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(slow.count(), 1);
    // the endpoint's only slot is taken: its other three jobs stay queued, unclaimed
    assert_eq!(pump.run_once().await, 0);
    let running = job_states(&db)
        .await
        .into_iter()
        .filter(|(st, _)| st == jobs::RUNNING)
        .count();
    assert_eq!(running, 1);
    assert_eq!(first.await.unwrap(), 1);
}

async fn a_wake_up_starts_delivery_before_the_next_poll(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    let w = worker(&db, &kr, config("0s"));
    let mut pc = s::pump_config("p");
    pc.poll_interval = Duration::from_secs(60);
    let coordinator: Arc<dyn Coordinator> = Arc::new(InProcessCoordinator::new());
    let pump = Arc::new(Pump::new(w, pc));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(pump.run(Some(coordinator.clone()), stopped, Duration::from_secs(5)));
    // let the pump make its first (empty) claim and go to sleep on the channel
    tokio::time::sleep(Duration::from_millis(300)).await;
    payment_event(&db, &m, "pay_1").await;
    coordinator.wake("jobs").await;
    let mut waited = 0;
    while rx.count() == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(
        rx.count(),
        1,
        "delivered within 2 s of the wake-up, not after the 60 s poll"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

async fn shutdown_hands_back_the_leases_of_requests_in_flight(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200).delayed(Duration::from_secs(2)));
    let m = merchant(&db).await;
    endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    payment_event(&db, &m, "pay_1").await;
    let w = worker(&db, &kr, config("0s"));
    let pump = Arc::new(Pump::new(w, s::pump_config("p")));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(pump.run(None, stopped, Duration::from_millis(200)));
    for _ in 0..200 {
        if rx.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rx.count(), 1);
    stop.send(true).unwrap();
    task.await.unwrap();
    let states = job_states(&db).await;
    assert_eq!(
        states,
        vec![(jobs::QUEUED.to_owned(), None)],
        "the lease is handed back"
    );
    let due = db
        .read(|c| {
            use diesel::prelude::*;
            use store::schema::jobs::dsl as j;
            Ok(store::on_backend!(c, |c| j::jobs
                .select(j::run_at)
                .filter(j::kind.eq(DELIVER_JOB_KIND))
                .first::<i64>(c))?)
        })
        .await
        .unwrap();
    assert!(due <= clock::now_ms(), "due again at once");
}

/// A stalled endpoint's queued jobs are moved behind the others in one statement: claims
/// then find the healthy endpoints' jobs at the head of the queue.
async fn a_stalled_endpoints_jobs_are_parked_until_it_can_take_requests(db: Database) {
    let kr = keyring();
    let good = Receiver::start(Reply::status(200));
    let dead = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (stalled, _) = endpoint(&db, &kr, &m, &dead.url("/"), &["*"]).await;
    endpoint(&db, &kr, &m, &good.url("/"), &["*"]).await;
    for i in 0..5 {
        payment_event(&db, &m, &format!("pay_{i}")).await;
    }
    let until = clock::now_ms() + 60_000;
    let id = stalled.as_str().to_owned();
    let moved = db
        .write(move |c| store::webhook_delivery::park_endpoint_jobs(c, &id, until, clock::now_ms()))
        .await
        .expect("park");
    assert_eq!(moved, 5, "every queued job of the stalled endpoint");
    let w = worker(&db, &kr, config("0s,1s"));
    let pump = Arc::new(Pump::new(w, s::pump_config("p")));
    assert_eq!(
        pump.run_once().await,
        5,
        "only the healthy endpoint's jobs are due"
    );
    assert_eq!(good.count(), 5);
    assert_eq!(dead.count(), 0);
    let id = stalled.as_str().to_owned();
    let again = db
        .write(move |c| store::webhook_delivery::park_endpoint_jobs(c, &id, until, clock::now_ms()))
        .await
        .expect("park again");
    assert_eq!(again, 0, "already parked that long: nothing moves");
    let states = job_states(&db).await;
    assert_eq!(
        states.iter().filter(|(st, _)| st == jobs::QUEUED).count(),
        5,
        "parked jobs stay queued (not attempts): {states:?}"
    );
}

on_both_backends!(
    a_stalled_endpoints_jobs_are_parked_until_it_can_take_requests,
    a_batch_is_sent_and_recorded_together,
    an_endpoint_at_its_cap_is_not_claimed_for,
    a_wake_up_starts_delivery_before_the_next_poll,
    shutdown_hands_back_the_leases_of_requests_in_flight,
);

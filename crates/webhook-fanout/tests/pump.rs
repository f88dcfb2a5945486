//! The delivery pump on real SQLite and PostgreSQL with a real HTTP receiver: a batch recorded
//! by group commit, claims endpoint by endpoint (busy endpoints left unclaimed), wake-ups through the coordinator, and
//! shutdown handing back the leases of requests still in flight.

use std::sync::Arc;
use std::time::Duration;
use store::{Coordinator, Database, InProcessCoordinator, clock, deliveries, jobs};
use test_support::receiver::{Receiver, Reply};
use test_support::webhooks::{self as s, config, endpoint, merchant, payment_event, worker};
use test_support::{keyring, on_both_backends};
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
    // 15 deliveries per endpoint: within one claim's share of an endpoint (2 × its cap of 8)
    for _ in 0..6 {
        endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    }
    for i in 0..15 {
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

/// Claims go endpoint by endpoint: none from an endpoint that cannot take requests however
/// long its backlog (and however much older), no more from any endpoint than its quota, and
/// a tight limit shared between endpoints instead of going to the oldest backlog.
async fn claims_take_each_endpoint_up_to_its_quota(db: Database) {
    use store::delivery_queue::{LaneQuotas, claim_deliver_jobs};
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (dead, _) = endpoint(&db, &kr, &m, &rx.url("/dead"), &["*"]).await;
    for i in 0..30 {
        payment_event(&db, &m, &format!("old_{i}")).await;
    }
    let (b, _) = endpoint(&db, &kr, &m, &rx.url("/b"), &["*"]).await;
    let (c, _) = endpoint(&db, &kr, &m, &rx.url("/c"), &["*"]).await;
    for i in 0..10 {
        payment_event(&db, &m, &format!("new_{i}")).await;
    }
    let claim = |limit: usize, quotas: LaneQuotas| {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                claim_deliver_jobs(
                    conn,
                    "p",
                    Duration::from_secs(60),
                    limit,
                    clock::now_ms(),
                    &quotas,
                )
            })
            .await
            .expect("claim")
        }
    };
    let count = |jobs: &[jobs::Job], e: &domain::WebhookEndpointId| {
        jobs.iter()
            .filter(|j| j.lane.as_deref() == Some(e.as_str()))
            .count()
    };
    // the dead endpoint's 40 jobs are the oldest, yet none is taken
    let quotas = LaneQuotas {
        default: 3,
        limits: [(dead.as_str().to_owned(), 0)].into(),
    };
    let got = claim(100, quotas.clone()).await;
    assert_eq!(got.len(), 6, "3 from each live endpoint: {got:?}");
    assert_eq!(
        (count(&got, &dead), count(&got, &b), count(&got, &c)),
        (0, 3, 3)
    );
    assert!(
        got.iter()
            .all(|j| j.state == jobs::RUNNING && j.lease_owner.as_deref() == Some("p"))
    );
    // a limit of 4 over three endpoints with plenty: nobody gets more than 2
    let got = claim(
        4,
        LaneQuotas {
            default: 100,
            limits: Default::default(),
        },
    )
    .await;
    assert_eq!(got.len(), 4);
    for e in [&dead, &b, &c] {
        assert!(count(&got, e) <= 2, "{e}: {got:?}");
    }
    // what is left is all claimed in the end: 40 + 10 + 10 jobs in all
    let rest = claim(
        1000,
        LaneQuotas {
            default: 1000,
            limits: Default::default(),
        },
    )
    .await;
    assert_eq!(rest.len(), 60 - 6 - 4);
}

/// A delivery job queued before lanes existed (no lane) is still claimed and delivered.
async fn a_job_without_a_lane_is_still_delivered(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    payment_event(&db, &m, "pay_1").await;
    db.write(|c| {
        use diesel::prelude::*;
        use store::schema::jobs::dsl as j;
        Ok(store::on_backend!(c, |c| diesel::update(j::jobs)
            .set(j::lane.eq(None::<String>))
            .execute(c))?)
    })
    .await
    .expect("unlane");
    let w = worker(&db, &kr, config("0s,1s"));
    let pump = Arc::new(Pump::new(w, s::pump_config("p")));
    assert_eq!(pump.run_once().await, 1);
    assert_eq!(rx.count(), 1);
}

/// Three pumps (three replicas, each with its own dispatcher) on one database deliver every
/// delivery exactly once: lane claims lock with SKIP LOCKED (PostgreSQL) or serialise (SQLite).
async fn concurrent_pumps_send_each_delivery_once(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    for e in 0..4 {
        endpoint(&db, &kr, &m, &rx.url(&format!("/e{e}")), &["*"]).await;
    }
    for i in 0..50 {
        payment_event(&db, &m, &format!("pay_{i}")).await;
    }
    let workers: Vec<_> = (0..3).map(|_| worker(&db, &kr, config("0s,1s"))).collect();
    let done = || rx.count() >= 200;
    let (a, b, c) = tokio::join!(
        s::drive(&db, &workers[0], "pump-a", Duration::from_secs(30), done),
        s::drive(&db, &workers[1], "pump-b", Duration::from_secs(30), done),
        s::drive(&db, &workers[2], "pump-c", Duration::from_secs(30), done),
    );
    assert!(a && b && c, "all 200 delivered: {}", rx.count());
    let received = rx.received();
    let unique: std::collections::HashSet<_> = received
        .iter()
        .map(|r| (r.path.clone(), r.headers["webhook-id"].clone()))
        .collect();
    assert_eq!(received.len(), 200, "no delivery sent twice");
    assert_eq!(unique.len(), 200);
    let states = job_states(&db).await;
    assert!(states.iter().all(|(st, _)| st == jobs::DONE), "{states:?}");
}

// Pools larger than test-support's defaults: the pump runs many deliveries at once.
on_both_backends!(pools(sqlite = 8, postgres = 16):
    concurrent_pumps_send_each_delivery_once,
    claims_take_each_endpoint_up_to_its_quota,
    a_job_without_a_lane_is_still_delivered,
    a_batch_is_sent_and_recorded_together,
    an_endpoint_at_its_cap_is_not_claimed_for,
    a_wake_up_starts_delivery_before_the_next_poll,
    shutdown_hands_back_the_leases_of_requests_in_flight,
);

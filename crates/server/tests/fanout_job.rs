//! The runner runs the deferred fan-out job (an event of a merchant with more endpoints than
//! `INLINE_FANOUT_MAX`): every subscribed endpoint gets its delivery after the event's commit.

use server::runner::{Runner, RunnerConfig};
use std::sync::Arc;
use std::time::Duration;
use store::clock::now_ms;
use store::events::{self, Event, INLINE_FANOUT_MAX};
use store::merchants;
use store::{Coordinator, Database, InProcessCoordinator, deliveries};
use test_support::on_both_backends;
use tokio::sync::watch;

on_both_backends!(the_runner_fans_out_a_large_merchants_event);

async fn the_runner_fans_out_a_large_merchants_event(db: Database) {
    let n = INLINE_FANOUT_MAX + 3;
    let now = now_ms();
    let merchant = domain::MerchantId::generate();
    let m = test_support::merchant_row(merchant.as_str(), now);
    let event_id = domain::EventId::generate();
    let ev = Event {
        id: event_id.to_string(),
        merchant_id: merchant.to_string(),
        event_type: "payment.succeeded".into(),
        object_id: "pay_x".into(),
        payload: "{}".into(),
        created_at: now,
    };
    db.write(move |c| {
        merchants::insert(c, &m)?;
        test_support::insert_endpoints(c, &m.id, n, now)?;
        events::insert(c, &ev)
    })
    .await
    .expect("merchant, endpoints, event");

    let coordinator: Arc<dyn Coordinator> = Arc::new(InProcessCoordinator::new());
    let mut runner = Runner::new(
        db.clone(),
        coordinator,
        RunnerConfig {
            owner: "fanout-test".into(),
            lease: Duration::from_secs(30),
            concurrency: 2,
            poll_interval: Duration::from_millis(50),
        },
    );
    server::wiring::register_fanout_job(&mut runner, &db);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(runner.run(stopped, Duration::from_secs(5)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let count = || {
        let (m, e) = (merchant.clone(), event_id.clone());
        let db = db.clone();
        async move {
            db.read(move |c| deliveries::list_for_event(c, &m, &e))
                .await
                .expect("deliveries")
                .len()
        }
    };
    while count().await < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).expect("stop");
    task.await.expect("runner");
    assert_eq!(count().await, n, "every endpoint got its delivery");
}

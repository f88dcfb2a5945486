//! Fan-out amplification: an event's own commit creates at most `INLINE_FANOUT_MAX` deliveries;
//! a merchant with more subscribed endpoints gets one durable fan-out job instead, which then
//! reaches every endpoint exactly once.

use domain::{EventId, MerchantId};
use store::clock::now_ms;
use store::events::{self, Event, FANOUT_JOB_KIND, INLINE_FANOUT_MAX};
use store::merchants;
use store::{Database, deliveries, jobs};
use test_support::on_both_backends;

on_both_backends!(
    up_to_the_inline_bound_the_commit_fans_out,
    beyond_it_a_job_fans_out_after_the_commit,
);

async fn merchant_with_endpoints(db: &Database, n: usize) -> MerchantId {
    let now = now_ms();
    let m = test_support::merchant_row(MerchantId::generate().as_str(), now);
    let id = MerchantId::parse(&m.id).expect("id");
    db.write(move |c| {
        merchants::insert(c, &m)?;
        test_support::insert_endpoints(c, &m.id, n, now)?;
        Ok(())
    })
    .await
    .expect("merchant and endpoints");
    id
}

async fn write_event(db: &Database, merchant: &MerchantId) -> EventId {
    let ev = Event {
        id: EventId::generate().into_string(),
        merchant_id: merchant.to_string(),
        event_type: "payment.succeeded".into(),
        object_id: "pay_x".into(),
        payload: "{}".into(),
        created_at: now_ms(),
    };
    let id = EventId::parse(&ev.id).expect("id");
    db.write(move |c| events::insert(c, &ev))
        .await
        .expect("event");
    id
}

async fn deliveries_of(db: &Database, m: &MerchantId, ev: &EventId) -> usize {
    let (m, ev) = (m.clone(), ev.clone());
    db.read(move |c| deliveries::list_for_event(c, &m, &ev))
        .await
        .expect("deliveries")
        .len()
}

async fn fanout_jobs(db: &Database) -> i64 {
    db.read(jobs::depth_by_kind)
        .await
        .expect("depth")
        .into_iter()
        .find(|(k, _)| k == FANOUT_JOB_KIND)
        .map_or(0, |(_, n)| n)
}

async fn up_to_the_inline_bound_the_commit_fans_out(db: Database) {
    let m = merchant_with_endpoints(&db, INLINE_FANOUT_MAX).await;
    let ev = write_event(&db, &m).await;
    assert_eq!(deliveries_of(&db, &m, &ev).await, INLINE_FANOUT_MAX);
    assert_eq!(fanout_jobs(&db).await, 0);
}

async fn beyond_it_a_job_fans_out_after_the_commit(db: Database) {
    let n = INLINE_FANOUT_MAX + 5;
    let m = merchant_with_endpoints(&db, n).await;
    let ev = write_event(&db, &m).await;
    assert_eq!(
        deliveries_of(&db, &m, &ev).await,
        0,
        "the event's commit creates no delivery"
    );
    assert_eq!(fanout_jobs(&db).await, 1, "but a durable fan-out job");
    let id = ev.as_str().to_owned();
    let created = db
        .write(move |c| events::fan_out_later(c, &id, now_ms()))
        .await
        .expect("fan out");
    assert_eq!(created, n);
    assert_eq!(deliveries_of(&db, &m, &ev).await, n);
    let id = ev.as_str().to_owned();
    let again = db
        .write(move |c| events::fan_out_later(c, &id, now_ms()))
        .await
        .expect("again");
    assert_eq!(again, 0, "a rerun (after a crash) creates no duplicate");
}

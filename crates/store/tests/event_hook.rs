//! The post-commit event hook (`?wait=` wake-ups): it fires after a committed transaction that
//! wrote an outbox event, never after a rollback or a transaction without one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use store::clock::now_ms;
use store::events::{self, Event};
use store::merchants;
use store::{Database, StoreError};
use test_support::on_both_backends;

on_both_backends!(the_event_hook_fires_for_committed_events_only);

async fn the_event_hook_fires_for_committed_events_only(db: Database) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let db = db.with_event_hook(Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }));
    let now = now_ms();
    let merchant = test_support::merchant_row(domain::MerchantId::generate().as_str(), now);
    let event = |m: &str| Event {
        id: domain::EventId::generate().into_string(),
        merchant_id: m.to_owned(),
        event_type: "payment.succeeded".into(),
        object_id: "pay_x".into(),
        payload: "{}".into(),
        created_at: now_ms(),
    };
    let m = merchant.id.clone();
    db.write(move |c| merchants::insert(c, &merchant))
        .await
        .expect("merchant");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no event, no wake-up");
    let e = event(&m);
    db.write(move |c| events::insert(c, &e))
        .await
        .expect("event");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a committed event wakes");
    let e = event(&m);
    let failed = db
        .write(move |c| {
            events::insert(c, &e)?;
            Err::<(), _>(StoreError::Conflict("caller changed its mind".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a rolled-back event wakes nobody"
    );
}

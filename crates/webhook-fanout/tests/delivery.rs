//! Delivery end to end on real SQLite and PostgreSQL with a real HTTP receiver: fan-out in the
//! event's transaction, the delivery pump driven through the leased job queue, retries, 410, redeliver,
//! recover, secret rotation, and a runner killed mid-delivery.

use domain::{EventId, EventType, WebhookEndpointId};
use std::time::Duration;
use store::{Database, clock, deliveries, jobs};
use store::{webhook_admin, webhook_endpoints};
use test_support::receiver::{Received, Receiver, Reply};
use test_support::webhooks::{
    self as s, config, drive, endpoint, merchant, payment_event, verifies, worker,
};
use test_support::{keyring, on_both_backends};
use webhook_fanout::signature::WebhookSecret;

const WAIT: Duration = Duration::from_secs(20);

fn body_json(r: &Received) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("json body")
}

async fn delivery_of(
    db: &Database,
    event: &str,
    endpoint: &WebhookEndpointId,
) -> deliveries::Delivery {
    let (event, endpoint) = (event.to_owned(), endpoint.to_string());
    db.read(move |c| {
        let m = store::events::get_any(c, &EventId::parse(&event)?)?.merchant_id;
        let all = deliveries::list_for_event(
            c,
            &domain::MerchantId::parse(&m)?,
            &EventId::parse(&event)?,
        )?;
        all.into_iter()
            .find(|d| d.endpoint_id == endpoint)
            .ok_or(store::StoreError::NotFound)
    })
    .await
    .expect("delivery")
}

/// The delivery once it reaches `status` (the record is written just after the receiver answers).
async fn settled(
    db: &Database,
    event: &str,
    endpoint: &WebhookEndpointId,
    status: &str,
) -> deliveries::Delivery {
    for _ in 0..200 {
        let d = delivery_of(db, event, endpoint).await;
        if d.status == status {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let d = delivery_of(db, event, endpoint).await;
    panic!("delivery stayed {} (wanted {status}): {d:?}", d.status);
}

async fn attempts_of(db: &Database, delivery: &str) -> Vec<deliveries::DeliveryAttempt> {
    let id = delivery.to_owned();
    db.read(move |c| webhook_admin::attempts_of_delivery(c, &id))
        .await
        .expect("attempts")
}

async fn an_event_reaches_both_endpoints_of_its_merchant_and_none_of_another(db: Database) {
    let kr = keyring();
    let (a1, a2, b1) = (
        Receiver::start(Reply::status(200)),
        Receiver::start(Reply::status(204)),
        Receiver::start(Reply::status(200)),
    );
    let (ma, mb) = (merchant(&db).await, merchant(&db).await);
    let (_, sa1) = endpoint(&db, &kr, &ma, &a1.url("/a1"), &["*"]).await;
    let (_, sa2) = endpoint(&db, &kr, &ma, &a2.url("/a2"), &["payment.succeeded"]).await;
    // subscribed to something else: no delivery
    let (_, _) = endpoint(&db, &kr, &ma, &b1.url("/other-type"), &["refund.succeeded"]).await;
    let (_, _) = endpoint(&db, &kr, &mb, &b1.url("/b1"), &["*"]).await;

    let (ev, created) = payment_event(&db, &ma, "pay_1").await;
    assert_eq!(created, 2);
    let again = {
        let ev = ev.clone();
        db.write(move |c| webhook_fanout::fan_out(c, &ev, clock::now_ms()))
            .await
            .unwrap()
    };
    assert_eq!(again, 0, "fan-out is idempotent");

    let w = worker(&db, &kr, config("0s,100ms,200ms"));
    assert!(
        drive(&db, &w, "runner-a", WAIT, || a1.count() == 1
            && a2.count() == 1)
        .await
    );
    // let any stray job run
    s::run_once(&db, &w, "runner-a", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((a1.count(), a2.count(), b1.count()), (1, 1, 0));
    let (r1, r2) = (&a1.received()[0], &a2.received()[0]);
    assert_eq!(r1.headers["webhook-id"], ev.id);
    assert!(verifies(r1, std::slice::from_ref(&sa1)) && verifies(r2, std::slice::from_ref(&sa2)));
    assert!(
        !verifies(r1, &[sa2]),
        "each endpoint signs with its own secret"
    );
    assert_eq!(r1.body, r2.body, "one body for every endpoint");
    let b = body_json(r1);
    assert_eq!(b["type"], "payment.succeeded");
    assert_eq!(b["data"]["id"], "pay_1");
    assert_eq!(b["data"]["sequence"], 2);
}

async fn a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    rx.script([
        Reply::status(500).body("boom"),
        Reply::status(503).header("retry-after", "0"),
        Reply::status(302).header("location", "http://127.0.0.1:1/"),
    ]);
    let m = merchant(&db).await;
    let (ep, _) = endpoint(&db, &kr, &m, &rx.url("/hook"), &["*"]).await;
    let (ev, _) = payment_event(&db, &m, "pay_2").await;
    let w = worker(&db, &kr, config("0s,100ms,200ms,200ms,200ms"));
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 4).await);
    let d = settled(&db, &ev.id, &ep, deliveries::SUCCEEDED).await;
    assert_eq!(d.attempts, 4);
    let log = attempts_of(&db, &d.id).await;
    let statuses: Vec<_> = log.iter().map(|a| (a.attempt, a.http_status)).collect();
    assert_eq!(
        statuses,
        vec![
            (1, Some(500)),
            (2, Some(503)),
            (3, Some(302)),
            (4, Some(200))
        ]
    );
    assert_eq!(log[0].response_excerpt.as_deref(), Some("boom"));
    let got = rx.received();
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "same bytes on every attempt"
    );
    assert!(got.iter().all(|r| r.headers["webhook-id"] == ev.id));
    assert!(
        got.iter().all(|r| r.path == "/hook"),
        "the redirect was not followed"
    );
    assert_eq!(rx.count(), 4);
}

async fn gone_disables_the_endpoint_and_tells_the_other_one(db: Database) {
    let kr = keyring();
    let (gone, ok) = (
        Receiver::start(Reply::status(410)),
        Receiver::start(Reply::status(200)),
    );
    let m = merchant(&db).await;
    let (gone_id, _) = endpoint(&db, &kr, &m, &gone.url("/"), &["*"]).await;
    let (_, ok_secret) = endpoint(&db, &kr, &m, &ok.url("/"), &["*"]).await;
    payment_event(&db, &m, "pay_3").await;
    let w = worker(&db, &kr, config("0s,100ms"));
    assert!(drive(&db, &w, "r", WAIT, || ok.count() == 2).await);
    let types: Vec<String> = ok
        .received()
        .iter()
        .map(|r| body_json(r)["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(types.contains(&"endpoint.disabled".to_owned()), "{types:?}");
    let notice = ok
        .received()
        .into_iter()
        .find(|r| body_json(r)["type"] == "endpoint.disabled")
        .unwrap();
    assert!(verifies(&notice, &[ok_secret]));
    let data = &body_json(&notice)["data"];
    assert_eq!(data["id"], gone_id.as_str());
    assert_eq!(data["enabled"], false);
    assert_eq!(data["disabled_reason"], "gone");
    let e = {
        let id = gone_id.to_string();
        db.read(move |c| webhook_endpoints::get_any(c, &id))
            .await
            .unwrap()
    };
    assert!(!e.enabled);
    // a later event does not go to the disabled endpoint
    payment_event(&db, &m, "pay_4").await;
    assert!(drive(&db, &w, "r", WAIT, || ok.count() == 3).await);
    assert_eq!(gone.count(), 1);
}

async fn an_endpoint_failing_longer_than_the_limit_is_disabled(db: Database) {
    let kr = keyring();
    let (bad, ok) = (
        Receiver::start(Reply::status(500)),
        Receiver::start(Reply::status(200)),
    );
    let m = merchant(&db).await;
    let (bad_id, _) = endpoint(&db, &kr, &m, &bad.url("/"), &["payment.succeeded"]).await;
    endpoint(&db, &kr, &m, &ok.url("/"), &["endpoint.disabled"]).await;
    let mut cfg = config("0s,150ms,150ms,150ms,150ms,150ms,150ms");
    cfg.disable_after = Duration::from_millis(400);
    payment_event(&db, &m, "pay_5").await;
    let w = worker(&db, &kr, cfg);
    assert!(drive(&db, &w, "r", WAIT, || ok.count() == 1).await);
    let data = &body_json(&ok.received()[0])["data"];
    assert_eq!(data["id"], bad_id.as_str());
    assert_eq!(data["disabled_reason"], "failing");
    assert!(data["failing_since"].is_string());
    let n = bad.count();
    assert!((3..=6).contains(&n), "{n} attempts before disabling");
}

async fn redeliver_and_recover_send_again(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (ep, _) = endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    let (ev, _) = payment_event(&db, &m, "pay_6").await;
    let w = worker(&db, &kr, config("0s"));
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 1).await);
    // redeliver a delivered event: sent again with the same id and body
    let (mm, eid) = (m.clone(), EventId::parse(&ev.id).unwrap());
    let queued = db
        .write(move |c| webhook_admin::redeliver_event(c, &mm, &eid, clock::now_ms()))
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 2).await);
    let got = rx.received();
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);

    // a second event fails for good (one-attempt schedule), then recover re-sends it
    let since = clock::now_ms();
    rx.script([Reply::status(500)]);
    let (ev2, _) = payment_event(&db, &m, "pay_7").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 3).await);
    settled(&db, &ev2.id, &ep, deliveries::DEAD).await;
    let (mm, epc) = (m.clone(), ep.clone());
    let queued = db
        .write(move |c| {
            let now = clock::now_ms();
            webhook_admin::recover_endpoint(c, &mm, &epc, since, now + 1, now)
        })
        .await
        .unwrap();
    assert_eq!(queued.queued(), 1, "only the failed delivery is recovered");
    assert_eq!(queued.already_succeeded, 0);
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 4).await);
    assert_eq!(rx.received()[3].headers["webhook-id"], ev2.id);
    settled(&db, &ev2.id, &ep, deliveries::SUCCEEDED).await;
    // another merchant cannot redeliver or recover these
    let other = merchant(&db).await;
    let (o, eid, epc) = (other.clone(), EventId::parse(&ev.id).unwrap(), ep.clone());
    let foreign = db
        .write(move |c| {
            let a = webhook_admin::redeliver_event(c, &o, &eid, clock::now_ms()).is_err();
            let now = clock::now_ms();
            let b = webhook_admin::recover_endpoint(c, &o, &epc, 0, now, now).is_err();
            Ok((a, b))
        })
        .await
        .unwrap();
    assert_eq!(foreign, (true, true));
}

async fn a_rotated_secret_signs_beside_the_new_one_until_the_window_ends(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (ep, old) = endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    let new = WebhookSecret::generate().unwrap();
    let (mm, epc, kr2, text) = (m.clone(), ep.clone(), kr.clone(), new.expose().to_owned());
    db.write(move |c| {
        webhook_admin::rotate_sealed(c, &kr2, &mm, &epc, &text, 1_500, clock::now_ms())
    })
    .await
    .unwrap();
    let w = worker(&db, &kr, config("0s"));
    payment_event(&db, &m, "pay_8").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 1).await);
    let first = &rx.received()[0];
    assert_eq!(first.headers["webhook-signature"].split(' ').count(), 2);
    assert!(
        verifies(first, std::slice::from_ref(&old)),
        "the old secret still verifies"
    );
    assert!(
        verifies(first, std::slice::from_ref(&new)),
        "the new secret verifies"
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    payment_event(&db, &m, "pay_9").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 2).await);
    let second = &rx.received()[1];
    assert_eq!(second.headers["webhook-signature"].split(' ').count(), 1);
    assert!(verifies(second, &[new]));
    assert!(!verifies(second, &[old]), "the old secret no longer signs");
}

async fn a_runner_killed_mid_delivery_leaves_it_to_another_after_the_lease(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (ep, _) = endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    let (ev, _) = payment_event(&db, &m, "pay_10").await;
    // runner A claims with a short lease and dies without finishing
    let claimed = db
        .write(|c| {
            store::delivery_queue::claim_deliver_jobs(
                c,
                "runner-a",
                Duration::from_millis(600),
                10,
                clock::now_ms(),
                &store::delivery_queue::LaneQuotas {
                    default: 10,
                    limits: Default::default(),
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let w = worker(&db, &kr, config("0s,100ms"));
    // while A's lease holds, B finds nothing
    assert_eq!(s::run_once(&db, &w, "runner-b", 10).await, 0);
    assert_eq!(rx.count(), 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(drive(&db, &w, "runner-b", WAIT, || rx.count() == 1).await);
    let delivered = settled(&db, &ev.id, &ep, deliveries::SUCCEEDED).await;
    // A comes back with its stale claim through its pump: the claim is loaded, found delivered,
    // and nothing is sent again
    let pump_a = std::sync::Arc::new(webhook_fanout::Pump::new(
        w.clone(),
        s::pump_config("runner-a"),
    ));
    assert_eq!(pump_a.deliver_claimed(vec![claimed[0].clone()]).await, 1);
    assert_eq!(rx.count(), 1, "the stale claim sends nothing");
    assert_eq!(
        attempts_of(&db, &delivered.id).await.len(),
        1,
        "the stale claim records no attempt"
    );
    let job = {
        let id = claimed[0].id.clone();
        db.read(move |c| jobs::get(c, &id)).await.unwrap()
    };
    assert_eq!(job.state, jobs::DONE);
    assert_ne!(
        job.lease_owner.as_deref(),
        Some("runner-a"),
        "A's late finish is fenced off"
    );
    // and A completing the job itself is refused: the lease is no longer its own
    let id = claimed[0].id.clone();
    let completed = db
        .write(move |c| jobs::complete(c, &id, "runner-a", clock::now_ms()))
        .await
        .unwrap();
    assert!(!completed, "A's completion is fenced off");
    s::run_once(&db, &w, "runner-b", 10).await;
    assert_eq!(rx.count(), 1, "acknowledged once, never re-sent");
}

async fn a_disabled_endpoint_gets_nothing_and_its_pending_deliveries_die(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (ep, _) = endpoint(&db, &kr, &m, &rx.url("/"), &["*"]).await;
    let (ev, _) = payment_event(&db, &m, "pay_11").await;
    let (mm, epc) = (m.clone(), ep.clone());
    db.write(move |c| {
        let patch = store::webhook_endpoints::EndpointPatch {
            enabled: Some(false),
            disabled_reason: Some(Some("merchant".into())),
            ..Default::default()
        };
        store::webhook_endpoints::update(c, &mm, &epc, &patch, clock::now_ms())
    })
    .await
    .unwrap();
    let w = worker(&db, &kr, config("0s"));
    s::run_once(&db, &w, "r", 10).await;
    assert_eq!(rx.count(), 0);
    assert_eq!(delivery_of(&db, &ev.id, &ep).await.status, deliveries::DEAD);
    let (_, n) = s::event(&db, &m, EventType::RefundSucceeded, "ref_1").await;
    assert_eq!(n, 0, "no delivery for a disabled endpoint");
}

/// The webhook-ids the receiver got at `path`, in order.
fn ids_at(rx: &Receiver, path: &str) -> Vec<String> {
    rx.received()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.headers["webhook-id"].clone())
        .collect()
}

/// A millisecond boundary strictly after everything written so far and before anything written
/// next.
async fn tick() -> i64 {
    tokio::time::sleep(Duration::from_millis(3)).await;
    let t = clock::now_ms();
    tokio::time::sleep(Duration::from_millis(3)).await;
    t
}

async fn recover(
    db: &Database,
    m: &domain::MerchantId,
    ep: &WebhookEndpointId,
    since: i64,
    until: i64,
    max: usize,
) -> webhook_admin::Recovery {
    let (m, ep) = (m.clone(), ep.clone());
    db.write(move |c| {
        webhook_admin::recover_endpoint_limited(c, &m, &ep, since, until, max, clock::now_ms())
    })
    .await
    .expect("recover")
}

async fn recover_delivers_every_event_a_gone_endpoint_missed_in_the_range_once(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let (m, other) = (merchant(&db).await, merchant(&db).await);
    let (ep, _) = endpoint(
        &db,
        &kr,
        &m,
        &rx.url("/ep"),
        &["payment.succeeded", "refund.succeeded"],
    )
    .await;
    endpoint(&db, &kr, &other, &rx.url("/other"), &["*"]).await;
    let w = worker(&db, &kr, config("0s,100ms"));
    // delivered before the range
    let (before, _) = payment_event(&db, &m, "pay_r0").await;
    assert!(drive(&db, &w, "r", WAIT, || ids_at(&rx, "/ep").len() == 1).await);
    settled(&db, &before.id, &ep, deliveries::SUCCEEDED).await;
    let since = tick().await;
    // in the range: a 410 disables the endpoint, its delivery dies
    rx.script([Reply::status(410)]);
    let (gone, _) = payment_event(&db, &m, "pay_r1").await;
    assert!(drive(&db, &w, "r", WAIT, || ids_at(&rx, "/ep").len() == 2).await);
    let disabled = {
        let id = ep.to_string();
        db.read(move |c| webhook_endpoints::get_any(c, &id))
            .await
            .unwrap()
    };
    assert!(!disabled.enabled, "a 410 disables the endpoint");
    // raised while disabled: fan-out makes no delivery for the endpoint
    let (missed_payment, n) = payment_event(&db, &m, "pay_r2").await;
    assert_eq!(n, 0);
    let (missed_refund, _) = s::event(&db, &m, EventType::RefundSucceeded, "re_r3").await;
    let (unsubscribed, _) = s::event(&db, &m, EventType::PaymentFailed, "pay_r4").await;
    let (foreign, _) = payment_event(&db, &other, "pay_r5").await;
    let until = tick().await;
    // after the range, still disabled
    let (after, _) = payment_event(&db, &m, "pay_r6").await;

    let done = recover(&db, &m, &ep, since, until, 10_000).await;
    assert!(done.reenabled);
    assert_eq!(
        (
            done.events,
            done.created,
            done.requeued,
            done.already_succeeded
        ),
        (3, 2, 1, 0),
        "{done:?}"
    );
    assert_eq!(done.next_since, None);
    let e = {
        let id = ep.to_string();
        db.read(move |c| webhook_endpoints::get_any(c, &id))
            .await
            .unwrap()
    };
    assert!(e.enabled && e.disabled_reason.is_none() && e.failing_since.is_none());

    assert!(drive(&db, &w, "r", WAIT, || ids_at(&rx, "/ep").len() == 5).await);
    for id in [&gone.id, &missed_payment.id, &missed_refund.id] {
        settled(&db, id, &ep, deliveries::SUCCEEDED).await;
    }
    s::run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut recovered = ids_at(&rx, "/ep")[2..].to_vec();
    recovered.sort();
    let mut wanted = vec![
        gone.id.clone(),
        missed_payment.id.clone(),
        missed_refund.id.clone(),
    ];
    wanted.sort();
    assert_eq!(
        recovered, wanted,
        "exactly the range's subscribed events, once each"
    );
    let all = ids_at(&rx, "/ep");
    for left_out in [&before.id, &unsubscribed.id, &foreign.id, &after.id] {
        assert_eq!(
            all.iter().filter(|i| *i == left_out).count(),
            usize::from(*left_out == before.id),
            "{left_out}"
        );
    }
    assert!(
        ids_at(&rx, "/other").iter().all(|i| *i == foreign.id),
        "the other merchant's endpoint gets only its own events"
    );

    // the same range again: everything succeeded, nothing is sent twice
    let again = recover(&db, &m, &ep, since, until, 10_000).await;
    assert_eq!(
        (again.reenabled, again.queued(), again.already_succeeded),
        (false, 0, 3),
        "{again:?}"
    );
    s::run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ids_at(&rx, "/ep").len(), 5);
}

async fn recover_over_more_events_than_one_call_covers_goes_on_from_next_since(db: Database) {
    let kr = keyring();
    let rx = Receiver::start(Reply::status(200));
    let m = merchant(&db).await;
    let (ep, _) = endpoint(&db, &kr, &m, &rx.url("/"), &["payment.succeeded"]).await;
    let (mm, epc) = (m.clone(), ep.clone());
    db.write(move |c| webhook_endpoints::disable(c, &epc, "gone", clock::now_ms()).map(|_| ()))
        .await
        .unwrap();
    let since = tick().await;
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(payment_event(&db, &mm, &format!("pay_b{i}")).await.0.id);
        tick().await;
    }
    let until = tick().await;
    let first = recover(&db, &m, &ep, since, until, 2).await;
    assert_eq!((first.events, first.created), (2, 2), "{first:?}");
    let next = first.next_since.expect("more events remain");
    let second = recover(&db, &m, &ep, next, until, 2).await;
    assert_eq!((second.events, second.created), (2, 2), "{second:?}");
    let third = recover(&db, &m, &ep, second.next_since.expect("more"), until, 2).await;
    assert_eq!(
        (third.events, third.created, third.next_since),
        (1, 1, None)
    );
    let w = worker(&db, &kr, config("0s"));
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 5).await);
    s::run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut got = ids_at(&rx, "/");
    got.sort();
    events.sort();
    assert_eq!(
        got, events,
        "each event once, none skipped at the call boundaries"
    );
}

// Pools larger than test-support's defaults: the pump runs many deliveries at once.
on_both_backends!(pools(sqlite = 8, postgres = 16):
    an_event_reaches_both_endpoints_of_its_merchant_and_none_of_another,
    a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt,
    gone_disables_the_endpoint_and_tells_the_other_one,
    an_endpoint_failing_longer_than_the_limit_is_disabled,
    redeliver_and_recover_send_again,
    a_rotated_secret_signs_beside_the_new_one_until_the_window_ends,
    a_runner_killed_mid_delivery_leaves_it_to_another_after_the_lease,
    a_disabled_endpoint_gets_nothing_and_its_pending_deliveries_die,
    recover_delivers_every_event_a_gone_endpoint_missed_in_the_range_once,
    recover_over_more_events_than_one_call_covers_goes_on_from_next_since,
);

//! Retention deletes rows older than their period and keeps younger ones, in batches, on both
//! backends.

use test_support::on_both_backends;

use diesel::prelude::*;
use domain::{EventId, EventType, MerchantId, WebhookEndpointId};
use store::deliveries::{self, Delivery, DeliveryAttempt};
use store::merchants::{self, Merchant};
use store::notifications::{self, UpstreamNotification};
use store::retention::{Table, purge_all};
use store::schema::{delivery_attempts, idempotency_keys, jobs, upstream_notifications};
use store::{Database, clock::now_ms, events, on_backend, webhook_endpoints};

on_both_backends!(
    old_rows_go_and_young_rows_stay,
    purging_works_in_batches_and_stops_when_done,
);

const DAY: i64 = 86_400_000;

fn merchant(now: i64) -> Merchant {
    test_support::merchant_row(MerchantId::generate().as_str(), now)
}

/// One row of every retained table at `at`, named by `tag`.
async fn seed(db: &Database, tag: &str, at: i64, expires_at: i64) {
    let tag = tag.to_owned();
    db.write(move |c| {
        let m = merchant(at);
        merchants::insert(c, &m)?;
        let mid = MerchantId::parse(&m.id)?;
        let event = EventId::generate();
        events::insert(
            c,
            &events::Event {
                id: event.as_str().into(),
                merchant_id: m.id.clone(),
                event_type: EventType::PaymentSucceeded.as_str().into(),
                object_id: format!("pay_{tag}"),
                payload: "{}".into(),
                created_at: at,
            },
        )?;
        // Created after the event, so the event fanned out to nothing: the delivery is ours.
        let endpoint = webhook_endpoints::WebhookEndpoint::new(
            WebhookEndpointId::generate().as_str(),
            &m.id,
            "https://example.test/hook",
            r#"["*"]"#.into(),
            "sealed".into(),
            at,
        );
        webhook_endpoints::insert(c, &endpoint)?;
        let delivery = Delivery::new(&event, &WebhookEndpointId::parse(&endpoint.id)?, &mid, at);
        deliveries::insert(c, &delivery)?;
        deliveries::insert_attempts(
            c,
            &[DeliveryAttempt {
                id: format!("att_{tag}"),
                delivery_id: delivery.id.clone(),
                event_id: event.as_str().into(),
                endpoint_id: endpoint.id.clone(),
                merchant_id: m.id.clone(),
                attempt: 1,
                started_at: at,
                duration_ms: 5,
                http_status: Some(200),
                response_excerpt: None,
                error: None,
            }],
        )?;
        notifications::insert(
            c,
            &UpstreamNotification {
                id: format!("un_{tag}"),
                received_at: at,
                raw_body: "{}".into(),
                verified: false,
                verification_error: Some("bad signature".into()),
                dedupe_key: None,
                object_type: None,
                object_id: None,
                merchant_id: None,
            },
        )?;
        on_backend!(c, |c| diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::owner_id.eq(&m.id),
                idempotency_keys::idem_key.eq(format!("idem_{tag}")),
                idempotency_keys::method.eq("POST"),
                idempotency_keys::path.eq("/v1/payments"),
                idempotency_keys::fingerprint.eq("fp"),
                idempotency_keys::state.eq("completed"),
                idempotency_keys::created_at.eq(at),
                idempotency_keys::expires_at.eq(expires_at),
            ))
            .execute(c))?;
        for (suffix, state) in [("done", "done"), ("dead", "dead"), ("queued", "queued")] {
            on_backend!(c, |c| diesel::insert_into(jobs::table)
                .values((
                    jobs::id.eq(format!("job_{tag}_{suffix}")),
                    jobs::kind.eq("test"),
                    jobs::payload.eq("{}"),
                    jobs::run_at.eq(at),
                    jobs::attempts.eq(1),
                    jobs::state.eq(state),
                    jobs::created_at.eq(at),
                    jobs::updated_at.eq(at),
                ))
                .execute(c))?;
        }
        Ok(())
    })
    .await
    .expect("seed");
}

async fn ids(db: &Database) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    db.read(|c| {
        let mut jobs_left: Vec<String> = on_backend!(c, |c| jobs::table
            .filter(jobs::kind.eq("test"))
            .select(jobs::id)
            .load(c))?;
        jobs_left.sort();
        let mut attempts: Vec<String> = on_backend!(c, |c| delivery_attempts::table
            .select(delivery_attempts::id)
            .load(c))?;
        attempts.sort();
        let mut notes: Vec<String> = on_backend!(c, |c| upstream_notifications::table
            .select(upstream_notifications::id)
            .load(c))?;
        notes.sort();
        let mut keys: Vec<String> = on_backend!(c, |c| idempotency_keys::table
            .select(idempotency_keys::idem_key)
            .load(c))?;
        keys.sort();
        Ok((jobs_left, attempts, notes, keys))
    })
    .await
    .expect("read")
}

async fn old_rows_go_and_young_rows_stay(db: Database) {
    let now = now_ms();
    seed(&db, "old", now - 40 * DAY, now - 39 * DAY).await;
    seed(&db, "young", now - DAY / 2, now + DAY / 2).await;
    // Old but not yet expired: an idempotency key is never purged before its expiry.
    seed(&db, "unexpired", now - 40 * DAY, now + DAY).await;
    let cutoff = now - 30 * DAY;
    for table in Table::ALL {
        purge_all(&db, table, cutoff, now, 100, 10)
            .await
            .expect("purge");
    }
    let (jobs_left, attempts, notes, keys) = ids(&db).await;
    assert_eq!(
        jobs_left,
        vec![
            "job_old_dead",
            "job_old_queued",
            "job_unexpired_dead",
            "job_unexpired_queued",
            "job_young_dead",
            "job_young_done",
            "job_young_queued",
        ],
        "done jobs go, dead and unfinished ones stay"
    );
    assert_eq!(attempts, vec!["att_young"]);
    assert_eq!(notes, vec!["un_young"]);
    assert_eq!(keys, vec!["idem_unexpired", "idem_young"]);
}

async fn purging_works_in_batches_and_stops_when_done(db: Database) {
    let now = now_ms();
    for i in 0..7 {
        seed(&db, &format!("old{i}"), now - 40 * DAY, now - 39 * DAY).await;
    }
    let cutoff = now - 30 * DAY;
    // 2 batches of 3 leave one behind; the next run takes it.
    let first = purge_all(&db, Table::DeliveryAttempts, cutoff, now, 3, 2)
        .await
        .expect("purge");
    assert_eq!(first, 6);
    let second = purge_all(&db, Table::DeliveryAttempts, cutoff, now, 3, 2)
        .await
        .expect("purge");
    assert_eq!(second, 1);
    let third = purge_all(&db, Table::DeliveryAttempts, cutoff, now, 3, 2)
        .await
        .expect("purge");
    assert_eq!(third, 0);
}

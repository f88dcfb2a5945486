//! The repository suite, written once and run on SQLite and PostgreSQL.

use test_support::on_both_backends;

use domain::{EventId, EventType, MerchantId, PaymentId, PaymentStatus, RefundId};
use store::api_keys::{self, ApiKey, ApiKeyKind};
use store::idempotency::{self, Begin};
use store::merchants::{self, Merchant};
use store::payments::{self, Payment, PaymentFilter};
use store::{
    Database, PageRequest, StoreError, clock::now_ms, deliveries, events, jobs, refunds,
    webhook_endpoints,
};

on_both_backends!(
    api_keys_are_found_by_secret_only_while_active,
    a_foreign_merchants_payment_is_not_found,
    payments_list_newest_first_with_cursor_and_filters,
    a_stale_payment_version_is_a_conflict,
    change_event_delivery_and_job_commit_or_roll_back_together,
    a_swallowed_failed_statement_does_not_commit_silently,
    refunds_count_pending_and_succeeded_against_the_capture,
    idempotency_key_runs_once_then_replays,
    a_dead_claimants_claim_is_taken_over_at_once_a_live_ones_is_not,
    fan_out_picks_enabled_subscribed_endpoints,
    a_store_filtered_endpoint_gets_only_its_stores_events,
);

fn merchant(now: i64) -> Merchant {
    test_support::merchant_row(MerchantId::generate().as_str(), now)
}

fn payment(merchant: &str, order: &str, now: i64) -> Payment {
    Payment {
        id: PaymentId::generate().into_string(),
        merchant_id: merchant.into(),
        merchant_order_id: order.into(),
        mode: "mpm".into(),
        amount_minor: 1050,
        currency: "USD".into(),
        wallet: "alipay".into(),
        status: PaymentStatus::Pending.as_str().into(),
        codepay_merchant_no: "M1".into(),
        upstream_order_no: ulid::Ulid::new().to_string(),
        trans_no: None,
        qr_code: None,
        expires_at: None,
        paid_at: None,
        failure_code: None,
        failure_message: None,
        amount_refunded_minor: 0,
        description: None,
        metadata: "{}".into(),
        closed_by_us: false,
        version: 0,
        created_at: now,
        updated_at: now,
        codepay_store_no: None,
        gateway_account_id: None,
        store_id: None,
        terminal_id: None,
        codepay_terminal_sn: None,
    }
}

/// The list filter of `merchant`'s own payments.
fn mine(merchant: &MerchantId) -> PaymentFilter {
    PaymentFilter {
        merchant_id: Some(merchant.to_string()),
        ..PaymentFilter::default()
    }
}

async fn new_merchant(db: &Database) -> MerchantId {
    let m = merchant(now_ms());
    let id = MerchantId::parse(&m.id).expect("id");
    db.write(move |c| merchants::insert(c, &m))
        .await
        .expect("merchant");
    id
}

async fn api_keys_are_found_by_secret_only_while_active(db: Database) {
    let mid = new_merchant(&db).await;
    let secret = api_keys::generate_secret(ApiKeyKind::Secret);
    let now = now_ms();
    let key = ApiKey::new(
        ApiKeyKind::Secret,
        Some(&mid),
        &secret,
        "pos",
        &[],
        None,
        now,
    )
    .expect("key");
    assert_ne!(key.secret_hash, secret.expose());
    assert!(
        !key.secret_hash.contains(&secret.expose()[3..]),
        "only the hash is stored"
    );
    let key_id = domain::ApiKeyId::parse(&key.id).expect("id");
    db.write(move |c| api_keys::insert(c, &key))
        .await
        .expect("insert");

    let s = secret.clone();
    let found = db
        .read(move |c| api_keys::find_active_by_secret(c, s.expose(), now))
        .await
        .expect("find")
        .expect("active key found");
    assert_eq!(found.merchant_id.as_deref(), Some(mid.as_str()));
    assert_eq!(found.kind().expect("kind"), ApiKeyKind::Secret);
    let wrong = db
        .read(move |c| api_keys::find_active_by_secret(c, "sk_wrong", now))
        .await
        .expect("find");
    assert!(wrong.is_none());

    let (m, k) = (mid.clone(), key_id.clone());
    assert!(
        db.write(move |c| api_keys::revoke(c, Some(&m), &k, now))
            .await
            .expect("revoke")
    );
    let s = secret.clone();
    let gone = db
        .read(move |c| api_keys::find_active_by_secret(c, s.expose(), now))
        .await
        .expect("find");
    assert!(gone.is_none(), "revoked key no longer authenticates");

    // an operator key is counted; a duplicate hash is refused
    let op = api_keys::generate_secret(ApiKeyKind::Operator);
    let op_key = ApiKey::new(ApiKeyKind::Operator, None, &op, "root", &[], None, now).expect("k");
    let mut dup = ApiKey::new(ApiKeyKind::Operator, None, &op, "dup", &[], None, now).expect("k");
    dup.id = domain::ApiKeyId::generate().into_string();
    db.write(move |c| api_keys::insert(c, &op_key))
        .await
        .expect("operator key");
    let dup_result = db.write(move |c| api_keys::insert(c, &dup)).await.err();
    assert!(
        matches!(dup_result, Some(StoreError::Conflict(_))),
        "{dup_result:?}"
    );
    let count = db
        .read(move |c| api_keys::count_active_operator_keys(c, now))
        .await
        .expect("count");
    assert_eq!(count, 1);
}

async fn a_foreign_merchants_payment_is_not_found(db: Database) {
    let a = new_merchant(&db).await;
    let b = new_merchant(&db).await;
    let p = payment(a.as_str(), "order-1", now_ms());
    let pid = PaymentId::parse(&p.id).expect("id");
    db.write(move |c| payments::insert(c, &p))
        .await
        .expect("insert");
    let (pa, pb) = (pid.clone(), pid.clone());
    let own = db
        .read(move |c| payments::get(c, &a, &pa))
        .await
        .expect("own");
    assert_eq!(own.amount().expect("money").minor(), 1050);
    let foreign = db.read(move |c| payments::get(c, &b, &pb)).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
}

async fn payments_list_newest_first_with_cursor_and_filters(db: Database) {
    let mid = new_merchant(&db).await;
    let now = now_ms();
    let m = mid.as_str().to_owned();
    let ids = db
        .write(move |c| {
            let mut ids = Vec::new();
            for i in 0..5 {
                let mut p = payment(&m, &format!("o{i}"), now + i);
                if i % 2 == 0 {
                    p.status = "succeeded".into();
                }
                // ULIDs within one millisecond are not ordered; keep creation order explicit
                std::thread::sleep(std::time::Duration::from_millis(2));
                p.id = PaymentId::generate().into_string();
                ids.push(p.id.clone());
                payments::insert(c, &p)?;
            }
            Ok(ids)
        })
        .await
        .expect("insert");
    let m = mid.as_str().to_owned();
    let dup = db
        .write(move |c| payments::insert(c, &payment(&m, "o1", now)))
        .await
        .err();
    assert!(
        matches!(dup, Some(StoreError::Conflict(_))),
        "duplicate order id: {dup:?}"
    );
    let m2 = mid.clone();
    let first = db
        .read(move |c| payments::list(c, &mine(&m2), &PageRequest::first(2)))
        .await
        .expect("list");
    assert_eq!(
        first.items.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![ids[4].clone(), ids[3].clone()]
    );
    assert!(first.has_more);
    let (m3, cursor) = (mid.clone(), ids[3].clone());
    let rest = db
        .read(move |c| {
            payments::list(
                c,
                &mine(&m3),
                &PageRequest {
                    limit: 10,
                    starting_after: Some(cursor),
                },
            )
        })
        .await
        .expect("list");
    assert_eq!(rest.items.len(), 3);
    assert!(!rest.has_more);
    let m4 = mid.clone();
    let succeeded = db
        .read(move |c| {
            payments::list(
                c,
                &PaymentFilter {
                    merchant_id: Some(m4.to_string()),
                    status: Some(PaymentStatus::Succeeded),
                    created_lt: Some(now + 4),
                    ..PaymentFilter::default()
                },
                &PageRequest::first(10),
            )
        })
        .await
        .expect("list");
    assert_eq!(
        succeeded.items.len(),
        2,
        "o0 and o2 (o4 is outside the range)"
    );
}

async fn a_stale_payment_version_is_a_conflict(db: Database) {
    let mid = new_merchant(&db).await;
    let p = payment(mid.as_str(), "o", now_ms());
    let pid = PaymentId::parse(&p.id).expect("id");
    db.write(move |c| payments::insert(c, &p))
        .await
        .expect("insert");
    let result = db
        .write(move |c| {
            let mut a = payments::get_for_update(c, &mid, &pid)?;
            let stale = a.clone();
            a.status = "processing".into();
            let saved = payments::save(c, &a, now_ms())?;
            assert_eq!(saved.version, 1);
            Ok(payments::save(c, &stale, now_ms()).err())
        })
        .await
        .expect("save");
    assert!(
        matches!(result, Some(StoreError::Conflict(_))),
        "{result:?}"
    );
}

async fn change_event_delivery_and_job_commit_or_roll_back_together(db: Database) {
    let mid = new_merchant(&db).await;
    let now = now_ms();
    let p = payment(mid.as_str(), "o", now);
    let pid = PaymentId::parse(&p.id).expect("id");
    db.write(move |c| payments::insert(c, &p))
        .await
        .expect("insert");
    let endpoint = endpoint(mid.as_str(), r#"["*"]"#, now);
    let eid = domain::WebhookEndpointId::parse(&endpoint.id).expect("id");
    db.write(move |c| webhook_endpoints::insert(c, &endpoint))
        .await
        .expect("endpoint");

    let settle = |fail: bool| {
        let (mid, pid) = (mid.clone(), pid.clone());
        move |c: &mut store::DbConnection| {
            let mut p = payments::get_for_update(c, &mid, &pid)?;
            p.status = "succeeded".into();
            let p = payments::save(c, &p, now)?;
            let event_id = EventId::generate();
            events::insert(
                c,
                &events::Event {
                    id: event_id.as_str().into(),
                    merchant_id: mid.as_str().into(),
                    event_type: EventType::PaymentSucceeded.as_str().into(),
                    object_id: p.id.clone(),
                    payload: "{}".into(),
                    created_at: now,
                },
            )?;
            // events::insert fans the event out: its delivery and webhook.deliver job are
            // part of this same transaction.
            if fail {
                return Err(StoreError::Conflict(
                    "simulated failure after writes".into(),
                ));
            }
            Ok(event_id)
        }
    };
    assert!(db.write(settle(true)).await.is_err());
    let (m, p2) = (mid.clone(), pid.clone());
    let (status, n_events, depth) = db
        .read(move |c| {
            Ok((
                payments::get(c, &m, &p2)?.status,
                events::list(c, &m, &Default::default(), None, &PageRequest::first(10))?
                    .items
                    .len(),
                jobs::depth_by_kind(c)?,
            ))
        })
        .await
        .expect("read");
    assert_eq!(status, "pending", "rolled back");
    assert_eq!(n_events, 0);
    assert!(depth.is_empty());

    let event_id = db.write(settle(false)).await.expect("commit");
    let m = mid.clone();
    let (status, version, dl, depth) = db
        .read(move |c| {
            let p = payments::get(c, &m, &pid)?;
            Ok((
                p.status,
                p.version,
                deliveries::list_for_event(c, &m, &event_id)?,
                jobs::depth_by_kind(c)?,
            ))
        })
        .await
        .expect("read");
    assert_eq!((status.as_str(), version), ("succeeded", 1));
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].status, deliveries::PENDING);
    assert_eq!(dl[0].endpoint_id, eid.as_str());
    assert_eq!(depth, vec![("webhook.deliver".to_owned(), 1)]);
}

async fn refunds_count_pending_and_succeeded_against_the_capture(db: Database) {
    let mid = new_merchant(&db).await;
    let now = now_ms();
    let p = payment(mid.as_str(), "o", now);
    let pid = PaymentId::parse(&p.id).expect("id");
    let m = mid.as_str().to_owned();
    let total = db
        .write(move |c| {
            payments::insert(c, &p)?;
            for (i, (amount, status)) in [(100, "pending"), (200, "succeeded"), (400, "failed")]
                .into_iter()
                .enumerate()
            {
                refunds::insert(
                    c,
                    &refunds::Refund {
                        id: RefundId::generate().into_string(),
                        payment_id: p.id.clone(),
                        merchant_id: m.clone(),
                        merchant_refund_id: format!("r{i}"),
                        amount_minor: amount,
                        currency: "USD".into(),
                        status: status.into(),
                        codepay_merchant_no: "M1".into(),
                        upstream_order_no: ulid::Ulid::new().to_string(),
                        trans_no: None,
                        reason: None,
                        failure_code: None,
                        failure_message: None,
                        version: 0,
                        created_at: now,
                        updated_at: now,
                        store_id: None,
                        terminal_id: None,
                        gateway_account_id: None,
                        codepay_store_no: None,
                        codepay_terminal_sn: None,
                        fee_return_minor: None,
                    },
                )?;
            }
            refunds::committed_total(c, &pid)
        })
        .await
        .expect("refunds");
    assert_eq!(total, 300, "failed refunds do not count");
}

async fn idempotency_key_runs_once_then_replays(db: Database) {
    let now = now_ms();
    let begin = |fp: &'static str, at: i64| {
        move |c: &mut store::DbConnection| idempotency::begin(c, "mer_x", "k1", fp, at, at + 1_000)
    };
    assert!(matches!(
        db.write(begin("fp1", now)).await.expect("b"),
        Begin::Started
    ));
    match db.write(begin("fp1", now)).await.expect("b") {
        Begin::Existing(r) => assert_eq!(r.state, idempotency::IN_FLIGHT),
        other => panic!("{other:?}"),
    }
    db.write(|c| idempotency::complete(c, "mer_x", "k1", 201, r#"{"id":"pay_1"}"#))
        .await
        .expect("complete");
    match db.write(begin("fp2", now)).await.expect("b") {
        Begin::Existing(r) => {
            assert_eq!(r.state, idempotency::COMPLETED);
            assert_eq!(r.fingerprint, "fp1", "caller compares and answers 422");
            assert_eq!(r.response_status, Some(201));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            db.write(begin("fp2", now + 2_000)).await.expect("b"),
            Begin::Started
        ),
        "an expired key is free again"
    );
}

async fn a_dead_claimants_claim_is_taken_over_at_once_a_live_ones_is_not(db: Database) {
    use store::instances;
    let now = now_ms();
    const LEASE: i64 = 120_000;
    let claim = |key: &'static str, fp: &'static str, at: i64, by: Option<&'static str>| {
        move |c: &mut store::DbConnection| {
            idempotency::claim(c, "mer_x", key, fp, at, at + 86_400_000, LEASE, by)
        }
    };
    db.write(move |c| {
        instances::beat(c, "live", now)?;
        instances::beat(c, "other", now)?;
        // last beat six seconds ago: killed
        instances::beat(c, "stale", now - 6_000)
    })
    .await
    .expect("beats");

    // A live claimant keeps its claim: the retry waits (in flight), as before.
    let first = db.write(claim("k-live", "fp", now, Some("live"))).await;
    assert!(matches!(first.expect("claim"), Begin::Started));
    match db
        .write(claim("k-live", "fp", now + 1_000, Some("other")))
        .await
        .expect("claim")
    {
        Begin::Existing(r) => {
            assert_eq!(r.state, idempotency::IN_FLIGHT);
            assert_eq!(r.claimed_by.as_deref(), Some("live"));
        }
        other => panic!("a live claimant's claim was taken: {other:?}"),
    }

    // A claimant whose heartbeat stopped (stale) or never was (no row): taken over at once, far
    // inside the lease, and the taker is the claimant now.
    for (key, dead) in [("k-stale", "stale"), ("k-gone", "gone")] {
        let first = db.write(claim(key, "fp", now, Some(dead))).await;
        assert!(matches!(first.expect("claim"), Begin::Started));
        let retry = db.write(claim(key, "fp", now + 10, Some("live"))).await;
        assert!(
            matches!(retry.expect("claim"), Begin::Recovered),
            "{dead}'s claim is recovered at once"
        );
        match db
            .write(claim(key, "fp", now + 20, Some("other")))
            .await
            .expect("claim")
        {
            Begin::Existing(r) => assert_eq!(r.claimed_by.as_deref(), Some("live")),
            other => panic!("the recovered claim is live again: {other:?}"),
        }
    }

    // Another request under a dead claimant's key does not take it (the caller answers 422).
    db.write(claim("k-body", "fp", now, Some("gone")))
        .await
        .expect("claim");
    match db
        .write(claim("k-body", "other-fp", now + 10, Some("live")))
        .await
        .expect("claim")
    {
        Begin::Existing(r) => assert_eq!(r.fingerprint, "fp"),
        other => panic!("{other:?}"),
    }

    // A completed record is replayed whoever wrote it.
    db.write(claim("k-done", "fp", now, Some("gone")))
        .await
        .expect("claim");
    db.write(|c| idempotency::complete(c, "mer_x", "k-done", 201, "{}"))
        .await
        .expect("complete");
    match db
        .write(claim("k-done", "fp", now + 10, Some("live")))
        .await
        .expect("claim")
    {
        Begin::Existing(r) => assert_eq!(r.state, idempotency::COMPLETED),
        other => panic!("{other:?}"),
    }

    // Without a claimant (rows from before claimants were recorded) only the lease frees it.
    db.write(claim("k-anon", "fp", now, None))
        .await
        .expect("claim");
    let early = db
        .write(claim("k-anon", "fp", now + 10_000, Some("live")))
        .await;
    assert!(matches!(early.expect("claim"), Begin::Existing(_)));
    let late = db
        .write(claim("k-anon", "fp", now + LEASE + 1, Some("live")))
        .await;
    assert!(matches!(late.expect("claim"), Begin::Recovered));

    // A clean shutdown deletes the row: its claims are free at once.
    db.write(claim("k-bye", "fp", now, Some("other")))
        .await
        .expect("claim");
    db.write(|c| instances::remove(c, "other"))
        .await
        .expect("remove");
    let after = db.write(claim("k-bye", "fp", now + 10, Some("live"))).await;
    assert!(matches!(after.expect("claim"), Begin::Recovered));
}

fn endpoint(merchant: &str, filter: &str, now: i64) -> webhook_endpoints::WebhookEndpoint {
    webhook_endpoints::WebhookEndpoint::new(
        domain::WebhookEndpointId::generate().as_str(),
        merchant,
        "https://example.test/hook",
        filter.into(),
        "sealed".into(),
        now,
    )
}

async fn fan_out_picks_enabled_subscribed_endpoints(db: Database) {
    let mid = new_merchant(&db).await;
    let other = new_merchant(&db).await;
    let now = now_ms();
    let all = endpoint(mid.as_str(), r#"["*"]"#, now);
    let refunds_only = endpoint(mid.as_str(), r#"["refund.succeeded"]"#, now);
    let disabled = endpoint(mid.as_str(), r#"["*"]"#, now);
    let foreign = endpoint(other.as_str(), r#"["*"]"#, now);
    let (all_id, disabled_id) = (all.id.clone(), disabled.id.clone());
    let m = mid.clone();
    let subs = db
        .write(move |c| {
            for e in [&all, &refunds_only, &disabled, &foreign] {
                webhook_endpoints::insert(c, e)?;
            }
            let d = domain::WebhookEndpointId::parse(&disabled_id)?;
            assert!(webhook_endpoints::disable(c, &d, "gone_410", now)?);
            webhook_endpoints::subscribers(c, &m, EventType::PaymentSucceeded)
        })
        .await
        .expect("subscribers");
    assert_eq!(
        subs.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![all_id]
    );
}

/// On PostgreSQL a failed statement aborts the transaction and COMMIT becomes ROLLBACK; a closure
/// that ignores the error must get an error back, not a silent loss of its writes. On SQLite the
/// other writes stand.
async fn a_swallowed_failed_statement_does_not_commit_silently(db: Database) {
    let mid = new_merchant(&db).await;
    let now = now_ms();
    let first = payment(mid.as_str(), "same", now);
    let m = mid.as_str().to_owned();
    db.write(move |c| payments::insert(c, &first))
        .await
        .expect("first");
    let backend = db.backend();
    let result = db
        .write(move |c| {
            let ok = payment(&m, "other", now);
            payments::insert(c, &ok)?;
            let _ignored = payments::insert(c, &payment(&m, "same", now));
            Ok(())
        })
        .await;
    let m2 = mid.clone();
    let other = db
        .read(move |c| payments::find_by_merchant_order_id(c, &m2, "other"))
        .await
        .expect("read");
    match backend {
        store::Backend::Postgres => {
            assert!(result.is_err(), "aborted transaction reported");
            assert!(other.is_none());
        }
        store::Backend::Sqlite => {
            assert!(result.is_ok());
            assert!(other.is_some());
        }
    }
}

/// Fan-out, redelivery and recovery send a store-filtered endpoint only the events whose
/// object was taken at its store; an event about no store reaches only unfiltered endpoints.
async fn a_store_filtered_endpoint_gets_only_its_stores_events(db: Database) {
    let mid = new_merchant(&db).await;
    let now = now_ms();
    let (store_a, store_b) = (
        domain::StoreId::generate().into_string(),
        domain::StoreId::generate().into_string(),
    );
    let every = endpoint(mid.as_str(), r#"["*"]"#, now);
    let at_a = webhook_endpoints::WebhookEndpoint {
        store_id: Some(store_a.clone()),
        ..endpoint(mid.as_str(), r#"["*"]"#, now)
    };
    let at_b = webhook_endpoints::WebhookEndpoint {
        store_id: Some(store_b.clone()),
        ..endpoint(mid.as_str(), r#"["*"]"#, now)
    };
    let (every_id, a_id, b_id) = (every.id.clone(), at_a.id.clone(), at_b.id.clone());
    db.write(move |c| {
        for e in [&every, &at_a, &at_b] {
            webhook_endpoints::insert(c, e)?;
        }
        Ok(())
    })
    .await
    .expect("endpoints");
    let event = |store: Option<&str>| {
        let payload = match store {
            Some(s) => serde_json::json!({"id": "pay_x", "store_id": s}),
            None => serde_json::json!({"id": "pay_x", "store_id": null}),
        };
        events::Event {
            id: EventId::generate().into_string(),
            merchant_id: mid.to_string(),
            event_type: EventType::PaymentSucceeded.as_str().into(),
            object_id: "pay_x".into(),
            payload: payload.to_string(),
            created_at: now,
        }
    };
    let (at_store_a, at_no_store) = (event(Some(&store_a)), event(None));
    let (ea, en) = (at_store_a.clone(), at_no_store.clone());
    db.write(move |c| {
        events::insert(c, &ea)?;
        events::insert(c, &en)
    })
    .await
    .expect("events");
    let endpoints_of = |event_id: String| {
        let m = mid.clone();
        let db = db.clone();
        async move {
            let id = EventId::parse(&event_id).expect("id");
            let mut got: Vec<String> = db
                .read(move |c| deliveries::list_for_event(c, &m, &id))
                .await
                .expect("deliveries")
                .into_iter()
                .map(|d| d.endpoint_id)
                .collect();
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        endpoints_of(at_store_a.id.clone()).await,
        sorted(vec![every_id.clone(), a_id.clone()]),
        "store A's event: the unfiltered endpoint and store A's, not store B's"
    );
    assert_eq!(
        endpoints_of(at_no_store.id.clone()).await,
        vec![every_id.clone()],
        "an event about no store: unfiltered endpoints only"
    );

    // A redelivery follows the same rule.
    let (m, ev) = (mid.clone(), EventId::parse(&at_store_a.id).expect("id"));
    db.write(move |c| store::webhook_admin::redeliver_event(c, &m, &ev, now_ms()))
        .await
        .expect("redeliver");
    assert_eq!(
        endpoints_of(at_store_a.id.clone()).await,
        sorted(vec![every_id, a_id]),
        "redelivery creates no delivery for another store's endpoint"
    );

    // Recovering store B's endpoint covers none of these events.
    let (m, b) = (
        mid.clone(),
        domain::WebhookEndpointId::parse(&b_id).expect("id"),
    );
    let recovered = db
        .write(move |c| {
            store::webhook_admin::recover_endpoint(c, &m, &b, now - 1, now_ms() + 1, now_ms())
        })
        .await
        .expect("recover");
    assert_eq!((recovered.events, recovered.created), (0, 0));
}

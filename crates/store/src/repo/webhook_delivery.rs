//! Webhook delivery queries beyond the per-table repositories: the delivery job (one per
//! delivery, deduplicated by delivery id), fenced attempt recording, requeueing for redeliver /
//! recover, secret bindings and rotation, and the operator's cross-merchant views.

use crate::jobs::{self, Enqueued, NewJob};
use crate::page::{Page, PageRequest};
use crate::repo::deliveries::{self, Delivery, DeliveryAttempt, SUCCEEDED};
use crate::repo::events::{Event, EventFilter};
use crate::repo::webhook_endpoints::{self, WebhookEndpoint};
use crate::schema::{
    deliveries as dl, delivery_attempts, events, jobs as jb, webhook_endpoints as we,
};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{MerchantId, WebhookEndpointId};

/// The job kind that delivers one webhook delivery (payload `{"delivery_id":"dlv_…"}`).
pub const DELIVER_JOB_KIND: &str = "webhook.deliver";

/// The sealing binding of an endpoint's current secret.
pub fn secret_binding(endpoint_id: &str) -> String {
    crate::sealing::binding::webhook_secret(endpoint_id)
}

/// The sealing binding of an endpoint's previous (rotated-out) secret.
pub fn previous_secret_binding(endpoint_id: &str) -> String {
    crate::sealing::binding::webhook_previous_secret(endpoint_id)
}

/// The payload of a delivery job.
pub fn job_payload(delivery_id: &str) -> String {
    serde_json::json!({ "delivery_id": delivery_id }).to_string()
}

/// Enqueues the job of a delivery to `endpoint_id` (its lane) for `run_at`; if an unfinished job
/// already exists for it, it is moved earlier when it is queued for later (never later, never
/// while running).
pub fn enqueue_delivery(
    conn: &mut DbConnection,
    delivery_id: &str,
    endpoint_id: &str,
    run_at: i64,
    now: i64,
) -> StoreResult<()> {
    let payload = job_payload(delivery_id);
    let job = NewJob {
        kind: DELIVER_JOB_KIND,
        dedupe_key: Some(delivery_id),
        payload: &payload,
        run_at,
    };
    if jobs::enqueue_in_lane(conn, &job, Some(endpoint_id), now)? == Enqueued::Duplicate {
        on_backend!(conn, |c| diesel::update(
            jb::table
                .filter(jb::kind.eq(DELIVER_JOB_KIND))
                .filter(jb::dedupe_key.eq(delivery_id))
                .filter(jb::state.eq(jobs::QUEUED))
                .filter(jb::run_at.gt(run_at))
        )
        .set((jb::run_at.eq(run_at), jb::updated_at.eq(now)))
        .execute(c))?;
    }
    Ok(())
}

/// Makes a delivery pending again and due at `run_at` (redeliver, recover), with its job.
pub fn requeue(
    conn: &mut DbConnection,
    delivery: &Delivery,
    run_at: i64,
    now: i64,
) -> StoreResult<()> {
    let delivery_id = delivery.id.as_str();
    on_backend!(conn, |c| diesel::update(dl::table.find(delivery_id))
        .set((
            dl::status.eq(deliveries::PENDING),
            dl::next_attempt_at.eq(Some(run_at)),
            dl::updated_at.eq(now),
        ))
        .execute(c))?;
    enqueue_delivery(conn, delivery_id, &delivery.endpoint_id, run_at, now)
}

/// Records an attempt and the delivery's new state; a delivery already `succeeded` keeps that
/// state (a late duplicate attempt by a runner whose lease ran out cannot undo an
/// acknowledgement). Returns whether the delivery row changed.
pub fn record_attempt(
    conn: &mut DbConnection,
    attempt: &DeliveryAttempt,
    status: &str,
    next_attempt_at: Option<i64>,
    now: i64,
) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| {
        diesel::insert_into(delivery_attempts::table)
            .values(attempt)
            .execute(c)?;
        diesel::update(
            dl::table
                .filter(dl::id.eq(&attempt.delivery_id))
                .filter(dl::status.ne(SUCCEEDED)),
        )
        .set((
            dl::status.eq(status),
            dl::attempts.eq(attempt.attempt),
            dl::next_attempt_at.eq(next_attempt_at),
            dl::last_status.eq(attempt.http_status),
            dl::last_error.eq(&attempt.error),
            dl::updated_at.eq(now),
        ))
        .execute(c)
    })?;
    Ok(n == 1)
}

/// Marks a delivery dead without an attempt (its endpoint was disabled or deleted).
pub fn mark_dead(
    conn: &mut DbConnection,
    delivery_id: &str,
    error: &str,
    now: i64,
) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(
        dl::table
            .filter(dl::id.eq(delivery_id))
            .filter(dl::status.ne(SUCCEEDED))
    )
    .set((
        dl::status.eq(deliveries::DEAD),
        dl::next_attempt_at.eq(None::<i64>),
        dl::last_error.eq(Some(error)),
        dl::updated_at.eq(now),
    ))
    .execute(c))?;
    Ok(())
}

/// One endpoint by id alone (delivery workers hold the merchant through the delivery); deleted
/// endpoints included.
pub fn endpoint_any(conn: &mut DbConnection, id: &str) -> StoreResult<WebhookEndpoint> {
    Ok(on_backend!(conn, |c| we::table
        .find(id)
        .select(WebhookEndpoint::as_select())
        .first(c))?)
}

/// Rotates an endpoint's secret with both ciphertexts made by the caller (the previous one
/// re-sealed under its own binding, so a ciphertext never opens in another column).
#[allow(clippy::too_many_arguments)]
pub fn rotate_secret(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
    new_secret_ciphertext: &str,
    previous_secret_ciphertext: &str,
    previous_expires_at: i64,
    now: i64,
) -> StoreResult<WebhookEndpoint> {
    let n = on_backend!(conn, |c| diesel::update(
        we::table
            .filter(we::id.eq(id.as_str()))
            .filter(we::merchant_id.eq(merchant.as_str()))
            .filter(we::deleted_at.is_null())
    )
    .set((
        we::secret_ciphertext.eq(new_secret_ciphertext),
        we::previous_secret_ciphertext.eq(Some(previous_secret_ciphertext)),
        we::previous_secret_expires_at.eq(Some(previous_expires_at)),
        we::updated_at.eq(now),
    ))
    .execute(c))?;
    if n == 0 {
        return Err(crate::StoreError::NotFound);
    }
    webhook_endpoints::get(conn, merchant, id)
}

/// A merchant's events, newest first, optionally only those whose deliveries all succeeded
/// (`Some(true)`) or with at least one delivery not (yet) succeeded (`Some(false)`).
pub fn list_events(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    filter: &EventFilter,
    delivery_success: Option<bool>,
    page: &PageRequest,
) -> StoreResult<Page<Event>> {
    let limit = page.effective_limit();
    let types: Vec<&str> = filter.types.iter().map(|t| t.as_str()).collect();
    let rows = on_backend!(conn, |c| {
        let mut q = events::table
            .filter(events::merchant_id.eq(merchant.as_str()))
            .select(Event::as_select())
            .into_boxed();
        if !types.is_empty() {
            q = q.filter(events::event_type.eq_any(&types));
        }
        if let Some(o) = &filter.object_id {
            q = q.filter(events::object_id.eq(o));
        }
        if let Some(t) = filter.created_gte {
            q = q.filter(events::created_at.ge(t));
        }
        if let Some(t) = filter.created_lt {
            q = q.filter(events::created_at.lt(t));
        }
        let unsuccessful = dl::table
            .filter(dl::merchant_id.eq(merchant.as_str()))
            .filter(dl::status.ne(SUCCEEDED))
            .select(dl::event_id);
        match delivery_success {
            Some(false) => q = q.filter(events::id.eq_any(unsuccessful)),
            Some(true) => {
                let any = dl::table
                    .filter(dl::merchant_id.eq(merchant.as_str()))
                    .select(dl::event_id);
                q = q
                    .filter(events::id.eq_any(any))
                    .filter(diesel::dsl::not(events::id.eq_any(unsuccessful)));
            }
            None => {}
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(events::id.lt(after));
        }
        q.order(events::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Deliveries of one endpoint of a merchant that are not succeeded and were created at or after
/// `since` (recover: failed, dead, and pending ones alike).
pub fn unsuccessful_since(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    endpoint: &WebhookEndpointId,
    since: i64,
) -> StoreResult<Vec<deliveries::Delivery>> {
    Ok(on_backend!(conn, |c| dl::table
        .filter(dl::merchant_id.eq(merchant.as_str()))
        .filter(dl::endpoint_id.eq(endpoint.as_str()))
        .filter(dl::status.ne(SUCCEEDED))
        .filter(dl::created_at.ge(since))
        .order(dl::id.asc())
        .select(deliveries::Delivery::as_select())
        .load(c))?)
}

/// Filters of the operator's delivery list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only this endpoint's.
    pub endpoint_id: Option<String>,
    /// Only this event's.
    pub event_id: Option<String>,
    /// Only in this status.
    pub status: Option<String>,
}

/// Deliveries across merchants, newest first (operators).
pub fn list_deliveries(
    conn: &mut DbConnection,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> StoreResult<Page<deliveries::Delivery>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = dl::table
            .select(deliveries::Delivery::as_select())
            .into_boxed();
        if let Some(m) = &filter.merchant_id {
            q = q.filter(dl::merchant_id.eq(m));
        }
        if let Some(e) = &filter.endpoint_id {
            q = q.filter(dl::endpoint_id.eq(e));
        }
        if let Some(e) = &filter.event_id {
            q = q.filter(dl::event_id.eq(e));
        }
        if let Some(s) = &filter.status {
            q = q.filter(dl::status.eq(s));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(dl::id.lt(after));
        }
        q.order(dl::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Filters of the operator's endpoint health list.
#[derive(Debug, Clone, Default)]
pub struct EndpointHealthFilter {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) ones.
    pub enabled: Option<bool>,
    /// Only endpoints in a failing streak.
    pub failing: bool,
}

/// An endpoint with its backlog.
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    /// The endpoint row.
    pub endpoint: WebhookEndpoint,
    /// Deliveries not yet succeeded and not given up (pending or failed).
    pub backlog: i64,
    /// Deliveries given up.
    pub dead: i64,
}

/// Live endpoints across merchants with their backlog, newest first (operators).
pub fn endpoint_health(
    conn: &mut DbConnection,
    filter: &EndpointHealthFilter,
    page: &PageRequest,
) -> StoreResult<Page<EndpointHealth>> {
    let limit = page.effective_limit();
    let rows: Vec<WebhookEndpoint> = on_backend!(conn, |c| {
        let mut q = we::table
            .filter(we::deleted_at.is_null())
            .select(WebhookEndpoint::as_select())
            .into_boxed();
        if let Some(m) = &filter.merchant_id {
            q = q.filter(we::merchant_id.eq(m));
        }
        if let Some(e) = filter.enabled {
            q = q.filter(we::enabled.eq(e));
        }
        if filter.failing {
            q = q.filter(we::failing_since.is_not_null());
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(we::id.lt(after));
        }
        q.order(we::id.desc()).limit(limit + 1).load(c)
    })?;
    let page = Page::from_rows(rows, limit);
    let ids: Vec<&str> = page.items.iter().map(|e| e.id.as_str()).collect();
    let counts: Vec<(String, String, i64)> = on_backend!(conn, |c| dl::table
        .filter(dl::endpoint_id.eq_any(&ids))
        .filter(dl::status.ne(SUCCEEDED))
        .group_by((dl::endpoint_id, dl::status))
        .select((dl::endpoint_id, dl::status, diesel::dsl::count_star()))
        .load(c))?;
    let items = page
        .items
        .into_iter()
        .map(|endpoint| {
            let (mut backlog, mut dead) = (0, 0);
            for (id, status, n) in &counts {
                if *id == endpoint.id {
                    if status == deliveries::DEAD {
                        dead += n;
                    } else {
                        backlog += n;
                    }
                }
            }
            EndpointHealth {
                endpoint,
                backlog,
                dead,
            }
        })
        .collect();
    Ok(Page {
        items,
        has_more: page.has_more,
    })
}

/// Attempts of one delivery, oldest first.
pub fn attempts_of_delivery(
    conn: &mut DbConnection,
    delivery_id: &str,
) -> StoreResult<Vec<DeliveryAttempt>> {
    Ok(on_backend!(conn, |c| delivery_attempts::table
        .filter(delivery_attempts::delivery_id.eq(delivery_id))
        .order((
            delivery_attempts::attempt.asc(),
            delivery_attempts::id.asc()
        ))
        .select(DeliveryAttempt::as_select())
        .load(c))?)
}

/// `POST /v1/events/{id}/redeliver`: every delivery of the merchant's event is sent again now,
/// and endpoints subscribed since the event get a delivery too. Returns the delivery ids queued.
pub fn redeliver_event(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    event: &domain::EventId,
    now: i64,
) -> StoreResult<Vec<String>> {
    let ev = crate::repo::events::get(conn, merchant, event)?;
    let mut ids = Vec::new();
    for endpoint in webhook_endpoints::subscribers(conn, merchant, ev.event_type()?)? {
        let d = deliveries::Delivery::new(event, &endpoint.endpoint_id()?, merchant, now);
        deliveries::insert(conn, &d)?;
    }
    for d in deliveries::list_for_event(conn, merchant, event)? {
        let endpoint = endpoint_any(conn, &d.endpoint_id)?;
        if endpoint.enabled && endpoint.deleted_at.is_none() {
            requeue(conn, &d, now, now)?;
            ids.push(d.id);
        }
    }
    Ok(ids)
}

/// `POST /v1/webhook-endpoints/{id}/recover`: every delivery to the endpoint not succeeded since
/// `since` is sent again now. Returns the delivery ids queued.
pub fn recover_endpoint(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    endpoint: &WebhookEndpointId,
    since: i64,
    now: i64,
) -> StoreResult<Vec<String>> {
    // 404 for a foreign or deleted endpoint
    webhook_endpoints::get(conn, merchant, endpoint)?;
    let mut ids = Vec::new();
    for d in unsuccessful_since(conn, merchant, endpoint, since)? {
        requeue(conn, &d, now, now)?;
        ids.push(d.id);
    }
    Ok(ids)
}

/// Rotates an endpoint's secret to `new_secret` (already generated by the caller): the current
/// secret is re-sealed as the previous one, signing beside the new one until
/// `now + overlap_ms`.
pub fn rotate_sealed(
    conn: &mut DbConnection,
    keyring: &crate::sealing::MasterKeyring,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
    new_secret: &str,
    overlap_ms: i64,
    now: i64,
) -> StoreResult<WebhookEndpoint> {
    let current = webhook_endpoints::get(conn, merchant, id)?;
    let sealing = |e: crate::sealing::SealingError| crate::StoreError::Corrupt(e.to_string());
    let old = keyring
        .open(&current.secret_ciphertext, &secret_binding(id.as_str()))
        .map_err(sealing)?;
    let previous = keyring
        .seal(
            old.expose().as_bytes(),
            &previous_secret_binding(id.as_str()),
        )
        .map_err(sealing)?;
    let sealed_new = keyring
        .seal(new_secret.as_bytes(), &secret_binding(id.as_str()))
        .map_err(sealing)?;
    rotate_secret(
        conn,
        merchant,
        id,
        &sealed_new,
        &previous,
        now.saturating_add(overlap_ms),
        now,
    )
}

/// Creates one pending delivery per enabled endpoint of the event's merchant subscribed to its
/// type, each with a `webhook.deliver` job due at `now_ms`, inside the caller's transaction.
/// [`crate::events::insert`] calls it, so no writer of an event can forget its deliveries.
/// Idempotent: a second call creates nothing (UNIQUE(event, endpoint)). Returns how many.
pub fn fan_out(conn: &mut DbConnection, event: &Event, now_ms: i64) -> StoreResult<usize> {
    let merchant = MerchantId::parse(&event.merchant_id)?;
    let event_id = event.event_id()?;
    let subscribers = webhook_endpoints::subscribers(conn, &merchant, event.event_type()?)?;
    let mut created = 0;
    for endpoint in subscribers {
        let delivery = Delivery::new(&event_id, &endpoint.endpoint_id()?, &merchant, now_ms);
        if deliveries::insert(conn, &delivery)? {
            enqueue_delivery(conn, &delivery.id, &delivery.endpoint_id, now_ms, now_ms)?;
            created += 1;
        }
    }
    Ok(created)
}

// The pump's batch queries live in `delivery_queue`; re-exported so callers keep one path.
pub use super::delivery_queue::{
    LaneQuotas, claim_deliver_jobs, endpoints_any, events_any, queued_lanes, share,
};

//! What the webhook API does beyond one table, for merchants and operators: redeliver an event
//! and recover an endpoint (re-enabling it, creating the deliveries it missed while disabled and
//! requeueing the others, with their jobs), rotate an endpoint's sealed
//! secret, and the operators' cross-merchant views (deliveries, endpoint health, attempts).
//!
//! The tables themselves are [`super::deliveries`] and [`super::webhook_endpoints`]; writing an
//! event with its deliveries is [`super::events`]; the `webhook.deliver` job queue is
//! [`super::delivery_queue`].

use crate::page::{Page, PageRequest};
use crate::repo::deliveries::{self, Delivery, DeliveryAttempt, SUCCEEDED};
use crate::repo::delivery_queue::{enqueue_deliveries, enqueue_delivery};
use crate::repo::webhook_endpoints::{
    self, WebhookEndpoint, previous_secret_binding, secret_binding,
};
use crate::schema::{deliveries as dl, delivery_attempts, events as ev, webhook_endpoints as we};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{MerchantId, WebhookEndpointId};

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
    for endpoint in crate::repo::events::subscribers_of(conn, &ev)? {
        let d = deliveries::Delivery::new(event, &endpoint.endpoint_id()?, merchant, now);
        deliveries::insert(conn, &d)?;
    }
    for d in deliveries::list_for_event(conn, merchant, event)? {
        let endpoint = webhook_endpoints::get_any(conn, &d.endpoint_id)?;
        if endpoint.enabled && endpoint.deleted_at.is_none() {
            requeue(conn, &d, now, now)?;
            ids.push(d.id);
        }
    }
    Ok(ids)
}

/// The most events one [`recover_endpoint`] call covers. Each event costs a delivery row, a job
/// row or a status update inside the caller's transaction: 10 000 keeps one call to a few
/// seconds of one transaction at most; the rest of the range is left to the next call, from
/// [`Recovery::next_since`].
pub const RECOVER_MAX_EVENTS: usize = 10_000;

/// What [`recover_endpoint`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Whether this call re-enabled the endpoint (it was disabled).
    pub reenabled: bool,
    /// Events of the range, of the endpoint's merchant and types, that this call covered.
    pub events: usize,
    /// Deliveries created for events that had none (raised while the endpoint was disabled).
    pub created: usize,
    /// Existing deliveries not succeeded, queued again.
    pub requeued: usize,
    /// Existing deliveries already succeeded, left alone.
    pub already_succeeded: usize,
    /// Ids of the deliveries queued (created and requeued), oldest event first.
    pub delivery_ids: Vec<String>,
    /// `Some(t)` when the range holds more events than one call covers: call again with
    /// `since = t` and the same `until` for the rest.
    pub next_since: Option<i64>,
}

impl Recovery {
    /// Deliveries queued by this call (created and requeued).
    pub fn queued(&self) -> usize {
        self.created + self.requeued
    }
}

/// `POST /v1/webhook-endpoints/{id}/recover`: re-enables the endpoint (clearing its failing
/// streak) and delivers every event of the merchant created in `[since, until)` that the
/// endpoint subscribes to, at most [`RECOVER_MAX_EVENTS`] of them (see
/// [`recover_endpoint_limited`]).
pub fn recover_endpoint(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    endpoint: &WebhookEndpointId,
    since: i64,
    until: i64,
    now: i64,
) -> StoreResult<Recovery> {
    recover_endpoint_limited(
        conn,
        merchant,
        endpoint,
        since,
        until,
        RECOVER_MAX_EVENTS,
        now,
    )
}

/// [`recover_endpoint`] covering at most `max_events` events, all inside the caller's
/// transaction: the re-enable, the deliveries created for events raised while the endpoint was
/// disabled (fan-out skipped it then), the deliveries not succeeded queued again, and their
/// jobs commit together. Deliveries that succeeded are left alone, so recovering the same range
/// twice sends nothing twice that was delivered. Events created before the endpoint are left
/// out: it never subscribed to them. 404 for a foreign or deleted endpoint.
///
/// When the range holds more than `max_events` events, the call stops at a millisecond boundary
/// and says where to go on ([`Recovery::next_since`]); should more than `max_events` events
/// share that one millisecond, they are all covered, since the next call could not start
/// inside it.
pub fn recover_endpoint_limited(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    endpoint: &WebhookEndpointId,
    since: i64,
    until: i64,
    max_events: usize,
    now: i64,
) -> StoreResult<Recovery> {
    let ep = lock_endpoint(conn, merchant, endpoint)?;
    let mut out = Recovery::default();
    if !ep.enabled {
        on_backend!(conn, |c| diesel::update(we::table.find(endpoint.as_str()))
            .set((
                we::enabled.eq(true),
                we::disabled_reason.eq(None::<String>),
                // a fresh health record, or its first failure would disable it again at once
                we::failing_since.eq(None::<i64>),
                we::updated_at.eq(now),
            ))
            .execute(c))?;
        out.reenabled = true;
    }
    let types = subscribed_types(&ep)?;
    let start = since.max(ep.created_at);
    let (page, next_since) = events_in_range(conn, merchant, &types, start, until, max_events)?;
    out.next_since = next_since;
    let mut event_ids: Vec<String> = page.into_iter().map(|(id, _)| id).collect();
    if let Some(store) = &ep.store_id {
        // A store-filtered endpoint recovers only its store's events, as fan-out sends them.
        let of_store: std::collections::HashSet<String> =
            crate::repo::events::get_many_any(conn, &event_ids)?
                .into_iter()
                .filter(|e| crate::repo::events::store_of(e).as_deref() == Some(store.as_str()))
                .map(|e| e.id)
                .collect();
        event_ids.retain(|id| of_store.contains(id));
    }
    out.events = event_ids.len();

    // Deliveries for the events that have none: fan-out skipped the endpoint while disabled.
    let have: std::collections::HashSet<String> =
        deliveries_for(conn, endpoint.as_str(), &event_ids)?
            .into_iter()
            .map(|d| d.event_id)
            .collect();
    let missing: Vec<Delivery> = event_ids
        .iter()
        .filter(|e| !have.contains(*e))
        .map(|e| {
            Ok(Delivery::new(
                &domain::EventId::parse(e)?,
                endpoint,
                merchant,
                now,
            ))
        })
        .collect::<StoreResult<_>>()?;
    deliveries::insert_many(conn, &missing)?;
    let created: std::collections::HashSet<&str> = missing.iter().map(|d| d.id.as_str()).collect();

    // Read back: a delivery made meanwhile by another writer (UNIQUE(event, endpoint)) is
    // found here under its own id and treated like any existing one.
    let mut rows = deliveries_for(conn, endpoint.as_str(), &event_ids)?;
    let order: std::collections::HashMap<&str, usize> = event_ids
        .iter()
        .enumerate()
        .map(|(i, e)| (e.as_str(), i))
        .collect();
    rows.sort_by_key(|d| order.get(d.event_id.as_str()).copied());
    let mut requeue_ids = Vec::new();
    for d in rows {
        if created.contains(d.id.as_str()) {
            out.created += 1;
        } else if d.status == SUCCEEDED {
            out.already_succeeded += 1;
            continue;
        } else {
            out.requeued += 1;
            requeue_ids.push(d.id.clone());
        }
        out.delivery_ids.push(d.id);
    }
    deliveries::set_pending(conn, &requeue_ids, now, now)?;
    enqueue_deliveries(conn, &out.delivery_ids, endpoint.as_str(), now, now)?;
    Ok(out)
}

/// The merchant's live endpoint, locked on PostgreSQL until the transaction ends, so that two
/// recovers of one endpoint run one after the other (SQLite's write transaction already does).
fn lock_endpoint(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
) -> StoreResult<WebhookEndpoint> {
    let q = we::table
        .filter(we::id.eq(id.as_str()))
        .filter(we::merchant_id.eq(merchant.as_str()))
        .filter(we::deleted_at.is_null())
        .select(WebhookEndpoint::as_select());
    Ok(match conn {
        DbConnection::Postgresql(c) => q.for_update().first(c)?,
        DbConnection::Sqlite(_) => webhook_endpoints::get(conn, merchant, id)?,
    })
}

/// The event types an endpoint subscribes to; `None` for all (`*`).
fn subscribed_types(endpoint: &WebhookEndpoint) -> StoreResult<Option<Vec<String>>> {
    let filter: Vec<String> = serde_json::from_str(&endpoint.event_filter)?;
    Ok((!filter.iter().any(|f| f == "*")).then_some(filter))
}

/// An event's id and creation time (unix ms).
type EventAt = (String, i64);

/// Ids and times of the merchant's events of `types` created in `[since, until)`, oldest first,
/// at most `max` unless more share the last millisecond taken; and where the next call starts
/// when events were left.
fn events_in_range(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    types: &Option<Vec<String>>,
    since: i64,
    until: i64,
    max: usize,
) -> StoreResult<(Vec<EventAt>, Option<i64>)> {
    let load = |conn: &mut DbConnection, from: i64, to: i64, limit: Option<usize>| {
        on_backend!(conn, |c| {
            let mut q = ev::table
                .filter(ev::merchant_id.eq(merchant.as_str()))
                .filter(ev::created_at.ge(from))
                .filter(ev::created_at.lt(to))
                .select((ev::id, ev::created_at))
                .into_boxed();
            if let Some(t) = types {
                q = q.filter(ev::event_type.eq_any(t));
            }
            if let Some(n) = limit {
                q = q.limit(i64::try_from(n).unwrap_or(i64::MAX));
            }
            q.order((ev::created_at.asc(), ev::id.asc()))
                .load::<(String, i64)>(c)
        })
    };
    if since >= until {
        return Ok((Vec::new(), None));
    }
    let mut rows = load(conn, since, until, Some(max.saturating_add(1)))?;
    if rows.len() <= max {
        return Ok((rows, None));
    }
    // Stop before the millisecond of the first event left over, so that `next_since` (a
    // millisecond) neither skips nor repeats an event.
    let boundary = rows[max].1;
    rows.retain(|(_, at)| *at < boundary);
    if !rows.is_empty() {
        return Ok((rows, Some(boundary)));
    }
    let next = boundary.saturating_add(1);
    let all_of_it = load(conn, boundary, next, None)?;
    Ok((all_of_it, (next < until).then_some(next)))
}

/// The endpoint's deliveries of these events.
fn deliveries_for(
    conn: &mut DbConnection,
    endpoint: &str,
    event_ids: &[String],
) -> StoreResult<Vec<Delivery>> {
    let mut out = Vec::with_capacity(event_ids.len());
    for chunk in event_ids.chunks(1000) {
        let rows: Vec<Delivery> = on_backend!(conn, |c| dl::table
            .filter(dl::endpoint_id.eq(endpoint))
            .filter(dl::event_id.eq_any(chunk))
            .select(Delivery::as_select())
            .load(c))?;
        out.extend(rows);
    }
    Ok(out)
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

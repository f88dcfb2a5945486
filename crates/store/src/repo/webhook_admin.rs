//! What the webhook API does beyond one table, for merchants and operators: redeliver an event
//! and recover an endpoint (requeueing deliveries with their jobs), rotate an endpoint's sealed
//! secret, and the operators' cross-merchant views (deliveries, endpoint health, attempts).
//!
//! The tables themselves are [`super::deliveries`] and [`super::webhook_endpoints`]; writing an
//! event with its deliveries is [`super::events`]; the `webhook.deliver` job queue is
//! [`super::delivery_queue`].

use crate::page::{Page, PageRequest};
use crate::repo::deliveries::{self, Delivery, DeliveryAttempt, SUCCEEDED};
use crate::repo::delivery_queue::enqueue_delivery;
use crate::repo::webhook_endpoints::{
    self, WebhookEndpoint, previous_secret_binding, secret_binding,
};
use crate::schema::{deliveries as dl, delivery_attempts, webhook_endpoints as we};
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
        let endpoint = webhook_endpoints::get_any(conn, &d.endpoint_id)?;
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

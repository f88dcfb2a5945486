//! The event outbox: an event row and, in the same transaction, its fan-out (one delivery per
//! subscribed endpoint, each with its `webhook.deliver` job; beyond [`INLINE_FANOUT_MAX`]
//! endpoints, one durable fan-out job run after the commit), and the reads of events.
//!
//! Writing an event and its deliveries here, in one function, is what makes the outbox safe:
//! no writer of an event can forget its deliveries, and a crash can delay a notification but
//! never lose it.

use crate::page::{Page, PageRequest};
use crate::repo::deliveries::{self, Delivery, SUCCEEDED};
use crate::repo::delivery_queue::enqueue_delivery;
use crate::repo::webhook_endpoints;
use crate::schema::{deliveries as dl, events};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{EventId, EventType, MerchantId};

/// An event row; `payload` is the exact webhook body, fixed once written.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// Owner.
    pub merchant_id: String,
    /// Wire name (`payment.succeeded`).
    pub event_type: String,
    /// The payment/refund/endpoint it is about.
    pub object_id: String,
    /// JSON body as delivered.
    pub payload: String,
    /// Unix ms.
    pub created_at: i64,
}

impl Event {
    /// Typed id.
    pub fn event_id(&self) -> StoreResult<EventId> {
        Ok(EventId::parse(&self.id)?)
    }
    /// Typed type.
    pub fn event_type(&self) -> StoreResult<EventType> {
        Ok(self.event_type.parse()?)
    }
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (empty = all).
    pub types: Vec<EventType>,
    /// Only events about this object.
    pub object_id: Option<String>,
    /// Created at or after (unix ms).
    pub created_gte: Option<i64>,
    /// Created before (unix ms).
    pub created_lt: Option<i64>,
}

/// Most deliveries [`insert`] creates inside the event's own transaction. A merchant with more
/// subscribed endpoints (only possible when the operator raised the endpoint cap above this)
/// gets one [`FANOUT_JOB_KIND`] job instead, which fans out after the commit: the payment's
/// commit costs at most this many deliveries whatever the endpoint count.
pub const INLINE_FANOUT_MAX: usize = 20;

/// The job that fans out an event after its commit (dedupe key: the event id); the server's
/// job runner runs it with [`fan_out_later`].
pub const FANOUT_JOB_KIND: &str = "webhook.fan_out";

/// Writes an event (in the same transaction as the change it announces) together with one
/// webhook delivery per subscribed endpoint, or, beyond [`INLINE_FANOUT_MAX`] endpoints, the
/// job that will create them: the outbox and the delivery queue (or the fan-out job) commit or
/// roll back with the change, so a notification can be delayed by a crash but never lost.
pub fn insert(conn: &mut DbConnection, event: &Event) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(events::table)
        .values(event)
        .execute(c))?;
    let subscribers = subscribers_of(conn, event)?;
    if subscribers.len() <= INLINE_FANOUT_MAX {
        create_deliveries(conn, event, subscribers, event.created_at)?;
    } else {
        crate::jobs::enqueue(
            conn,
            &crate::jobs::NewJob {
                kind: FANOUT_JOB_KIND,
                dedupe_key: Some(&event.id),
                payload: "{}",
                run_at: event.created_at,
            },
            event.created_at,
        )?;
    }
    crate::db::note_event_written();
    Ok(())
}

/// Runs a [`FANOUT_JOB_KIND`] job: fans the event out to its merchant's subscribed endpoints
/// (idempotent: an endpoint that already has its delivery is skipped). Returns how many
/// deliveries it created; an event that no longer exists creates none.
pub fn fan_out_later(conn: &mut DbConnection, event_id: &str, now_ms: i64) -> StoreResult<usize> {
    let event: Option<Event> = on_backend!(conn, |c| events::table
        .find(event_id)
        .select(Event::as_select())
        .first(c)
        .optional())?;
    match event {
        Some(event) => fan_out(conn, &event, now_ms),
        None => Ok(0),
    }
}

/// One event of a merchant.
pub fn get(conn: &mut DbConnection, merchant: &MerchantId, id: &EventId) -> StoreResult<Event> {
    Ok(on_backend!(conn, |c| events::table
        .filter(events::id.eq(id.as_str()))
        .filter(events::merchant_id.eq(merchant.as_str()))
        .select(Event::as_select())
        .first(c))?)
}

/// One event by id alone (delivery workers, which already hold the merchant through the row).
pub fn get_any(conn: &mut DbConnection, id: &EventId) -> StoreResult<Event> {
    Ok(on_backend!(conn, |c| events::table
        .find(id.as_str())
        .select(Event::as_select())
        .first(c))?)
}

/// Events by id whatever their merchant (the pump's batch read); ids not found are left out.
pub fn get_many_any(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<Event>> {
    super::by_ids_in_chunks(ids, |chunk| {
        Ok(on_backend!(conn, |c| events::table
            .filter(events::id.eq_any(chunk))
            .select(Event::as_select())
            .load(c))?)
    })
}

/// A merchant's events, newest first, optionally only those whose deliveries all succeeded
/// (`Some(true)`) or with at least one delivery not (yet) succeeded (`Some(false)`).
pub fn list(
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

/// Creates one pending delivery per enabled endpoint of the event's merchant subscribed to its
/// type, each with a `webhook.deliver` job due at `now_ms`, inside the caller's transaction.
/// [`insert`] does the same (inline up to [`INLINE_FANOUT_MAX`] endpoints, else through
/// [`fan_out_later`] after the commit), so no writer of an event can forget its deliveries.
/// Idempotent: a second call creates nothing (UNIQUE(event, endpoint)). Returns how many.
pub fn fan_out(conn: &mut DbConnection, event: &Event, now_ms: i64) -> StoreResult<usize> {
    let subscribers = subscribers_of(conn, event)?;
    create_deliveries(conn, event, subscribers, now_ms)
}

/// The endpoints `event` goes to: the merchant's enabled endpoints subscribed to its type,
/// less those bound to a store other than the event's ([`for_store`]).
pub fn subscribers_of(
    conn: &mut DbConnection,
    event: &Event,
) -> StoreResult<Vec<webhook_endpoints::WebhookEndpoint>> {
    let merchant = MerchantId::parse(&event.merchant_id)?;
    let all = webhook_endpoints::subscribers(conn, &merchant, event.event_type()?)?;
    Ok(for_store(all, event))
}

/// The store an event is about: the `store_id` of the object in its payload (a payment or
/// refund taken at a store carries it); `None` for an event without one.
pub fn store_of(event: &Event) -> Option<String> {
    let payload: serde_json::Value = serde_json::from_str(&event.payload).ok()?;
    payload.get("store_id")?.as_str().map(str::to_owned)
}

/// `endpoints` less those bound to a store other than the event's: an endpoint with a store
/// filter receives only that store's events, and an event about no store reaches only the
/// endpoints without a store filter.
pub fn for_store(
    endpoints: Vec<webhook_endpoints::WebhookEndpoint>,
    event: &Event,
) -> Vec<webhook_endpoints::WebhookEndpoint> {
    if endpoints.iter().all(|e| e.store_id.is_none()) {
        return endpoints;
    }
    let store = store_of(event);
    endpoints
        .into_iter()
        .filter(|e| e.store_id.is_none() || e.store_id == store)
        .collect()
}

/// One pending delivery and its job per endpoint of `subscribers` that has none yet.
fn create_deliveries(
    conn: &mut DbConnection,
    event: &Event,
    subscribers: Vec<webhook_endpoints::WebhookEndpoint>,
    now_ms: i64,
) -> StoreResult<usize> {
    let merchant = MerchantId::parse(&event.merchant_id)?;
    let event_id = event.event_id()?;
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

//! From the outbox to the delivery queue: one delivery (and one job) per event × subscribed
//! endpoint, written inside the transaction that writes the event.
//!
//! Creating deliveries in the event's own transaction is what makes a lost message impossible:
//! either the state change, its event, its deliveries and their jobs all commit, or none does.
//! No consumer has to scan the outbox, so none can skip an event.

use chrono::{DateTime, Utc};
use domain::{EventId, EventType, MerchantId};
use store::deliveries::{self, Delivery};
use store::events::{self, Event};
use store::webhook_delivery;
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{DbConnection, StoreResult};

/// Creates one pending delivery per enabled endpoint of the event's merchant subscribed to its
/// type, each with a `webhook.deliver` job due at `now_ms`. Call it inside the transaction that
/// inserts `event`. Idempotent: a second call creates nothing (UNIQUE(event, endpoint)).
/// Returns how many deliveries were created.
pub fn fan_out(conn: &mut DbConnection, event: &Event, now_ms: i64) -> StoreResult<usize> {
    let merchant = MerchantId::parse(&event.merchant_id)?;
    let event_id = event.event_id()?;
    let subscribers = webhook_endpoints::subscribers(conn, &merchant, event.event_type()?)?;
    let mut created = 0;
    for endpoint in subscribers {
        let delivery = Delivery::new(&event_id, &endpoint.endpoint_id()?, &merchant, now_ms);
        if deliveries::insert(conn, &delivery)? {
            webhook_delivery::enqueue_delivery(conn, &delivery.id, now_ms, now_ms)?;
            created += 1;
        }
    }
    Ok(created)
}

/// Writes an `endpoint.disabled` event about `endpoint` (already disabled) and fans it out to
/// the merchant's other endpoints, inside the caller's transaction.
pub fn announce_endpoint_disabled(
    conn: &mut DbConnection,
    endpoint: &WebhookEndpoint,
    now_ms: i64,
) -> StoreResult<Event> {
    let event = Event {
        id: EventId::generate().into_string(),
        merchant_id: endpoint.merchant_id.clone(),
        event_type: EventType::EndpointDisabled.as_str().to_owned(),
        object_id: endpoint.id.clone(),
        payload: endpoint_object(endpoint).to_string(),
        created_at: now_ms,
    };
    events::insert(conn, &event)?;
    fan_out(conn, &event, now_ms)?;
    Ok(event)
}

/// The endpoint object of webhook payloads and API responses (never its secrets). `sequence`
/// is its `updated_at` in ms: it only grows, which is all ordering needs.
pub fn endpoint_object(endpoint: &WebhookEndpoint) -> serde_json::Value {
    let events: serde_json::Value =
        serde_json::from_str(&endpoint.event_filter).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "events": events,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since.map(ms_to_time),
        "created_at": ms_to_time(endpoint.created_at),
        "updated_at": ms_to_time(endpoint.updated_at),
        "sequence": endpoint.updated_at,
    })
}

/// Unix ms as a UTC timestamp (out-of-range values read as the epoch).
pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

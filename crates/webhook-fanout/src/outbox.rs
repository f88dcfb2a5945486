//! From the outbox to the delivery queue: one delivery (and one job) per event × subscribed
//! endpoint, written inside the transaction that writes the event.
//!
//! Creating deliveries in the event's own transaction is what makes a lost message impossible:
//! either the state change, its event, its deliveries and their jobs all commit, or none does.
//! No consumer has to scan the outbox, so none can skip an event. `store::events::insert` does
//! it for every event; [`fan_out`] is re-exported for callers that re-fan an existing event.

use chrono::{DateTime, Utc};
use domain::{EventId, EventType};
use store::events::{self, Event};
use store::webhook_endpoints::WebhookEndpoint;
use store::{DbConnection, StoreResult};

pub use store::events::fan_out;

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
    // events::insert fans the event out to the merchant's (remaining, enabled) endpoints.
    events::insert(conn, &event)?;
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

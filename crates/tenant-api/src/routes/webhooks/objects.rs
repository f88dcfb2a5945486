//! The JSON objects of the webhook API (endpoint, event, delivery, attempt).

use chrono::{DateTime, Utc};
use domain::Secret;
use store::clock;
use store::webhook_endpoints::WebhookEndpoint;
use store::{deliveries, events};

/// Unix ms as a UTC timestamp.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The endpoint as merchants see it (never its secrets unless just created or rotated).
pub fn endpoint_object(e: &WebhookEndpoint, secret: Option<&Secret>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": e.id,
        "object": "webhook_endpoint",
        "url": e.url,
        "description": e.description,
        "events": serde_json::from_str::<serde_json::Value>(&e.event_filter).unwrap_or_default(),
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since.map(time),
        "previous_secret_expires_at": e.previous_secret_expires_at.filter(|t| *t > clock::now_ms()).map(time),
        "created_at": time(e.created_at),
        "updated_at": time(e.updated_at),
    });
    if let (Some(s), Some(map)) = (secret, v.as_object_mut()) {
        map.insert("secret".to_owned(), s.expose().into());
    }
    v
}

pub fn event_object(e: &events::Event) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "object": "event",
        "type": e.event_type,
        "created_at": time(e.created_at),
        "data": serde_json::from_str::<serde_json::Value>(&e.payload).unwrap_or_default(),
    })
}

pub fn delivery_object(d: &deliveries::Delivery) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "object": "webhook_delivery",
        "event_id": d.event_id,
        "endpoint_id": d.endpoint_id,
        "merchant_id": d.merchant_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.map(time),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": time(d.created_at),
        "updated_at": time(d.updated_at),
    })
}

pub fn attempt_object(a: &deliveries::DeliveryAttempt) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "object": "webhook_attempt",
        "delivery_id": a.delivery_id,
        "event_id": a.event_id,
        "endpoint_id": a.endpoint_id,
        "attempt": a.attempt,
        "started_at": time(a.started_at),
        "duration_ms": a.duration_ms,
        "http_status": a.http_status,
        "response_excerpt": a.response_excerpt,
        "error": a.error,
    })
}

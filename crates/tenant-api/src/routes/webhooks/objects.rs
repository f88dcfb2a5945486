//! The JSON objects of the webhook API (endpoint, event, delivery, attempt), typed so the
//! OpenAPI document describes exactly what the handlers send.

use chrono::{DateTime, Utc};
use domain::Secret;
use serde::Serialize;
use store::clock;
use store::webhook_endpoints::WebhookEndpoint;
use store::{deliveries, events};
use utoipa::ToSchema;

/// Unix ms as a UTC timestamp.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A webhook endpoint; `secret` appears only in the create and rotate-secret responses.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointObject {
    /// `we_…`.
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: &'static str,
    /// Receiving URL.
    pub url: String,
    /// Your note.
    pub description: Option<String>,
    /// Subscribed event types (`["*"]`: all).
    #[schema(value_type = Vec<String>)]
    pub events: serde_json::Value,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The one store whose events it receives (`null`: every event of the merchant).
    pub store_id: Option<String>,
    /// Why it is disabled (`merchant`, `gone`, `failing`), when it is.
    pub disabled_reason: Option<String>,
    /// Start of the current failing streak.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the rotated-out secret still signs beside the new one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The `whsec_…` signing secret (create and rotate-secret responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Operator view only: the owning merchant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// Operator view only: deliveries neither succeeded nor given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    /// Operator view only: deliveries given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_deliveries: Option<i64>,
}

/// The endpoint as merchants see it (never its secrets unless just created or rotated).
pub fn endpoint_object(e: &WebhookEndpoint, secret: Option<&Secret>) -> WebhookEndpointObject {
    WebhookEndpointObject {
        id: e.id.clone(),
        object: "webhook_endpoint",
        url: e.url.clone(),
        description: e.description.clone(),
        events: serde_json::from_str(&e.event_filter).unwrap_or_default(),
        enabled: e.enabled,
        store_id: e.store_id.clone(),
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since.map(time),
        previous_secret_expires_at: e
            .previous_secret_expires_at
            .filter(|t| *t > clock::now_ms())
            .map(time),
        created_at: time(e.created_at),
        updated_at: time(e.updated_at),
        secret: secret.map(|s| s.expose().to_owned()),
        merchant_id: None,
        backlog: None,
        dead_deliveries: None,
    }
}

/// An event of the outbox, its body exactly as delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventObject {
    /// `evt_…` (also the `webhook-id` header of its deliveries).
    pub id: String,
    /// Always `event`.
    pub object: &'static str,
    /// `payment.succeeded`, `refund.failed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The delivered body's `data`: the payment or refund object with its `sequence`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// `GET /v1/events/{id}` only: its deliveries, one per subscribed endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryObject>>,
}

/// The event as listed.
pub fn event_object(e: &events::Event) -> EventObject {
    EventObject {
        id: e.id.clone(),
        object: "event",
        kind: e.event_type.clone(),
        created_at: time(e.created_at),
        data: serde_json::from_str(&e.payload).unwrap_or_default(),
        deliveries: None,
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryObject {
    /// `dlv_…`.
    pub id: String,
    /// Always `webhook_delivery`.
    pub object: &'static str,
    /// The event.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The merchant.
    pub merchant_id: String,
    /// `pending`, `failed`, `succeeded` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Next attempt, when one is scheduled.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The delivery as shown.
pub fn delivery_object(d: &deliveries::Delivery) -> DeliveryObject {
    DeliveryObject {
        id: d.id.clone(),
        object: "webhook_delivery",
        event_id: d.event_id.clone(),
        endpoint_id: d.endpoint_id.clone(),
        merchant_id: d.merchant_id.clone(),
        status: d.status.clone(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at.map(time),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
    }
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptObject {
    /// `att_…`.
    pub id: String,
    /// Always `webhook_attempt`.
    pub object: &'static str,
    /// The delivery.
    pub delivery_id: String,
    /// The event.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// 1, 2, …
    pub attempt: i32,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// Request duration.
    pub duration_ms: i64,
    /// Response status, when one came.
    pub http_status: Option<i32>,
    /// First ≤ 4 KiB of the response body.
    pub response_excerpt: Option<String>,
    /// Transport error (timeout, refused, SSRF guard, …).
    pub error: Option<String>,
}

/// The attempt as shown.
pub fn attempt_object(a: &deliveries::DeliveryAttempt) -> AttemptObject {
    AttemptObject {
        id: a.id.clone(),
        object: "webhook_attempt",
        delivery_id: a.delivery_id.clone(),
        event_id: a.event_id.clone(),
        endpoint_id: a.endpoint_id.clone(),
        attempt: a.attempt,
        started_at: time(a.started_at),
        duration_ms: a.duration_ms,
        http_status: a.http_status,
        response_excerpt: a.response_excerpt.clone(),
        error: a.error.clone(),
    }
}

/// `DELETE /v1/webhook-endpoints/{id}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedObject {
    /// The endpoint id.
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: &'static str,
    /// Always true.
    pub deleted: bool,
}

/// `POST /v1/webhook-endpoints/{id}/recover` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryObject {
    /// Always `webhook_recovery`.
    pub object: &'static str,
    /// The endpoint.
    pub endpoint_id: String,
    /// As requested.
    pub since: DateTime<Utc>,
    /// The end of the range (exclusive): as requested, or the time of the call when omitted or
    /// later.
    pub until: DateTime<Utc>,
    /// Whether the endpoint is enabled now (always true: recover re-enables it).
    pub enabled: bool,
    /// Whether this call re-enabled it (it was disabled).
    pub reenabled: bool,
    /// Events of the range this call covered (the endpoint's merchant and event types, created
    /// after the endpoint).
    pub events: usize,
    /// How many deliveries were queued: `deliveries_created + deliveries_requeued`.
    pub deliveries_queued: usize,
    /// Deliveries created for events raised while the endpoint was disabled.
    pub deliveries_created: usize,
    /// Deliveries not succeeded (pending, failed, dead) queued again.
    pub deliveries_requeued: usize,
    /// Deliveries already succeeded, left alone.
    pub deliveries_already_succeeded: usize,
    /// True when the range holds more than 10 000 events: call again with `since` =
    /// `next_since` and the same `until` for the rest.
    pub has_more: bool,
    /// Where the next call starts when `has_more`; otherwise null.
    pub next_since: Option<DateTime<Utc>>,
}

/// `POST /v1/events/{id}/redeliver` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveryObject {
    /// Always `webhook_redelivery`.
    pub object: &'static str,
    /// The event.
    pub event_id: String,
    /// Ids of the deliveries queued again.
    pub deliveries: Vec<String>,
}

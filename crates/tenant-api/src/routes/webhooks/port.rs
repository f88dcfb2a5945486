//! The storage the webhook routes need, as one narrow trait: one method per operation, each
//! one transaction. The implementation over the `store` crate is
//! [`crate::adapters::webhooks::SqlWebhookStore`]; the routes never see a connection.
//!
//! Errors are already the API's: a missing row is a 404 naming what the route was asked for
//! (the endpoint or event id as given, `""` for lists), any other storage failure a 503.

use crate::audit::Audit;
use crate::error::Result;
use async_trait::async_trait;
use domain::{EventId, MerchantId, Secret, WebhookEndpointId};
use std::time::Duration;
use store::deliveries::{Delivery, DeliveryAttempt};
use store::events::{Event, EventFilter};
use store::page::{Page, PageRequest};
use store::webhook_admin::{DeliveryFilter, EndpointHealth, EndpointHealthFilter, Recovery};
use store::webhook_endpoints::{EndpointPatch, WebhookEndpoint};

/// What a 404 names for an endpoint id.
pub const ENDPOINT: &str = "webhook endpoint";
/// What a 404 names for an event id.
pub const EVENT: &str = "event";

/// A new endpoint as the route validated it; the store seals the secret and stamps the times.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Its fresh id.
    pub id: WebhookEndpointId,
    /// The checked, normalised URL.
    pub url: String,
    /// The merchant's note.
    pub description: Option<String>,
    /// The event filter as stored (a JSON array).
    pub event_filter: String,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it starts disabled, when it does.
    pub disabled_reason: Option<String>,
    /// The one store whose events it receives (checked to be the merchant's), if limited.
    pub store_id: Option<String>,
}

/// Error code of a create refused because the merchant has reached
/// [`WebhookLimits::max_endpoints`] live endpoints (422).
pub const ENDPOINT_LIMIT_CODE: &str = "webhook_endpoint_limit_reached";
/// Error code of a redelivery refused because the event was already redelivered
/// [`WebhookLimits::max_redeliveries_per_event`] times (422).
pub const REDELIVERY_LIMIT_CODE: &str = "redelivery_limit_reached";

/// What one merchant may make payfac send: each endpoint multiplies every event (and its
/// fan-out cost inside the event's commit), each redelivery every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimits {
    /// Live endpoints per merchant (`PAYFAC_WEBHOOK_MAX_ENDPOINTS`, default 20).
    pub max_endpoints: u32,
    /// Redeliveries of one event (`PAYFAC_WEBHOOK_MAX_REDELIVERIES`, default 10).
    pub max_redeliveries_per_event: u32,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            max_endpoints: 20,
            max_redeliveries_per_event: 10,
        }
    }
}

/// The webhook routes' port to storage. Every endpoint change carries its audit entry, written
/// in the same transaction.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a merchant's new endpoint with `secret` sealed; returns the row as stored. Refused
    /// with 422 [`ENDPOINT_LIMIT_CODE`] when the merchant already has `max_endpoints` live ones
    /// (counted in the same transaction as the insert).
    async fn create_endpoint(
        &self,
        merchant: &MerchantId,
        endpoint: NewEndpoint,
        secret: &Secret,
        max_endpoints: u32,
        audit: &Audit,
    ) -> Result<WebhookEndpoint>;

    /// A merchant's live endpoints, newest first.
    async fn list_endpoints(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>>;

    /// One live endpoint of a merchant.
    async fn get_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
    ) -> Result<WebhookEndpoint>;

    /// Applies `patch`; re-enabling also ends the endpoint's failing streak. Returns the
    /// endpoint as it now is.
    async fn update_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        patch: EndpointPatch,
        audit: &Audit,
    ) -> Result<WebhookEndpoint>;

    /// Soft-deletes an endpoint; `false` when there was no live one.
    async fn delete_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        audit: &Audit,
    ) -> Result<bool>;

    /// Makes `new_secret` the endpoint's secret, the current one signing beside it for
    /// `overlap`; returns the endpoint as it now is.
    async fn rotate_secret(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        new_secret: &Secret,
        overlap: Duration,
        audit: &Audit,
    ) -> Result<WebhookEndpoint>;

    /// Re-enables the endpoint and delivers every event of `[since_ms, until_ms)` it subscribes
    /// to that has not been delivered to it, at most
    /// [`store::webhook_admin::RECOVER_MAX_EVENTS`] events a call
    /// ([`store::webhook_admin::recover_endpoint`]).
    async fn recover_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
        audit: &Audit,
    ) -> Result<Recovery>;

    /// A merchant's events, newest first, optionally by whether all their deliveries
    /// succeeded.
    async fn list_events(
        &self,
        merchant: &MerchantId,
        filter: EventFilter,
        delivery_success: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Event>>;

    /// One event of a merchant with its deliveries.
    async fn get_event(
        &self,
        merchant: &MerchantId,
        id: &EventId,
    ) -> Result<(Event, Vec<Delivery>)>;

    /// Every attempt of one of the merchant's events, oldest first (404 for an unknown event).
    async fn event_attempts(
        &self,
        merchant: &MerchantId,
        id: &EventId,
    ) -> Result<Vec<DeliveryAttempt>>;

    /// Queues the event again to every enabled endpoint subscribed to it; returns the delivery
    /// ids queued. Refused with 422 [`REDELIVERY_LIMIT_CODE`] once the event was redelivered
    /// `max_redeliveries` times.
    async fn redeliver_event(
        &self,
        merchant: &MerchantId,
        id: &EventId,
        max_redeliveries: u32,
    ) -> Result<Vec<String>>;

    /// Operators: deliveries across merchants, newest first.
    async fn list_deliveries(
        &self,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>>;

    /// Operators: live endpoints across merchants with their backlog, newest first.
    async fn endpoint_health(
        &self,
        filter: EndpointHealthFilter,
        page: PageRequest,
    ) -> Result<Page<EndpointHealth>>;
}

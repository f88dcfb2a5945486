//! [`WebhookStore`] over the `store` crate's webhook repositories (`webhook_endpoints`,
//! `events`, `deliveries`, `webhook_admin`), with endpoint secrets sealed by the master keyring.
//!
//! Reads run in read transactions and changes in write ones, one transaction per call.

use crate::audit::Audit;
use crate::error::{Error, Result};
use crate::routes::webhooks::port::{
    ENDPOINT, ENDPOINT_LIMIT_CODE, EVENT, NewEndpoint, REDELIVERY_LIMIT_CODE, WebhookStore,
};
use async_trait::async_trait;
use domain::{EventId, MerchantId, Secret, WebhookEndpointId};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use store::deliveries::{self, Delivery, DeliveryAttempt};
use store::events::{self, Event, EventFilter};
use store::page::{Page, PageRequest};
use store::sealing::MasterKeyring;
use store::webhook_admin::{self, DeliveryFilter, EndpointHealth, EndpointHealthFilter, Recovery};
use store::webhook_endpoints::{self as we, EndpointPatch, WebhookEndpoint};
use store::{Database, DbConnection, StoreError, StoreResult, clock};

/// Webhook endpoints, events and deliveries in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SqlWebhookStore {
    db: Database,
    keyring: Arc<MasterKeyring>,
}

impl SqlWebhookStore {
    /// Over a connected, migrated database; `keyring` seals and opens endpoint secrets.
    pub fn new(db: Database, keyring: Arc<MasterKeyring>) -> Self {
        Self { db, keyring }
    }

    async fn read<T, F>(&self, what: &'static str, id: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        self.db.read(f).await.map_err(store_error(what, id))
    }

    async fn write<T, F>(&self, what: &'static str, id: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        self.db.write(f).await.map_err(store_error(what, id))
    }
}

/// A store error as the caller sees it: a missing row is a 404 naming `what` and `id` as asked
/// (`""` for lists, where only the merchant itself could be missing); anything else is a 503.
fn store_error<'a>(what: &'static str, id: &'a str) -> impl Fn(StoreError) -> Error + 'a {
    move |e| {
        if e.is_not_found() {
            Error::not_found(what, id)
        } else {
            Error::Unavailable(e.to_string())
        }
    }
}

/// An endpoint's audited fields (its URL and filters; never its secret).
fn endpoint_details(e: &WebhookEndpoint) -> serde_json::Value {
    json!({
        "url": e.url, "events": e.event_filter, "enabled": e.enabled,
        "store_id": e.store_id, "description": e.description,
    })
}

/// The audit action a redelivery records; counting them caps redeliveries per event.
const REDELIVER_ACTION: &str = "event.redeliver";

#[async_trait]
impl WebhookStore for SqlWebhookStore {
    async fn create_endpoint(
        &self,
        merchant: &MerchantId,
        endpoint: NewEndpoint,
        secret: &Secret,
        max_endpoints: u32,
        audit: &Audit,
    ) -> Result<WebhookEndpoint> {
        let sealed = self
            .keyring
            .seal(
                secret.expose().as_bytes(),
                &we::secret_binding(endpoint.id.as_str()),
            )
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let now = clock::now_ms();
        let row = WebhookEndpoint {
            description: endpoint.description,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            store_id: endpoint.store_id,
            ..WebhookEndpoint::new(
                endpoint.id.as_str(),
                merchant.as_str(),
                &endpoint.url,
                endpoint.event_filter,
                sealed,
                now,
            )
        };
        let stored = row.clone();
        let (m, audit) = (merchant.clone(), audit.clone());
        let created = self
            .write("merchant", merchant.as_str(), move |c| {
                store::merchants::lock(c, &m)?;
                if we::count_live(c, &m)? >= i64::from(max_endpoints) {
                    return Ok(false);
                }
                we::insert(c, &stored)?;
                let target = ("webhook_endpoint", stored.id.as_str());
                audit.record(c, target, Some(m.as_str()), &endpoint_details(&stored), now)?;
                Ok(true)
            })
            .await?;
        if !created {
            return Err(Error::Unprocessable {
                code: ENDPOINT_LIMIT_CODE,
                message: format!(
                    "a merchant may have at most {max_endpoints} webhook endpoints; delete one first"
                ),
                param: None,
            });
        }
        Ok(row)
    }

    async fn list_endpoints(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>> {
        let m = merchant.clone();
        self.read(ENDPOINT, "", move |c| we::list(c, &m, &page))
            .await
    }

    async fn get_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
    ) -> Result<WebhookEndpoint> {
        let (m, i) = (merchant.clone(), id.clone());
        self.read(ENDPOINT, id.as_str(), move |c| we::get(c, &m, &i))
            .await
    }

    async fn update_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        patch: EndpointPatch,
        audit: &Audit,
    ) -> Result<WebhookEndpoint> {
        let (m, i, audit) = (merchant.clone(), id.clone(), audit.clone());
        self.write(ENDPOINT, id.as_str(), move |c| {
            let now = clock::now_ms();
            if patch.enabled == Some(true) {
                // A re-enabled endpoint starts a fresh health record, or its first failure
                // would disable it again at once.
                we::get(c, &m, &i)?;
                we::set_failing_since(c, &i, None, now)?;
            }
            let e = we::update(c, &m, &i, &patch, now)?;
            let target = ("webhook_endpoint", i.as_str());
            audit.record(c, target, Some(m.as_str()), &endpoint_details(&e), now)?;
            Ok(e)
        })
        .await
    }

    async fn delete_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        audit: &Audit,
    ) -> Result<bool> {
        let (m, i, audit) = (merchant.clone(), id.clone(), audit.clone());
        self.write(ENDPOINT, id.as_str(), move |c| {
            let now = clock::now_ms();
            let deleted = we::delete(c, &m, &i, now)?;
            if deleted {
                audit.record(
                    c,
                    ("webhook_endpoint", i.as_str()),
                    Some(m.as_str()),
                    &json!({}),
                    now,
                )?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn rotate_secret(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        new_secret: &Secret,
        overlap: Duration,
        audit: &Audit,
    ) -> Result<WebhookEndpoint> {
        let (m, i, audit) = (merchant.clone(), id.clone(), audit.clone());
        let (keyring, text) = (self.keyring.clone(), new_secret.expose().to_owned());
        let overlap = clock::ms(overlap);
        self.write(ENDPOINT, id.as_str(), move |c| {
            let now = clock::now_ms();
            let e = webhook_admin::rotate_sealed(c, &keyring, &m, &i, &text, overlap, now)?;
            // The new secret is never logged; only when the old one stops signing.
            let details = json!({ "previous_secret_expires_at": e.previous_secret_expires_at });
            audit.record(
                c,
                ("webhook_endpoint", i.as_str()),
                Some(m.as_str()),
                &details,
                now,
            )?;
            Ok(e)
        })
        .await
    }

    async fn recover_endpoint(
        &self,
        merchant: &MerchantId,
        id: &WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
        audit: &Audit,
    ) -> Result<Recovery> {
        let (m, i, audit) = (merchant.clone(), id.clone(), audit.clone());
        self.write(ENDPOINT, id.as_str(), move |c| {
            let now = clock::now_ms();
            let r = webhook_admin::recover_endpoint(c, &m, &i, since_ms, until_ms, now)?;
            let details = json!({ "since": since_ms, "until": until_ms });
            audit.record(
                c,
                ("webhook_endpoint", i.as_str()),
                Some(m.as_str()),
                &details,
                now,
            )?;
            Ok(r)
        })
        .await
    }

    async fn list_events(
        &self,
        merchant: &MerchantId,
        filter: EventFilter,
        delivery_success: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Event>> {
        let m = merchant.clone();
        self.read(EVENT, "", move |c| {
            events::list(c, &m, &filter, delivery_success, &page)
        })
        .await
    }

    async fn get_event(
        &self,
        merchant: &MerchantId,
        id: &EventId,
    ) -> Result<(Event, Vec<Delivery>)> {
        let (m, i) = (merchant.clone(), id.clone());
        self.read(EVENT, id.as_str(), move |c| {
            let e = events::get(c, &m, &i)?;
            Ok((e, deliveries::list_for_event(c, &m, &i)?))
        })
        .await
    }

    async fn event_attempts(
        &self,
        merchant: &MerchantId,
        id: &EventId,
    ) -> Result<Vec<DeliveryAttempt>> {
        let (m, i) = (merchant.clone(), id.clone());
        self.read(EVENT, id.as_str(), move |c| {
            events::get(c, &m, &i)?;
            deliveries::attempts_for_event(c, &m, &i)
        })
        .await
    }

    async fn redeliver_event(
        &self,
        merchant: &MerchantId,
        id: &EventId,
        max_redeliveries: u32,
    ) -> Result<Vec<String>> {
        let (m, i) = (merchant.clone(), id.clone());
        let queued = self
            .write(EVENT, id.as_str(), move |c| {
                // the event must be the merchant's before anything is counted or recorded
                events::get(c, &m, &i)?;
                store::merchants::lock(c, &m)?;
                let done = store::audit::count_for_target(c, REDELIVER_ACTION, i.as_str())?;
                if done >= i64::from(max_redeliveries) {
                    return Ok(None);
                }
                let now = clock::now_ms();
                let ids = webhook_admin::redeliver_event(c, &m, &i, now)?;
                store::audit::record(
                    c,
                    "merchant",
                    REDELIVER_ACTION,
                    ("event", i.as_str()),
                    Some(m.as_str()),
                    &serde_json::json!({"deliveries": ids.len()}),
                    now,
                )?;
                Ok(Some(ids))
            })
            .await?;
        queued.ok_or_else(|| Error::Unprocessable {
            code: REDELIVERY_LIMIT_CODE,
            message: format!("this event was already redelivered {max_redeliveries} times"),
            param: None,
        })
    }

    async fn list_deliveries(
        &self,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        self.read("delivery", "", move |c| {
            webhook_admin::list_deliveries(c, &filter, &page)
        })
        .await
    }

    async fn endpoint_health(
        &self,
        filter: EndpointHealthFilter,
        page: PageRequest,
    ) -> Result<Page<EndpointHealth>> {
        self.read(ENDPOINT, "", move |c| {
            webhook_admin::endpoint_health(c, &filter, &page)
        })
        .await
    }
}

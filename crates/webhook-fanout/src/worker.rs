//! What a delivery needs besides its rows: [`DeliveryWorker`] holds the database, the master
//! keyring that opens endpoint secrets, the shared dispatcher (per-endpoint caps and breakers,
//! over one HTTP sender), the retry schedule and metrics. The [`crate::pump::Pump`] claims,
//! sends and records through it; this module also turns a stored event into the signed
//! message's body and a job into its delivery id.

use crate::config::FanoutConfig;
use crate::dispatcher::Dispatcher;
use crate::metrics::WebhookMetrics;
use crate::payload::event_body_from_stored;
use crate::sender::{AttemptRecord, EndpointTarget, Sender, WebhookMessage};
use crate::signature::WebhookSecret;
use crate::{WebhookError, outbox};
use domain::DeliveryId;
use std::sync::Arc;
use std::time::Duration;
use store::Database;
use store::events::Event;
use store::jobs::Job;
use store::sealing::MasterKeyring;
use store::webhook_endpoints::{self, WebhookEndpoint};

/// The job kind the delivery pump claims.
pub const DELIVER_JOB_KIND: &str = store::delivery_queue::DELIVER_JOB_KIND;

/// How long to wait before retrying a job that hit a storage error.
pub(crate) const STORAGE_RETRY: Duration = Duration::from_secs(5);
/// How long to wait before retrying when a secret cannot be opened (wrong master key config).
pub(crate) const SECRET_RETRY: Duration = Duration::from_secs(60);

/// The delivery machinery one process shares: database, keyring, dispatcher, settings, metrics.
pub struct DeliveryWorker {
    db: Database,
    keyring: Arc<MasterKeyring>,
    dispatcher: Arc<Dispatcher>,
    metrics: Option<WebhookMetrics>,
    config: FanoutConfig,
}

impl DeliveryWorker {
    /// A worker over an existing dispatcher (share one dispatcher per process: it holds the
    /// per-endpoint caps and breakers).
    pub fn new(
        db: Database,
        keyring: Arc<MasterKeyring>,
        dispatcher: Arc<Dispatcher>,
        metrics: Option<WebhookMetrics>,
        config: FanoutConfig,
    ) -> Self {
        Self {
            db,
            keyring,
            dispatcher,
            metrics,
            config,
        }
    }

    /// A worker with its own sender and dispatcher built from `config`.
    pub fn build(
        db: Database,
        keyring: Arc<MasterKeyring>,
        metrics: Option<WebhookMetrics>,
        config: FanoutConfig,
    ) -> Result<Self, WebhookError> {
        let mut sender_config = config.sender.clone();
        sender_config.pool_max_idle_per_host = sender_config
            .pool_max_idle_per_host
            .max(config.dispatcher.global_concurrency);
        let sender = Sender::new(&sender_config)?;
        let dispatcher = Arc::new(Dispatcher::new(sender, config.dispatcher, metrics.clone()));
        Ok(Self::new(db, keyring, dispatcher, metrics, config))
    }

    /// The lease a runner must take on delivery jobs (longer than the request timeout).
    pub fn job_lease(&self) -> Duration {
        self.config.job_lease()
    }

    /// The database deliveries are read from and recorded in.
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// The settings this worker was built with.
    pub(crate) fn config(&self) -> &FanoutConfig {
        &self.config
    }

    /// Where delivery outcomes are counted.
    pub(crate) fn metrics(&self) -> Option<&WebhookMetrics> {
        self.metrics.as_ref()
    }

    /// The dispatcher (breaker states, in-flight count).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The endpoint's URL and live secrets (the previous one only within its overlap window).
    pub(crate) fn target(
        &self,
        endpoint: &WebhookEndpoint,
        now_ms: i64,
    ) -> Result<EndpointTarget, String> {
        let id = endpoint
            .endpoint_id()
            .map_err(|e| format!("endpoint id: {e}"))?;
        let url = endpoint
            .url
            .parse()
            .map_err(|e| format!("stored endpoint URL: {e}"))?;
        let open = |sealed: &str, binding: String| -> Result<WebhookSecret, String> {
            let plain = self
                .keyring
                .open(sealed, &binding)
                .map_err(|e| format!("opening endpoint secret: {e}"))?;
            WebhookSecret::parse(plain.expose()).map_err(|e| e.to_string())
        };
        let mut secrets = vec![open(
            &endpoint.secret_ciphertext,
            webhook_endpoints::secret_binding(&endpoint.id),
        )?];
        if let (Some(sealed), Some(expires)) = (
            &endpoint.previous_secret_ciphertext,
            endpoint.previous_secret_expires_at,
        ) && expires > now_ms
        {
            secrets.push(open(
                sealed,
                webhook_endpoints::previous_secret_binding(&endpoint.id),
            )?);
        }
        Ok(EndpointTarget { id, url, secrets })
    }
}

/// The event's id and body bytes, built from the stored row: the same bytes on every attempt.
pub(crate) fn message_of(event: &Event) -> Result<WebhookMessage, String> {
    let event_id = event.event_id().map_err(|e| e.to_string())?;
    let kind = event.event_type().map_err(|e| e.to_string())?;
    let body = event_body_from_stored(
        &event_id,
        kind,
        outbox::ms_to_time(event.created_at),
        &event.payload,
    )
    .map_err(|e| e.to_string())?;
    Ok(WebhookMessage {
        event_id,
        body: Arc::from(body),
    })
}

/// The delivery a `webhook.deliver` job names, if its payload names a valid one.
pub(crate) fn delivery_id_of(job: &Job) -> Option<DeliveryId> {
    /// The payload's one field, borrowed: no JSON tree built per job.
    #[derive(serde::Deserialize)]
    struct Payload<'a> {
        #[serde(borrow)]
        delivery_id: std::borrow::Cow<'a, str>,
    }
    let payload: Payload<'_> = serde_json::from_str(&job.payload).ok()?;
    DeliveryId::parse(&payload.delivery_id).ok()
}

/// An attempt's result in a few words, for job rows and dead deliveries.
pub(crate) fn describe(record: &AttemptRecord) -> String {
    match (record.status, &record.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".to_owned(),
    }
}

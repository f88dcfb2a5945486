//! The delivery handler: what a job runner calls for each claimed `webhook.deliver` job.
//!
//! The runner has already claimed the job under a lease (longer than the request timeout) and
//! committed, so nothing is locked while the request is out: [`DeliveryWorker::handle`] reads
//! (one short transaction), sends (no transaction), then records (one short transaction) and
//! tells the runner what to do with the job. A runner killed mid-request leaves the job to
//! whoever claims it after the lease; a delivery already `succeeded` is never sent again.

use crate::config::FanoutConfig;
use crate::dispatcher::{Dispatch, Dispatcher};
use crate::metrics::WebhookMetrics;
use crate::outbox::announce_endpoint_disabled;
use crate::outcome::{Decision, decide, failing_too_long};
use crate::payload::event_body_from_stored;
use crate::schedule::{Jitter, RetrySchedule};
use crate::sender::{AttemptRecord, EndpointTarget, Sender, WebhookMessage};
use crate::signature::WebhookSecret;
use crate::{WebhookError, outbox};
use domain::{AttemptId, DeliveryId, EventId, WebhookEndpointId};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use store::deliveries::{self, Delivery, DeliveryAttempt};
use store::events::Event;
use store::jobs::Job;
use store::sealing::MasterKeyring;
use store::webhook_delivery;
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{Database, StoreError, clock};

/// The job kind this worker handles.
pub const DELIVER_JOB_KIND: &str = webhook_delivery::DELIVER_JOB_KIND;

/// How long to wait before retrying a job that hit a storage error.
pub(crate) const STORAGE_RETRY: Duration = Duration::from_secs(5);
/// How long to wait before retrying when a secret cannot be opened (wrong master key config).
pub(crate) const SECRET_RETRY: Duration = Duration::from_secs(60);

/// What the runner should do with the job after [`DeliveryWorker::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobDecision {
    /// Finished (delivered, or nothing left to do).
    Done,
    /// Run the job again at `at_ms` (unix ms).
    RetryAt {
        /// Unix ms.
        at_ms: i64,
        /// Why (kept on the job row).
        error: String,
    },
    /// Give up on the job; the delivery is `dead` (it can still be redelivered by hand).
    Dead(String),
}

/// Delivers one delivery per job through the dispatcher and records the result.
pub struct DeliveryWorker {
    db: Database,
    keyring: Arc<MasterKeyring>,
    dispatcher: Arc<Dispatcher>,
    schedule: RetrySchedule,
    metrics: Option<WebhookMetrics>,
    config: FanoutConfig,
}

/// Everything one attempt needs, read in one transaction.
struct Loaded {
    delivery: Delivery,
    event: Event,
    endpoint: WebhookEndpoint,
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
            schedule: config.schedule.clone(),
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
        let sender = Sender::new(&config.sender)?;
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

    /// Handles one claimed `webhook.deliver` job.
    pub async fn handle(&self, job: &Job) -> JobDecision {
        let Some(delivery_id) = delivery_id_of(job) else {
            return JobDecision::Dead("job payload names no delivery".to_owned());
        };
        let loaded = {
            let id = delivery_id.clone();
            self.db
                .read(move |c| {
                    let delivery = deliveries::get(c, &id)?;
                    let event = store::events::get_any(c, &EventId::parse(&delivery.event_id)?)?;
                    let endpoint = webhook_delivery::endpoint_any(c, &delivery.endpoint_id)?;
                    Ok(Loaded {
                        delivery,
                        event,
                        endpoint,
                    })
                })
                .await
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(StoreError::NotFound) => {
                return JobDecision::Dead(format!("delivery {delivery_id} not found"));
            }
            Err(e) => return retry_in(STORAGE_RETRY, format!("loading delivery: {e}")),
        };
        let Loaded {
            delivery,
            event,
            endpoint,
        } = loaded;
        match delivery.status.as_str() {
            // Acknowledged already (this job is a leftover of a runner whose lease ran out, or a
            // duplicate): never send twice.
            deliveries::SUCCEEDED => return JobDecision::Done,
            deliveries::DEAD => return JobDecision::Dead("delivery is dead".to_owned()),
            _ => {}
        }
        if !endpoint.enabled || endpoint.deleted_at.is_some() {
            let why = match &endpoint.disabled_reason {
                _ if endpoint.deleted_at.is_some() => "endpoint deleted".to_owned(),
                Some(r) => format!("endpoint disabled ({r})"),
                None => "endpoint disabled".to_owned(),
            };
            return self.give_up_without_attempt(&delivery, why).await;
        }
        let now = clock::now_ms();
        let target = match self.target(&endpoint, now) {
            Ok(t) => t,
            Err(e) => return retry_in(SECRET_RETRY, e),
        };
        let message = match message_of(&event) {
            Ok(m) => m,
            Err(e) => return self.give_up_without_attempt(&delivery, e).await,
        };
        match self.dispatcher.dispatch(&target, &message).await {
            Dispatch::Deferred {
                reason,
                retry_in: wait,
            } => retry_in(wait, format!("deferred: {}", reason.label())),
            Dispatch::Sent(record) => self.record(delivery, endpoint, record).await,
        }
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
            webhook_delivery::secret_binding(&endpoint.id),
        )?];
        if let (Some(sealed), Some(expires)) = (
            &endpoint.previous_secret_ciphertext,
            endpoint.previous_secret_expires_at,
        ) && expires > now_ms
        {
            secrets.push(open(
                sealed,
                webhook_delivery::previous_secret_binding(&endpoint.id),
            )?);
        }
        Ok(EndpointTarget { id, url, secrets })
    }

    /// Writes the attempt, the delivery's next state and the endpoint's health in one
    /// transaction, and turns the outcome into the job decision.
    async fn record(
        &self,
        delivery: Delivery,
        endpoint: WebhookEndpoint,
        record: AttemptRecord,
    ) -> JobDecision {
        let attempt_no = delivery.attempts.saturating_add(1);
        let decision = decide(
            &self.schedule,
            u32::try_from(attempt_no).unwrap_or(u32::MAX),
            record.outcome,
            record.retry_after,
            Jitter::random(),
        );
        let started_ms = record
            .started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let attempt = DeliveryAttempt {
            id: AttemptId::generate().into_string(),
            delivery_id: delivery.id.clone(),
            event_id: delivery.event_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            merchant_id: delivery.merchant_id.clone(),
            attempt: attempt_no,
            started_at: started_ms,
            duration_ms: i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
            http_status: record.status.map(i32::from),
            response_excerpt: Some(record.response_excerpt.clone()).filter(|e| !e.is_empty()),
            error: record.error.clone(),
        };
        let disable_after = self.config.disable_after;
        let was_failing = endpoint.failing_since.is_some();
        let endpoint_id = endpoint.id.clone();
        let written = self
            .db
            .write(move |c| {
                let now = clock::now_ms();
                let id = WebhookEndpointId::parse(&endpoint_id)?;
                let (status, next, mut disable) = match decision {
                    Decision::Delivered => (deliveries::SUCCEEDED, None, None),
                    Decision::RetryIn(d) => (
                        deliveries::FAILED,
                        Some(now.saturating_add(clock::ms(d))),
                        None,
                    ),
                    Decision::GiveUp => (deliveries::DEAD, None, None),
                    Decision::DisableEndpoint => (deliveries::DEAD, None, Some("gone")),
                };
                if decision == Decision::Delivered {
                    if was_failing {
                        webhook_endpoints::set_failing_since(c, &id, None, now)?;
                    }
                } else if disable.is_none() {
                    webhook_endpoints::set_failing_since(c, &id, Some(started_ms), now)?;
                    let current = webhook_delivery::endpoint_any(c, &endpoint_id)?;
                    let since = current.failing_since.map(|ms| {
                        UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                    });
                    let now_t = UNIX_EPOCH + Duration::from_millis(u64::try_from(now).unwrap_or(0));
                    if failing_too_long(since, now_t, disable_after) {
                        disable = Some("failing");
                    }
                }
                let (status, next) = if disable.is_some() {
                    (deliveries::DEAD, None)
                } else {
                    (status, next)
                };
                webhook_delivery::record_attempt(c, &attempt, status, next, now)?;
                let mut disabled_now = false;
                if let Some(reason) = disable
                    && webhook_endpoints::disable(c, &id, reason, now)?
                {
                    let current = webhook_delivery::endpoint_any(c, &endpoint_id)?;
                    announce_endpoint_disabled(c, &current, now)?;
                    disabled_now = true;
                }
                Ok((status, next, disable, disabled_now))
            })
            .await;
        let (status, next, disable, disabled_now) = match written {
            Ok(w) => w,
            // The attempt happened but is not recorded: the job runs again and re-sends, which
            // receivers absorb by deduplicating on `webhook-id`.
            Err(e) => return retry_in(STORAGE_RETRY, format!("recording attempt: {e}")),
        };
        let attempts = u32::try_from(attempt_no).unwrap_or(u32::MAX);
        if let Some(reason) = disable {
            self.dispatcher.forget(&target_id(&delivery.endpoint_id));
            if disabled_now && let Some(m) = &self.metrics {
                m.endpoint_disabled(reason);
            }
        }
        match (status, next) {
            (deliveries::SUCCEEDED, _) => {
                self.finished("delivered", attempts);
                JobDecision::Done
            }
            (deliveries::FAILED, Some(at_ms)) => JobDecision::RetryAt {
                at_ms,
                error: describe(&record),
            },
            _ => {
                let (label, why) = match disable {
                    Some(r) => ("endpoint_disabled", format!("endpoint disabled ({r})")),
                    None => ("failed", "retry schedule exhausted".to_owned()),
                };
                self.finished(label, attempts);
                JobDecision::Dead(format!("{why}; last attempt: {}", describe(&record)))
            }
        }
    }

    async fn give_up_without_attempt(&self, delivery: &Delivery, why: String) -> JobDecision {
        let id = delivery.id.clone();
        let error = why.clone();
        match self
            .db
            .write(move |c| webhook_delivery::mark_dead(c, &id, &error, clock::now_ms()))
            .await
        {
            Ok(()) => {
                self.finished(
                    "endpoint_disabled",
                    u32::try_from(delivery.attempts).unwrap_or(0),
                );
                JobDecision::Dead(why)
            }
            Err(e) => retry_in(STORAGE_RETRY, format!("marking delivery dead: {e}")),
        }
    }

    fn finished(&self, outcome: &str, attempts: u32) {
        if let Some(m) = &self.metrics {
            m.delivery_finished(outcome, attempts);
        }
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

pub(crate) fn delivery_id_of(job: &Job) -> Option<DeliveryId> {
    let payload: serde_json::Value = serde_json::from_str(&job.payload).ok()?;
    let text = payload.get("delivery_id")?.as_str()?;
    DeliveryId::parse(text).ok()
}

fn target_id(id: &str) -> WebhookEndpointId {
    WebhookEndpointId::parse(id).unwrap_or_else(|_| WebhookEndpointId::generate())
}

fn retry_in(wait: Duration, error: String) -> JobDecision {
    JobDecision::RetryAt {
        at_ms: clock::now_ms().saturating_add(clock::ms(wait)),
        error,
    }
}

pub(crate) fn describe(record: &AttemptRecord) -> String {
    match (record.status, &record.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".to_owned(),
    }
}

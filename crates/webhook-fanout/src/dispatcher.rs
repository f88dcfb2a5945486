//! Isolation between endpoints: what a runner hands (endpoint, message) to.
//!
//! Three limits keep one bad endpoint from slowing the others:
//! - a per-endpoint in-flight cap, taken with `try_acquire`: when an endpoint already has its
//!   share of requests open, the delivery is deferred instead of waiting, so neither a runner
//!   task nor a global slot is held for a slow endpoint;
//! - a per-endpoint circuit breaker: a failing endpoint is not called at all during its cool-down;
//! - a bounded global concurrency, taken last, so only requests that will really go out wait
//!   for it.
//!
//! Deferrals are not attempts: the runner reschedules the delivery after `retry_in` without
//! recording an attempt or advancing the retry schedule.

use crate::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::metrics::WebhookMetrics;
use crate::outcome::AttemptOutcome;
use crate::sender::{AttemptRecord, EndpointTarget, Sender, WebhookMessage};
use domain::WebhookEndpointId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Dispatcher tuning.
#[derive(Clone, Copy, Debug)]
pub struct DispatcherConfig {
    /// Requests in flight across all endpoints.
    pub global_concurrency: usize,
    /// Requests in flight to one endpoint.
    pub per_endpoint_in_flight: usize,
    /// How long to postpone a delivery whose endpoint is at its in-flight cap.
    pub busy_retry: Duration,
    /// Circuit breaker tuning.
    pub breaker: BreakerConfig,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            global_concurrency: 512,
            per_endpoint_in_flight: 8,
            busy_retry: Duration::from_secs(1),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Why a delivery was postponed without a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferReason {
    /// The endpoint has its full share of requests in flight.
    EndpointBusy,
    /// The endpoint's circuit is open.
    CircuitOpen,
}

impl DeferReason {
    /// The metric / log label.
    pub fn label(self) -> &'static str {
        match self {
            DeferReason::EndpointBusy => "endpoint_busy",
            DeferReason::CircuitOpen => "circuit_open",
        }
    }
}

/// The result of handing one delivery to the dispatcher.
#[derive(Clone, Debug)]
pub enum Dispatch {
    /// An attempt was made: record it and follow the schedule.
    Sent(AttemptRecord),
    /// No attempt was made: try again after `retry_in`.
    Deferred {
        /// Why.
        reason: DeferReason,
        /// When asking again makes sense.
        retry_in: Duration,
    },
}

struct EndpointSlot {
    in_flight: Arc<Semaphore>,
    breaker: Mutex<CircuitBreaker>,
}

/// Sends deliveries with per-endpoint isolation and a global bound; share it behind an `Arc`.
pub struct Dispatcher {
    sender: Sender,
    config: DispatcherConfig,
    global: Arc<Semaphore>,
    endpoints: Mutex<HashMap<WebhookEndpointId, Arc<EndpointSlot>>>,
    metrics: Option<WebhookMetrics>,
}

impl Dispatcher {
    /// A dispatcher over `sender`; attempts are counted in `metrics` when given.
    pub fn new(sender: Sender, config: DispatcherConfig, metrics: Option<WebhookMetrics>) -> Self {
        Self {
            sender,
            global: Arc::new(Semaphore::new(config.global_concurrency.max(1))),
            config,
            endpoints: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Makes one attempt of `message` to `target`, unless the endpoint is saturated or its
    /// circuit is open.
    pub async fn dispatch(&self, target: &EndpointTarget, message: &WebhookMessage) -> Dispatch {
        self.dispatch_within(target, message, Duration::ZERO).await
    }

    /// [`Dispatcher::dispatch`], but a delivery whose endpoint is at its cap waits up to
    /// `wait` for one of its slots before being deferred. The delivery pump claims several
    /// deliveries of one endpoint at once; a healthy endpoint frees a slot within milliseconds,
    /// so deferring them for `busy_retry` would throttle exactly the endpoints that keep up.
    /// Only the endpoint's own slots are waited for: no global slot is held meanwhile.
    pub async fn dispatch_within(
        &self,
        target: &EndpointTarget,
        message: &WebhookMessage,
        wait: Duration,
    ) -> Dispatch {
        let slot = self.slot(&target.id);
        let permit = match slot.in_flight.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if wait.is_zero() => None,
            Err(_) => tokio::time::timeout(wait, slot.in_flight.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        let Some(_endpoint_permit) = permit else {
            return self.defer(DeferReason::EndpointBusy, self.config.busy_retry);
        };
        if let Err(wait) = slot.breaker.lock().try_acquire(Instant::now()) {
            return self.defer(DeferReason::CircuitOpen, wait);
        }
        // The semaphore is never closed; if it were, deferring is the safe answer.
        let Ok(_global_permit) = self.global.clone().acquire_owned().await else {
            return self.defer(DeferReason::EndpointBusy, self.config.busy_retry);
        };
        let record = self.sender.send(target, message).await;
        let success = record.outcome == AttemptOutcome::Delivered;
        slot.breaker.lock().record(success, Instant::now());
        if let Some(m) = &self.metrics {
            m.attempt(&record);
        }
        Dispatch::Sent(record)
    }

    /// The breaker state of an endpoint (closed when it was never called).
    pub fn endpoint_state(&self, id: &WebhookEndpointId) -> BreakerState {
        self.endpoints
            .lock()
            .get(id)
            .map(|s| s.breaker.lock().state(Instant::now()))
            .unwrap_or(BreakerState::Closed)
    }

    /// Endpoints that would defer a delivery right now: every slot in flight, or the circuit
    /// open (not yet half-open). The pump claims none of their jobs.
    pub fn unavailable_endpoints(&self) -> Vec<WebhookEndpointId> {
        let now = Instant::now();
        self.endpoints
            .lock()
            .iter()
            .filter(|(_, s)| {
                s.in_flight.available_permits() == 0
                    || s.breaker.lock().state(now) == BreakerState::Open
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Forgets an endpoint's state (deleted, disabled or re-enabled endpoint).
    pub fn forget(&self, id: &WebhookEndpointId) {
        self.endpoints.lock().remove(id);
    }

    /// The settings it was built with.
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// Requests in flight across all endpoints.
    pub fn in_flight(&self) -> usize {
        self.config.global_concurrency.max(1) - self.global.available_permits()
    }

    fn slot(&self, id: &WebhookEndpointId) -> Arc<EndpointSlot> {
        let mut endpoints = self.endpoints.lock();
        // Known endpoints (all but the first delivery to each) without cloning the id.
        if let Some(slot) = endpoints.get(id) {
            return slot.clone();
        }
        endpoints
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(EndpointSlot {
                    in_flight: Arc::new(Semaphore::new(self.config.per_endpoint_in_flight.max(1))),
                    breaker: Mutex::new(CircuitBreaker::new(self.config.breaker)),
                })
            })
            .clone()
    }

    fn defer(&self, reason: DeferReason, retry_in: Duration) -> Dispatch {
        if let Some(m) = &self.metrics {
            m.deferred(reason.label());
        }
        Dispatch::Deferred { reason, retry_in }
    }
}

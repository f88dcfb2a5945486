//! Delivers the events in payfac's outbox to merchants' webhook endpoints.
//!
//! [`outbox::fan_out`] turns an event into one delivery (and one `webhook.deliver` job) per
//! subscribed endpoint inside the event's transaction; the [`pump::Pump`] claims those jobs in
//! batches, sends them through the [`worker::DeliveryWorker`]'s dispatcher and records the
//! outcomes by group commit. Underneath: Standard Webhooks v1 signing ([`signature`]), the
//! retry schedule as data ([`schedule`]), response classification ([`outcome`]), the SSRF guard
//! ([`ssrf`]), the HTTP sender ([`sender`]), per-endpoint isolation ([`breaker`],
//! [`dispatcher`]) and metrics ([`metrics`]).

pub mod error;
pub mod signature;

pub use error::WebhookError;
pub use signature::{WebhookSecret, sign, verify};
pub mod outcome;
pub mod payload;
pub mod schedule;
pub mod sender;
pub mod ssrf;

pub use outcome::{AttemptOutcome, Decision, decide};
pub use schedule::{Jitter, RetrySchedule, RetrySignal};
pub use sender::{AttemptRecord, EndpointTarget, Sender, SenderConfig, WebhookMessage};
pub use ssrf::NetworkPolicy;
pub mod breaker;
pub mod config;
pub mod dispatcher;
pub mod metrics;

pub use breaker::{BreakerConfig, BreakerState};
pub use config::FanoutConfig;
pub use dispatcher::{DeferReason, Dispatch, Dispatcher, DispatcherConfig};
pub use metrics::WebhookMetrics;
pub use payload::{event_body, event_body_from_stored};
pub mod outbox;
pub mod pump;
mod recorder;
pub mod worker;

pub use outbox::fan_out;
pub use pump::{Pump, PumpConfig};
pub use worker::{DELIVER_JOB_KIND, DeliveryWorker};

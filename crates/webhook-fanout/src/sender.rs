//! Sends one signed attempt of one message to one endpoint and records what happened.
//!
//! The body bytes are fixed when the event is written; every attempt gets a fresh
//! `webhook-timestamp` and signature over those same bytes. The sender never returns an error:
//! whatever goes wrong is an attempt outcome to record and schedule around.

use crate::WebhookError;
use crate::outcome::{
    AttemptOutcome, TransportFailure, classify_status, classify_transport, parse_retry_after,
};
use crate::signature::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret};
use crate::ssrf::{GuardedResolver, NetworkPolicy};
use domain::{EventId, WebhookEndpointId};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

/// Most bytes of a response body kept with an attempt.
pub const RESPONSE_EXCERPT_LIMIT: usize = 4 * 1024;

/// How the HTTP client behaves.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Whole-request timeout (connect, send, first response bytes and excerpt); default 15 s.
    pub timeout: Duration,
    /// Connect timeout; default 5 s.
    pub connect_timeout: Duration,
    /// What endpoint URLs may point at.
    pub policy: NetworkPolicy,
    /// Idle pooled connections kept per host. [`crate::DeliveryWorker::build`] raises it to the
    /// dispatcher's global concurrency: several endpoints on one host share its pool, and a
    /// cap below the requests in flight to that host closes connections that the next
    /// requests must open again (a TCP, and in production TLS, handshake per delivery).
    /// Idle connections still close after the client's idle timeout.
    pub pool_max_idle_per_host: usize,
    /// `User-Agent` sent with every attempt.
    pub user_agent: String,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            policy: NetworkPolicy::STRICT,
            pool_max_idle_per_host: 8,
            user_agent: concat!("payfac-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Where to send: one endpoint and its live secrets (two during a rotation).
#[derive(Clone, Debug)]
pub struct EndpointTarget {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// Its URL.
    pub url: Url,
    /// Every secret that signs right now.
    pub secrets: Vec<WebhookSecret>,
}

/// What to send: the event id (`webhook-id`) and the fixed body bytes.
#[derive(Clone, Debug)]
pub struct WebhookMessage {
    /// The event id, stable across retries and endpoints.
    pub event_id: EventId,
    /// The JSON body, exactly as signed.
    pub body: Arc<[u8]>,
}

/// Everything worth storing about one attempt.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// When the attempt started.
    pub started_at: SystemTime,
    /// The `webhook-timestamp` sent (unix seconds).
    pub timestamp: i64,
    /// The HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Time from start to end of the excerpt read (or failure).
    pub duration: Duration,
    /// Up to 4 KiB of the response body, lossily decoded as UTF-8.
    pub response_excerpt: String,
    /// What went wrong, for the attempts log (never contains secrets).
    pub error: Option<String>,
    /// Why there was no status, when there was none.
    pub transport_failure: Option<TransportFailure>,
    /// The classification driving the next step.
    pub outcome: AttemptOutcome,
    /// The receiver's `Retry-After`, as a delay from the response.
    pub retry_after: Option<Duration>,
}

/// The HTTP side of delivery: one pooled client for all endpoints.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: NetworkPolicy,
}

impl Sender {
    /// Builds the client: rustls, redirects off, proxies off, the SSRF-guarded resolver.
    pub fn new(config: &SenderConfig) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the endpoint itself, out of the guard's sight.
            .no_proxy()
            .https_only(!config.policy.allow_http)
            .dns_resolver(GuardedResolver::new(config.policy))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| WebhookError::HttpClient(e.to_string()))?;
        Ok(Self {
            client,
            policy: config.policy,
        })
    }

    /// The policy this sender enforces.
    pub fn policy(&self) -> NetworkPolicy {
        self.policy
    }

    /// Makes one attempt now.
    pub async fn send(&self, target: &EndpointTarget, message: &WebhookMessage) -> AttemptRecord {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let timestamp = unix_seconds(started_at);
        let mut record = AttemptRecord {
            started_at,
            timestamp,
            status: None,
            duration: Duration::ZERO,
            response_excerpt: String::new(),
            error: None,
            transport_failure: None,
            outcome: AttemptOutcome::Failed { throttled: false },
            retry_after: None,
        };
        // Literal IPs never reach the resolver, so the URL is checked on every attempt too.
        if let Err(e) = self.policy.check_url(&target.url) {
            return record.failed(TransportFailure::Refused, e.to_string(), clock);
        }
        let headers = match signature::sign(
            &target.secrets,
            message.event_id.as_str(),
            timestamp,
            &message.body,
        ) {
            Ok(h) => h,
            Err(e) => return record.failed(TransportFailure::Other, e.to_string(), clock),
        };
        let request = self
            .client
            .post(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, headers.id)
            .header(HEADER_TIMESTAMP, headers.timestamp.to_string())
            .header(HEADER_SIGNATURE, headers.signature)
            // The event's bytes themselves, not a copy per attempt.
            .body(bytes::Bytes::from_owner(message.body.clone()));
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = transport_failure(&e);
                return record.failed(kind, describe(e), clock);
            }
        };
        let status = response.status().as_u16();
        record.status = Some(status);
        record.outcome = classify_status(status);
        if record.outcome != AttemptOutcome::Delivered {
            record.retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
        }
        // An internal service's answer must never travel back to the merchant through the
        // attempt log (even where the policy lets requests reach internal addresses): the
        // excerpt is kept only from a public address.
        let public_peer = response
            .remote_addr()
            .is_some_and(|peer| crate::ssrf::forbidden_reason(peer.ip()).is_none());
        if !public_peer {
            record.duration = clock.elapsed();
            return record;
        }
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    // The status already decided the outcome; a slow or broken body is only noted.
                    record.error = Some(format!("reading response body: {}", describe(e)));
                    break;
                }
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT_LIMIT);
        record.response_excerpt = String::from_utf8_lossy(&excerpt).into_owned();
        record.duration = clock.elapsed();
        record
    }
}

impl AttemptRecord {
    fn failed(mut self, kind: TransportFailure, error: String, clock: Instant) -> Self {
        self.transport_failure = Some(kind);
        self.outcome = classify_transport(kind);
        self.error = Some(error);
        self.duration = clock.elapsed();
        self
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    if e.is_timeout() {
        return TransportFailure::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(WebhookError::ForbiddenAddress { .. } | WebhookError::UrlRefused(_)) =
            err.downcast_ref::<WebhookError>()
        {
            return TransportFailure::Refused;
        }
        source = err.source();
    }
    if e.is_connect() {
        TransportFailure::Connect
    } else {
        TransportFailure::Other
    }
}

/// The error with its causes, without the URL (it may carry a merchant's token in its query).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

//! The HTTP client: one pooled reqwest client per CodePay app, a timeout per call, a tracing span
//! per call (no secrets in it), metrics, and the mapping of every transport fault to an outcome.

use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::envelope::{ResponseVerdict, build_request, now_millis, read_response};
use crate::error::ClientError;
use crate::metrics::GatewayMetrics;
use crate::operations::{
    CpmSubmit, MpmCreate, MpmCreated, Operation, OrderQuery, RefundAccepted, RefundQuery,
    RefundSubmit, Revoke, TransactionResult,
};
use crate::outcome::{CallOutcome, UnknownReason};
use crate::signing::{PrivateKey, PublicKey};

/// Responses larger than this are not CodePay answers; reading them would only cost memory.
const MAX_BODY: usize = 1 << 20;

/// One CodePay app (integration): where to call, who we are, and whose signatures to trust.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// e.g. `https://codepay-open.codepay.us`; `/api/entry` is appended.
    pub base_url: String,
    /// The app's `app_id`.
    pub app_id: String,
    /// The app's private key (signs every request).
    pub private_key: PrivateKey,
    /// The gateway's public key (verifies responses and notifications).
    pub gateway_public_key: PublicKey,
    /// Whole-call timeout (connect, send, answer).
    pub timeout: Duration,
    /// Trust unsigned success responses, as CodePay's own SDK does. Off by default.
    pub accept_unsigned_success: bool,
}

impl GatewayConfig {
    /// A config with the default timeout (15 s) and unsigned successes refused.
    pub fn new(
        base_url: impl Into<String>,
        app_id: impl Into<String>,
        private_key: PrivateKey,
        gateway_public_key: PublicKey,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            app_id: app_id.into(),
            private_key,
            gateway_public_key,
            timeout: Duration::from_secs(15),
            accept_unsigned_success: false,
        }
    }
}

/// The CodePay client. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    config: GatewayConfig,
    endpoint: reqwest::Url,
    http: reqwest::Client,
    metrics: Option<GatewayMetrics>,
    wait_hook: Option<fn(Duration)>,
}

impl GatewayClient {
    /// Builds the client; `metrics` is optional so tests and tools need no registry.
    pub fn new(
        config: GatewayConfig,
        metrics: Option<GatewayMetrics>,
    ) -> Result<Self, ClientError> {
        let base = config.base_url.trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/api/entry"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ClientError::BaseUrl(config.base_url.clone()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self {
            config,
            endpoint,
            http,
            metrics,
            wait_hook: None,
        })
    }

    /// Calls `hook` with the time each call spent waiting on CodePay's HTTP answer (from
    /// sending to the last byte of the body; signing and verifying excluded), so the caller
    /// can tell its own time from CodePay's.
    pub fn with_wait_hook(mut self, hook: fn(Duration)) -> Self {
        self.wait_hook = Some(hook);
        self
    }

    /// The configuration (keys print masked).
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// MPM: create the order and get the QR content.
    pub async fn create_mpm(&self, op: &MpmCreate) -> CallOutcome<MpmCreated> {
        self.call(op).await
    }

    /// CPM: charge the customer's wallet code. `Unknown` and `InProgress` both mean "poll".
    pub async fn submit_cpm(&self, op: &CpmSubmit) -> CallOutcome<TransactionResult> {
        self.call(op).await
    }

    /// Refund under a new order number; poll [`Self::query_refund`] for the result.
    pub async fn submit_refund(&self, op: &RefundSubmit) -> CallOutcome<RefundAccepted> {
        self.call(op).await
    }

    /// The state of a payment order.
    pub async fn query_order(&self, op: &OrderQuery) -> CallOutcome<TransactionResult> {
        self.call(op).await
    }

    /// The state of a refund.
    pub async fn query_refund(&self, op: &RefundQuery) -> CallOutcome<TransactionResult> {
        self.call(op).await
    }

    /// Reverse an order (close if unpaid, refund if paid); confirm with [`Self::query_order`].
    pub async fn revoke(&self, op: &Revoke) -> CallOutcome<()> {
        self.call(op).await
    }

    /// Any operation: sign, send, verify, read.
    pub async fn call<O: Operation>(&self, op: &O) -> CallOutcome<O::Response> {
        let span = tracing::info_span!(
            "codepay.call",
            method = O::METHOD,
            merchant_no = %op.merchant().merchant_no,
            order = %op.order_label(),
            outcome = tracing::field::Empty,
            reason = tracing::field::Empty,
            code = tracing::field::Empty,
            psn = tracing::field::Empty,
        );
        let started = Instant::now();
        let outcome = self.call_inner(op).instrument(span.clone()).await;
        span.record("outcome", outcome.label());
        match &outcome {
            CallOutcome::Success(_) => {}
            CallOutcome::Declined { code, msg } => {
                span.record("code", code.as_str());
                span.in_scope(|| tracing::info!(%code, %msg, "CodePay declined"));
            }
            CallOutcome::Unknown { reason } => {
                span.record("reason", reason.label());
                span.in_scope(
                    || tracing::warn!(%reason, "CodePay outcome unknown: settle by query"),
                );
            }
        }
        if let Some(m) = &self.metrics {
            m.observe(O::METHOD, outcome.label(), started.elapsed().as_secs_f64());
        }
        outcome
    }

    fn waited(&self, since: Instant) {
        if let Some(hook) = self.wait_hook {
            hook(since.elapsed());
        }
    }

    async fn call_inner<O: Operation>(&self, op: &O) -> CallOutcome<O::Response> {
        let request = build_request(
            &self.config.app_id,
            O::METHOD,
            op.merchant(),
            op.fields(),
            now_millis(),
            &self.config.private_key,
        );
        let body = match serde_json::to_vec(&request) {
            Ok(b) => b,
            Err(e) => return unknown(UnknownReason::Unparsable(e.to_string())),
        };
        let waiting = Instant::now();
        let sent = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.config.timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.waited(waiting);
                return unknown(transport_reason(&e));
            }
        };
        let status = response.status();
        if status.is_server_error() {
            self.waited(waiting);
            return unknown(UnknownReason::HttpStatus(status.as_u16()));
        }
        let bytes = read_body(response).await;
        self.waited(waiting);
        let bytes = match bytes {
            Ok(b) => b,
            Err(reason) => return unknown(reason),
        };
        let verdict = read_response(
            &bytes,
            &self.config.gateway_public_key,
            self.config.accept_unsigned_success,
        );
        match verdict {
            ResponseVerdict::Success { psn, data } => {
                if let Some(psn) = &psn {
                    tracing::Span::current().record("psn", psn.as_str());
                }
                match op.parse(&data) {
                    Ok(v) => CallOutcome::Success(v),
                    Err(e) => unknown(UnknownReason::Unparsable(e.to_string())),
                }
            }
            ResponseVerdict::Declined { code, msg } => CallOutcome::Declined { code, msg },
            // A non-2xx status whose body is not a CodePay envelope is a proxy speaking, not CodePay.
            ResponseVerdict::Unknown(UnknownReason::Unparsable(_)) if !status.is_success() => {
                unknown(UnknownReason::HttpStatus(status.as_u16()))
            }
            ResponseVerdict::Unknown(reason) => unknown(reason),
        }
    }
}

fn unknown<T>(reason: UnknownReason) -> CallOutcome<T> {
    CallOutcome::Unknown { reason }
}

fn transport_reason(e: &reqwest::Error) -> UnknownReason {
    if e.is_timeout() {
        UnknownReason::Timeout
    } else if e.is_connect() {
        UnknownReason::Connect(error_chain(e))
    } else {
        UnknownReason::ConnectionLost(error_chain(e))
    }
}

/// reqwest's top-level message is "error sending request"; the cause is further down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, UnknownReason> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(UnknownReason::Unparsable("response body too large".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(UnknownReason::Timeout),
            Err(e) => return Err(UnknownReason::ConnectionLost(error_chain(&e))),
        }
    }
}

//! The one error type of the webhook fan-out crate.

use thiserror::Error;

/// Why a webhook operation could not be carried out.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// A webhook secret is not `whsec_` followed by base64 of a usable key.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(&'static str),
    /// The operating system's random source failed while generating a secret.
    #[error("random source failed: {0}")]
    Random(String),
    /// A message has to be signed or verified but no secret is live.
    #[error("no live webhook secret")]
    NoSecret,
    /// A required Standard Webhooks header is missing or malformed.
    #[error("invalid `{header}` header")]
    InvalidHeader {
        /// Which header.
        header: &'static str,
    },
    /// The `webhook-timestamp` is further from now than the tolerance.
    #[error("webhook timestamp outside the tolerance window")]
    TimestampOutOfTolerance,
    /// No `v1` signature matches any secret.
    #[error("no matching signature")]
    SignatureMismatch,
    /// A retry schedule string could not be parsed.
    #[error("invalid retry schedule `{input}`: {reason}")]
    InvalidSchedule {
        /// The text as received.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// An endpoint URL is not acceptable (scheme, host, syntax).
    #[error("endpoint URL refused: {0}")]
    UrlRefused(String),
    /// An endpoint address is loopback, private, link-local, multicast or otherwise internal.
    #[error("endpoint address {addr} is not allowed ({reason})")]
    ForbiddenAddress {
        /// The address refused.
        addr: std::net::IpAddr,
        /// The range it falls in.
        reason: &'static str,
    },
    /// A stored event payload is not JSON.
    #[error("event payload is not JSON: {0}")]
    InvalidPayload(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A configuration value could not be parsed.
    #[error("invalid configuration `{name}`: {reason}")]
    Config {
        /// The setting (environment variable) name.
        name: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

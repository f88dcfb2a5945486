//! Logging: `tracing` to stderr, human-readable or one JSON object per line.

use crate::config::{Config, LogFormat};
use actix_web::HttpMessage;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests, `admin` after `migrate`) must not panic.
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// Middleware: one span per request carrying `request_id`, `method`, `route`, `merchant_id`
/// (recorded by the auth extractor) and `payment_id` (from the path), so every log line of the
/// request can be tied to the tenant and the payment; plus one access line when it finishes.
pub async fn request_span(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let request_id = req
        .extensions()
        .get::<tenant_api::request_id::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    // Routing has not run yet at the app's middleware, so the id comes from the path itself.
    let payment_id = req
        .path()
        .split('/')
        .find(|segment| segment.starts_with("pay_"))
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "request",
        %request_id,
        method = %req.method(),
        %route,
        merchant_id = tracing::field::Empty,
        payment_id = tracing::field::Empty,
    );
    if !payment_id.is_empty() {
        span.record("payment_id", payment_id.as_str());
    }
    let started = std::time::Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        )
    });
    Ok(res)
}

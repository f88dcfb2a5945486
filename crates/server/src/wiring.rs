//! Builds the tenant API's state and the job handlers from the opened backends.

use crate::config::Config;
use crate::run::Backends;
use crate::runner::{Handler, Outcome, Runner};
use crate::upstream::Upstream;
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use tenant_api::AppState;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::payments::jobs::{self as payment_jobs, JobOutcome};
use tenant_api::payments::{Engine, EngineConfig};

/// Job kinds the payment logic handles.
pub const PAYMENT_JOB_KINDS: [&str; 3] = ["payment.poll", "payment.expire", "refund.poll"];

/// Wires the engine, the stores and the upstream into the API state.
pub fn build(
    config: &Config,
    backends: &Backends,
    keyring: &MasterKeyring,
    upstream: Upstream,
    public_url: &str,
) -> anyhow::Result<actix_web::web::Data<AppState>> {
    let engine = EngineConfig {
        public_url: public_url.to_owned(),
        poll_interval: Duration::from_millis(config.cpm_poll_interval_ms),
        cpm_deadline: Duration::from_secs(config.cpm_deadline_seconds),
        default_mpm_expiry: Duration::from_secs(config.mpm_expires_seconds),
        ..EngineConfig::default()
    };
    // Merchant JWTs are signed with a key derived from the master key unless one is configured;
    // the kid names the master key, so rotating the master key rotates the token key too.
    let token_key = match &config.jwt_signing_key {
        Some(key) => ("configured".to_owned(), domain::Secret::new(key.clone())),
        None => (
            format!("mk-{}", keyring.current_key_id()),
            keyring.derive_subkey("payfac/jwt/v1"),
        ),
    };
    let state = app_state_from(Wiring {
        db: backends.db.clone(),
        coordinator: backends.coordinator.clone(),
        gateway: upstream.client,
        gateway_public_key: upstream.gateway_public_key,
        engine,
        token_keys: vec![token_key],
        rate_limit_per_sec: config.rate_limit_per_second,
        sandbox: upstream.sandbox,
    })
    .map_err(|e| anyhow::anyhow!("cannot build the API: {e}"))?;
    Ok(actix_web::web::Data::new(state))
}

/// Registers the payment logic's job handlers on the runner.
pub fn register_payment_jobs(runner: &mut Runner, engine: &Engine) {
    for kind in PAYMENT_JOB_KINDS {
        let engine = engine.clone();
        let handler: Handler = Arc::new(move |job| {
            let engine = engine.clone();
            Box::pin(async move {
                let subject = job.dedupe_key.clone().unwrap_or_default();
                match payment_jobs::handle(&engine, &job.kind, &subject).await {
                    JobOutcome::Done => Outcome::Done,
                    JobOutcome::RetryAt(at) => Outcome::RetryAt {
                        at_ms: at.timestamp_millis(),
                        error: "not settled yet".into(),
                    },
                }
            })
        });
        runner.register(kind, handler);
    }
}

//! Builds the tenant API's state and the job handlers from the opened backends.

use crate::config::{Config, DatabaseTarget};
use crate::run::Backends;
use crate::runner::{Handler, Outcome, Runner};
use crate::upstream::Upstream;
use payments::jobs::{self as payment_jobs, JobOutcome};
use payments::{Engine, EngineConfig};
use std::sync::Arc;
use std::time::Duration;
use store::Database;
use store::sealing::MasterKeyring;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::routes::webhooks::WebhookApi;
use tenant_api::{AppState, SandboxRegistrar};
use webhook_fanout::{DeliveryWorker, FanoutConfig, Pump, PumpConfig, WebhookSecret};

/// Who this process is, for the API state.
pub struct Process<'a> {
    /// The externally reachable base URL (`notify_url` is built on it).
    pub public_url: &'a str,
    /// This process's instance id, beating in `store::instances` (see `crate::instance`).
    pub instance: &'a str,
}

/// Wires the engine, the stores and the upstream into the API state.
pub fn build(
    config: &Config,
    backends: &Backends,
    keyring: &Arc<MasterKeyring>,
    registry: &prometheus::Registry,
    upstream: Upstream,
    process: Process<'_>,
) -> anyhow::Result<actix_web::web::Data<AppState>> {
    let engine = EngineConfig {
        public_url: process.public_url.to_owned(),
        poll_interval: Duration::from_millis(config.cpm_poll_interval_ms),
        cpm_deadline: Duration::from_secs(config.cpm_deadline_seconds),
        default_mpm_expiry: Duration::from_secs(config.mpm_expires_seconds),
        ..EngineConfig::default()
    };
    // Merchant JWTs are signed with a key derived from the master key unless one is configured;
    // the kid names the master key, so rotating the master key rotates the token key too.
    let token_key = match &config.jwt_signing_key {
        Some(key) => ("configured".to_owned(), key.clone()),
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
        sandbox: upstream.sandbox.map(|sim| {
            Arc::new(crate::sandbox::SimulatorRegistrar(sim)) as Arc<dyn SandboxRegistrar>
        }),
        keyring: keyring.clone(),
        registry: registry.clone(),
        claimant: Some(process.instance.to_owned()),
    })
    .map_err(|e| anyhow::anyhow!("cannot build the API: {e}"))?;
    Ok(actix_web::web::Data::new(state))
}

/// Registers the payment engine's job handlers (`payments::jobs`) on the runner.
pub fn register_payment_jobs(runner: &mut Runner, engine: &Engine) {
    for kind in payment_jobs::KINDS {
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

/// The webhook fan-out settings, read from payfac's config by their `PAYFAC_WEBHOOK_*` names.
///
/// The embedded default (SQLite) allows http and private addresses unless configured
/// otherwise, so a newcomer's local receiver works; the start-up log says so.
pub fn fanout_config(config: &Config) -> anyhow::Result<FanoutConfig> {
    let embedded = matches!(config.database_target()?, DatabaseTarget::Sqlite(_));
    FanoutConfig::from_lookup(|name| match name {
        "PAYFAC_WEBHOOK_ALLOW_HTTP" | "PAYFAC_WEBHOOK_ALLOW_PRIVATE" => config
            .lookup(name)
            .or_else(|| embedded.then(|| "true".to_owned())),
        _ => config.lookup(name),
    })
    .map_err(|e| anyhow::anyhow!("invalid webhook configuration: {e}"))
}

/// What the `/v1/webhook-endpoints` and `/v1/events` routes need.
pub fn webhook_api(db: Database, keyring: Arc<MasterKeyring>, fanout: &FanoutConfig) -> WebhookApi {
    let policy = fanout.sender.policy;
    WebhookApi::new(
        db,
        keyring,
        Arc::new(move |url: &str| {
            policy
                .parse_endpoint_url(url)
                .map(|u| u.to_string())
                .map_err(|e| e.to_string())
        }),
        Arc::new(|| {
            WebhookSecret::generate()
                .map(|s| domain::Secret::new(s.expose()))
                .map_err(|e| e.to_string())
        }),
        fanout.secret_overlap,
    )
}

/// The webhook delivery pump the worker role runs beside the generic job runner: it claims
/// `webhook.deliver` jobs in batches and records their outcomes by group commit, so the
/// generic runner does not register that kind.
pub fn webhook_pump(
    worker: Arc<DeliveryWorker>,
    fanout: &FanoutConfig,
    owner: String,
) -> Arc<Pump> {
    let mut config = PumpConfig::new(owner);
    config.wake_channel = crate::runner::WAKE_CHANNEL.to_owned();
    // Sends in flight are bounded by the dispatcher's global semaphore; the pump may hold as
    // many more (waiting for a busy endpoint's slot, or being recorded) without claiming ahead.
    config.max_in_flight = fanout
        .dispatcher
        .global_concurrency
        .max(1)
        .saturating_mul(2);
    Arc::new(Pump::new(worker, config))
}

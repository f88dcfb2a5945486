//! Builds the tenant API's state and the job handlers from the opened backends.

use crate::config::Config;
use crate::run::Backends;
use crate::runner::{Handler, Outcome, Runner};
use crate::upstream::Upstream;
use domain::Secret;
use payments::books::Books;
use payments::jobs::{self as payment_jobs, JobOutcome};
use payments::recon::ReconConfig;
use payments::{Engine, EngineConfig};
use std::sync::Arc;
use std::time::Duration;
use store::Database;
use store::sealing::MasterKeyring;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::auth::jwt::TokenIssuer;
use tenant_api::routes::books::BooksApi;
use tenant_api::routes::webhooks::{WebhookApi, WebhookLimits};
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
    let state = app_state_from(Wiring {
        db: backends.db.clone(),
        coordinator: backends.coordinator.clone(),
        gateway: upstream.client,
        gateway_public_key: upstream.gateway_public_key,
        default_gateway_account: Some(upstream.default_account),
        gateway_metrics: upstream.metrics,
        engine,
        token_keys: token_keys(config, keyring),
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

/// The books' routes' state: SQL books with the configured settlement cut-off, and how an
/// on-demand reconciliation paces its queries.
pub fn books_api(config: &Config, db: &Database) -> anyhow::Result<BooksApi> {
    let cutoff = config
        .settlement_cutoff()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(BooksApi {
        books: Books::new(db.clone(), cutoff).with_close_duty(config.settlement_close_duty_percent),
        recon: ReconConfig {
            per_account_per_second: config.reconciliation_queries_per_second,
            ..ReconConfig::default()
        },
    })
}

/// Registers the books' jobs (`settlement.close_day`, `reconciliation.run`) on the runner.
/// A reconciliation paced per gateway account can outlast the runner's `lease`, so while a
/// books job runs its lease is extended every third of it: no other runner takes the job over
/// while this one is alive.
pub fn register_books_jobs(
    runner: &mut Runner,
    engine: &Engine,
    books: &BooksApi,
    lease: Duration,
) {
    for kind in payment_jobs::BOOKS_KINDS {
        let (engine, books, recon) = (engine.clone(), books.books.clone(), books.recon.clone());
        let handler: Handler = Arc::new(move |job| {
            let (engine, books, recon) = (engine.clone(), books.clone(), recon.clone());
            Box::pin(async move {
                let subject = job.dedupe_key.clone().unwrap_or_default();
                let work = payment_jobs::handle_books(&engine, &books, &recon, &job.kind, &subject);
                let outcome = tokio::select! {
                    outcome = work => outcome,
                    () = keep_lease(books.db(), &job, lease) => {
                        // The lease was lost: another runner owns the job now.
                        return Outcome::RetryAt {
                            at_ms: store::clock::now_ms(),
                            error: "lease lost".into(),
                        };
                    }
                };
                match outcome {
                    JobOutcome::Done => Outcome::Done,
                    JobOutcome::RetryAt(at) => Outcome::RetryAt {
                        at_ms: at.timestamp_millis(),
                        error: "next cut-off".into(),
                    },
                }
            })
        });
        runner.register(kind, handler);
    }
}

/// Extends `job`'s lease by `lease` every third of it; returns only when the lease is lost.
async fn keep_lease(db: &Database, job: &store::jobs::Job, lease: Duration) {
    let Some(owner) = job.lease_owner.clone() else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(lease / 3).await;
        let (id, owner) = (job.id.clone(), owner.clone());
        let held = db
            .write(move |c| {
                store::jobs::extend_lease(c, &id, &owner, lease, store::clock::now_ms())
            })
            .await;
        // A storage hiccup is not a lost lease: try again at the next beat.
        if let Ok(false) = held {
            return;
        }
    }
}

/// Keeps `payfac_reconciliation_breaks_open` current: read from the database every `every`
/// until `shutdown` (every process, so whichever one Prometheus scrapes reports it).
pub async fn break_gauge_loop(
    gauge: payments::metrics::BreakGauge,
    db: Database,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        if let Err(e) = gauge.refresh(&db).await {
            tracing::debug!(error = %e, "cannot refresh the reconciliation break gauge");
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Registers the job that fans out, after its commit, an event whose merchant has more
/// subscribed endpoints than [`store::events::INLINE_FANOUT_MAX`].
pub fn register_fanout_job(runner: &mut Runner, db: &Database) {
    let db = db.clone();
    let handler: Handler = Arc::new(move |job| {
        let db = db.clone();
        Box::pin(async move {
            let Some(event_id) = job.dedupe_key.clone() else {
                return Outcome::Done;
            };
            let now = store::clock::now_ms();
            match db
                .write(move |c| store::events::fan_out_later(c, &event_id, now))
                .await
            {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::RetryAt {
                    at_ms: now + 5_000,
                    error: e.to_string(),
                },
            }
        })
    });
    runner.register(store::events::FANOUT_JOB_KIND, handler);
}

/// The webhook fan-out settings, read from payfac's config by their `PAYFAC_WEBHOOK_*` names.
///
/// Only sandbox mode with no real CodePay gateway configured allows http and private addresses
/// by default (so a newcomer's local receiver works; the start-up log says so). As soon as a
/// real gateway is configured the guard is strict whatever the database: SQLite alone says
/// nothing about who can reach the merchant API. An explicit `PAYFAC_WEBHOOK_ALLOW_*` still wins
/// (and is logged at start).
pub fn fanout_config(config: &Config) -> anyhow::Result<FanoutConfig> {
    let permissive = permissive_webhooks_by_default(config);
    FanoutConfig::from_lookup(|name| match name {
        "PAYFAC_WEBHOOK_ALLOW_HTTP" | "PAYFAC_WEBHOOK_ALLOW_PRIVATE" => config
            .lookup(name)
            .or_else(|| permissive.then(|| "true".to_owned())),
        _ => config.lookup(name),
    })
    .map_err(|e| anyhow::anyhow!("invalid webhook configuration: {e}"))
}

/// Whether the SSRF guard defaults to permissive: sandbox mode without a real gateway.
pub fn permissive_webhooks_by_default(config: &Config) -> bool {
    config.is_sandbox() && config.codepay_base_url.is_none()
}

/// What the `/v1/webhook-endpoints` and `/v1/events` routes need.
pub fn webhook_api(
    db: Database,
    keyring: Arc<MasterKeyring>,
    fanout: &FanoutConfig,
    limits: WebhookLimits,
) -> WebhookApi {
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
    .with_limits(limits)
}

/// The per-merchant webhook limits the config sets.
pub fn webhook_limits(config: &Config) -> WebhookLimits {
    WebhookLimits {
        max_endpoints: config.webhook_max_endpoints,
        max_redeliveries_per_event: config.webhook_max_redeliveries,
    }
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

/// The merchant JWT keys, signing key first. Without `jwt_signing_key` they are derived from the
/// master keys (kid `mk-<master key id>`), so rotating the master key rotates the token key and
/// tokens signed before the rotation keep verifying while the old master key stays in
/// `master_key_previous`. A configured key works the same way with `jwt_signing_key_previous`;
/// its kid is a digest prefix so the same key has the same kid everywhere.
pub fn token_keys(config: &Config, keyring: &MasterKeyring) -> Vec<(String, Secret)> {
    match &config.jwt_signing_key {
        Some(key) => {
            let previous = config
                .jwt_signing_key_previous
                .as_ref()
                .map_or("", |k| k.expose())
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Secret::new(k.to_owned()));
            std::iter::once(key.clone())
                .chain(previous)
                .map(|k| (TokenIssuer::kid_for("jk", &k), k))
                .collect()
        }
        None => keyring
            .derive_subkeys("payfac/jwt/v1")
            .into_iter()
            .map(|(id, k)| (format!("mk-{id}"), k))
            .collect(),
    }
}

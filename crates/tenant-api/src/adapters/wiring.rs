//! One call that builds the [`AppState`] over the real crates, for the `payfac` binary.

use super::accounts::SqlAccountStore;
use super::cached_accounts::{self, CachedAccountStore};
use super::idempotency::SqlIdempotencyStore;
use super::rate_limit::CoordinatedRateLimiter;
use crate::auth::jwt::TokenIssuer;
use crate::error::Error;
use crate::error::Result;
use crate::{AppState, SandboxRegistrar};
use domain::Secret;
use payments::gateways::{AccountSource, Gateways, REFRESH_INTERVAL};
use payments::intake::{CodePayIntake, SqlNotificationRecorder};
use payments::metrics::TransitionMetrics;
use payments::sql_store::SqlPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use std::sync::Arc;
use store::sealing::MasterKeyring;

/// What the server decides.
pub struct Wiring {
    /// Migrated database.
    pub db: store::Database,
    /// Redis or in-process coordination.
    pub coordinator: Arc<dyn store::Coordinator>,
    /// The configured CodePay client (real gateway or the embedded simulator): it carries the
    /// payments recorded without an account when there is no `default_gateway_account`.
    pub gateway: gateway_client::GatewayClient,
    /// The configured gateway's public key (verifies its notifications).
    pub gateway_public_key: gateway_client::PublicKey,
    /// The `gateway_accounts` row payments go through when their merchant names no account or
    /// rule (the server's `default` or `sandbox` row); it also carries the payments recorded
    /// without an account. `None`: those go through `gateway`.
    pub default_gateway_account: Option<domain::GatewayAccountId>,
    /// Counts the gateway accounts' calls, when given.
    pub gateway_metrics: Option<gateway_client::GatewayMetrics>,
    /// Engine tunables; `public_url` is also the base of `notify_url`.
    pub engine: EngineConfig,
    /// `(kid, secret)` token signing keys, current first; each ≥ 32 bytes.
    pub token_keys: Vec<(String, Secret)>,
    /// Requests per second per API key.
    pub rate_limit_per_sec: u32,
    /// Registers sandbox merchants (sandbox mode only).
    pub sandbox: Option<Arc<dyn SandboxRegistrar>>,
    /// Seals what must not be stored readable: idempotent replays of one-time secrets and
    /// gateway account private keys.
    pub keyring: Arc<MasterKeyring>,
    /// Where `payfac_payment_transitions_total` and `payfac_refund_transitions_total` register.
    pub registry: prometheus::Registry,
    /// This process's instance id, heartbeating in `store::instances`: recorded on every
    /// idempotency claim, so a retry after this process died takes its claims over at once.
    /// `None` (tests) leaves claims to the lease.
    pub claimant: Option<String>,
}

/// Builds the shared state: SQL stores, the upstream that routes each payment through its
/// gateway account (`notify_url = {public_url}/callbacks/codepay/{account}`; the configured
/// gateway without an account keeps `{public_url}/callbacks/codepay`), refreshed every
/// [`REFRESH_INTERVAL`] by a task of the current runtime, and the notification intake that
/// verifies with each account's key, with recording.
pub fn app_state_from(w: Wiring) -> Result<AppState> {
    let notify_url = format!("{}/callbacks/codepay", w.engine.public_url);
    let gateways = Arc::new(Gateways::new(
        AccountSource {
            db: w.db.clone(),
            keyring: w.keyring.clone(),
            public_url: w.engine.public_url.clone(),
            metrics: w.gateway_metrics,
        },
        w.default_gateway_account,
        Some((w.gateway, w.gateway_public_key, Some(notify_url))),
    ));
    gateways.spawn_refresher(REFRESH_INTERVAL);
    // Idempotency records and payments share `w.db`, so a create folds its `Idempotency-Key`
    // into its own two commits (sealed like the idempotency store's records).
    let mut payments = SqlPaymentStore::new(w.db.clone(), w.engine.cpm_deadline)
        .with_idempotency(w.keyring.clone());
    let mut idempotency = SqlIdempotencyStore::new(w.db.clone()).with_keyring(w.keyring.clone());
    if let Some(id) = &w.claimant {
        payments = payments.with_claimant(id.clone());
        idempotency = idempotency.with_claimant(id.clone());
    }
    let payments = Arc::new(payments);
    let metrics = TransitionMetrics::register(&w.registry)
        .map_err(|e| Error::Unavailable(format!("cannot register transition metrics: {e}")))?;
    let engine = Engine::new(payments, gateways.clone(), w.engine, Arc::new(SystemClock))
        .with_metrics(Arc::new(metrics))
        .with_idempotent_creates();
    Ok(AppState {
        engine,
        // Keys and merchants are read on every request; a ≤ 1 s cache keeps revocation and
        // suspension prompt across processes (and immediate through this one).
        accounts: Arc::new(CachedAccountStore::new(
            Arc::new(SqlAccountStore::new(w.db.clone()).with_keyring(w.keyring.clone())),
            cached_accounts::DEFAULT_TTL,
        )),
        idempotency: Arc::new(idempotency),
        tokens: Arc::new(TokenIssuer::new(w.token_keys)?),
        rate_limiter: CoordinatedRateLimiter::new(w.coordinator.clone(), w.rate_limit_per_sec),
        notifications: Some(Arc::new(CodePayIntake::for_accounts(
            gateways,
            Some(Arc::new(SqlNotificationRecorder(w.db))),
        ))),
        sandbox: w.sandbox,
        commits: Some(crate::wakeups::CommitWakeups::start(
            w.coordinator,
            crate::wakeups::DEFAULT_FALLBACK,
        )),
    })
}

//! One call that builds the [`AppState`] over the real crates, for the `payfac` binary.

use super::accounts::SqlAccountStore;
use super::codepay::{CodePayIntake, CodePayUpstream};
use super::idempotency::SqlIdempotencyStore;
use super::payments::SqlPaymentStore;
use super::rate_limit::CoordinatedRateLimiter;
use super::sandbox::{SimulatorRegistrar, SqlNotificationRecorder};
use crate::auth::jwt::TokenIssuer;
use crate::error::Result;
use crate::payments::{Engine, EngineConfig, SystemClock};
use crate::{AppState, SandboxRegistrar};
use domain::Secret;
use std::sync::Arc;

/// What the server decides.
pub struct Wiring {
    /// Migrated database.
    pub db: store::Database,
    /// Redis or in-process coordination.
    pub coordinator: Arc<dyn store::Coordinator>,
    /// The CodePay client (real gateway or the embedded simulator).
    pub gateway: gateway_client::GatewayClient,
    /// The gateway's public key (verifies notifications).
    pub gateway_public_key: gateway_client::PublicKey,
    /// Engine tunables; `public_url` is also the base of `notify_url`.
    pub engine: EngineConfig,
    /// `(kid, secret)` token signing keys, current first; each ≥ 32 bytes.
    pub token_keys: Vec<(String, Secret)>,
    /// Requests per second per API key.
    pub rate_limit_per_sec: u32,
    /// The in-process simulator in sandbox mode.
    pub sandbox: Option<codepay_sim::Simulator>,
}

/// Builds the shared state: SQL stores, CodePay upstream with `notify_url =
/// {public_url}/callbacks/codepay`, verified notification intake with recording.
pub fn app_state_from(w: Wiring) -> Result<AppState> {
    let notify_url = format!("{}/callbacks/codepay", w.engine.public_url);
    let payments = Arc::new(SqlPaymentStore::new(w.db.clone(), w.engine.cpm_deadline));
    let engine = Engine::new(
        payments,
        Arc::new(CodePayUpstream::new(w.gateway, Some(notify_url))),
        w.engine,
        Arc::new(SystemClock),
    );
    Ok(AppState {
        engine,
        accounts: Arc::new(SqlAccountStore::new(w.db.clone())),
        idempotency: Arc::new(SqlIdempotencyStore::new(w.db.clone())),
        tokens: Arc::new(TokenIssuer::new(w.token_keys)?),
        rate_limiter: Arc::new(CoordinatedRateLimiter::new(
            w.coordinator,
            w.rate_limit_per_sec,
        )),
        notifications: Some(Arc::new(CodePayIntake::new(
            w.gateway_public_key,
            Some(Arc::new(SqlNotificationRecorder(w.db))),
        ))),
        sandbox: w
            .sandbox
            .map(|s| Arc::new(SimulatorRegistrar(s)) as Arc<dyn SandboxRegistrar>),
    })
}

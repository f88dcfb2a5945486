//! payfac's tenant API: auth, routes, thin handlers, idempotency, merchant accounts, OpenAPI and
//! the hosted pay page. Payments are taken, settled and refunded by the `payments` engine; this
//! crate parses, authorises, calls it and renders.
//!
//! The server builds an [`AppState`] and mounts it:
//! ```ignore
//! App::new()
//!     .wrap(actix_web::middleware::from_fn(tenant_api::request_id::middleware))
//!     .configure(|cfg| tenant_api::configure(cfg, state.clone()))
//! ```

pub mod accounts;
pub mod adapters;
pub mod audit;
pub mod auth;
pub mod error;
pub mod gateway_accounts;
pub mod idempotency;
pub mod json;
pub mod locations;
pub mod qr;
pub mod request_id;
pub mod routes;
pub mod wakeups;

pub use error::{Error, Result};
pub use routes::configure;

use std::sync::Arc;

/// In sandbox mode: registers merchants, stores and terminals with the simulator, so the
/// orders payfac sends name numbers the simulator knows.
#[async_trait::async_trait]
pub trait SandboxRegistrar: Send + Sync + 'static {
    /// A new sandbox `merchant_no` for a merchant called `name`.
    async fn register_merchant(&self, name: &str) -> Result<String>;
    /// Registers a store of the sandbox merchant `merchant_no`: `store_no` as given, or a
    /// fresh one when `None`; returns the `store_no`.
    async fn register_store(&self, merchant_no: &str, store_no: Option<&str>) -> Result<String>;
    /// Registers a terminal of store `store_no` of the sandbox merchant `merchant_no`:
    /// `terminal_sn` as given, or a fresh one when `None`; returns the `terminal_sn`.
    async fn register_terminal(
        &self,
        merchant_no: &str,
        store_no: &str,
        terminal_sn: Option<&str>,
    ) -> Result<String>;
}

/// Everything the handlers share.
pub struct AppState {
    /// The payment logic.
    pub engine: payments::Engine,
    /// Merchants and keys.
    pub accounts: Arc<dyn accounts::AccountStore>,
    /// Idempotency records.
    pub idempotency: Arc<dyn idempotency::IdempotencyStore>,
    /// Token signing.
    pub tokens: Arc<auth::jwt::TokenIssuer>,
    /// Per-key limits.
    pub rate_limiter: Arc<dyn auth::rate_limit::RateLimiter>,
    /// CodePay notification parsing/verification and recording (none: callbacks get 503).
    pub notifications: Option<Arc<dyn payments::intake::NotificationIntake>>,
    /// Sandbox merchant registration (none outside sandbox mode).
    pub sandbox: Option<Arc<dyn SandboxRegistrar>>,
    /// Wake-ups of commits that changed a payment, for `?wait=` (none: waiters poll every
    /// 200 ms).
    pub commits: Option<Arc<wakeups::CommitWakeups>>,
}

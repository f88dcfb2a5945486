//! payfac's tenant API: auth, routes, thin handlers, OpenAPI, the hosted pay page, and the one
//! place that holds the payment logic ([`payments`]).

pub mod accounts;
pub mod auth;
pub mod error;
pub mod json;
pub mod payments;
pub mod request_id;

pub use error::{Error, Result};

use std::sync::Arc;

/// Everything the handlers share.
pub struct AppState {
    /// The payment logic.
    pub engine: payments::Engine,
    /// Merchants and keys.
    pub accounts: Arc<dyn accounts::AccountStore>,
    /// Token signing.
    pub tokens: Arc<auth::jwt::TokenIssuer>,
    /// Per-key limits.
    pub rate_limiter: Arc<dyn auth::rate_limit::RateLimiter>,
}

//! Implementations of the tenant API's ports over the real crates, and the wiring that builds
//! the [`crate::AppState`].

pub mod accounts;
pub mod cached_accounts;
pub mod gateway_accounts;
pub mod idempotency;
pub mod locations;
pub mod rate_limit;
pub mod webhooks;
pub mod wiring;

//! Implementations of the payment logic's ports over the real crates.

pub mod accounts;
pub mod cached_accounts;
pub mod codepay;
pub mod gateway_accounts;
pub mod idempotency;
pub mod payments;
pub mod rate_limit;
pub mod sandbox;
pub mod webhooks;
pub mod wiring;

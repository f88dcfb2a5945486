//! Repositories: thin, typed functions over one table each, taking `&mut DbConnection`.
//!
//! Every tenant-owned lookup takes the `MerchantId`, so another merchant's id is "not found".

pub mod api_keys;
pub mod audit;
pub mod deliveries;
pub mod delivery_queue;
pub mod events;
pub mod gateway_accounts;
pub mod idempotency;
pub mod merchants;
pub mod notifications;
pub mod payments;
pub mod refunds;
pub mod webhook_admin;
pub mod webhook_endpoints;

//! Repositories: thin, typed functions taking `&mut DbConnection`, mostly over one table each.
//! The webhook side spans tables where one operation must: `events` (the outbox: an event with
//! its deliveries), `deliveries` (deliveries and attempts), `delivery_queue` (the
//! `webhook.deliver` jobs and the pump's lane claims), `webhook_endpoints`, and `webhook_admin`
//! (redeliver, recover, secret rotation, operators' views).
//!
//! Every tenant-owned lookup takes the `MerchantId`, so another merchant's id is "not found".

pub mod api_keys;
pub mod audit;
pub mod deliveries;
pub mod delivery_queue;
pub mod events;
pub mod gateway_accounts;
pub mod idempotency;
pub mod instances;
pub mod merchants;
pub mod notifications;
pub mod payments;
pub mod refunds;
pub mod webhook_admin;
pub mod webhook_endpoints;

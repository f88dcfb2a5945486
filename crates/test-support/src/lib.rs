//! Shared test plumbing for payfac's crates, used as a dev-dependency only.
//!
//! | need | use |
//! |---|---|
//! | the test services' URLs, with a panic that says how to start them | [`pg_admin_url`], [`redis_url`] |
//! | a fresh, migrated database per test | [`fresh_sqlite`], [`fresh_postgres`] (and `_sized` / `_with_url`), [`fresh_postgres_url`] |
//! | a test per backend | [`on_both_backends!`] |
//! | RSA keys without paying for 2048-bit generation in every test | [`app_key`], [`gateway_key`], [`other_key`] |
//! | sealing | [`keyring`], [`TEST_MASTER_KEY`] |
//! | the CodePay simulator over real HTTP | [`SimServer`], [`sim_config`] |
//! | a `payfac` child process | [`payfac_command`], [`free_port`] |
//! | a webhook receiver over real HTTP, scripted and recording | [`receiver::Receiver`] |
//! | webhook delivery fixtures and the delivery pump (feature `webhooks`) | `webhooks` |
//!
//! Each crate keeps its own `spawn_app`-style helper for its own API; only what several crates
//! need lives here. The PostgreSQL and Redis helpers expect `PAYFAC_TEST_DATABASE_URL` and
//! `PAYFAC_TEST_REDIS_URL` (`. scripts/test-services.sh` exports both).

pub mod db;
pub mod env;
pub mod keys;
pub mod process;
pub mod receiver;
pub mod sim;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use db::{
    DEFAULT_POSTGRES_POOL, DEFAULT_SQLITE_POOL, fresh_postgres, fresh_postgres_sized,
    fresh_postgres_url, fresh_postgres_with_url, fresh_sqlite, fresh_sqlite_sized, random_suffix,
};
pub use env::{pg_admin_url, redis_url};
pub use keys::{TEST_MASTER_KEY, app_key, gateway_key, keyring, other_key};
pub use process::{free_port, payfac_command};
pub use sim::{SimServer, sim_config};

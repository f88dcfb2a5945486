//! payfac's storage: diesel schema and repositories over PostgreSQL and SQLite, embedded
//! migrations, a leased job queue, and coordination (locks, rate limits, wake-ups) on Redis or
//! in-process.
//!
//! Callers get a [`Database`] from [`Database::connect`], run [`Database::migrate`], and do
//! their work in [`Database::write`]/[`Database::read`] closures that call the repository
//! modules (`payments::insert(conn, …)`, `jobs::enqueue(conn, …)`), so a state change, its
//! event, its deliveries and its follow-up job commit together.

pub mod clock;
pub mod coord;
mod db;
mod error;
pub mod jobs;
pub mod page;
mod repo;
pub mod retention;
pub mod rewrap;
pub mod schema;
pub mod sealing;
pub mod waits;

pub use coord::{
    Coordinator, InProcessCoordinator, LockToken, RateCount, RateDecision, RedisCoordinator,
    WakeReceiver,
};
pub use db::{Backend, Database, DbConnection, EnqueueHook};
pub use error::{StoreError, StoreResult};
pub use page::{Page, PageRequest};
pub use repo::*;

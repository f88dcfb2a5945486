//! End-to-end tests of the real `payfac` binary: the embedded default and PostgreSQL + Redis,
//! driven over HTTP the way a merchant and an operator would.

mod harness;
mod lifecycle;
#[path = "../support/pg.rs"]
mod pg;
mod receiver;
mod runner_crash;
mod webhook_flows;
mod webhooks;

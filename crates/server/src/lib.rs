//! The `payfac` binary's library half: configuration, wiring and subcommands, kept in a
//! library so the black-box tests can reuse the config parser and the subcommand runner.

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod health;
pub mod instance;
pub mod keys;
pub mod metrics;
pub mod run;
pub mod runner;
pub mod sandbox;
pub mod telemetry;
pub mod upstream;
pub mod wake;
pub mod wiring;

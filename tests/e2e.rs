//! End-to-end tests of the real `payfac` binary: the embedded default and PostgreSQL + Redis,
//! driven over HTTP the way a merchant and an operator would. Needs the test services
//! (`. scripts/test-services.sh`); see `support::binary` for how the binary is found or built.

mod support;

mod books;
mod create_killed_mid_call;
mod fault_matrix;
mod graceful_shutdown;
mod kill_test;
mod killed_worker_takeover;
mod metrics;
mod pos_terminal_payments;
mod readiness_follows_the_database;
mod routing_two_gateways;
mod sandbox_control;
mod sandbox_routing;
mod secrets_stay_out_of_logs;
mod webhook_delivery;
mod webhook_endpoint_management;

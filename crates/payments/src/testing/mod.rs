//! Test doubles of the engine's ports: an in-memory [`memory::MemoryPaymentStore`] with the
//! real stores' compare-and-swap and uniqueness semantics, a scripted CodePay
//! ([`fake::FakeCodePay`]) and a hand-moved clock. Built for this crate's unit tests and, with
//! the `testing` feature, for other crates' tests; never part of the `payfac` binary's paths.

pub mod fake;
pub mod memory;

//! Black-box tests of the simulator over real HTTP.

mod helpers;

mod codes;
mod cpm;
mod faults;
mod mpm;
mod refund_outcomes;
mod refunds;
mod strictness;

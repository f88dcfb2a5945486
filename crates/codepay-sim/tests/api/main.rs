//! Black-box tests of the simulator over real HTTP.

mod helpers;

mod codes;
mod cpm;
mod faults;
mod fees;
mod mpm;
mod refund_outcomes;
mod refunds;
mod stores;
mod strictness;

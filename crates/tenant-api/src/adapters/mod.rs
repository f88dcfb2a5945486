//! Implementations of the payment logic's ports over the real crates.

pub mod accounts;
pub mod codepay;
pub mod rate_limit;

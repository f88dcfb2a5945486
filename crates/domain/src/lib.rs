//! payfac's domain: the types and rules every other crate shares.
//!
//! Pure by design: no I/O, no async runtime, no clock reads except where an id needs its
//! timestamp. Everything here can be built only in a valid state ("parse, don't validate"):
//! a [`Money`] that exists has an amount representable in its currency, a [`PaymentId`] that
//! exists carries its `pay_` prefix.

pub mod codepay_status;
pub mod error;
pub mod event;
pub mod ids;
pub mod money;
pub mod payment;
pub mod refund;
pub mod routing;
pub mod secret;
pub mod wallet;

pub use codepay_status::TransStatus;
pub use error::DomainError;
pub use event::EventType;
pub use ids::*;
pub use money::{Currency, Money};
pub use payment::{PaymentMode, PaymentStatus};
pub use refund::RefundStatus;
pub use routing::RoutingRule;
pub use secret::{Secret, SecretUrl};
pub use wallet::Wallet;

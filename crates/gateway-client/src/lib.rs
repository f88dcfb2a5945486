//! payfac's CodePay client: the RSA2 signing rule of the gateway contract, the flat JSON
//! envelope, typed operations whose outcomes cannot be confused, notification verification, and
//! the table of CodePay's business error codes ([`codes`]).

pub mod cli;
pub mod client;
pub mod codes;
pub mod envelope;
pub mod error;
pub mod metrics;
pub mod notification;
pub mod operations;
pub mod outcome;
pub mod signing;
mod wire;

#[cfg(test)]
mod test_support;

pub use client::{GatewayClient, GatewayConfig};
pub use codes::CodeClass;
pub use error::{CliError, ClientError, KeyError, NotificationError, SignatureError};
pub use metrics::GatewayMetrics;
pub use notification::{Notification, parse_notification};
pub use operations::{
    CpmSubmit, MerchantRef, MpmCreate, MpmCreated, Operation, OrderQuery, OrderRef, PaymentFields,
    RefundAccepted, RefundQuery, RefundSubmit, Revoke, TransactionResult,
};
pub use outcome::{CallOutcome, UnknownReason};
pub use signing::{PrivateKey, PublicKey, canonical_string, sign_message, verify_message};
pub use wire::FieldError;

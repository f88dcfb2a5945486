//! payfac's CodePay client: the RSA2 signing rule of the gateway contract (§5), the flat JSON
//! envelope, typed operations whose outcomes cannot be confused, and notification verification.

pub mod error;
pub mod signing;

pub use error::{KeyError, SignatureError};
pub use signing::{PrivateKey, PublicKey, canonical_string, sign_message, verify_message};

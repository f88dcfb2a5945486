//! payfac's book-keeping rules, as pure functions and types (no I/O, no clock reads).
//!
//! - [`pricing`]: versioned price lists, the fee of a payment, the fee share a refund gives back.
//! - [`journal`] and [`postings`]: balanced double-entry journals and the rules that say which
//!   accounts each event moves; [`balances`] folds journals into account balances.
//! - [`cutoff`]: the settlement cut-off and the UTC window of a business date.
//!
//! Amounts are integer minor units of one currency ([`domain::Money`]); every sum is checked.

pub mod balances;
pub mod cutoff;
pub mod error;
pub mod journal;
pub mod postings;
pub mod pricing;

pub use balances::Balances;
pub use cutoff::{Cutoff, Window};
pub use error::LedgerError;
pub use journal::{Account, Journal, JournalKind, Posting, Side, Subject};
pub use pricing::{Fee, PriceList, Rate};

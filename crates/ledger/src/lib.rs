//! payfac's book-keeping rules, as pure functions and types (no I/O, no clock reads).
//!
//! - [`pricing`]: versioned price lists, the fee of a payment, the fee share a refund gives back.
//! - [`journal`] and [`postings`]: balanced double-entry journals and the rules that say which
//!   accounts each event moves; [`balances`] folds journals into account balances.
//! - [`cutoff`]: the settlement cut-off and the UTC window of a business date.
//! - [`statement`] and [`csv`]: a merchant's daily statement, its totals and its CSV.
//!
//! Amounts are integer minor units of one currency ([`domain::Money`]); every sum is checked.
//! `docs/books.md` describes the rules with a worked example.

pub mod balances;
pub mod csv;
pub mod cutoff;
pub mod error;
pub mod journal;
pub mod postings;
pub mod pricing;
pub mod statement;

pub use balances::Balances;
pub use cutoff::{Cutoff, Window};
pub use error::LedgerError;
pub use journal::{Account, Journal, JournalKind, Posting, Side, Subject};
pub use pricing::{Fee, PriceList, Rate};
pub use statement::{LineKind, Statement, StatementLine, StatementTotals};

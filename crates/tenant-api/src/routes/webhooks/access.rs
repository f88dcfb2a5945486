//! The shape every webhook handler shares: check the caller, run one store transaction, turn
//! store errors into the public 404 or 503. Handlers parse their path id and body between the
//! check and the transaction, so a caller without the scope gets the 403 before any 400 or 404.

use super::{WRITE, Webhooks};
use crate::auth::Principal;
use crate::error::{Error, Result};
use domain::MerchantId;
use store::{DbConnection, StoreError, StoreResult};

/// A store error as the caller sees it: a missing row is a 404 naming `what` and `id` as asked
/// (`""` for lists, where only the merchant itself could be missing); anything else is a 503.
fn store_error<'a>(what: &'static str, id: &'a str) -> impl Fn(StoreError) -> Error + 'a {
    move |e| {
        if e.is_not_found() {
            Error::not_found(what, id)
        } else {
            Error::Unavailable(e.to_string())
        }
    }
}

/// The store as a merchant's caller cleared for one webhook scope sees it.
pub(super) struct MerchantStore<'a> {
    api: &'a Webhooks,
    /// The caller's merchant.
    pub(super) merchant: MerchantId,
    /// Cleared for `webhooks:write`: its handlers change rows, so they get write transactions.
    write: bool,
}

impl Webhooks {
    /// The caller's merchant store when its credential holds `scope` (403 otherwise).
    pub(super) fn for_merchant(
        &self,
        principal: &Principal,
        scope: &str,
    ) -> Result<MerchantStore<'_>> {
        let merchant = principal.merchant(scope)?.clone();
        let write = scope == WRITE;
        Ok(MerchantStore {
            api: self,
            merchant,
            write,
        })
    }

    /// Operators' lists (the handler checks the operator): one read transaction.
    pub(super) async fn read<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        self.0.db.read(f).await.map_err(store_error(what, ""))
    }
}

impl MerchantStore<'_> {
    /// Runs `f` on the caller's merchant in one transaction (a write one when cleared for
    /// `webhooks:write`, a read one otherwise); a missing row is a 404 for `what` `id`.
    pub(super) async fn run<T, F>(&self, what: &'static str, id: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &MerchantId) -> StoreResult<T> + Send + 'static,
    {
        let merchant = self.merchant.clone();
        let f = move |c: &mut DbConnection| f(c, &merchant);
        let db = &self.api.0.db;
        let done = if self.write {
            db.write(f).await
        } else {
            db.read(f).await
        };
        done.map_err(store_error(what, id))
    }
}

//! Repositories: thin, typed functions taking `&mut DbConnection`, mostly over one table each.
//! The webhook side spans tables where one operation must: `events` (the outbox: an event with
//! its deliveries), `deliveries` (deliveries and attempts), `delivery_queue` (the
//! `webhook.deliver` jobs and the pump's lane claims), `webhook_endpoints`, and `webhook_admin`
//! (redeliver, recover, secret rotation, operators' views).
//!
//! Every tenant-owned lookup takes the `MerchantId`, so another merchant's id is "not found".

pub mod api_keys;
pub mod audit;
pub mod deliveries;
pub mod delivery_queue;
pub mod events;
pub mod gateway_accounts;
pub mod idempotency;
pub mod instances;
pub mod ledger;
pub mod merchants;
pub mod notifications;
pub mod payments;
pub mod pricing;
pub mod reconciliation;
pub mod refunds;
pub mod settlements;
pub mod stores;
pub mod terminals;
pub mod webhook_admin;
pub mod webhook_endpoints;

/// Runs `update` over `ids` in `IN`-lists of at most 1 000 and adds up the rows it changed.
pub(crate) fn update_in_chunks(
    ids: &[String],
    mut update: impl FnMut(&[String]) -> crate::StoreResult<usize>,
) -> crate::StoreResult<usize> {
    ids.chunks(1000)
        .try_fold(0, |n, chunk| Ok(n + update(chunk)?))
}

/// Loads rows for `ids` in `IN`-lists of at most 1 000 (SQLite's and PostgreSQL's statement
/// limits stay far away); ids with no row are left out.
pub(crate) fn by_ids_in_chunks<T>(
    ids: &[String],
    mut load: impl FnMut(&[String]) -> crate::StoreResult<Vec<T>>,
) -> crate::StoreResult<Vec<T>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        out.extend(load(chunk)?);
    }
    Ok(out)
}

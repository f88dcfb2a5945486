//! A merchant's stores: each is one CodePay `store_no`, sent with every order placed there.

use crate::page::{Page, PageRequest};
use crate::schema::stores;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;

/// A store row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stores)]
pub struct Store {
    /// `store_…`.
    pub id: String,
    /// Owner.
    pub merchant_id: String,
    /// Display name.
    pub name: String,
    /// CodePay `store_no` (unique per merchant).
    pub codepay_store_no: String,
    /// Free-text address.
    pub address: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    /// False when disabled: no new payments name it.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// The fields an update may change (`None` leaves a field as it is; `Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct StoreUpdate {
    /// New name.
    pub name: Option<String>,
    /// New or cleared address.
    pub address: Option<Option<String>>,
    /// New or cleared time zone.
    pub timezone: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Stores a new store; a `store_no` the merchant already uses is a [`StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, store: &Store) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(stores::table)
        .values(store)
        .execute(c))?;
    Ok(())
}

/// One store by id, whoever owns it (callers check ownership, so a foreign id and a missing one
/// answer the same).
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Store>> {
    Ok(on_backend!(conn, |c| stores::table
        .find(id)
        .select(Store::as_select())
        .first(c)
        .optional())?)
}

/// A merchant's stores, newest first.
pub fn list(
    conn: &mut DbConnection,
    merchant_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<Store>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = stores::table
            .filter(stores::merchant_id.eq(merchant_id))
            .select(Store::as_select())
            .into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(stores::id.lt(after));
        }
        q.order(stores::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Applies `update` to a store and returns the new row ([`StoreError::NotFound`] when absent).
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    update: &StoreUpdate,
    now: i64,
) -> StoreResult<Store> {
    let mut row = find(conn, id)?.ok_or(StoreError::NotFound)?;
    if let Some(name) = &update.name {
        row.name = name.clone();
    }
    if let Some(address) = &update.address {
        row.address = address.clone();
    }
    if let Some(timezone) = &update.timezone {
        row.timezone = timezone.clone();
    }
    if let Some(enabled) = update.enabled {
        row.enabled = enabled;
    }
    row.updated_at = now;
    let r = &row;
    on_backend!(conn, |c| diesel::update(stores::table.find(id))
        .set((
            stores::name.eq(&r.name),
            stores::address.eq(&r.address),
            stores::timezone.eq(&r.timezone),
            stores::enabled.eq(r.enabled),
            stores::updated_at.eq(r.updated_at),
        ))
        .execute(c))?;
    Ok(row)
}

//! A store's terminals (POS, counter, kiosk): each is one CodePay `terminal_sn`.

use crate::page::{Page, PageRequest};
use crate::schema::terminals;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;

/// A terminal row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = terminals)]
pub struct Terminal {
    /// `term_…`.
    pub id: String,
    /// The store it stands in.
    pub store_id: String,
    /// Owner (the store's merchant).
    pub merchant_id: String,
    /// Display name.
    pub name: String,
    /// CodePay `terminal_sn` (unique per store).
    pub codepay_terminal_sn: String,
    /// `pos`, `counter`, `kiosk`, …
    pub kind: String,
    /// False when disabled: no new payments name it.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// The fields an update may change (`None` leaves a field as it is).
#[derive(Debug, Clone, Default)]
pub struct TerminalUpdate {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Stores a new terminal; a `terminal_sn` the store already uses is a [`StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, terminal: &Terminal) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(terminals::table)
        .values(terminal)
        .execute(c))?;
    Ok(())
}

/// One terminal by id, whoever owns it.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Terminal>> {
    Ok(on_backend!(conn, |c| terminals::table
        .find(id)
        .select(Terminal::as_select())
        .first(c)
        .optional())?)
}

/// A store's terminals, newest first.
pub fn list(
    conn: &mut DbConnection,
    store_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<Terminal>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = terminals::table
            .filter(terminals::store_id.eq(store_id))
            .select(Terminal::as_select())
            .into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(terminals::id.lt(after));
        }
        q.order(terminals::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Applies `update` to a terminal and returns the new row ([`StoreError::NotFound`] when
/// absent).
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    update: &TerminalUpdate,
    now: i64,
) -> StoreResult<Terminal> {
    let mut row = find(conn, id)?.ok_or(StoreError::NotFound)?;
    if let Some(name) = &update.name {
        row.name = name.clone();
    }
    if let Some(kind) = &update.kind {
        row.kind = kind.clone();
    }
    if let Some(enabled) = update.enabled {
        row.enabled = enabled;
    }
    row.updated_at = now;
    let r = &row;
    on_backend!(conn, |c| diesel::update(terminals::table.find(id))
        .set((
            terminals::name.eq(&r.name),
            terminals::kind.eq(&r.kind),
            terminals::enabled.eq(r.enabled),
            terminals::updated_at.eq(r.updated_at),
        ))
        .execute(c))?;
    Ok(row)
}

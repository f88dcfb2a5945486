//! Every CodePay notification received, raw, with its verification result.

use crate::page::{Page, PageRequest};
use crate::schema::upstream_notifications as un;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// A stored notification.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = un)]
pub struct UpstreamNotification {
    /// `ntf_…`.
    pub id: String,
    /// Unix ms.
    pub received_at: i64,
    /// The body exactly as received.
    pub raw_body: String,
    /// Whether the signature verified.
    pub verified: bool,
    /// Why not.
    pub verification_error: Option<String>,
    /// e.g. `merchant_no:merchant_order_no:trans_status`, to spot duplicates.
    pub dedupe_key: Option<String>,
    /// `payment`/`refund` once matched.
    pub object_type: Option<String>,
    /// The matched payment or refund id.
    pub object_id: Option<String>,
    /// The matched object's merchant.
    pub merchant_id: Option<String>,
}

/// Stores a notification.
pub fn insert(conn: &mut DbConnection, n: &UpstreamNotification) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(un::table)
        .values(n)
        .execute(c))?;
    Ok(())
}

/// Records what a notification was matched to.
pub fn set_match(
    conn: &mut DbConnection,
    id: &str,
    object_type: &str,
    object_id: &str,
    merchant_id: &str,
) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(un::table.find(id))
        .set((
            un::object_type.eq(Some(object_type)),
            un::object_id.eq(Some(object_id)),
            un::merchant_id.eq(Some(merchant_id)),
        ))
        .execute(c))?;
    Ok(())
}

/// How many verified notifications carried this dedupe key before.
pub fn count_verified_with_dedupe_key(conn: &mut DbConnection, key: &str) -> StoreResult<i64> {
    Ok(on_backend!(conn, |c| un::table
        .filter(un::dedupe_key.eq(key))
        .filter(un::verified.eq(true))
        .count()
        .get_result(c))?)
}

/// Notifications, newest first (operator replay and audit).
pub fn list(
    conn: &mut DbConnection,
    only_unverified: bool,
    page: &PageRequest,
) -> StoreResult<Page<UpstreamNotification>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = un::table
            .select(UpstreamNotification::as_select())
            .into_boxed();
        if only_unverified {
            q = q.filter(un::verified.eq(false));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(un::id.lt(after));
        }
        q.order(un::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// One notification.
pub fn get(conn: &mut DbConnection, id: &str) -> StoreResult<UpstreamNotification> {
    Ok(on_backend!(conn, |c| un::table
        .find(id)
        .select(UpstreamNotification::as_select())
        .first(c))?)
}

//! The audit log: who did what to which merchant, key or endpoint.

use crate::page::{Page, PageRequest};
use crate::schema::audit_log;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// An audit entry.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    /// `aud_<ulid>`.
    pub id: String,
    /// Unix ms.
    pub at: i64,
    /// Who: an API key id, `admin-cli`, `system`.
    pub actor: String,
    /// What: `merchant.suspend`, `api_key.revoke`, …
    pub action: String,
    /// `merchant`/`api_key`/`webhook_endpoint`/…
    pub target_type: String,
    /// Id of the target.
    pub target_id: String,
    /// The merchant concerned, if any.
    pub merchant_id: Option<String>,
    /// JSON details (never secrets).
    pub details: String,
}

/// A fresh entry id that sorts after every id this process made before, even within one
/// millisecond (plain ULIDs of one millisecond sort at random), so the log lists one process's
/// entries in the order they were written.
fn next_id() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
}

/// Appends an entry; returns its id.
pub fn record(
    conn: &mut DbConnection,
    actor: &str,
    action: &str,
    target: (&str, &str),
    merchant_id: Option<&str>,
    details: &serde_json::Value,
    now: i64,
) -> StoreResult<String> {
    let entry = AuditEntry {
        id: format!("aud_{}", next_id()),
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target_type: target.0.to_owned(),
        target_id: target.1.to_owned(),
        merchant_id: merchant_id.map(str::to_owned),
        details: details.to_string(),
    };
    on_backend!(conn, |c| diesel::insert_into(audit_log::table)
        .values(&entry)
        .execute(c))?;
    Ok(entry.id)
}

/// How many entries record `action` on the target with id `target_id` (e.g. how often an event
/// was redelivered, for the per-event redelivery cap).
pub fn count_for_target(
    conn: &mut DbConnection,
    action: &str,
    target_id: &str,
) -> StoreResult<i64> {
    Ok(on_backend!(conn, |c| audit_log::table
        .filter(audit_log::action.eq(action))
        .filter(audit_log::target_id.eq(target_id))
        .count()
        .get_result(c))?)
}

/// Entries, newest first, optionally about one merchant.
pub fn list(
    conn: &mut DbConnection,
    merchant_id: Option<&str>,
    page: &PageRequest,
) -> StoreResult<Page<AuditEntry>> {
    let filter = AuditFilter {
        merchant_id: merchant_id.map(str::to_owned),
        ..AuditFilter::default()
    };
    search(conn, &filter, page)
}

/// Filters of the audit log's search; every one optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries about this merchant.
    pub merchant_id: Option<String>,
    /// This action (`merchant.suspend`, …).
    pub action: Option<String>,
    /// About this object.
    pub target_id: Option<String>,
    /// Done by this actor (an API key id).
    pub actor: Option<String>,
    /// At or after (Unix ms).
    pub at_gte: Option<i64>,
    /// Before (Unix ms).
    pub at_lt: Option<i64>,
}

/// Entries matching `filter`, newest first.
pub fn search(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditEntry>> {
    let limit = page.effective_limit();
    let f = filter;
    let rows = on_backend!(conn, |c| {
        let mut q = audit_log::table
            .select(AuditEntry::as_select())
            .into_boxed();
        if let Some(m) = &f.merchant_id {
            q = q.filter(audit_log::merchant_id.eq(m));
        }
        if let Some(a) = &f.action {
            q = q.filter(audit_log::action.eq(a));
        }
        if let Some(t) = &f.target_id {
            q = q.filter(audit_log::target_id.eq(t));
        }
        if let Some(a) = &f.actor {
            q = q.filter(audit_log::actor.eq(a));
        }
        if let Some(t) = f.at_gte {
            q = q.filter(audit_log::at.ge(t));
        }
        if let Some(t) = f.at_lt {
            q = q.filter(audit_log::at.lt(t));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(audit_log::id.lt(after));
        }
        q.order(audit_log::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

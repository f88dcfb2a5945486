//! Reconciliation with CodePay: one run per business date checked, and the breaks found (a
//! payment or refund on which payfac and CodePay disagree). A break stays `open` until a run
//! repairs it (`repaired`) or finds the two sides agreeing again (`resolved`); one open break
//! per subject and kind.

use crate::page::{Page, PageRequest};
use crate::schema::{reconciliation_breaks as rb, reconciliation_runs as rr, refunds};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// Break status: CodePay and payfac disagree and nothing safe could be done.
pub const OPEN: &str = "open";
/// Break status: a run applied CodePay's final status through the normal settle path.
pub const REPAIRED: &str = "repaired";
/// Break status: a later run found both sides agreeing.
pub const RESOLVED: &str = "resolved";

/// A reconciliation run.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rr)]
pub struct Run {
    /// `rcn_<ulid>`.
    pub id: String,
    /// The business date checked.
    pub business_date: String,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms, once done.
    pub finished_at: Option<i64>,
    /// Payments and refunds compared.
    pub checked: i64,
    /// Breaks found (open or repaired at once).
    pub breaks_found: i64,
    /// Breaks repaired.
    pub repaired: i64,
}

/// A break.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rb)]
pub struct Break {
    /// `brk_<ulid>`.
    pub id: String,
    /// The run that found it (last).
    pub run_id: String,
    /// The business date of the subject.
    pub business_date: String,
    /// `payment` or `refund`.
    pub subject_type: String,
    /// Its id.
    pub subject_id: String,
    /// Its merchant.
    pub merchant_id: String,
    /// The gateway account that carried it.
    pub gateway_account_id: Option<String>,
    /// `missing_upstream`, `status_mismatch`, `amount_mismatch`, `fee_mismatch`.
    pub kind: String,
    /// `open`, `repaired`, `resolved`.
    pub status: String,
    /// JSON: payfac's values.
    pub ours: String,
    /// JSON: CodePay's values.
    pub theirs: String,
    /// What was done or why not.
    pub detail: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Records a started run.
pub fn start_run(conn: &mut DbConnection, run: &Run) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(rr::table)
        .values(run)
        .execute(c))?;
    Ok(())
}

/// Records a run's counts and end.
pub fn finish_run(conn: &mut DbConnection, run: &Run) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(rr::table.find(&run.id))
        .set((
            rr::finished_at.eq(run.finished_at),
            rr::checked.eq(run.checked),
            rr::breaks_found.eq(run.breaks_found),
            rr::repaired.eq(run.repaired),
        ))
        .execute(c))?;
    Ok(())
}

/// Records a break: a new row, or the open break of the same subject and kind brought up to
/// date (run, values, status, detail). Returns the stored row.
pub fn record(conn: &mut DbConnection, b: &Break) -> StoreResult<Break> {
    let open: Option<Break> = on_backend!(conn, |c| rb::table
        .filter(rb::subject_id.eq(&b.subject_id))
        .filter(rb::kind.eq(&b.kind))
        .filter(rb::status.eq(OPEN))
        .select(Break::as_select())
        .first(c)
        .optional())?;
    match open {
        Some(existing) => {
            on_backend!(conn, |c| diesel::update(rb::table.find(&existing.id))
                .set((
                    rb::run_id.eq(&b.run_id),
                    rb::status.eq(&b.status),
                    rb::ours.eq(&b.ours),
                    rb::theirs.eq(&b.theirs),
                    rb::detail.eq(&b.detail),
                    rb::updated_at.eq(b.updated_at),
                ))
                .execute(c))?;
            Ok(Break {
                id: existing.id,
                created_at: existing.created_at,
                ..b.clone()
            })
        }
        None => {
            on_backend!(conn, |c| diesel::insert_into(rb::table)
                .values(b)
                .execute(c))?;
            Ok(b.clone())
        }
    }
}

/// Marks the open breaks of `subject_id` other than `still_open` kinds as resolved: the
/// subject was checked and those differences are gone. Returns how many.
pub fn resolve_others(
    conn: &mut DbConnection,
    subject_id: &str,
    still_open: &[&str],
    now: i64,
) -> StoreResult<usize> {
    Ok(on_backend!(conn, |c| diesel::update(
        rb::table
            .filter(rb::subject_id.eq(subject_id))
            .filter(rb::status.eq(OPEN))
            .filter(rb::kind.ne_all(still_open))
    )
    .set((rb::status.eq(RESOLVED), rb::updated_at.eq(now)))
    .execute(c))?)
}

/// Filters of the break list.
#[derive(Debug, Clone, Default)]
pub struct BreakFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only this business date.
    pub business_date: Option<String>,
}

/// Breaks matching `filter`, newest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &BreakFilter,
    page: &PageRequest,
) -> StoreResult<Page<Break>> {
    let limit = page.effective_limit();
    let f = filter;
    let rows = on_backend!(conn, |c| {
        let mut q = rb::table.select(Break::as_select()).into_boxed();
        if let Some(v) = &f.status {
            q = q.filter(rb::status.eq(v));
        }
        if let Some(v) = &f.kind {
            q = q.filter(rb::kind.eq(v));
        }
        if let Some(v) = &f.merchant_id {
            q = q.filter(rb::merchant_id.eq(v));
        }
        if let Some(v) = &f.business_date {
            q = q.filter(rb::business_date.eq(v));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(rb::id.lt(after));
        }
        q.order(rb::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Open breaks per kind (the `payfac_reconciliation_breaks_open` gauge).
pub fn count_open_by_kind(conn: &mut DbConnection) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_backend!(conn, |c| rb::table
        .filter(rb::status.eq(OPEN))
        .group_by(rb::kind)
        .select((rb::kind, diesel::dsl::count_star()))
        .order(rb::kind.asc())
        .load(c))?)
}

/// Refund ids created in `[from, to)` (unix ms), in id order after `after`, at most `limit`:
/// the refunds of a business day, page by page.
pub fn refund_ids_created_between(
    conn: &mut DbConnection,
    from: i64,
    to: i64,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    Ok(on_backend!(conn, |c| {
        let mut q = refunds::table
            .filter(refunds::created_at.ge(from))
            .filter(refunds::created_at.lt(to))
            .select(refunds::id)
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(refunds::id.gt(a));
        }
        q.order(refunds::id.asc()).limit(limit).load(c)
    })?)
}

/// Payment ids created in `[from, to)` (unix ms), in id order after `after`, at most `limit`.
pub fn payment_ids_created_between(
    conn: &mut DbConnection,
    from: i64,
    to: i64,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    use crate::schema::payments;
    Ok(on_backend!(conn, |c| {
        let mut q = payments::table
            .filter(payments::created_at.ge(from))
            .filter(payments::created_at.lt(to))
            .select(payments::id)
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(payments::id.gt(a));
        }
        q.order(payments::id.asc()).limit(limit).load(c)
    })?)
}

//! Settlement statements: one per merchant, currency, business date and window end, with the
//! ledger entries it covers. Immutable (the database refuses updates and deletes): a statement
//! is what was sent, and an entry belongs to at most one statement, ever
//! (`settlement_entries.entry_id` is the primary key).

use crate::page::{Page, PageRequest};
use crate::schema::{settlement_entries as se, settlements as st};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

/// A statement row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = st)]
pub struct Settlement {
    /// `stl_<ulid>`.
    pub id: String,
    /// The merchant.
    pub merchant_id: String,
    /// ISO 4217.
    pub currency: String,
    /// `YYYY-MM-DD` under `cutoff`.
    pub business_date: String,
    /// Unix ms: the business day's first instant.
    pub window_start: i64,
    /// Unix ms: entries before this, in no earlier statement, are in this one.
    pub window_end: i64,
    /// Payment lines.
    pub payment_count: i64,
    /// Refund lines.
    pub refund_count: i64,
    /// Adjustment lines.
    pub adjustment_count: i64,
    /// Σ captured.
    pub gross_minor: i64,
    /// Σ refunded.
    pub refunds_minor: i64,
    /// Σ platform fees.
    pub fees_minor: i64,
    /// Σ fees given back.
    pub fee_returns_minor: i64,
    /// Σ adjustments (signed).
    pub adjustments_minor: i64,
    /// gross − refunds − fees + fee returns + adjustments.
    pub net_minor: i64,
    /// Lines in `lines_csv`.
    pub line_count: i64,
    /// The cut-off the date was read with.
    pub cutoff: String,
    /// The lines as CSV, the exact bytes served.
    pub lines_csv: String,
    /// `sha-256=<base64>` of `lines_csv`.
    pub lines_digest: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Stores a statement and claims `entry_ids` for it. An entry already in a statement fails
/// the insert with a conflict (so a concurrent run rolls back whole), as does a second
/// statement with the same merchant, currency, date and window end.
pub fn insert(
    conn: &mut DbConnection,
    settlement: &Settlement,
    entry_ids: &[String],
) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(st::table)
        .values(settlement)
        .execute(c))?;
    match conn {
        // One statement whatever the count: the ids travel as one array parameter.
        DbConnection::Postgresql(c) => {
            diesel::sql_query(
                "INSERT INTO settlement_entries (entry_id, settlement_id) \
                 SELECT unnest($1::text[]), $2",
            )
            .bind::<Array<Text>, _>(entry_ids)
            .bind::<Text, _>(&settlement.id)
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            let rows: Vec<_> = entry_ids
                .iter()
                .map(|id| {
                    (
                        se::entry_id.eq(id.as_str()),
                        se::settlement_id.eq(settlement.id.as_str()),
                    )
                })
                .collect();
            for chunk in rows.chunks(500) {
                diesel::insert_into(se::table).values(chunk).execute(c)?;
            }
        }
    }
    Ok(())
}

/// A statement by id; with `merchant`, only that merchant's.
pub fn find(
    conn: &mut DbConnection,
    id: &str,
    merchant: Option<&str>,
) -> StoreResult<Option<Settlement>> {
    Ok(on_backend!(conn, |c| {
        let mut q = st::table
            .filter(st::id.eq(id))
            .select(Settlement::as_select())
            .into_boxed();
        if let Some(m) = merchant {
            q = q.filter(st::merchant_id.eq(m));
        }
        q.first(c).optional()
    })?)
}

/// Filters of the statement list.
#[derive(Debug, Clone, Default)]
pub struct SettlementFilter {
    /// Only this merchant's (always set for a merchant's own list).
    pub merchant_id: Option<String>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Only this business date.
    pub business_date: Option<String>,
}

/// Statements matching `filter`, newest first, without their CSV body (`lines_csv` empty).
pub fn list(
    conn: &mut DbConnection,
    filter: &SettlementFilter,
    page: &PageRequest,
) -> StoreResult<Page<Settlement>> {
    let limit = page.effective_limit();
    let f = filter;
    // A list shows totals; the CSV body is read one statement at a time.
    let columns = (
        (
            st::id,
            st::merchant_id,
            st::currency,
            st::business_date,
            st::window_start,
            st::window_end,
            st::payment_count,
            st::refund_count,
            st::adjustment_count,
            st::gross_minor,
        ),
        (
            st::refunds_minor,
            st::fees_minor,
            st::fee_returns_minor,
            st::adjustments_minor,
            st::net_minor,
            st::line_count,
            st::cutoff,
            "".into_sql::<diesel::sql_types::Text>(),
            st::lines_digest,
            st::created_at,
        ),
    );
    let rows: Vec<(SummaryHead, SummaryTail)> = on_backend!(conn, |c| {
        let mut q = st::table.select(columns).into_boxed();
        if let Some(m) = &f.merchant_id {
            q = q.filter(st::merchant_id.eq(m));
        }
        if let Some(v) = &f.currency {
            q = q.filter(st::currency.eq(v));
        }
        if let Some(v) = &f.business_date {
            q = q.filter(st::business_date.eq(v));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(st::id.lt(after));
        }
        q.order(st::id.desc()).limit(limit + 1).load(c)
    })?;
    let rows = rows.into_iter().map(|(h, t)| Settlement {
        id: h.0,
        merchant_id: h.1,
        currency: h.2,
        business_date: h.3,
        window_start: h.4,
        window_end: h.5,
        payment_count: h.6,
        refund_count: h.7,
        adjustment_count: h.8,
        gross_minor: h.9,
        refunds_minor: t.0,
        fees_minor: t.1,
        fee_returns_minor: t.2,
        adjustments_minor: t.3,
        net_minor: t.4,
        line_count: t.5,
        cutoff: t.6,
        lines_csv: t.7,
        lines_digest: t.8,
        created_at: t.9,
    });
    Ok(Page::from_rows(rows.collect(), limit))
}

type SummaryHead = (String, String, String, String, i64, i64, i64, i64, i64, i64);
type SummaryTail = (i64, i64, i64, i64, i64, i64, String, String, String, i64);

/// The ids of the entries a statement covers.
pub fn entry_ids(conn: &mut DbConnection, settlement_id: &str) -> StoreResult<Vec<String>> {
    Ok(on_backend!(conn, |c| se::table
        .filter(se::settlement_id.eq(settlement_id))
        .order(se::entry_id.asc())
        .select(se::entry_id)
        .load(c))?)
}

/// Where a close starts (PostgreSQL; see [`close_mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct CloseMark {
    /// The xmin of the snapshot taken first: every transaction with a smaller id had ended.
    #[diesel(sql_type = BigInt)]
    pub watermark: i64,
    /// The next transaction id to be assigned (the snapshot's xmax).
    #[diesel(sql_type = BigInt)]
    pub next_xid: i64,
}

/// A close that finished: every payable entry written by a transaction older than `watermark`
/// and recorded before `window_end` is in a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct CloseRun {
    /// Unix ms: the run's `end`.
    #[diesel(sql_type = BigInt)]
    pub window_end: i64,
    /// Its [`CloseMark::watermark`].
    #[diesel(sql_type = BigInt)]
    pub watermark: i64,
}

/// The mark a close takes before it reads anything: on PostgreSQL the current snapshot's xmin
/// and xmax (transaction ids as numbers); `None` on SQLite, which keeps no transaction ids (a
/// close there reads every unstated entry).
pub fn close_mark(conn: &mut DbConnection) -> StoreResult<Option<CloseMark>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(None);
    };
    Ok(Some(
        diesel::sql_query(
            "SELECT pg_snapshot_xmin(s)::text::bigint AS watermark, \
             pg_snapshot_xmax(s)::text::bigint AS next_xid FROM pg_current_snapshot() AS s",
        )
        .get_result(c)?,
    ))
}

/// The finished close a new one can start from (PostgreSQL): the one with the latest
/// `window_end` (then the highest watermark) among those whose watermark is not beyond
/// `next_xid`. A watermark beyond the transaction ids being assigned now means the database
/// was restored into another cluster: such runs say nothing about the ids of this one.
pub fn latest_close_run(conn: &mut DbConnection, next_xid: i64) -> StoreResult<Option<CloseRun>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(None);
    };
    Ok(diesel::sql_query(
        "SELECT window_end, watermark FROM settlement_runs WHERE watermark <= $1 \
         ORDER BY window_end DESC, watermark DESC LIMIT 1",
    )
    .bind::<BigInt, _>(next_xid)
    .get_result(c)
    .optional()?)
}

/// Records a close that finished (PostgreSQL; nothing on SQLite): `window_end` its end,
/// `watermark` the [`CloseMark`] it took before reading, times in unix ms.
pub fn record_close_run(
    conn: &mut DbConnection,
    run: CloseRun,
    started_at: i64,
    finished_at: i64,
) -> StoreResult<()> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(());
    };
    diesel::sql_query(
        "INSERT INTO settlement_runs (id, window_end, watermark, started_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<Text, _>(format!("srun_{}", ulid::Ulid::new()))
    .bind::<BigInt, _>(run.window_end)
    .bind::<BigInt, _>(run.watermark)
    .bind::<BigInt, _>(started_at)
    .bind::<BigInt, _>(finished_at)
    .execute(c)?;
    Ok(())
}

//! The double-entry ledger: journals and their entries, append-only.
//!
//! A journal (one business event of one merchant in one currency) is stored as one
//! `ledger_journals` row and its postings as **transfers**: each `ledger_entries` row debits one
//! account and credits another by the same positive amount (`CHECK (amount_minor > 0)`,
//! `CHECK (debit_account <> credit_account)`), so every row, every journal and the whole ledger
//! balance by construction, in the database as well as in code. `(kind, subject_id)` is unique
//! per journal: an event is posted once, whoever tries twice.
//!
//! There is no update and no delete here, and the database refuses both (triggers): a
//! correction is a new journal.

use crate::page::{Page, PageRequest};
use crate::schema::{ledger_entries as le, ledger_journals as lj, settlement_entries as se};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// The account kind of a merchant's payable (its merchant is the entry's `merchant_id`).
pub const MERCHANT_PAYABLE: &str = "merchant_payable";

/// A journal row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = lj)]
pub struct Journal {
    /// `jrn_<ulid>`.
    pub id: String,
    /// `capture`, `fee`, `refund`, `fee_return`, `late_success_refund`, `reversal`,
    /// `codepay_fee`, `adjustment`.
    pub kind: String,
    /// `payment`, `refund` or `adjustment`.
    pub subject_type: String,
    /// The payment, refund or adjustment id.
    pub subject_id: String,
    /// The merchant.
    pub merchant_id: String,
    /// ISO 4217, every entry's.
    pub currency: String,
    /// Unix ms: when payfac recorded the event (the commit that changed the state).
    pub occurred_at: i64,
    /// The operator's note (adjustments).
    pub memo: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// One transfer of a journal: `amount_minor` debited to `debit_account` and credited to
/// `credit_account`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = le)]
pub struct Entry {
    /// `le_<ulid>`.
    pub id: String,
    /// Its journal.
    pub journal_id: String,
    /// The journal's kind (copied, for filtering).
    pub kind: String,
    /// The journal's subject (copied).
    pub subject_id: String,
    /// The journal's merchant (the merchant of a `merchant_payable` leg).
    pub merchant_id: String,
    /// Account kind debited.
    pub debit_account: String,
    /// Account kind credited.
    pub credit_account: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units, `> 0`.
    pub amount_minor: i64,
    /// The journal's `occurred_at`.
    pub occurred_at: i64,
    /// Unix ms.
    pub created_at: i64,
}

impl Entry {
    /// The entry's effect on the merchant's payable: `+amount` when it credits the payable,
    /// `-amount` when it debits it, 0 when it does not touch it.
    pub fn payable_effect(&self) -> i64 {
        if self.credit_account == MERCHANT_PAYABLE {
            self.amount_minor
        } else if self.debit_account == MERCHANT_PAYABLE {
            -self.amount_minor
        } else {
            0
        }
    }
}

/// Appends a journal and its entries (in the caller's transaction). A second journal of the
/// same kind about the same subject is a [`crate::StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, journal: &Journal, entries: &[Entry]) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(lj::table)
        .values(journal)
        .execute(c))?;
    on_backend!(conn, |c| diesel::insert_into(le::table)
        .values(entries)
        .execute(c))?;
    Ok(())
}

/// Inserts several journals and all their entries in two statements (a payment's success
/// posts up to three journals; one round trip each would triple their cost).
pub fn insert_all(
    conn: &mut DbConnection,
    journals: &[Journal],
    entries: &[Entry],
) -> StoreResult<()> {
    if journals.is_empty() {
        return Ok(());
    }
    on_backend!(conn, |c| diesel::insert_into(lj::table)
        .values(journals)
        .execute(c))?;
    if !entries.is_empty() {
        on_backend!(conn, |c| diesel::insert_into(le::table)
            .values(entries)
            .execute(c))?;
    }
    Ok(())
}

/// The journals about a payment, refund or adjustment, oldest first.
pub fn journals_of(conn: &mut DbConnection, subject_id: &str) -> StoreResult<Vec<Journal>> {
    Ok(on_backend!(conn, |c| lj::table
        .filter(lj::subject_id.eq(subject_id))
        .order(lj::id.asc())
        .select(Journal::as_select())
        .load(c))?)
}

/// The entries of journals about `subject_id`, oldest first.
pub fn entries_of(conn: &mut DbConnection, subject_id: &str) -> StoreResult<Vec<Entry>> {
    Ok(on_backend!(conn, |c| le::table
        .filter(le::subject_id.eq(subject_id))
        .order(le::id.asc())
        .select(Entry::as_select())
        .load(c))?)
}

/// Filters of the entry list. All optional.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only entries debiting or crediting this account kind.
    pub account: Option<String>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Only this journal kind.
    pub kind: Option<String>,
    /// Only about this payment, refund or adjustment.
    pub subject_id: Option<String>,
    /// Occurred at or after (unix ms).
    pub occurred_gte: Option<i64>,
    /// Occurred before (unix ms).
    pub occurred_lt: Option<i64>,
}

/// Entries matching `filter`, newest first, cursor on the id.
pub fn list(
    conn: &mut DbConnection,
    filter: &EntryFilter,
    page: &PageRequest,
) -> StoreResult<Page<Entry>> {
    let limit = page.effective_limit();
    let f = filter;
    let rows = on_backend!(conn, |c| {
        let mut q = le::table.select(Entry::as_select()).into_boxed();
        if let Some(m) = &f.merchant_id {
            q = q.filter(le::merchant_id.eq(m));
        }
        if let Some(a) = &f.account {
            q = q.filter(le::debit_account.eq(a).or(le::credit_account.eq(a)));
        }
        if let Some(v) = &f.currency {
            q = q.filter(le::currency.eq(v));
        }
        if let Some(v) = &f.kind {
            q = q.filter(le::kind.eq(v));
        }
        if let Some(v) = &f.subject_id {
            q = q.filter(le::subject_id.eq(v));
        }
        if let Some(t) = f.occurred_gte {
            q = q.filter(le::occurred_at.ge(t));
        }
        if let Some(t) = f.occurred_lt {
            q = q.filter(le::occurred_at.lt(t));
        }
        if let Some(after) = &page.starting_after {
            q = q.filter(le::id.lt(after));
        }
        q.order(le::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// A merchant's payable in one currency: in no statement yet (`pending`) and in statements
/// (`settled`), minor units, positive when the platform owes the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayableBalance {
    /// ISO 4217.
    pub currency: String,
    /// Entries not yet in a statement.
    pub pending_minor: i64,
    /// Entries in statements.
    pub settled_minor: i64,
}

#[derive(QueryableByName)]
struct PayableRow {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    stated: i64,
    #[diesel(sql_type = BigInt)]
    net: i64,
}

/// The merchant's payable per currency, split by whether its entries are in a statement;
/// currencies ascending.
pub fn payable_balances(
    conn: &mut DbConnection,
    merchant_id: &str,
) -> StoreResult<Vec<PayableBalance>> {
    let sql = |p: &str| {
        format!(
            "SELECT e.currency AS currency, \
               CAST(CASE WHEN s.entry_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS stated, \
               CAST(COALESCE(SUM(CASE WHEN e.credit_account = '{MERCHANT_PAYABLE}' \
                 THEN e.amount_minor ELSE -e.amount_minor END), 0) AS BIGINT) AS net \
             FROM ledger_entries e LEFT JOIN settlement_entries s ON s.entry_id = e.id \
             WHERE e.merchant_id = {p} AND (e.debit_account = '{MERCHANT_PAYABLE}' \
               OR e.credit_account = '{MERCHANT_PAYABLE}') \
             GROUP BY e.currency, CASE WHEN s.entry_id IS NULL THEN 0 ELSE 1 END \
             ORDER BY e.currency"
        )
    };
    let rows: Vec<PayableRow> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql("$1"))
            .bind::<Text, _>(merchant_id)
            .load(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(sql("?1"))
            .bind::<Text, _>(merchant_id)
            .load(c)?,
    };
    let mut out: Vec<PayableBalance> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|b| b.currency != r.currency) {
            out.push(PayableBalance {
                currency: r.currency.clone(),
                pending_minor: 0,
                settled_minor: 0,
            });
        }
        if let Some(b) = out.last_mut() {
            if r.stated == 0 {
                b.pending_minor = r.net;
            } else {
                b.settled_minor = r.net;
            }
        }
    }
    Ok(out)
}

/// The (merchant, currency) pairs having payable entries in no statement that occurred
/// before `before` (unix ms).
pub fn unstated_pairs(conn: &mut DbConnection, before: i64) -> StoreResult<Vec<(String, String)>> {
    Ok(on_backend!(conn, |c| le::table
        .left_join(se::table)
        .filter(se::entry_id.nullable().is_null())
        .filter(le::occurred_at.lt(before))
        .filter(
            le::debit_account
                .eq(MERCHANT_PAYABLE)
                .or(le::credit_account.eq(MERCHANT_PAYABLE))
        )
        .select((le::merchant_id, le::currency))
        .distinct()
        .order((le::merchant_id.asc(), le::currency.asc()))
        .load(c))?)
}

/// [`unstated_payable`] of each (merchant, currency) pair of `pairs`, in the caller's (read)
/// transaction, only those that occurred at or after `from` when given: one query per pair,
/// each an index range scan of that pair whose rows are looked up one by one in
/// `settlement_entries`' primary key.
///
/// On PostgreSQL this transaction (only) turns hash and merge joins off, so that the anti-join
/// with `settlement_entries` is always that nested loop of index probes. Left to itself the
/// planner sometimes hashed all of `settlement_entries` for every pair: with a plan cached
/// while the table was small (a close writes claims between its reads), or for a merchant
/// with a long history. Either made a close of 100,000 payments 5 to 15 times slower.
pub fn unstated_payable_of_pairs(
    conn: &mut DbConnection,
    pairs: &[(String, String)],
    from: Option<i64>,
    before: i64,
) -> StoreResult<Vec<Vec<Entry>>> {
    if let DbConnection::Postgresql(c) = conn {
        index_probes_only(c)?;
    }
    let from = from.unwrap_or(i64::MIN);
    pairs
        .iter()
        .map(|(merchant, currency)| {
            Ok(on_backend!(conn, |c| le::table
                .left_join(se::table)
                .filter(se::entry_id.nullable().is_null())
                .filter(le::merchant_id.eq(merchant))
                .filter(le::currency.eq(currency))
                .filter(le::occurred_at.ge(from))
                .filter(le::occurred_at.lt(before))
                .filter(
                    le::debit_account
                        .eq(MERCHANT_PAYABLE)
                        .or(le::credit_account.eq(MERCHANT_PAYABLE))
                )
                .order((le::occurred_at.asc(), le::id.asc()))
                .select(Entry::as_select())
                .load(c))?)
        })
        .collect()
}

/// Turns hash and merge joins off for the rest of the caller's (read) transaction only, so that
/// an anti-join with `settlement_entries` is always a nested loop of index probes.
fn index_probes_only(c: &mut diesel::PgConnection) -> StoreResult<()> {
    diesel::connection::SimpleConnection::batch_execute(
        c,
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
    )?;
    Ok(())
}

/// Every (merchant, currency) pair that has ledger entries, in order. On PostgreSQL a skip scan
/// of the `(merchant_id, currency, occurred_at)` index: one index descent per pair, whatever the
/// number of entries.
pub fn entry_pairs(conn: &mut DbConnection) -> StoreResult<Vec<(String, String)>> {
    #[derive(QueryableByName)]
    struct Pair {
        #[diesel(sql_type = Text)]
        merchant_id: String,
        #[diesel(sql_type = Text)]
        currency: String,
    }
    let rows: Vec<Pair> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(
            "WITH RECURSIVE p (merchant_id, currency) AS ( \
               (SELECT merchant_id, currency FROM ledger_entries \
                ORDER BY merchant_id, currency LIMIT 1) \
               UNION ALL \
               SELECT n.merchant_id, n.currency FROM p CROSS JOIN LATERAL ( \
                 SELECT e.merchant_id, e.currency FROM ledger_entries e \
                 WHERE (e.merchant_id, e.currency) > (p.merchant_id, p.currency) \
                 ORDER BY e.merchant_id, e.currency LIMIT 1) n) \
             SELECT merchant_id, currency FROM p",
        )
        .load(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT DISTINCT merchant_id, currency FROM ledger_entries \
             ORDER BY merchant_id, currency",
        )
        .load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|p| (p.merchant_id, p.currency))
        .collect())
}

/// PostgreSQL: the payable entries in no statement that occurred before `before` (unix ms) and
/// were written by a transaction whose id is at least `watermark` (the `txid` column), ordered
/// by merchant, currency, time and id. A range of the BRIN index on `txid`: what was written
/// since, not the whole ledger. SQLite keeps no transaction ids: an error there.
pub fn unstated_payable_written_since(
    conn: &mut DbConnection,
    watermark: i64,
    before: i64,
) -> StoreResult<Vec<Entry>> {
    let DbConnection::Postgresql(c) = conn else {
        return Err(crate::StoreError::Corrupt(
            "entries by writing transaction are kept on PostgreSQL only".into(),
        ));
    };
    index_probes_only(c)?;
    Ok(le::table
        .left_join(se::table)
        .filter(se::entry_id.nullable().is_null())
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("ledger_entries.txid >= ")
                .bind::<BigInt, _>(watermark),
        )
        .filter(le::occurred_at.lt(before))
        .filter(
            le::debit_account
                .eq(MERCHANT_PAYABLE)
                .or(le::credit_account.eq(MERCHANT_PAYABLE)),
        )
        .order((
            le::merchant_id.asc(),
            le::currency.asc(),
            le::occurred_at.asc(),
            le::id.asc(),
        ))
        .select(Entry::as_select())
        .load(c)?)
}

/// The merchant's payable entries in `currency` that are in no statement and occurred before
/// `before` (unix ms), oldest first: [`unstated_payable_of_pairs`] of that one pair, so in the
/// caller's read transaction and with its plan settings.
pub fn unstated_payable(
    conn: &mut DbConnection,
    merchant_id: &str,
    currency: &str,
    before: i64,
) -> StoreResult<Vec<Entry>> {
    let pair = [(merchant_id.to_owned(), currency.to_owned())];
    Ok(unstated_payable_of_pairs(conn, &pair, None, before)?
        .pop()
        .unwrap_or_default())
}

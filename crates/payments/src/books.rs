//! The books over SQL: pricing versions, balances, the ledger's entries, manual adjustments and
//! daily settlement statements (docs/books.md). The payment engine posts the journals of its
//! state changes itself (`crate::posting`); this service is what operators, merchants and the
//! settlement job read and run.
//!
//! # Statements
//! A run for business date `D` at `now` looks at the payable entries of every merchant that are
//! in no statement yet and were recorded before `end = min(window(D).end, now)`, groups them by
//! merchant, currency and business date, and stores one immutable statement per group (each
//! with `window_end = end`), with a `settlement.created` event: a batch of merchants per read
//! and per transaction, one statement per transaction after a lost race, and a pause between
//! batches that leaves the machine to the API. So a run for today closes what has happened so
//! far, and what happens later today goes into the next statement; a run that finds nothing new
//! creates nothing (idempotent); and an entry recorded late for a day already closed goes into
//! a new statement of its own day.

use crate::error::{PaymentError, Result};
use crate::posting;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{Currency, EventType, MerchantId};
use ledger::{Cutoff, LineKind, PriceList, Rate, Statement, StatementLine};
use serde::Serialize;
use std::collections::BTreeMap;
use store::ledger::{Entry, EntryFilter, MERCHANT_PAYABLE, PayableBalance};
use store::settlements::{Settlement, SettlementFilter};
use store::{Database, Page, PageRequest, StoreError};
use utoipa::ToSchema;

/// How many times a statement or pricing write that lost a race is tried again.
const RACE_RETRIES: usize = 5;

/// How many (merchant, currency) pairs' unstated entries one read transaction of a close
/// loads, and whose statements one write transaction then stores (see
/// [`Books::with_close_batch`]).
pub const CLOSE_BATCH_PAIRS: usize = 16;

/// The share of a close's wall time spent working, in percent, unless set otherwise
/// ([`Books::with_close_duty`]): after each batch the close pauses three times as long as the
/// batch took, so it leaves most of the database's and the host's CPU to the API.
pub const CLOSE_DUTY_PERCENT: u32 = 25;

/// The SQL side of the books.
#[derive(Clone)]
pub struct Books {
    db: Database,
    cutoff: Cutoff,
    close_batch: usize,
    close_duty: u32,
}

fn unavailable(e: StoreError) -> PaymentError {
    PaymentError::Unavailable(e.to_string())
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A statement as merchants and operators see it (API responses and the `settlement.created`
/// payload).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SettlementObject {
    /// `stl_…`.
    pub id: String,
    /// Always `settlement`.
    pub object: &'static str,
    /// The merchant.
    pub merchant_id: String,
    /// ISO 4217: every amount's currency.
    pub currency: String,
    /// The business date (`YYYY-MM-DD`) under `cutoff`.
    pub business_date: String,
    /// The settlement cut-off the date was read with (`00:00 UTC`).
    pub cutoff: String,
    /// The business day's first instant.
    pub window_start: DateTime<Utc>,
    /// What the statement covers: the merchant's entries recorded before this instant that
    /// were in no earlier statement.
    pub window_end: DateTime<Utc>,
    /// Payment lines.
    pub payment_count: i64,
    /// Refund lines.
    pub refund_count: i64,
    /// Adjustment lines.
    pub adjustment_count: i64,
    /// Σ captured, minor units.
    pub gross: i64,
    /// Σ refunded.
    pub refunds: i64,
    /// Σ platform fees.
    pub fees: i64,
    /// Σ fees given back.
    pub fee_returns: i64,
    /// Σ adjustments (signed).
    pub adjustments: i64,
    /// gross − refunds − fees + fee_returns + adjustments: what the statement adds to the
    /// merchant's settled balance.
    pub net: i64,
    /// Lines of `lines.csv`.
    pub line_count: i64,
    /// `sha-256=:<base64>:` (RFC 9530) of `lines.csv`.
    pub lines_digest: String,
    /// When it was closed.
    pub created_at: DateTime<Utc>,
}

impl From<&Settlement> for SettlementObject {
    fn from(s: &Settlement) -> Self {
        Self {
            id: s.id.clone(),
            object: "settlement",
            merchant_id: s.merchant_id.clone(),
            currency: s.currency.clone(),
            business_date: s.business_date.clone(),
            cutoff: s.cutoff.clone(),
            window_start: ms_time(s.window_start),
            window_end: ms_time(s.window_end),
            payment_count: s.payment_count,
            refund_count: s.refund_count,
            adjustment_count: s.adjustment_count,
            gross: s.gross_minor,
            refunds: s.refunds_minor,
            fees: s.fees_minor,
            fee_returns: s.fee_returns_minor,
            adjustments: s.adjustments_minor,
            net: s.net_minor,
            line_count: s.line_count,
            lines_digest: s.lines_digest.clone(),
            created_at: ms_time(s.created_at),
        }
    }
}

/// A manual adjustment of a merchant's balance, as asked.
#[derive(Clone, Debug)]
pub struct NewAdjustment {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The currency.
    pub currency: Currency,
    /// Minor units: positive credits the merchant, negative debits it; never zero.
    pub amount: i64,
    /// Why (kept on the journal).
    pub memo: String,
}

impl Books {
    /// Over a migrated database, with the settlement cut-off.
    pub fn new(db: Database, cutoff: Cutoff) -> Self {
        Self {
            db,
            cutoff,
            close_batch: CLOSE_BATCH_PAIRS,
            close_duty: CLOSE_DUTY_PERCENT,
        }
    }

    /// The same books closing `pairs` (merchant, currency) pairs per read and per write
    /// transaction (at least 1; default [`CLOSE_BATCH_PAIRS`]). A batch's entries and
    /// statements are in memory at once, so this bounds a close's memory (beside the largest
    /// merchant's day).
    pub fn with_close_batch(mut self, pairs: usize) -> Self {
        self.close_batch = pairs.max(1);
        self
    }

    /// The same books pacing a close to work `percent` of its wall time (1 to 100, clamped;
    /// default [`CLOSE_DUTY_PERCENT`]): after each batch but the last it pauses
    /// `batch time × (100 − percent) / percent`. A batch that waited for the database (the API
    /// is busy) took longer, so the pause after it is longer too. 100 never pauses.
    pub fn with_close_duty(mut self, percent: u32) -> Self {
        self.close_duty = percent.clamp(1, 100);
        self
    }

    /// The settlement cut-off.
    pub fn cutoff(&self) -> &Cutoff {
        &self.cutoff
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Stores a new pricing version of `merchant`, in force from now, with an audit entry in
    /// the same transaction. `rates` are checked by the ledger crate's rules; a refusal names
    /// the rate (`rates[1].percent_bps`).
    pub async fn set_pricing(
        &self,
        merchant: &MerchantId,
        rates: Vec<Rate>,
        actor: &str,
    ) -> Result<PriceList> {
        let now = Utc::now();
        PriceList::new(0, now, rates.clone()).map_err(rates_error)?;
        let text = serde_json::to_string(&rates)
            .map_err(|e| PaymentError::Unavailable(format!("cannot store rates: {e}")))?;
        for _ in 0..RACE_RETRIES {
            let (m, text, actor) = (merchant.clone(), text.clone(), actor.to_owned());
            let stored = self
                .db
                .write(move |c| {
                    store::merchants::get(c, &m)?;
                    let row = store::pricing::insert_next(
                        c,
                        m.as_str(),
                        &text,
                        &actor,
                        now.timestamp_millis(),
                    )?;
                    store::audit::record(
                        c,
                        &actor,
                        "merchant.pricing.update",
                        ("merchant", m.as_str()),
                        Some(m.as_str()),
                        &serde_json::json!({
                            "version": row.version,
                            "rates": serde_json::from_str::<serde_json::Value>(&text)?,
                        }),
                        now.timestamp_millis(),
                    )?;
                    Ok(row)
                })
                .await;
            match stored {
                Ok(row) => {
                    return crate::sql_store::price_list(&row).map_err(unavailable);
                }
                Err(StoreError::NotFound) => {
                    return Err(PaymentError::not_found("merchant", merchant.as_str()));
                }
                // Another change took the same version number first: number this one after it.
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(PaymentError::VersionConflict)
    }

    /// Every pricing version of `merchant`, newest first (404 for an unknown merchant).
    pub async fn pricing(&self, merchant: &MerchantId) -> Result<Vec<PriceList>> {
        let m = merchant.clone();
        let rows = self
            .db
            .read(move |c| {
                store::merchants::get(c, &m)?;
                store::pricing::history(c, m.as_str())
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound => PaymentError::not_found("merchant", merchant.as_str()),
                e => unavailable(e),
            })?;
        rows.iter()
            .map(|r| crate::sql_store::price_list(r).map_err(unavailable))
            .collect()
    }

    /// The merchant's payable per currency: pending (in no statement yet) and settled.
    pub async fn balance(&self, merchant: &MerchantId) -> Result<Vec<PayableBalance>> {
        let m = merchant.to_string();
        self.db
            .read(move |c| store::ledger::payable_balances(c, &m))
            .await
            .map_err(unavailable)
    }

    /// Ledger entries, newest first.
    pub async fn entries(&self, filter: EntryFilter, page: PageRequest) -> Result<Page<Entry>> {
        self.db
            .read(move |c| store::ledger::list(c, &filter, &page))
            .await
            .map_err(unavailable)
    }

    /// Posts a manual adjustment (one balanced journal, its memo kept) with an audit entry, in
    /// one transaction. Returns the journal's id and its entries.
    pub async fn adjust(&self, a: NewAdjustment, actor: &str) -> Result<(String, Vec<Entry>)> {
        let now = Utc::now();
        let reference = format!("adj_{}", ulid::Ulid::new());
        let journal = ledger::postings::adjustment(
            &a.merchant_id,
            &reference,
            a.currency,
            a.amount,
            &a.memo,
            now,
        )
        .map_err(|e| match e {
            ledger::LedgerError::EmptyText { field } => PaymentError::invalid(
                "parameter_invalid",
                format!("{field} must not be empty"),
                Some(field),
            ),
            other => PaymentError::invalid("parameter_invalid", other.to_string(), Some("amount")),
        })?;
        let (header, entries) = posting::stored_rows(&journal, now);
        let (m, actor) = (a.merchant_id.clone(), actor.to_owned());
        let out = (header.id.clone(), entries.clone());
        let details = serde_json::json!({
            "journal_id": header.id, "currency": a.currency.code(), "amount": a.amount,
            "memo": a.memo,
        });
        self.db
            .write(move |c| {
                store::merchants::get(c, &m)?;
                store::ledger::insert(c, &header, &entries)?;
                store::audit::record(
                    c,
                    &actor,
                    "ledger.adjustment",
                    ("ledger_journal", &header.id),
                    Some(m.as_str()),
                    &details,
                    now.timestamp_millis(),
                )?;
                Ok(())
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound => PaymentError::not_found("merchant", a.merchant_id.as_str()),
                e => unavailable(e),
            })?;
        Ok(out)
    }

    /// Closes business date `date` as of `now` (see the module doc); returns every statement
    /// of that date, the ones closed before included.
    ///
    /// Merchants are closed in batches of (merchant, currency) pairs (`with_close_batch`): one
    /// read transaction loads the unstated entries of a batch, and one transaction writes the
    /// batch's statements with their claims and events.
    ///
    /// On PostgreSQL a close that finishes is recorded with the transaction-id watermark it
    /// took before reading (`store::settlements::close_mark`); the next close then reads only
    /// the entries recorded since that close's end, and older ones written by a transaction at
    /// or after its watermark (which it could not have seen), instead of every merchant's whole
    /// history: a day's close costs the same after a year as after a day. Without such a run
    /// (SQLite, a fresh database, a database restored into another cluster) it reads every
    /// unstated entry. A batch whose write loses a race to a concurrent run is written again pair
    /// by pair, each re-read (`close_pair`), so the outcome is the same as one transaction per
    /// statement. Between batches the close pauses (`with_close_duty`).
    pub async fn close_day(&self, date: NaiveDate, now: DateTime<Utc>) -> Result<Vec<Settlement>> {
        let window = self.cutoff.window(date).map_err(date_error)?;
        if window.start > now {
            return Err(PaymentError::invalid(
                "date_in_future",
                format!("business date {date} has not started yet"),
                Some("date"),
            ));
        }
        let end = window.end.min(now).timestamp_millis();
        let started = Utc::now().timestamp_millis();
        // First, before reading anything: what this close will be able to vouch for, and the
        // last finished close it can start from (one read transaction; the mark is its first
        // statement, so its snapshot is the mark's).
        let (mark, base) = self
            .db
            .read(|c| {
                let mark = store::settlements::close_mark(c)?;
                let base = match mark {
                    Some(m) => store::settlements::latest_close_run(c, m.next_xid)?,
                    None => None,
                };
                Ok((mark, base))
            })
            .await
            .map_err(unavailable)?;
        let (pairs, from, mut late) = match base {
            // Every unstated entry before `end`, however old.
            None => {
                let pairs = self
                    .db
                    .read(move |c| store::ledger::unstated_pairs(c, end))
                    .await
                    .map_err(unavailable)?;
                (pairs, None, BTreeMap::new())
            }
            // Only what the last finished close cannot vouch for: entries recorded since its
            // end, and older ones written by transactions it could not see.
            Some(run) => {
                let from = run.window_end.min(end);
                let late = self
                    .db
                    .read(move |c| {
                        store::ledger::unstated_payable_written_since(c, run.watermark, from)
                    })
                    .await
                    .map_err(unavailable)?;
                let mut late_by_pair: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
                for e in late {
                    late_by_pair
                        .entry((e.merchant_id.clone(), e.currency.clone()))
                        .or_default()
                        .push(e);
                }
                let mut pairs = self
                    .db
                    .read(store::ledger::entry_pairs)
                    .await
                    .map_err(unavailable)?;
                pairs.extend(late_by_pair.keys().cloned());
                pairs.sort();
                pairs.dedup();
                (pairs, Some(from), late_by_pair)
            }
        };
        let mut batches = pairs.chunks(self.close_batch).peekable();
        while let Some(batch) = batches.next() {
            let worked = std::time::Instant::now();
            self.close_batch_of(batch, from, &mut late, end, now)
                .await?;
            let last = batches.peek().is_none();
            if let Some(pause) = pause_after_batch(self.close_duty, worked.elapsed(), last) {
                tokio::time::sleep(pause).await;
            }
        }
        if let Some(m) = mark {
            let run = store::settlements::CloseRun {
                window_end: end,
                watermark: m.watermark,
            };
            let finished = Utc::now().timestamp_millis();
            self.db
                .write(move |c| store::settlements::record_close_run(c, run, started, finished))
                .await
                .map_err(unavailable)?;
        }
        let date = date.to_string();
        self.db
            .read(move |c| {
                let mut all = Vec::new();
                let mut page = PageRequest::first(100);
                loop {
                    let filter = SettlementFilter {
                        business_date: Some(date.clone()),
                        ..SettlementFilter::default()
                    };
                    let got = store::settlements::list(c, &filter, &page)?;
                    let last = got.items.last().map(|s| s.id.clone());
                    all.extend(got.items);
                    match (got.has_more, last) {
                        (true, Some(last)) => page.starting_after = Some(last),
                        _ => break,
                    }
                }
                Ok(all)
            })
            .await
            .map_err(unavailable)
    }

    /// The statements of the (merchant, currency) pairs `batch` up to `end`: one read
    /// transaction for their unstated entries (a query per pair, so each is an index range
    /// scan of that pair; from `from` on when given, with the pair's entries of `late` added),
    /// one write transaction for all their statements.
    async fn close_batch_of(
        &self,
        batch: &[(String, String)],
        from: Option<i64>,
        late: &mut BTreeMap<(String, String), Vec<Entry>>,
        end: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let wanted = batch.to_vec();
        let mut read = self
            .db
            .read(move |c| store::ledger::unstated_payable_of_pairs(c, &wanted, from, end))
            .await
            .map_err(unavailable)?;
        for (pair, entries) in batch.iter().zip(read.iter_mut()) {
            if let Some(older) = late.remove(pair) {
                entries.splice(0..0, older);
            }
        }
        let mut rows = Vec::new();
        for ((merchant, currency), entries) in batch.iter().zip(&read) {
            for (date, day) in self.by_business_date(entries)? {
                rows.push(self.statement_of(merchant, currency, date, &day, end, now)?);
            }
        }
        drop(read);
        if rows.is_empty() {
            return Ok(());
        }
        let written = self
            .db
            .write(move |c| {
                for (settlement, event, ids) in &rows {
                    store::settlements::insert(c, settlement, ids)?;
                    store::events::insert(c, event)?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => Ok(()),
            // A concurrent run claimed some of these entries (or closed the same window) first:
            // nothing of this batch was written; each pair reads again what is left.
            Err(e) if e.is_conflict() => {
                for (merchant, currency) in batch {
                    self.close_pair(merchant, currency, end, now).await?;
                }
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The statements of one merchant and currency up to `end`: one per business date of its
    /// unstated entries. A concurrent run that claimed the same entries first makes this one
    /// read again and find less (or nothing) to do.
    async fn close_pair(
        &self,
        merchant: &str,
        currency: &str,
        end: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for _ in 0..RACE_RETRIES {
            let (m, cur) = (merchant.to_owned(), currency.to_owned());
            let entries = self
                .db
                .read(move |c| store::ledger::unstated_payable(c, &m, &cur, end))
                .await
                .map_err(unavailable)?;
            if entries.is_empty() {
                return Ok(());
            }
            let mut lost_race = false;
            for (date, group) in self.by_business_date(&entries)? {
                let (settlement, event, ids) =
                    self.statement_of(merchant, currency, date, &group, end, now)?;
                let written = self
                    .db
                    .write(move |c| {
                        store::settlements::insert(c, &settlement, &ids)?;
                        store::events::insert(c, &event)
                    })
                    .await;
                match written {
                    Ok(()) => {}
                    Err(e) if e.is_conflict() => lost_race = true,
                    Err(e) => return Err(unavailable(e)),
                }
            }
            if !lost_race {
                return Ok(());
            }
        }
        Err(PaymentError::VersionConflict)
    }

    /// `entries` (of one merchant and currency) by the business date they occurred on.
    fn by_business_date<'e>(
        &self,
        entries: &'e [Entry],
    ) -> Result<BTreeMap<NaiveDate, Vec<&'e Entry>>> {
        let mut groups: BTreeMap<NaiveDate, Vec<&Entry>> = BTreeMap::new();
        for e in entries {
            let date = self
                .cutoff
                .business_date(ms_time(e.occurred_at))
                .map_err(date_error)?;
            groups.entry(date).or_default().push(e);
        }
        Ok(groups)
    }

    /// The statement row, its event and the entry ids it claims, for one merchant, currency and
    /// business date.
    fn statement_of(
        &self,
        merchant: &str,
        currency: &str,
        date: NaiveDate,
        entries: &[&Entry],
        end: i64,
        now: DateTime<Utc>,
    ) -> Result<(Settlement, store::events::Event, Vec<String>)> {
        let corrupt = |what: String| PaymentError::Unavailable(format!("books: {what}"));
        let merchant_id = MerchantId::parse(merchant).map_err(|e| corrupt(e.to_string()))?;
        let cur = Currency::from_code(currency).map_err(|e| corrupt(e.to_string()))?;
        let lines = statement_lines(entries).map_err(corrupt)?;
        let adjustments = lines
            .iter()
            .filter(|l| l.kind == LineKind::Adjustment)
            .count();
        let statement = Statement::build(merchant_id, cur, date, &self.cutoff, lines)
            .map_err(|e| corrupt(e.to_string()))?;
        let csv = ledger::csv::render(cur, statement.lines());
        let totals = statement.totals();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let settlement = Settlement {
            id: format!("stl_{}", ulid::Ulid::new()),
            merchant_id: merchant.to_owned(),
            currency: currency.to_owned(),
            business_date: date.to_string(),
            window_start: statement.window().start.timestamp_millis(),
            window_end: end,
            payment_count: count(totals.count_payments),
            refund_count: count(totals.count_refunds),
            adjustment_count: count(adjustments as u64),
            gross_minor: totals.gross,
            refunds_minor: totals.refunds,
            fees_minor: totals.fees,
            fee_returns_minor: totals.fee_returns,
            adjustments_minor: totals.adjustments,
            net_minor: totals.net,
            line_count: count(statement.lines().len() as u64),
            cutoff: cutoff_text(&self.cutoff),
            lines_digest: ledger::csv::digest_header(csv.as_bytes()),
            lines_csv: csv,
            created_at: now.timestamp_millis(),
        };
        let object = SettlementObject::from(&settlement);
        let event = store::events::Event {
            id: domain::EventId::generate().into_string(),
            merchant_id: merchant.to_owned(),
            event_type: EventType::SettlementCreated.as_str().to_owned(),
            object_id: settlement.id.clone(),
            // A statement never changes: its one event is sequence 1.
            payload: crate::objects::event_payload(&object, 1).to_string(),
            created_at: now.timestamp_millis(),
        };
        Ok((
            settlement,
            event,
            entries.iter().map(|e| e.id.clone()).collect(),
        ))
    }

    /// Statements, newest first, without their CSV.
    pub async fn statements(
        &self,
        filter: SettlementFilter,
        page: PageRequest,
    ) -> Result<Page<Settlement>> {
        self.db
            .read(move |c| store::settlements::list(c, &filter, &page))
            .await
            .map_err(unavailable)
    }

    /// One statement with its CSV; with `merchant`, only that merchant's (another's is a 404).
    pub async fn statement(&self, id: &str, merchant: Option<&MerchantId>) -> Result<Settlement> {
        let (sid, m) = (id.to_owned(), merchant.map(|m| m.to_string()));
        self.db
            .read(move |c| store::settlements::find(c, &sid, m.as_deref()))
            .await
            .map_err(unavailable)?
            .ok_or_else(|| PaymentError::not_found("settlement", id))
    }
}

/// `HH:MM Zone`, as configured.
pub fn cutoff_text(c: &Cutoff) -> String {
    format!("{} {}", c.time().format("%H:%M"), c.zone_name())
}

/// One line per payment, refund or adjustment of `entries` (the payable entries of one
/// merchant, currency and business date):
///
/// - a payment: its capture is the gross, its fee the fee;
/// - a refund: its refund and fee return;
/// - an adjustment (and a reversal, which the engine never posts): the net effect on the
///   payable, as an adjustment line;
/// - a late success refunded automatically moves the payable in and out by the same amount:
///   its entries are covered by the statement (so they leave the pending balance) but it has
///   no line, as it adds nothing.
pub fn statement_lines<E: std::borrow::Borrow<Entry>>(
    entries: &[E],
) -> std::result::Result<Vec<StatementLine>, String> {
    #[derive(Default)]
    struct Parts {
        line: Option<LineKind>,
        at: i64,
        gross: i64,
        fee: i64,
        refund: i64,
        fee_return: i64,
        other: i64,
    }
    let mut by_subject: BTreeMap<&str, Parts> = BTreeMap::new();
    for e in entries.iter().map(std::borrow::Borrow::borrow) {
        let parts = by_subject.entry(&e.subject_id).or_default();
        parts.at = parts.at.max(e.occurred_at);
        let effect = e.payable_effect();
        let kind = ledger::JournalKind::parse(&e.kind)
            .ok_or_else(|| format!("entry {} has an unknown kind `{}`", e.id, e.kind))?;
        use ledger::JournalKind as K;
        match kind {
            K::Capture => (parts.line, parts.gross) = (Some(LineKind::Payment), e.amount_minor),
            K::Fee => (parts.line, parts.fee) = (Some(LineKind::Payment), e.amount_minor),
            K::Refund => (parts.line, parts.refund) = (Some(LineKind::Refund), e.amount_minor),
            K::FeeReturn => {
                (parts.line, parts.fee_return) = (Some(LineKind::Refund), e.amount_minor)
            }
            K::Adjustment | K::Reversal => {
                parts.line = Some(LineKind::Adjustment);
                parts.other += effect;
            }
            K::LateSuccessRefund | K::CodePayFee => {}
        }
        if e.debit_account != MERCHANT_PAYABLE && e.credit_account != MERCHANT_PAYABLE {
            return Err(format!("entry {} does not move a payable", e.id));
        }
    }
    let mut lines = Vec::new();
    for (id, p) in by_subject {
        let at = ms_time(p.at);
        let line = match p.line {
            None => continue,
            Some(LineKind::Payment) => StatementLine::payment(id, at, p.gross, p.fee),
            Some(LineKind::Refund) => StatementLine::refund(id, at, p.refund, p.fee_return),
            Some(LineKind::Adjustment) if p.other == 0 => continue,
            Some(LineKind::Adjustment) => StatementLine::adjustment(id, at, p.other),
        };
        lines.push(line.map_err(|e| format!("{id}: {e}"))?);
    }
    Ok(lines)
}

fn date_error(e: ledger::LedgerError) -> PaymentError {
    PaymentError::invalid("parameter_invalid", e.to_string(), Some("date"))
}

/// A refused price list as the API's error: the rate's index and field as `param`. Each field
/// was well-formed (the API checks those first), so what is left is a rule across fields (a
/// fixed amount without a currency, two rates for one wallet and currency): a 422.
fn rates_error(e: ledger::LedgerError) -> PaymentError {
    use ledger::LedgerError as L;
    let param = match &e {
        L::InvalidRate {
            index: Some(i),
            field,
            ..
        } => format!("rates[{i}].{field}"),
        L::DuplicateRate { index, .. } => format!("rates[{index}]"),
        _ => "rates".to_owned(),
    };
    PaymentError::unprocessable("pricing_invalid", e.to_string(), Some(param.as_str()))
}

/// The pause after a batch of a close that took `worked`: `None` after the last batch.
fn pause_after_batch(
    duty: u32,
    worked: std::time::Duration,
    last: bool,
) -> Option<std::time::Duration> {
    (!last).then(|| pause_after(duty, worked))
}

/// How long a close working `duty` percent of its wall time pauses after a batch that took
/// `worked` (a batch slowed by a busy database is followed by a longer pause).
fn pause_after(duty: u32, worked: std::time::Duration) -> std::time::Duration {
    let duty = duty.clamp(1, 100);
    worked * (100 - duty) / duty
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_close_pauses_for_the_rest_of_its_duty_cycle() {
        let batch = Duration::from_millis(200);
        assert_eq!(pause_after(25, batch), Duration::from_millis(600));
        assert_eq!(pause_after(50, batch), batch);
        assert_eq!(pause_after(100, batch), Duration::ZERO);
        // Out of range is clamped: 0 would never work, 1 works 1 % of the time.
        assert_eq!(pause_after(0, batch), batch * 99);
        assert_eq!(pause_after(250, batch), Duration::ZERO);
    }

    #[test]
    fn no_pause_after_the_last_batch() {
        // 3 pairs in batches of 2: a pause after the first batch only.
        let first = pause_after_batch(50, Duration::from_millis(20), false)
            .expect("a pause after the first batch");
        assert!(first >= Duration::from_millis(20), "{first:?}");
        assert_eq!(pause_after_batch(50, Duration::from_millis(20), true), None);
    }
}

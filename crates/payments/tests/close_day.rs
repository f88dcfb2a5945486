//! Closing a business day over SQL (both backends): the statements a batched close writes are
//! exactly the ones built from each merchant's unstated entries one pair at a time (same lines,
//! same CSV bytes, same digest, same totals), whatever the batch size; closing again adds only
//! what is new; an entry recorded late for a closed day gets a statement of its own; two closes
//! running at once count every entry once.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{Currency, MerchantId, Money, PaymentId, RefundId};
use ledger::{Cutoff, Journal, Statement, postings};
use payments::books::{Books, cutoff_text, statement_lines};
use std::collections::BTreeMap;
use store::Database;
use store::ledger::MERCHANT_PAYABLE;
use store::settlements::{Settlement, SettlementFilter};
use test_support::on_both_backends;

on_both_backends!(
    a_batched_close_writes_what_one_pair_at_a_time_would,
    closing_again_adds_only_what_is_new_and_late_entries_get_their_own_statement,
    two_closes_at_once_count_every_entry_once,
);

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0)
        .single()
        .expect("time")
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).expect("date")
}

fn cur(code: &str) -> Currency {
    Currency::from_code(code).expect("currency")
}

fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, cur(code)).expect("money")
}

async fn post(db: &Database, journals: Vec<Journal>) {
    for j in journals {
        let (header, entries) = payments::posting::stored_rows(&j, j.occurred_at());
        db.write(move |c| store::ledger::insert(c, &header, &entries))
            .await
            .expect("posted");
    }
}

/// Merchants with payments (capture, fee, CodePay's fee), partial refunds (refund, fee
/// return), adjustments both ways and a late success refunded automatically, on 2 and 3 March,
/// one merchant in two currencies. Returns the merchants, sorted.
async fn books_of_two_days(db: &Database, merchants: usize) -> Vec<MerchantId> {
    let mut ids: Vec<MerchantId> = (0..merchants).map(|_| MerchantId::generate()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    for m in &ids {
        let row = test_support::merchant_row(m.as_str(), 1);
        db.write(move |c| store::merchants::insert(c, &row))
            .await
            .expect("merchant");
    }
    for (k, m) in ids.iter().enumerate() {
        let k = i64::try_from(k).expect("k");
        let mut journals = Vec::new();
        for (n, day) in [(0, 2), (1, 2), (2, 3), (3, 3)] {
            let p = PaymentId::generate();
            let when = at(day, 1 + u32::try_from(n + k).expect("hour") % 20, 7);
            let amount = 1000 + 137 * (k + n);
            journals.push(postings::capture(m, &p, money(amount, "USD"), when).expect("capture"));
            journals.extend(
                postings::fee(m, &p, money(amount * 29 / 1000 + 30, "USD"), when).expect("fee"),
            );
            journals.extend(
                postings::codepay_fee(m, &p, money(amount * 6 / 1000, "USD"), when).expect("cp"),
            );
            if n % 2 == 0 {
                let r = RefundId::generate();
                let later = when + chrono::Duration::minutes(30);
                journals.push(postings::refund(m, &r, money(400, "USD"), later).expect("refund"));
                journals.extend(postings::fee_return(m, &r, money(12, "USD"), later).expect("fr"));
            }
        }
        let reference = format!("adj_{}", ulid::Ulid::new());
        let sign = if k % 2 == 0 { 1 } else { -1 };
        journals.push(
            postings::adjustment(
                m,
                &reference,
                cur("USD"),
                sign * (250 + k),
                "correction",
                at(2, 22, 0),
            )
            .expect("adjustment"),
        );
        if k == 1 {
            // A late success refunded automatically: covered, but no line.
            let p = PaymentId::generate();
            journals.push(
                postings::late_success_refund(m, &p, money(700, "USD"), at(3, 5, 0)).expect("late"),
            );
            // The same merchant also takes yen.
            let p = PaymentId::generate();
            journals.push(postings::capture(m, &p, money(5000, "JPY"), at(2, 9, 0)).expect("jpy"));
            journals.extend(postings::fee(m, &p, money(150, "JPY"), at(2, 9, 0)).expect("jpy fee"));
        }
        post(db, journals).await;
    }
    ids
}

/// What a statement must hold, built from the pair's unstated entries one pair at a time:
/// (merchant, currency, date) → (line count, counts and totals, CSV).
type Expected =
    BTreeMap<(String, String, String), ((i64, i64, i64, i64, i64, i64, i64, i64), String)>;

async fn expected(db: &Database, cutoff: &Cutoff, end: i64) -> Expected {
    let pairs = db
        .read(move |c| store::ledger::unstated_pairs(c, end))
        .await
        .expect("pairs");
    let mut out = Expected::new();
    for (m, c) in pairs {
        let (mm, cc) = (m.clone(), c.clone());
        let entries = db
            .read(move |conn| store::ledger::unstated_payable(conn, &mm, &cc, end))
            .await
            .expect("entries");
        let mut by_date: BTreeMap<NaiveDate, Vec<store::ledger::Entry>> = BTreeMap::new();
        for e in entries {
            let instant = Utc.timestamp_millis_opt(e.occurred_at).single().expect("t");
            by_date
                .entry(cutoff.business_date(instant).expect("date"))
                .or_default()
                .push(e);
        }
        for (d, group) in by_date {
            let lines = statement_lines(&group).expect("lines");
            let s = Statement::build(MerchantId::parse(&m).expect("m"), cur(&c), d, cutoff, lines)
                .expect("statement");
            let csv = ledger::csv::render(cur(&c), s.lines());
            let t = s.totals();
            let counts = (
                i64::try_from(s.lines().len()).expect("n"),
                i64::try_from(t.count_payments).expect("n"),
                i64::try_from(t.count_refunds).expect("n"),
                t.gross,
                t.fees,
                t.refunds,
                t.fee_returns,
                t.net,
            );
            out.insert((m.clone(), c.clone(), d.to_string()), (counts, csv));
        }
    }
    out
}

/// Every statement with its CSV, by (merchant, currency, date); a second statement of the
/// same key is a failure of the test.
async fn stored(db: &Database, dates: &[u32]) -> BTreeMap<(String, String, String), Settlement> {
    let mut out = BTreeMap::new();
    for d in dates {
        let filter = SettlementFilter {
            business_date: Some(date(*d).to_string()),
            ..SettlementFilter::default()
        };
        let page = db
            .read(move |c| store::settlements::list(c, &filter, &store::PageRequest::first(100)))
            .await
            .expect("list");
        for s in page.items {
            let id = s.id.clone();
            let full = db
                .read(move |c| store::settlements::find(c, &id, None))
                .await
                .expect("find")
                .expect("statement");
            let key = (
                s.merchant_id.clone(),
                s.currency.clone(),
                s.business_date.clone(),
            );
            assert!(out.insert(key, full).is_none(), "one statement per key");
        }
    }
    out
}

fn assert_matches(expected: &Expected, stored: &BTreeMap<(String, String, String), Settlement>) {
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>(),
        "one statement per merchant, currency and date"
    );
    for (key, ((lines, payments, refunds, gross, fees, refunded, returns, net), csv)) in expected {
        let s = &stored[key];
        assert_eq!(&s.lines_csv, csv, "{key:?}: the CSV, byte for byte");
        assert_eq!(
            s.lines_digest,
            ledger::csv::digest_header(csv.as_bytes()),
            "{key:?}"
        );
        assert_eq!(
            (
                s.line_count,
                s.payment_count,
                s.refund_count,
                s.gross_minor,
                s.fees_minor
            ),
            (*lines, *payments, *refunds, *gross, *fees),
            "{key:?}"
        );
        assert_eq!(
            (s.refunds_minor, s.fee_returns_minor, s.net_minor),
            (*refunded, *returns, *net),
            "{key:?}"
        );
        assert_eq!(
            s.net_minor,
            s.gross_minor - s.refunds_minor - s.fees_minor
                + s.fee_returns_minor
                + s.adjustments_minor
        );
    }
}

/// Every entry matching `filter`, through the cursor pages.
async fn all_entries(
    db: &Database,
    filter: store::ledger::EntryFilter,
) -> Vec<store::ledger::Entry> {
    db.read(move |c| {
        let mut all = Vec::new();
        let mut page = store::PageRequest::first(100);
        loop {
            let got = store::ledger::list(c, &filter, &page)?;
            page.starting_after = got.items.last().map(|e| e.id.clone());
            all.extend(got.items);
            if !got.has_more {
                return Ok(all);
            }
        }
    })
    .await
    .expect("entries")
}

/// Payable entries in no statement.
async fn unstated(db: &Database) -> i64 {
    db.read(|c| {
        let pairs = store::ledger::unstated_pairs(c, i64::MAX)?;
        let mut n = 0;
        for (m, cur) in pairs {
            n += i64::try_from(store::ledger::unstated_payable(c, &m, &cur, i64::MAX)?.len())
                .unwrap_or(0);
        }
        Ok(n)
    })
    .await
    .expect("unstated")
}

async fn a_batched_close_writes_what_one_pair_at_a_time_would(db: Database) {
    let merchants = books_of_two_days(&db, 7).await;
    let cutoff = Cutoff::midnight_utc();
    let now = at(4, 12, 0);
    // Closing 3 March covers both days: 2 March's entries are unstated and before the end.
    let end = cutoff
        .window(date(3))
        .expect("window")
        .end
        .timestamp_millis();
    let want = expected(&db, &cutoff, end).await;
    assert_eq!(
        want.len(),
        7 * 2 + 1,
        "two days of each merchant, and one yen statement"
    );
    // Batches of 2 merchants: the merchant with two currencies is in the middle of one.
    let books = Books::new(db.clone(), cutoff).with_close_batch(2);
    let closed = books.close_day(date(3), now).await.expect("closed");
    assert_eq!(
        closed.len(),
        7,
        "every statement of 3 March is answered (the yen is of 2 March)"
    );
    let got = stored(&db, &[2, 3]).await;
    assert_matches(&want, &got);
    for s in got.values() {
        assert_eq!(
            (s.window_end, s.cutoff.as_str()),
            (end, cutoff_text(&cutoff).as_str())
        );
        assert_eq!(s.created_at, now.timestamp_millis());
    }
    assert_eq!(
        unstated(&db).await,
        0,
        "every payable entry is in a statement"
    );
    // The CodePay fee never moves the payable, so it is in no statement.
    let codepay = all_entries(
        &db,
        store::ledger::EntryFilter {
            kind: Some("codepay_fee".into()),
            ..Default::default()
        },
    )
    .await
    .len();
    assert_eq!(codepay, 7 * 4);
    // Balances moved from pending to settled by each statement's net.
    for m in &merchants {
        let bal = books.balance(m).await.expect("balance");
        for b in bal {
            assert_eq!(b.pending_minor, 0);
            let settled: i64 = got
                .values()
                .filter(|s| s.merchant_id == m.as_str() && s.currency == b.currency)
                .map(|s| s.net_minor)
                .sum();
            assert_eq!(b.settled_minor, settled);
        }
    }
    // One settlement.created event per statement, to its merchant.
    let events: usize = db
        .read(move |c| {
            let mut n = 0;
            for s in got.values() {
                let m = MerchantId::parse(&s.merchant_id)?;
                let f = store::events::EventFilter {
                    object_id: Some(s.id.clone()),
                    ..Default::default()
                };
                let page = store::events::list(c, &m, &f, None, &store::PageRequest::first(10))?;
                assert!(
                    page.items
                        .iter()
                        .all(|e| e.event_type == "settlement.created")
                );
                n += page.items.len();
            }
            Ok(n)
        })
        .await
        .expect("events");
    assert_eq!(events, 15);
}

async fn closing_again_adds_only_what_is_new_and_late_entries_get_their_own_statement(
    db: Database,
) {
    let merchants = books_of_two_days(&db, 3).await;
    let cutoff = Cutoff::midnight_utc();
    let books = Books::new(db.clone(), cutoff);
    let first = books.close_day(date(3), at(4, 0, 5)).await.expect("closed");
    assert_eq!(first.len(), 3);
    let again = books.close_day(date(3), at(4, 0, 6)).await.expect("again");
    assert_eq!(
        again.iter().map(|s| &s.id).collect::<Vec<_>>(),
        first.iter().map(|s| &s.id).collect::<Vec<_>>(),
        "nothing new: the same statements"
    );
    // A payment committed after the close with a time inside 3 March (it was in flight).
    let p = PaymentId::generate();
    post(
        &db,
        vec![postings::capture(&merchants[2], &p, money(999, "USD"), at(3, 23, 59)).expect("late")],
    )
    .await;
    // The next run (4 March, so far) closes it into a statement of its own date.
    let now = at(4, 0, 30);
    let want = expected(&db, &cutoff, now.timestamp_millis()).await;
    assert_eq!(want.len(), 1);
    let closed = books.close_day(date(4), now).await.expect("next close");
    assert!(closed.is_empty(), "nothing happened on 4 March");
    let filter = SettlementFilter {
        business_date: Some(date(3).to_string()),
        ..SettlementFilter::default()
    };
    let third = books
        .statements(filter, store::PageRequest::first(100))
        .await
        .expect("statements")
        .items;
    assert_eq!(third.len(), 4, "the late statement joins the day's three");
    let late: Vec<_> = third
        .iter()
        .filter(|s| s.window_end == now.timestamp_millis())
        .collect();
    assert_eq!(late.len(), 1);
    let full = books
        .statement(&late[0].id, None)
        .await
        .expect("late statement");
    let key = (
        full.merchant_id.clone(),
        full.currency.clone(),
        full.business_date.clone(),
    );
    assert_eq!(
        (full.payment_count, full.gross_minor, full.line_count),
        (1, 999, 1)
    );
    assert_eq!(full.lines_csv, want[&key].1);
    assert_eq!(unstated(&db).await, 0);
}

async fn two_closes_at_once_count_every_entry_once(db: Database) {
    books_of_two_days(&db, 9).await;
    let cutoff = Cutoff::midnight_utc();
    let end = cutoff
        .window(date(3))
        .expect("window")
        .end
        .timestamp_millis();
    let want = expected(&db, &cutoff, end).await;
    let payable_before: i64 = want
        .values()
        .map(|((_, _, _, _, _, _, _, net), _)| net)
        .sum();
    let a = Books::new(db.clone(), cutoff).with_close_batch(3);
    let b = Books::new(db.clone(), cutoff).with_close_batch(4);
    let (ra, rb) = tokio::join!(
        a.close_day(date(3), at(4, 1, 0)),
        b.close_day(date(3), at(4, 1, 0))
    );
    ra.expect("first run");
    rb.expect("second run");
    assert_eq!(unstated(&db).await, 0);
    // Whoever wrote which statement, the same end means the same statements.
    assert_matches(&want, &stored(&db, &[2, 3]).await);
    let settled: i64 = stored(&db, &[2, 3])
        .await
        .values()
        .map(|s| s.net_minor)
        .sum();
    assert_eq!(settled, payable_before);
    let statements = stored(&db, &[2, 3]).await;
    let mut claimed: Vec<String> = Vec::new();
    for s in statements.values() {
        let id = s.id.clone();
        claimed.extend(
            db.read(move |c| store::settlements::entry_ids(c, &id))
                .await
                .expect("claims"),
        );
    }
    let mut payable: Vec<String> = all_entries(
        &db,
        store::ledger::EntryFilter {
            account: Some(MERCHANT_PAYABLE.into()),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .map(|e| e.id)
    .collect();
    claimed.sort();
    payable.sort();
    assert_eq!(claimed, payable, "every payable entry claimed, once");
}

// --- PostgreSQL: a close that follows a finished one reads only what that one cannot vouch for ---

/// (merchant, currency, date) → statement of the close that ended at `window_end`.
async fn stored_by_end(
    db: &Database,
    window_end: i64,
) -> BTreeMap<(String, String, String), Settlement> {
    let mut out = BTreeMap::new();
    for (key, s) in stored_all(db).await {
        if s.window_end == window_end {
            assert!(
                out.insert(key, s).is_none(),
                "one statement per key and end"
            );
        }
    }
    out
}

/// Every statement with its CSV (several per key possible).
async fn stored_all(db: &Database) -> Vec<((String, String, String), Settlement)> {
    db.read(|c| {
        let mut out = Vec::new();
        let mut page = store::PageRequest::first(100);
        loop {
            let got = store::settlements::list(c, &SettlementFilter::default(), &page)?;
            page.starting_after = got.items.last().map(|s| s.id.clone());
            for s in &got.items {
                let full = store::settlements::find(c, &s.id, None)?.expect("statement");
                out.push((
                    (
                        s.merchant_id.clone(),
                        s.currency.clone(),
                        s.business_date.clone(),
                    ),
                    full,
                ));
            }
            if !got.has_more {
                return Ok(out);
            }
        }
    })
    .await
    .expect("statements")
}

fn runs(c: &mut store::DbConnection) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let store::DbConnection::Postgresql(c) = c else {
        panic!("postgres")
    };
    diesel::sql_query("SELECT COUNT(*) AS n FROM settlement_runs")
        .get_result::<N>(c)
        .expect("runs")
        .n
}

fn execute(db_conn: &mut store::DbConnection, sql: &str) {
    use diesel::prelude::*;
    let store::DbConnection::Postgresql(c) = db_conn else {
        panic!("postgres")
    };
    diesel::sql_query(sql).execute(c).expect(sql);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_close_after_a_finished_one_finds_new_and_late_entries() {
    let db = test_support::fresh_postgres().await;
    let merchants = books_of_two_days(&db, 5).await;
    let cutoff = Cutoff::midnight_utc();
    let books = Books::new(db.clone(), cutoff).with_close_batch(2);
    // Close 2 March while 3 March's entries already exist: they are after its end.
    books
        .close_day(date(2), at(4, 0, 5))
        .await
        .expect("closed 2 March");
    assert_eq!(
        db.read(|c| Ok(runs(c))).await.expect("runs"),
        1,
        "the finished close is recorded"
    );
    // Written after that close, recorded inside 2 March: in flight during it.
    let p = PaymentId::generate();
    post(
        &db,
        vec![
            postings::capture(&merchants[3], &p, money(4321, "USD"), at(2, 23, 59)).expect("late"),
        ],
    )
    .await;
    // Closing 3 March starts from the recorded run: 3 March's entries (recorded before that run
    // began, after its end) and the late one (written after its watermark) are all it needs.
    let end = cutoff
        .window(date(3))
        .expect("window")
        .end
        .timestamp_millis();
    let want = expected(&db, &cutoff, end).await;
    assert_eq!(
        want.len(),
        5 + 1,
        "3 March of each merchant, and the late one of 2 March"
    );
    books
        .close_day(date(3), at(4, 0, 10))
        .await
        .expect("closed 3 March");
    assert_matches(&want, &stored_by_end(&db, end).await);
    assert_eq!(unstated(&db).await, 0);
    assert_eq!(db.read(|c| Ok(runs(c))).await.expect("runs"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_recorded_run_is_trusted_unless_its_watermark_is_from_another_cluster() {
    let db = test_support::fresh_postgres().await;
    let merchants = books_of_two_days(&db, 2).await;
    let cutoff = Cutoff::midnight_utc();
    let books = Books::new(db.clone(), cutoff);
    books.close_day(date(3), at(4, 0, 5)).await.expect("closed");
    // An unstated entry of 2 March written by a transaction far older than the run's watermark:
    // what the run vouches cannot exist. A close starting from the run does not read it (it
    // reads only what is new), which is what makes a close cost a day, not the whole history.
    let m = merchants[0].as_str().to_owned();
    db.write(move |c| {
        execute(c, &format!(
            "INSERT INTO ledger_journals (id, kind, subject_type, subject_id, merchant_id, currency, occurred_at, created_at) \
             VALUES ('jrn_planted', 'capture', 'payment', 'pay_planted', '{m}', 'USD', {t}, {t})",
            t = at(2, 12, 0).timestamp_millis()
        ));
        execute(c, &format!(
            "INSERT INTO ledger_entries (id, journal_id, kind, subject_id, merchant_id, debit_account, credit_account, \
             currency, amount_minor, occurred_at, created_at, txid) VALUES ('le_planted', 'jrn_planted', 'capture', \
             'pay_planted', '{m}', 'gateway_clearing', 'merchant_payable', 'USD', 777, {t}, {t}, 3)",
            t = at(2, 12, 0).timestamp_millis()
        ));
        Ok(())
    })
    .await
    .expect("planted");
    books
        .close_day(date(3), at(4, 0, 20))
        .await
        .expect("closed again");
    assert_eq!(
        unstated(&db).await,
        1,
        "not read: older than the watermark and before the end"
    );
    // A run whose watermark is beyond the ids being assigned (a database restored into another
    // cluster) is not trusted; with no other run, the close reads everything again.
    db.write(|c| {
        execute(c, "DELETE FROM settlement_runs");
        execute(c, "INSERT INTO settlement_runs VALUES ('srun_restored', 9000000000000, 9000000000000000, 0, 0)");
        Ok(())
    })
    .await
    .expect("restored run");
    books
        .close_day(date(4), at(4, 0, 30))
        .await
        .expect("closed from scratch");
    assert_eq!(
        unstated(&db).await,
        0,
        "read in full: the planted entry is in a statement now"
    );
}

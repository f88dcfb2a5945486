//! The books' storage on SQLite and PostgreSQL: the database itself keeps every ledger row
//! balanced and the ledger and statements append-only, posts an event once, counts an entry in
//! one statement only, and keeps pricing versions and reconciliation breaks straight.

use diesel::prelude::*;
use domain::MerchantId;
use store::ledger::{self, Entry, EntryFilter, Journal};
use store::reconciliation::{self, Break, BreakFilter, Run};
use store::settlements::{self, Settlement, SettlementFilter};
use store::{Database, DbConnection, PageRequest, StoreError, StoreResult, merchants, pricing};
use test_support::on_both_backends;

on_both_backends!(
    the_database_refuses_a_ledger_row_that_does_not_balance,
    the_ledger_and_statements_cannot_be_changed_or_deleted,
    an_event_is_posted_once,
    an_entry_is_in_one_statement_only_and_the_balance_follows,
    the_pricing_version_in_force_is_the_newest_at_creation,
    one_open_break_per_subject_and_kind,
);

async fn new_merchant(db: &Database) -> String {
    let m = test_support::merchant_row(MerchantId::generate().as_str(), 1);
    let id = m.id.clone();
    db.write(move |c| merchants::insert(c, &m))
        .await
        .expect("merchant");
    id
}

fn journal(merchant: &str, kind: &str, subject: &str, at: i64) -> Journal {
    Journal {
        id: format!("jrn_{}", ulid::Ulid::new()),
        kind: kind.into(),
        subject_type: if kind == "refund" {
            "refund"
        } else {
            "payment"
        }
        .into(),
        subject_id: subject.into(),
        merchant_id: merchant.into(),
        currency: "USD".into(),
        occurred_at: at,
        memo: None,
        created_at: at,
    }
}

fn entry(j: &Journal, debit: &str, credit: &str, amount: i64) -> Entry {
    Entry {
        id: format!("le_{}", ulid::Ulid::new()),
        journal_id: j.id.clone(),
        kind: j.kind.clone(),
        subject_id: j.subject_id.clone(),
        merchant_id: j.merchant_id.clone(),
        debit_account: debit.into(),
        credit_account: credit.into(),
        currency: j.currency.clone(),
        amount_minor: amount,
        occurred_at: j.occurred_at,
        created_at: j.created_at,
    }
}

async fn post(db: &Database, j: Journal, entries: Vec<Entry>) -> StoreResult<()> {
    db.write(move |c| ledger::insert(c, &j, &entries)).await
}

/// A capture of `amount` with a fee of `fee`, as two journals.
async fn capture(db: &Database, merchant: &str, payment: &str, amount: i64, fee: i64, at: i64) {
    let j = journal(merchant, "capture", payment, at);
    let e = entry(&j, "gateway_clearing", "merchant_payable", amount);
    post(db, j, vec![e]).await.expect("capture");
    let j = journal(merchant, "fee", payment, at);
    let e = entry(&j, "merchant_payable", "platform_fee_revenue", fee);
    post(db, j, vec![e]).await.expect("fee");
}

async fn the_database_refuses_a_ledger_row_that_does_not_balance(db: Database) {
    let m = new_merchant(&db).await;
    for (debit, credit, amount) in [
        ("gateway_clearing", "merchant_payable", 0),
        ("gateway_clearing", "merchant_payable", -5),
        ("merchant_payable", "merchant_payable", 5),
    ] {
        let j = journal(&m, "capture", &format!("pay_{}", ulid::Ulid::new()), 10);
        let e = entry(&j, debit, credit, amount);
        let err = post(&db, j, vec![e]).await.expect_err("refused");
        assert!(
            matches!(err, StoreError::Database(_)),
            "{debit}/{credit}/{amount}: {err}"
        );
    }
    // Nothing of a refused journal stays: its header rolled back with its entry.
    let journals = db
        .read(|c| Ok(count(c, "ledger_journals")))
        .await
        .expect("count");
    assert_eq!(journals, 0);
    let j = journal(&m, "capture", "pay_ok", 10);
    let e = entry(&j, "gateway_clearing", "merchant_payable", 5);
    post(&db, j, vec![e])
        .await
        .expect("a balanced transfer is stored");
}

fn count(c: &mut DbConnection, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let q = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}");
    let rows: Vec<N> = store::on_backend!(c, |c| diesel::sql_query(&q).load(c)).expect("count");
    rows[0].n
}

fn execute(c: &mut DbConnection, sql: &str) -> QueryResult<usize> {
    store::on_backend!(c, |c| diesel::sql_query(sql).execute(c))
}

async fn the_ledger_and_statements_cannot_be_changed_or_deleted(db: Database) {
    let m = new_merchant(&db).await;
    capture(&db, &m, "pay_1", 1000, 59, 10).await;
    let stl = statement(&m, "2026-01-01", 100);
    let ids: Vec<String> = db
        .read({
            let m = m.clone();
            move |c| ledger::unstated_payable(c, &m, "USD", 100)
        })
        .await
        .expect("entries")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 2);
    db.write(move |c| settlements::insert(c, &stl, &ids))
        .await
        .expect("statement");
    for sql in [
        "UPDATE ledger_entries SET amount_minor = amount_minor + 1",
        "UPDATE ledger_journals SET memo = 'x'",
        "UPDATE settlements SET net_minor = 0",
        "UPDATE settlement_entries SET settlement_id = 'stl_x'",
        "DELETE FROM settlement_entries",
        "DELETE FROM settlements",
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_journals",
    ] {
        let sql = sql.to_owned();
        // Each statement on its own (autocommit), so the refusal is the database's answer.
        let result = db
            .with_conn(move |c| Ok(execute(c, &sql).map_err(|e| e.to_string())))
            .await
            .expect("connection");
        assert!(result.is_err(), "the database let this through");
    }
    let (entries, statements, claimed) = db
        .read(|c| {
            Ok((
                count(c, "ledger_entries"),
                count(c, "settlements"),
                count(c, "settlement_entries"),
            ))
        })
        .await
        .expect("counts");
    assert_eq!((entries, statements, claimed), (2, 1, 2));
    let balance = db
        .read(move |c| ledger::payable_balances(c, &m))
        .await
        .expect("balance");
    assert_eq!(balance[0].settled_minor, 941, "amounts unchanged");
}

async fn an_event_is_posted_once(db: Database) {
    let m = new_merchant(&db).await;
    capture(&db, &m, "pay_1", 1000, 59, 10).await;
    let again = journal(&m, "capture", "pay_1", 11);
    let e = entry(&again, "gateway_clearing", "merchant_payable", 1000);
    let err = post(&db, again, vec![e]).await.expect_err("second capture");
    assert!(err.is_conflict(), "{err}");
    // A refund of the same payment is another event (a millisecond later: ids of one
    // millisecond do not sort by time).
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let r = journal(&m, "refund", "ref_1", 12);
    let e = entry(&r, "merchant_payable", "gateway_clearing", 400);
    post(&db, r, vec![e]).await.expect("refund");
    let page = db
        .read({
            let m = m.clone();
            move |c| {
                let f = EntryFilter {
                    merchant_id: Some(m),
                    account: Some("gateway_clearing".into()),
                    ..EntryFilter::default()
                };
                ledger::list(c, &f, &PageRequest::first(10))
            }
        })
        .await
        .expect("list");
    let kinds: Vec<&str> = page.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["refund", "capture"],
        "newest first, the fee is not on clearing"
    );
}

fn statement(merchant: &str, date: &str, window_end: i64) -> Settlement {
    Settlement {
        id: format!("stl_{}", ulid::Ulid::new()),
        merchant_id: merchant.into(),
        currency: "USD".into(),
        business_date: date.into(),
        window_start: 0,
        window_end,
        payment_count: 1,
        refund_count: 0,
        adjustment_count: 0,
        gross_minor: 1000,
        refunds_minor: 0,
        fees_minor: 59,
        fee_returns_minor: 0,
        adjustments_minor: 0,
        net_minor: 941,
        line_count: 1,
        cutoff: "00:00 UTC".into(),
        lines_csv: "type,id\npayment,pay_1\n".into(),
        lines_digest: "sha-256=x".into(),
        created_at: window_end,
    }
}

async fn an_entry_is_in_one_statement_only_and_the_balance_follows(db: Database) {
    let m = new_merchant(&db).await;
    capture(&db, &m, "pay_1", 1000, 59, 10).await;
    capture(&db, &m, "pay_2", 500, 45, 200).await;
    let unstated = |before: i64| {
        let m = m.clone();
        let db = db.clone();
        async move {
            db.read(move |c| ledger::unstated_payable(c, &m, "USD", before))
                .await
                .expect("unstated")
        }
    };
    let first: Vec<String> = unstated(100).await.into_iter().map(|e| e.id).collect();
    assert_eq!(first.len(), 2, "pay_1's capture and fee, not pay_2's");
    let s1 = statement(&m, "2026-01-01", 100);
    let claimed = first.clone();
    db.write(move |c| settlements::insert(c, &s1, &claimed))
        .await
        .expect("first statement");
    let balance = {
        let m = m.clone();
        db.read(move |c| ledger::payable_balances(c, &m))
            .await
            .expect("balance")
    };
    assert_eq!(balance.len(), 1);
    assert_eq!(
        (balance[0].pending_minor, balance[0].settled_minor),
        (455, 941)
    );
    // A second statement that would count pay_1 again is refused whole.
    let s2 = statement(&m, "2026-01-02", 300);
    let mut twice: Vec<String> = unstated(300).await.into_iter().map(|e| e.id).collect();
    twice.push(first[0].clone());
    let err = db
        .write(move |c| settlements::insert(c, &s2, &twice))
        .await
        .expect_err("counted twice");
    assert!(err.is_conflict(), "{err}");
    let (pairs, listed) = {
        let m = m.clone();
        db.read(move |c| {
            Ok((
                ledger::unstated_pairs(c, 300)?,
                settlements::list(
                    c,
                    &SettlementFilter {
                        merchant_id: Some(m),
                        ..SettlementFilter::default()
                    },
                    &PageRequest::first(10),
                )?,
            ))
        })
        .await
        .expect("read")
    };
    assert_eq!(pairs, [(m.clone(), "USD".to_owned())]);
    assert_eq!(listed.items.len(), 1, "the refused statement is not there");
    assert!(
        listed.items[0].lines_csv.is_empty(),
        "lists leave the CSV out"
    );
    let same = statement(&m, "2026-01-01", 100);
    let err = db
        .write(move |c| settlements::insert(c, &same, &[]))
        .await
        .expect_err("same merchant, currency, date and window end");
    assert!(err.is_conflict(), "{err}");
}

async fn the_pricing_version_in_force_is_the_newest_at_creation(db: Database) {
    let m = new_merchant(&db).await;
    let (a, b) = (m.clone(), m.clone());
    let v1 = db
        .write(move |c| pricing::insert_next(c, &a, "[]", "key_op", 1_000))
        .await
        .expect("v1");
    let v2 = db
        .write(move |c| pricing::insert_next(c, &b, "[1]", "key_op", 2_000))
        .await
        .expect("v2");
    assert_eq!((v1.version, v2.version), (1, 2));
    let at = |t: i64| {
        let (m, db) = (m.clone(), db.clone());
        async move {
            db.read(move |c| pricing::in_force_at(c, &m, t))
                .await
                .expect("read")
                .map(|v| v.version)
        }
    };
    assert_eq!(at(999).await, None);
    assert_eq!(at(1_000).await, Some(1));
    assert_eq!(at(1_999).await, Some(1));
    assert_eq!(at(5_000).await, Some(2));
    let history = {
        let m = m.clone();
        db.read(move |c| pricing::history(c, &m)).await.expect("h")
    };
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
}

fn broken(run: &str, subject: &str, merchant: &str, kind: &str, status: &str, at: i64) -> Break {
    Break {
        id: format!("brk_{}", ulid::Ulid::new()),
        run_id: run.into(),
        business_date: "2026-01-01".into(),
        subject_type: "payment".into(),
        subject_id: subject.into(),
        merchant_id: merchant.into(),
        gateway_account_id: None,
        kind: kind.into(),
        status: status.into(),
        ours: "{}".into(),
        theirs: "{}".into(),
        detail: None,
        created_at: at,
        updated_at: at,
    }
}

async fn one_open_break_per_subject_and_kind(db: Database) {
    let m = new_merchant(&db).await;
    let run = Run {
        id: "rcn_1".into(),
        business_date: "2026-01-01".into(),
        started_at: 1,
        finished_at: None,
        checked: 0,
        breaks_found: 0,
        repaired: 0,
    };
    db.write(move |c| reconciliation::start_run(c, &run))
        .await
        .expect("run");
    let first = broken("rcn_1", "pay_1", &m, "fee_mismatch", "open", 1);
    let again = broken("rcn_1", "pay_1", &m, "fee_mismatch", "open", 2);
    let other = broken("rcn_1", "pay_1", &m, "amount_mismatch", "open", 3);
    let first_id = first.id.clone();
    let stored = db
        .write(move |c| {
            reconciliation::record(c, &first)?;
            let again = reconciliation::record(c, &again)?;
            reconciliation::record(c, &other)?;
            Ok(again)
        })
        .await
        .expect("record");
    assert_eq!(stored.id, first_id, "the open break is brought up to date");
    let open = || {
        let db = db.clone();
        async move {
            db.read(reconciliation::count_open_by_kind)
                .await
                .expect("count")
        }
    };
    assert_eq!(
        open().await,
        [
            ("amount_mismatch".to_owned(), 1),
            ("fee_mismatch".to_owned(), 1)
        ]
    );
    let resolved = db
        .write(|c| reconciliation::resolve_others(c, "pay_1", &["fee_mismatch"], 9))
        .await
        .expect("resolve");
    assert_eq!(resolved, 1);
    assert_eq!(open().await, [("fee_mismatch".to_owned(), 1)]);
    let all = db
        .read(|c| reconciliation::list(c, &BreakFilter::default(), &PageRequest::first(10)))
        .await
        .expect("list");
    assert_eq!(all.items.len(), 2);
}

//! The books' routes over HTTP on SQLite and PostgreSQL: who may call them, typed errors for bad
//! input (never a 500), pricing versions with their audit entries, and an adjustment that moves
//! the balance and lands in the day's statement and its CSV.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::TestApp;
use test_support::on_both_backends;

on_both_backends!(
    pricing_is_versioned_audited_and_refuses_bad_rates_by_name,
    the_books_routes_answer_typed_errors_to_the_wrong_caller_and_bad_input,
    an_adjustment_moves_the_balance_and_lands_in_the_statement,
    the_daily_job_closes_yesterday_queues_its_reconciliation_and_waits_for_the_next_cutoff,
);

fn error(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or_default(),
        body["error"]["param"].as_str().unwrap_or_default(),
    )
}

async fn pricing_is_versioned_audited_and_refuses_bad_rates_by_name(db: store::Database) {
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    let (merchant, _) = app.merchant_with_key().await;
    let path = format!("/v1/merchants/{merchant}/pricing");
    let put = |rates: Value| {
        let (app, path, op) = (&app, path.clone(), op.clone());
        async move {
            app.json(Method::PUT, &path, &op, Some(json!({ "rates": rates })))
                .await
        }
    };
    for (rates, param) in [
        (
            json!([{"wallet": null, "currency": "USD", "percent_bps": 10001, "fixed": 0}]),
            "rates[0].percent_bps",
        ),
        (
            json!([{"wallet": null, "currency": "USD", "percent_bps": -1, "fixed": 0}]),
            "rates[0].percent_bps",
        ),
        (
            json!([{"wallet": null, "currency": null, "percent_bps": 100, "fixed": 30}]),
            "rates[0].currency",
        ),
        (
            json!([{"wallet": "no_such_wallet", "currency": "USD", "percent_bps": 1, "fixed": 0}]),
            "rates[0].wallet",
        ),
        (
            json!([{"wallet": null, "currency": "USD", "percent_bps": 1, "fixed": -5}]),
            "rates[0].fixed",
        ),
        (
            json!([{"wallet": null, "currency": "USD", "percent_bps": 1, "fixed": 0},
                   {"wallet": null, "currency": "USD", "percent_bps": 2, "fixed": 0}]),
            "rates[1]",
        ),
    ] {
        let (status, body) = put(rates).await;
        // A malformed field is a 400; a rule across well-formed fields (a fixed amount without
        // a currency, two rates for one wallet and currency) a 422.
        let across = ["rates[0].currency", "rates[1]"].contains(&param);
        let want = if across {
            (422, ("pricing_invalid", param))
        } else {
            (400, ("parameter_invalid", param))
        };
        assert_eq!((status, error(&body)), want, "{body}");
    }
    let (status, first) = put(json!([
        {"wallet": null, "currency": "USD", "percent_bps": 290, "fixed": 30}]))
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = put(json!([
        {"wallet": null, "currency": "USD", "percent_bps": 250, "fixed": 30},
        {"wallet": "alipay", "currency": "USD", "percent_bps": 200, "fixed": 10}]))
    .await;
    assert_eq!(status, 200, "{second}");
    let got = app.get(&path, &op).await;
    assert_eq!(got["current"]["version"], 2, "{got}");
    assert_eq!(got["current"]["rates"][1]["wallet"], "alipay");
    let versions: Vec<i64> = got["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(versions, [2, 1]);
    let m = merchant.to_string();
    let audited = app
        .db
        .read(move |c| store::audit::list(c, Some(&m), &store::PageRequest::first(10)))
        .await
        .expect("audit");
    // The merchant's other entries (its creation) are not about pricing.
    let actions: Vec<&str> = audited
        .items
        .iter()
        .map(|a| a.action.as_str())
        .filter(|a| a.starts_with("merchant.pricing"))
        .collect();
    assert_eq!(
        actions,
        ["merchant.pricing.update", "merchant.pricing.update"]
    );
    let (status, body) = app
        .json(
            Method::PUT,
            &format!("/v1/merchants/{}/pricing", domain::MerchantId::generate()),
            &op,
            Some(json!({"rates": []})),
        )
        .await;
    assert_eq!(
        (status, error(&body).0),
        (404, "resource_missing"),
        "{body}"
    );
}

async fn the_books_routes_answer_typed_errors_to_the_wrong_caller_and_bad_input(
    db: store::Database,
) {
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    let (merchant, sk) = app.merchant_with_key().await;
    // Operator-only routes refuse a merchant key.
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/merchants/{merchant}/pricing"),
            None,
        ),
        (Method::GET, "/v1/ledger/entries".to_owned(), None),
        (
            Method::POST,
            "/v1/ledger/adjustments".to_owned(),
            Some(
                json!({"merchant_id": merchant.to_string(), "currency": "USD", "amount": 1, "memo": "x"}),
            ),
        ),
        (
            Method::POST,
            "/v1/settlements/run".to_owned(),
            Some(json!({"date": "2026-01-01"})),
        ),
        (Method::GET, "/v1/reconciliation/breaks".to_owned(), None),
        (
            Method::POST,
            "/v1/reconciliation/run".to_owned(),
            Some(json!({"date": "2026-01-01"})),
        ),
    ] {
        let (status, answer) = app.json(method.clone(), &path, &sk, body).await;
        assert_eq!(
            (status, error(&answer).0),
            (403, "operator_key_required"),
            "{method} {path}: {answer}"
        );
    }
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().expect("tomorrow").to_string();
    for (method, path, key, body, want) in [
        (
            Method::GET,
            "/v1/balance",
            &op,
            None,
            ("parameter_missing", "merchant_id"),
        ),
        (
            Method::GET,
            "/v1/balance?merchant_id=mer_x",
            &op,
            None,
            ("parameter_invalid", "merchant_id"),
        ),
        (
            Method::GET,
            "/v1/ledger/entries?account=cash",
            &op,
            None,
            ("parameter_invalid", "account"),
        ),
        (
            Method::GET,
            "/v1/ledger/entries?kind=gift",
            &op,
            None,
            ("parameter_invalid", "kind"),
        ),
        (
            Method::GET,
            "/v1/ledger/entries?limit=0",
            &op,
            None,
            ("parameter_invalid", "limit"),
        ),
        (
            Method::GET,
            "/v1/settlements?business_date=yesterday",
            &sk,
            None,
            ("parameter_invalid", "business_date"),
        ),
        (
            Method::GET,
            "/v1/reconciliation/breaks?status=closed",
            &op,
            None,
            ("parameter_invalid", "status"),
        ),
        (
            Method::GET,
            "/v1/reconciliation/breaks?kind=odd",
            &op,
            None,
            ("parameter_invalid", "kind"),
        ),
        (
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"date": "2026-13-01"})),
            ("parameter_invalid", "date"),
        ),
        (
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"date": tomorrow})),
            ("date_in_future", "date"),
        ),
        (
            Method::POST,
            "/v1/reconciliation/run",
            &op,
            Some(json!({"date": tomorrow})),
            ("date_in_future", "date"),
        ),
        (
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"day": "2026-01-01"})),
            ("unknown_field", "day"),
        ),
        (
            Method::POST,
            "/v1/ledger/adjustments",
            &op,
            Some(
                json!({"merchant_id": merchant.to_string(), "currency": "USD", "amount": 0, "memo": "x"}),
            ),
            ("parameter_invalid", "amount"),
        ),
        (
            Method::POST,
            "/v1/ledger/adjustments",
            &op,
            Some(
                json!({"merchant_id": merchant.to_string(), "currency": "USD", "amount": 5, "memo": " "}),
            ),
            ("parameter_invalid", "memo"),
        ),
        (
            Method::POST,
            "/v1/ledger/adjustments",
            &op,
            Some(
                json!({"merchant_id": merchant.to_string(), "currency": "XYZ", "amount": 5, "memo": "x"}),
            ),
            ("parameter_invalid", "currency"),
        ),
    ] {
        let (status, answer) = app.json(method.clone(), path, key, body).await;
        // An operator's balance without the merchant is well-formed but incomplete: a 422.
        let expected = if want.0 == "parameter_missing" {
            422
        } else {
            400
        };
        assert_eq!(
            (status, error(&answer)),
            (expected, want),
            "{method} {path}: {answer}"
        );
    }
    // A merchant naming a merchant asks for what only operators may: 403.
    for path in [
        "/v1/balance?merchant_id=mer_x",
        "/v1/settlements?merchant_id=mer_x",
    ] {
        let (status, answer) = app.json(Method::GET, path, &sk, None).await;
        assert_eq!(
            (status, error(&answer).0),
            (403, "operator_key_required"),
            "{path}: {answer}"
        );
    }
    for (method, path, body) in [
        (Method::GET, "/v1/settlements/stl_nothing".to_owned(), None),
        (
            Method::GET,
            "/v1/settlements/stl_nothing/lines.csv".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/v1/ledger/adjustments".to_owned(),
            Some(
                json!({"merchant_id": domain::MerchantId::generate().to_string(),
                "currency": "USD", "amount": 5, "memo": "x"}),
            ),
        ),
    ] {
        let (status, answer) = app.json(method.clone(), &path, &op, body).await;
        assert_eq!(
            (status, error(&answer).0),
            (404, "resource_missing"),
            "{method} {path}: {answer}"
        );
    }
}

async fn an_adjustment_moves_the_balance_and_lands_in_the_statement(db: store::Database) {
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    let (merchant, sk) = app.merchant_with_key().await;
    let (_, other) = app.merchant_with_key().await;
    let adjust = json!({"merchant_id": merchant.to_string(), "currency": "USD", "amount": 500,
        "memo": "goodwill credit"});
    let (status, journal) = app
        .post("/v1/ledger/adjustments", &op, Some("adj-1"), adjust.clone())
        .await;
    assert_eq!(status, 201, "{journal}");
    let entries = journal["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["debit_account"], "platform_adjustments");
    assert_eq!(entries[0]["credit_account"], "merchant_payable");
    // The same Idempotency-Key posts nothing more.
    let (_, replay) = app
        .post("/v1/ledger/adjustments", &op, Some("adj-1"), adjust)
        .await;
    assert_eq!(replay["id"], journal["id"]);
    let (status, debit) = app
        .post(
            "/v1/ledger/adjustments",
            &op,
            None,
            json!({"merchant_id": merchant.to_string(), "currency": "USD", "amount": -120,
                "memo": "chargeback fee"}),
        )
        .await;
    assert_eq!(status, 201, "{debit}");
    let balance = app.get("/v1/balance", &sk).await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": 380, "settled": 0}]),
        "{balance}"
    );
    let listed = app
        .get(
            &format!("/v1/ledger/entries?merchant_id={merchant}&account=merchant_payable"),
            &op,
        )
        .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");

    let today = chrono::Utc::now().date_naive().to_string();
    let (status, run) = app
        .post("/v1/settlements/run", &op, None, json!({"date": today}))
        .await;
    assert_eq!(status, 200, "{run}");
    let statements = run["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{run}");
    let s = &statements[0];
    assert_eq!(
        (&s["adjustment_count"], &s["adjustments"], &s["net"]),
        (&json!(2), &json!(380), &json!(380))
    );
    let id = s["id"].as_str().expect("id");
    let (status, csv) = app
        .call(
            Method::GET,
            &format!("/v1/settlements/{id}/lines.csv"),
            &sk,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(csv.matches("\r\nadjustment,").count(), 2, "{csv}");
    // Another merchant cannot see it; its own list has it.
    let (status, _) = app
        .json(Method::GET, &format!("/v1/settlements/{id}"), &other, None)
        .await;
    assert_eq!(status, 404);
    let own = app.get("/v1/settlements", &sk).await;
    assert_eq!(own["data"][0]["id"], id);
    let balance = app.get("/v1/balance", &sk).await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": 0, "settled": 380}])
    );
}

async fn the_daily_job_closes_yesterday_queues_its_reconciliation_and_waits_for_the_next_cutoff(
    db: store::Database,
) {
    use payments::jobs::{CLOSE_DAY_KIND, JobOutcome, RECONCILE_DAY_KIND};
    let app = TestApp::start(db.clone()).await;
    let (merchant, sk) = app.merchant_with_key().await;
    let cutoff = ledger::Cutoff::midnight_utc();
    let books = payments::books::Books::new(db.clone(), cutoff);
    assert_eq!(
        payments::jobs::seed_books_jobs(&db, &cutoff)
            .await
            .expect("seed"),
        1
    );
    assert_eq!(
        payments::jobs::seed_books_jobs(&db, &cutoff)
            .await
            .expect("seed"),
        0,
        "one close-day job however often it is seeded"
    );
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let yesterday = today.pred_opt().expect("yesterday");
    let midnight = today.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    // A credit booked yesterday evening, one booked today.
    for (at, amount) in [(midnight - chrono::Duration::hours(2), 700), (now, 50)] {
        let j = ledger::postings::adjustment(
            &merchant,
            &format!("adj_{}", ulid::Ulid::new()),
            domain::Currency::from_code("USD").expect("usd"),
            amount,
            "test",
            at,
        )
        .expect("journal");
        let (header, entries) = payments::posting::stored_rows(&j, at);
        db.write(move |c| store::ledger::insert(c, &header, &entries))
            .await
            .expect("posted");
    }
    let outcome = payments::jobs::handle_books(
        &app.engine,
        &books,
        &payments::recon::ReconConfig::default(),
        CLOSE_DAY_KIND,
        payments::jobs::CLOSE_DAY_SUBJECT,
    )
    .await;
    let next = midnight + chrono::Duration::days(1);
    assert_eq!(
        outcome,
        JobOutcome::RetryAt(next),
        "due again at the next cut-off"
    );
    let listed = app.get("/v1/settlements", &sk).await;
    let statements = listed["data"].as_array().expect("data");
    assert_eq!(statements.len(), 1, "{listed}");
    assert_eq!(statements[0]["business_date"], yesterday.to_string());
    assert_eq!(
        statements[0]["net"], 700,
        "today's credit waits for today's close"
    );
    let balance = app.get("/v1/balance", &sk).await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": 50, "settled": 700}])
    );
    let day = yesterday.to_string();
    let queued = db
        .read(move |c| {
            use diesel::prelude::*;
            use store::schema::jobs;
            Ok(store::on_backend!(c, |c| jobs::table
                .filter(jobs::kind.eq(RECONCILE_DAY_KIND))
                .filter(jobs::dedupe_key.eq(&day))
                .count()
                .get_result::<i64>(c))?)
        })
        .await
        .expect("jobs");
    assert_eq!(queued, 1, "yesterday's reconciliation is queued");
}

//! The facilitator's books end to end, on the embedded default (SQLite, sandbox) and on
//! PostgreSQL + Redis: a merchant priced 2.9 % + 0.30, ten paid payments, two partial refunds
//! and one unpaid payment; the day closed on demand; the statement's totals against an
//! independent computation, its CSV against its totals and its digest, the balance against the
//! statement, and reconciliation with CodePay finding nothing. Then a payment whose notification
//! the sandbox drops (and that payfac has not polled yet) is found and repaired by
//! reconciliation and lands in the next statement.

use crate::support::payfac::{Backend, Payfac};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_priced_day_closes_balances_and_reconciles_on_sqlite() {
    a_priced_day_closes_balances_and_reconciles(Backend::Embedded).await;
}

#[tokio::test]
async fn a_priced_day_closes_balances_and_reconciles_on_postgres_and_redis() {
    a_priced_day_closes_balances_and_reconciles(Backend::PostgresRedis).await;
}

/// 2.9 % rounded half up, plus 30: computed here without the ledger crate.
fn fee(amount: i64) -> i64 {
    (amount * 290 + 5_000) / 10_000 + 30
}

/// The share of the percentage part a single refund of `refund` gives back (half up).
fn fee_return(amount: i64, refund: i64) -> i64 {
    let percent = (amount * 290 + 5_000) / 10_000;
    (2 * percent * refund + amount) / (2 * amount)
}

async fn wait_status(payfac: &Payfac, key: &str, path: &str, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, object) = payfac.call(Method::GET, path, key, None).await;
        assert_eq!(status, 200, "{path}: {object}");
        if object["status"] == want {
            return object;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{path} never became {want}: {object}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET` returning the body as text with its headers.
async fn get_text(
    payfac: &Payfac,
    path: &str,
    key: &str,
) -> (u16, HashMap<String, String>, String) {
    let resp = payfac
        .http
        .get(format!("{}{path}", payfac.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status, headers, resp.text().await.expect("body"))
}

/// The CSV's records as maps of column → field (no field of these statements needs quoting).
fn records(csv: &str) -> Vec<HashMap<String, String>> {
    let mut rows = csv.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = rows.next().expect("header").split(',').collect();
    rows.map(|r| {
        header
            .iter()
            .zip(r.split(','))
            .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
            .collect()
    })
    .collect()
}

fn column_sum(records: &[HashMap<String, String>], column: &str) -> i64 {
    records
        .iter()
        .map(|r| r[column].parse::<i64>().expect("integer minor units"))
        .sum()
}

/// Checks a statement's CSV: its digest headers, one record per line, and that the records add
/// up to the statement's totals. Returns the records.
async fn check_csv(payfac: &Payfac, key: &str, statement: &Value) -> Vec<HashMap<String, String>> {
    let id = statement["id"].as_str().expect("id");
    let (status, headers, body) =
        get_text(payfac, &format!("/v1/settlements/{id}/lines.csv"), key).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"].starts_with("text/csv"));
    let sha = sha2::Sha256::digest(body.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha);
    assert_eq!(headers["digest"], format!("sha-256={b64}"));
    assert_eq!(headers["content-digest"], format!("sha-256=:{b64}:"));
    assert_eq!(statement["lines_digest"], headers["content-digest"]);
    let rows = records(&body);
    assert_eq!(
        rows.len() as i64,
        statement["line_count"].as_i64().expect("n")
    );
    for (column, total) in [
        ("gross_minor", "gross"),
        ("fee_minor", "fees"),
        ("refund_minor", "refunds"),
        ("fee_return_minor", "fee_returns"),
        ("adjustment_minor", "adjustments"),
        ("net_minor", "net"),
    ] {
        assert_eq!(
            column_sum(&rows, column),
            statement[total].as_i64().expect("total"),
            "{column} against {total}"
        );
    }
    rows
}

/// The merchant's balances (`GET /v1/balance` with its key).
async fn balance(payfac: &Payfac, key: &str) -> Vec<Value> {
    let (status, b) = payfac.call(Method::GET, "/v1/balance", key, None).await;
    assert_eq!(status, 200, "{b}");
    b["balances"].as_array().expect("balances").clone()
}

async fn a_priced_day_closes_balances_and_reconciles(backend: Backend) {
    let payfac = Payfac::start(backend, &[]).await;
    let op = payfac.operator_key.clone();
    let (merchant, key) = payfac.merchant_with_key().await;
    let today = chrono::Utc::now().date_naive().to_string();

    let (status, pricing) = payfac
        .call(
            Method::PUT,
            &format!("/v1/merchants/{merchant}/pricing"),
            &op,
            Some(json!({"rates": [
                {"wallet": null, "currency": "USD", "percent_bps": 290, "fixed": 30}]})),
        )
        .await;
    assert_eq!(status, 200, "{pricing}");
    assert_eq!(pricing["current"]["version"], 1);

    // Ten paid payments, amounts chosen so the percentage rounds both ways.
    let amounts: Vec<i64> = (0..10).map(|i| 1_000 + 137 * i).collect();
    let mut paid = Vec::new();
    for (i, amount) in amounts.iter().enumerate() {
        let p = payfac
            .mpm_payment(&key, &format!("day-{i}"), *amount, "alipay")
            .await;
        payfac.pay_in_sandbox(&p).await;
        paid.push(p["id"].as_str().expect("id").to_owned());
    }
    for (id, amount) in paid.iter().zip(&amounts) {
        let p = wait_status(&payfac, &key, &format!("/v1/payments/{id}"), "succeeded").await;
        assert_eq!(
            p["fee"],
            json!({"amount": fee(*amount), "currency": "USD"}),
            "{p}"
        );
    }
    // Two partial refunds, and one payment nobody pays.
    let refunds = [(0, 400), (3, 1_000)];
    let mut refund_ids = Vec::new();
    for (n, (i, amount)) in refunds.iter().enumerate() {
        let (status, r) = payfac
            .call(
                Method::POST,
                &format!("/v1/payments/{}/refunds", paid[*i]),
                &key,
                Some(json!({"amount": amount, "merchant_refund_id": format!("rf-{n}")})),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        refund_ids.push(r["id"].as_str().expect("id").to_owned());
    }
    for (id, (i, amount)) in refund_ids.iter().zip(&refunds) {
        let r = wait_status(&payfac, &key, &format!("/v1/refunds/{id}"), "succeeded").await;
        let back = fee_return(amounts[*i], *amount);
        assert_eq!(
            r["fee_return"],
            json!({"amount": back, "currency": "USD"}),
            "{r}"
        );
    }
    let unpaid = payfac.mpm_payment(&key, "day-unpaid", 999, "alipay").await;
    // The refunds' own notifications are out by now (sent when the sandbox settled them), so
    // the fault armed below meets the late payment's notification.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The day so far, closed.
    let gross: i64 = amounts.iter().sum();
    let fees: i64 = amounts.iter().map(|a| fee(*a)).sum();
    let refunded: i64 = refunds.iter().map(|(_, a)| a).sum();
    let returned: i64 = refunds
        .iter()
        .map(|(i, a)| fee_return(amounts[*i], *a))
        .sum();
    let net = gross - fees - refunded + returned;
    let (status, run) = payfac
        .call(
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"date": today})),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let mine = |run: &Value| -> Vec<Value> {
        run["statements"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["merchant_id"] == merchant.as_str())
            .cloned()
            .collect()
    };
    let statements = mine(&run);
    assert_eq!(statements.len(), 1, "{run}");
    let statement = &statements[0];
    assert_eq!(statement["currency"], "USD");
    assert_eq!(statement["business_date"], today.as_str());
    assert_eq!(statement["payment_count"], 10);
    assert_eq!(statement["refund_count"], 2);
    assert_eq!(statement["gross"], gross);
    assert_eq!(statement["fees"], fees);
    assert_eq!(statement["refunds"], refunded);
    assert_eq!(statement["fee_returns"], returned);
    assert_eq!(statement["adjustments"], 0);
    assert_eq!(statement["net"], net);
    let rows = check_csv(&payfac, &key, statement).await;
    assert_eq!(rows.len(), 12, "one line per payment and refund");
    assert!(
        rows.iter()
            .all(|r| r["object_id"] != unpaid["id"].as_str().unwrap_or_default()),
        "the unpaid payment is not in the statement"
    );
    // Closing again adds nothing: the run is idempotent.
    let (_, again) = payfac
        .call(
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"date": today})),
        )
        .await;
    assert_eq!(mine(&again).len(), 1, "{again}");

    assert_eq!(
        balance(&payfac, &key).await,
        [json!({"currency": "USD", "pending": 0, "settled": net})]
    );

    let reconcile = || async {
        let (status, run) = payfac
            .call(
                Method::POST,
                "/v1/reconciliation/run",
                &op,
                Some(json!({"date": today})),
            )
            .await;
        assert_eq!(status, 200, "{run}");
        run
    };
    let run = reconcile().await;
    assert_eq!(run["checked"], 13, "11 payments and 2 refunds: {run}");
    assert_eq!(run["breaks_found"], 0, "{run}");
    let (_, breaks) = payfac
        .call(Method::GET, "/v1/reconciliation/breaks", &op, None)
        .await;
    assert_eq!(breaks["data"], json!([]), "{breaks}");

    // A payment whose notification the sandbox drops: payfac still holds it pending.
    let (status, fault) = payfac
        .call(
            Method::POST,
            "/sandbox/codepay/sim/faults",
            &op,
            Some(json!({"method": "payment.result.notify", "kind": "drop", "count": 1})),
        )
        .await;
    assert!((200..300).contains(&status), "{fault}");
    let late_amount = 2_345;
    let late = payfac
        .mpm_payment(&key, "day-late", late_amount, "alipay")
        .await;
    let late_id = late["id"].as_str().expect("id").to_owned();
    payfac.pay_in_sandbox(&late).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, seen) = payfac
        .call(Method::GET, &format!("/v1/payments/{late_id}"), &key, None)
        .await;
    assert_eq!(
        seen["status"], "pending",
        "the notification was dropped: {seen}"
    );

    let run = reconcile().await;
    assert_eq!(
        (run["breaks_found"].as_i64(), run["repaired"].as_i64()),
        (Some(1), Some(1)),
        "{run}"
    );
    let (_, breaks) = payfac
        .call(
            Method::GET,
            "/v1/reconciliation/breaks?status=repaired",
            &op,
            None,
        )
        .await;
    let found = breaks["data"].as_array().expect("breaks");
    assert_eq!(found.len(), 1, "{breaks}");
    assert_eq!(found[0]["subject_id"], late_id.as_str());
    assert_eq!(found[0]["kind"], "status_mismatch");
    assert_eq!(found[0]["ours"]["status"], "pending");
    assert_eq!(found[0]["theirs"]["trans_status"], 2);
    let (_, open) = payfac
        .call(
            Method::GET,
            "/v1/reconciliation/breaks?status=open",
            &op,
            None,
        )
        .await;
    assert_eq!(open["data"], json!([]), "{open}");
    let repaired = wait_status(
        &payfac,
        &key,
        &format!("/v1/payments/{late_id}"),
        "succeeded",
    )
    .await;
    assert_eq!(repaired["fee"]["amount"], fee(late_amount));

    // The repaired payment goes into the next statement of the day.
    let (status, run) = payfac
        .call(
            Method::POST,
            "/v1/settlements/run",
            &op,
            Some(json!({"date": today})),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let statements = mine(&run);
    assert_eq!(statements.len(), 2, "{run}");
    let next = statements
        .iter()
        .find(|s| s["id"] != statement["id"])
        .expect("a second statement");
    assert_eq!(next["payment_count"], 1);
    assert_eq!(next["gross"], late_amount);
    assert_eq!(next["net"], late_amount - fee(late_amount));
    let rows = check_csv(&payfac, &key, next).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["object_id"], late_id);
    assert_eq!(
        balance(&payfac, &key).await,
        [json!({"currency": "USD", "pending": 0, "settled": net + late_amount - fee(late_amount)})]
    );
    // Each statement was announced to the merchant.
    let (_, events) = payfac
        .call(
            Method::GET,
            "/v1/events?type=settlement.created",
            &key,
            None,
        )
        .await;
    assert_eq!(events["data"].as_array().map(Vec::len), Some(2), "{events}");
}

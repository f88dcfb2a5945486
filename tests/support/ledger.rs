//! The money promise as a check: payfac's payments and refunds of one merchant against the
//! simulator's ledger (`/sim/orders`), and against the webhook events the merchant received.
//!
//! Mapping (docs/codepay.md "Order life", docs/api.md "The late-success rule"):
//! - sale `trans_status` 2 → `succeeded`, or `canceled` with a succeeded full refund
//!   `late_success_<payment id>`; 1 → `failed` or `canceled`; 3 → `canceled`; 9/0 → not final;
//!   no upstream order at all (never applied) → `failed` or `canceled`;
//! - refund order 2 → `succeeded`, 1 (or never applied) → `failed`;
//! - amounts equal; a payment's succeeded refunds sum to its `amount_refunded` and to the
//!   simulator's settled refunds of its order;
//! - every upstream order of the merchant belongs to exactly one payfac payment or refund (a
//!   second order for one payment would be a second charge);
//! - events: per payment exactly one final `payment.*` type, matching its status (the same event
//!   delivered twice is fine); per refund exactly one final `refund.*` type.

use super::Receiver;
use super::stack::{Merchant, PayfacProc, Sim};
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A payment and its refunds as payfac shows them, with the upstream numbers.
#[derive(Clone, Debug)]
pub struct PaymentView {
    /// The payment object (`GET /v1/payments/{id}`).
    pub payment: Value,
    /// Its `merchant_order_no` at CodePay.
    pub upstream: String,
    /// Its refunds, each with its own upstream `merchant_order_no`.
    pub refunds: Vec<(Value, String)>,
}

impl PaymentView {
    /// `pay_…`.
    pub fn id(&self) -> &str {
        self.payment["id"].as_str().unwrap_or_default()
    }
    /// Its status.
    pub fn status(&self) -> &str {
        self.payment["status"].as_str().unwrap_or_default()
    }
}

/// Whether a payment status is final.
pub fn payment_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "canceled")
}

/// Whether a refund status is final.
pub fn refund_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed")
}

/// A simulator order's `trans_status` as a number (it may be sent as a string).
pub fn trans_status(order: &Value) -> i64 {
    match &order["trans_status"] {
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        Value::String(s) => s.parse().unwrap_or(-1),
        _ => -1,
    }
}

fn is_refund_order(order: &Value) -> bool {
    order["trans_type"].as_i64() == Some(3) || order["trans_type"].as_str() == Some("3")
}

/// Every page of `path` (a list answering `{data, has_more}`).
async fn list_all(p: &PayfacProc, key: &str, path: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for _ in 0..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let after = out
            .last()
            .and_then(|v| v["id"].as_str())
            .map(|id| format!("&starting_after={id}"))
            .unwrap_or_default();
        let (status, page) = p
            .call(
                Method::GET,
                &format!("{path}{sep}limit=100{after}"),
                key,
                None,
            )
            .await;
        assert_eq!(status, 200, "GET {path}: {page}");
        out.extend(page["data"].as_array().cloned().unwrap_or_default());
        if page["has_more"] != Value::Bool(true) {
            break;
        }
    }
    out
}

/// The upstream `merchant_order_no` of every payment and refund of `merchant_id`, read from
/// payfac's database (the public objects do not show them yet).
pub async fn upstream_numbers_from_db(
    database_url: &str,
    merchant_id: &str,
) -> HashMap<String, String> {
    use diesel::prelude::*;
    use store::schema::{payments, refunds};
    let db = store::Database::connect(database_url, 1)
        .await
        .expect("connect to payfac's database");
    let m = merchant_id.to_owned();
    db.read(move |conn| {
        store::on_backend!(conn, |c| {
            let mut rows: Vec<(String, String)> = payments::table
                .filter(payments::merchant_id.eq(&m))
                .select((payments::id, payments::upstream_order_no))
                .load(c)?;
            rows.extend(
                refunds::table
                    .filter(refunds::merchant_id.eq(&m))
                    .select((refunds::id, refunds::upstream_order_no))
                    .load::<(String, String)>(c)?,
            );
            Ok(rows.into_iter().collect())
        })
    })
    .await
    .expect("read upstream numbers")
}

/// payfac's view of `m`: every payment with its refunds. Upstream numbers come from the
/// `codepay` objects when payfac shows them (`codepay.merchant_order_no` on payments,
/// `codepay.refund_no` on refunds), else from the database.
pub async fn payfac_view(p: &PayfacProc, m: &Merchant) -> Vec<PaymentView> {
    let payments = list_all(p, &m.key, "/v1/payments").await;
    let mut db: Option<HashMap<String, String>> = None;
    let mut out = Vec::new();
    for payment in payments {
        let id = payment["id"].as_str().unwrap_or_default().to_owned();
        let refunds = list_all(p, &m.key, &format!("/v1/payments/{id}/refunds")).await;
        let mut numbers = Vec::new();
        for obj in std::iter::once(&payment).chain(refunds.iter()) {
            let shown = obj["codepay"]["merchant_order_no"]
                .as_str()
                .or_else(|| obj["codepay"]["refund_no"].as_str());
            let no = match shown {
                Some(no) => no.to_owned(),
                None => {
                    if db.is_none() {
                        db = Some(upstream_numbers_from_db(&p.database_url, &m.id).await);
                    }
                    let oid = obj["id"].as_str().unwrap_or_default();
                    db.as_ref()
                        .and_then(|d| d.get(oid).cloned())
                        .unwrap_or_default()
                }
            };
            numbers.push(no);
        }
        let upstream = numbers.remove(0);
        out.push(PaymentView {
            payment,
            upstream,
            refunds: refunds.into_iter().zip(numbers).collect(),
        });
    }
    out
}

/// The final events (`payment.succeeded|failed|canceled`, `refund.succeeded|failed`) `rx`
/// received on `path`: object id → set of (event type, event id).
pub fn final_events(rx: &Receiver, path: &str) -> HashMap<String, BTreeSet<(String, String)>> {
    let mut out: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
    for hit in rx.all().into_iter().filter(|h| h.path == path) {
        let final_type = [
            "payment.succeeded",
            "payment.failed",
            "payment.canceled",
            "refund.succeeded",
            "refund.failed",
        ]
        .contains(&hit.kind.as_str());
        if !final_type {
            continue;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&hit.body) else {
            continue;
        };
        let object = event["data"]["id"].as_str().unwrap_or_default().to_owned();
        out.entry(object).or_default().insert((hit.kind, hit.id));
    }
    out
}

/// What a settled merchant looks like, for the report.
#[derive(Debug, Default)]
pub struct Settled {
    /// payfac's side.
    pub view: Vec<PaymentView>,
    /// The simulator's orders of the merchant.
    pub orders: Vec<Value>,
    /// Whether everything was final (payfac and simulator) and every final object had its
    /// event before the deadline.
    pub settled: bool,
}

/// Waits (≤ `within`) until every payment and refund of `m` is final at payfac, every order of
/// its simulator merchant is final, and every final payfac object has a final event at `rx`.
pub async fn wait_settled(
    p: &PayfacProc,
    sim: &Sim,
    rx: &Receiver,
    m: &Merchant,
    within: Duration,
) -> Settled {
    let started = Instant::now();
    loop {
        let view = payfac_view(p, m).await;
        let orders = sim.orders(&m.merchant_no).await;
        let events = final_events(rx, &m.hook_path);
        let all_final = view.iter().all(|v| {
            payment_final(v.status())
                && v.refunds
                    .iter()
                    .all(|(r, _)| refund_final(r["status"].as_str().unwrap_or_default()))
        }) && orders.iter().all(|o| matches!(trans_status(o), 1..=3));
        let all_notified = view.iter().all(|v| {
            events.contains_key(v.id())
                && v.refunds
                    .iter()
                    .all(|(r, _)| events.contains_key(r["id"].as_str().unwrap_or_default()))
        });
        if (all_final && all_notified) || started.elapsed() > within {
            return Settled {
                view,
                orders,
                settled: all_final && all_notified,
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Compares a settled merchant with the simulator's ledger and the events it received;
/// returns every breach of the promise, one line each (empty = the money is right).
pub fn compare(s: &Settled, events: &HashMap<String, BTreeSet<(String, String)>>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut sales: BTreeMap<String, &Value> = BTreeMap::new();
    let mut refund_orders: BTreeMap<String, &Value> = BTreeMap::new();
    for o in &s.orders {
        let no = o["merchant_order_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if is_refund_order(o) {
            refund_orders.insert(no, o);
        } else {
            sales.insert(no, o);
        }
    }
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for v in &s.view {
        let id = v.id();
        let status = v.status();
        let amount = v.payment["amount"].as_i64().unwrap_or(-1);
        if !claimed.insert(v.upstream.clone()) {
            problems.push(format!("{id}: upstream order {} claimed twice", v.upstream));
        }
        let sale = sales.get(&v.upstream);
        let upstream_status = sale.map(|o| trans_status(o));
        let ok = match (upstream_status, status) {
            (Some(2), "succeeded") => true,
            // The late-success rule: canceled at payfac, paid upstream → refunded in full.
            (Some(2), "canceled") => {
                let late = v.refunds.iter().any(|(r, _)| {
                    r["merchant_refund_id"].as_str() == Some(&format!("late_success_{id}"))
                        && r["status"] == "succeeded"
                        && r["amount"].as_i64() == Some(amount)
                });
                if !late {
                    problems.push(format!(
                        "{id}: canceled but paid upstream (trans_status 2) without a succeeded \
                         full refund late_success_{id}"
                    ));
                }
                true
            }
            (Some(1) | None, "failed" | "canceled") => true,
            (Some(3), "canceled") => true,
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{id} ({} {}): payfac {status}, upstream {} ({})",
                v.payment["mode"].as_str().unwrap_or_default(),
                v.upstream,
                upstream_status.map_or("no order".to_owned(), |s| format!("trans_status {s}")),
                sale.and_then(|o| o["trans_error_code"].as_str())
                    .unwrap_or("-"),
            ));
        }
        if let Some(o) = sale {
            let up_amount = o["amount_minor"].as_i64().unwrap_or(-1);
            if up_amount != amount {
                problems.push(format!(
                    "{id}: amount {amount} at payfac, {up_amount} upstream"
                ));
            }
        }
        // Refunds.
        let mut succeeded_sum = 0;
        for (r, rno) in &v.refunds {
            let rid = r["id"].as_str().unwrap_or_default();
            let rstatus = r["status"].as_str().unwrap_or_default();
            let ramount = r["amount"].as_i64().unwrap_or(-1);
            if !claimed.insert(rno.clone()) {
                problems.push(format!("{rid}: upstream refund {rno} claimed twice"));
            }
            let ro = refund_orders.get(rno);
            let up = ro.map(|o| trans_status(o));
            let ok = matches!(
                (up, rstatus),
                (Some(2), "succeeded") | (Some(1) | None, "failed")
            );
            if !ok {
                problems.push(format!(
                    "{rid} of {id} ({ramount}): payfac {rstatus}, upstream {}",
                    up.map_or("no order".to_owned(), |s| format!("trans_status {s}"))
                ));
            }
            if let Some(o) = ro {
                if o["amount_minor"].as_i64() != Some(ramount) {
                    problems.push(format!(
                        "{rid}: amount {ramount} at payfac, {} upstream",
                        o["amount_minor"]
                    ));
                }
                if o["orig_merchant_order_no"]
                    .as_str()
                    .is_some_and(|x| x != v.upstream)
                {
                    problems.push(format!("{rid}: upstream refund of another order"));
                }
            }
            if rstatus == "succeeded" {
                succeeded_sum += ramount;
            }
            // Events of the refund.
            check_events(&mut problems, rid, rstatus, "refund", events);
        }
        let refunded = v.payment["amount_refunded"].as_i64().unwrap_or(-1);
        if refunded != succeeded_sum {
            problems.push(format!(
                "{id}: amount_refunded {refunded}, succeeded refunds sum {succeeded_sum}"
            ));
        }
        let upstream_refunded: i64 = refund_orders
            .values()
            .filter(|o| o["orig_merchant_order_no"].as_str() == Some(&v.upstream))
            .filter(|o| trans_status(o) == 2)
            .map(|o| o["amount_minor"].as_i64().unwrap_or(0))
            .sum();
        if upstream_refunded != succeeded_sum {
            problems.push(format!(
                "{id}: succeeded refunds {succeeded_sum} at payfac, {upstream_refunded} settled upstream"
            ));
        }
        check_events(&mut problems, id, status, "payment", events);
    }
    for (no, o) in sales.iter().chain(refund_orders.iter()) {
        if !claimed.contains(no) {
            problems.push(format!(
                "upstream {} {no} (trans_status {}, {} minor) belongs to no payfac object{}",
                if is_refund_order(o) { "refund" } else { "sale" },
                trans_status(o),
                o["amount_minor"],
                if trans_status(o) == 2 && !is_refund_order(o) {
                    ": a charge payfac does not know (double charge?)"
                } else {
                    ""
                }
            ));
        }
    }
    problems
}

/// Exactly one final `<kind>.*` event type for `id`, and it matches `status` (a non-final
/// object must have none).
fn check_events(
    problems: &mut Vec<String>,
    id: &str,
    status: &str,
    kind: &str,
    events: &HashMap<String, BTreeSet<(String, String)>>,
) {
    let types: BTreeSet<&str> = events
        .get(id)
        .map(|s| s.iter().map(|(t, _)| t.as_str()).collect())
        .unwrap_or_default();
    let expected = format!("{kind}.{status}");
    let final_status = if kind == "payment" {
        payment_final(status)
    } else {
        refund_final(status)
    };
    if final_status {
        if types.len() != 1 || !types.contains(expected.as_str()) {
            problems.push(format!(
                "{id} is {status}: final events received {types:?}, expected exactly {expected}"
            ));
        }
    } else if !types.is_empty() {
        problems.push(format!(
            "{id} is {status} (not final) but final events {types:?} were sent"
        ));
    }
}

/// The books against the same ledger: every gateway-clearing movement of `m` is a capture of a
/// payment paid upstream or a refund settled upstream, each exactly once and for its amount.
/// Per payment (CodePay's fee aside): clearing debits − credits = its amount when it succeeded,
/// 0 otherwise (a late success is in and out again, one `late_success_refund` journal). Per
/// refund: one `refund` journal crediting clearing with its amount when it succeeded, none
/// otherwise. A second capture journal, a missing one, or a refund posted twice shows here.
pub async fn books_problems(p: &PayfacProc, m: &Merchant, s: &Settled) -> Vec<String> {
    let entries = list_all(
        p,
        &p.operator_key,
        &format!("/v1/ledger/entries?merchant_id={}", m.id),
    )
    .await;
    // subject → (clearing net, entries by journal kind)
    let mut by_subject: HashMap<String, (i64, BTreeMap<String, BTreeSet<String>>)> = HashMap::new();
    for e in &entries {
        let kind = e["kind"].as_str().unwrap_or_default();
        if kind == "codepay_fee" {
            continue;
        }
        let amount = e["amount"].as_i64().unwrap_or(0);
        let slot = by_subject
            .entry(e["subject_id"].as_str().unwrap_or_default().to_owned())
            .or_default();
        if e["debit_account"] == "gateway_clearing" {
            slot.0 += amount;
        }
        if e["credit_account"] == "gateway_clearing" {
            slot.0 -= amount;
        }
        slot.1
            .entry(kind.to_owned())
            .or_default()
            .insert(e["journal_id"].as_str().unwrap_or_default().to_owned());
    }
    let journals = |subject: &str, kind: &str| {
        by_subject
            .get(subject)
            .and_then(|(_, k)| k.get(kind))
            .map_or(0, BTreeSet::len)
    };
    let net = |subject: &str| by_subject.get(subject).map_or(0, |(n, _)| *n);
    let mut problems = Vec::new();
    for v in &s.view {
        let id = v.id();
        let amount = v.payment["amount"].as_i64().unwrap_or(-1);
        let late = v.refunds.iter().any(|(r, _)| {
            r["merchant_refund_id"].as_str() == Some(&format!("late_success_{id}"))
                && r["status"] == "succeeded"
        });
        let (want_net, want_captures, want_late) = match v.status() {
            "succeeded" => (amount, 1, 0),
            "canceled" if late => (0, 0, 1),
            _ => (0, 0, 0),
        };
        let got = (
            net(id),
            journals(id, "capture"),
            journals(id, "late_success_refund"),
        );
        if got != (want_net, want_captures, want_late) {
            problems.push(format!(
                "{id} ({}): books clearing net {}, capture journals {}, late-success journals {}; \
                 want {want_net}, {want_captures}, {want_late}",
                v.status(),
                got.0,
                got.1,
                got.2
            ));
        }
        for (r, _) in &v.refunds {
            let rid = r["id"].as_str().unwrap_or_default();
            if r["merchant_refund_id"]
                .as_str()
                .is_some_and(|m| m.starts_with("late_success_"))
            {
                continue;
            }
            let ramount = r["amount"].as_i64().unwrap_or(-1);
            let want = if r["status"] == "succeeded" {
                (-ramount, 1)
            } else {
                (0, 0)
            };
            let got = (net(rid), journals(rid, "refund"));
            if got != want {
                problems.push(format!(
                    "{rid} of {id} ({}): books clearing net {}, refund journals {}; want {}, {}",
                    r["status"].as_str().unwrap_or("?"),
                    got.0,
                    got.1,
                    want.0,
                    want.1
                ));
            }
        }
    }
    // Nothing posted about a subject payfac does not show.
    let known: BTreeSet<&str> = s
        .view
        .iter()
        .flat_map(|v| {
            std::iter::once(v.id()).chain(
                v.refunds
                    .iter()
                    .map(|(r, _)| r["id"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    for (subject, (_, kinds)) in &by_subject {
        if !known.contains(subject.as_str()) && !kinds.contains_key("adjustment") {
            problems.push(format!(
                "books post about {subject}, which the merchant's API does not show"
            ));
        }
    }
    problems
}

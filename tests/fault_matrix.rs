//! Issue 11, "money stays right under faults": every upstream operation × every transport fault
//! × where it lands, every notification fault and the known races, each driven through the
//! merchant API against the real binary and a separate simulator process, then checked with
//! the ledger comparison (`support::ledger`). Rows run one after another (faults are global
//! to the simulator), each with its own merchant; the matrix is printed and the test fails
//! listing every failing row.

use crate::support::Receiver;
use crate::support::ledger::{books_problems, compare, final_events, wait_settled};
use crate::support::stack::{self, Db, Keys, Merchant, PayfacProc, Sim};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where in a payment's life the fault lands.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Creating an MPM payment (QR code).
    CreateMpm,
    /// Creating a CPM payment (auth code `approve`).
    CreateCpm,
    /// Settling a CPM payment whose customer enters a PIN (the poll's `order.query`).
    Settle,
    /// `POST /v1/payments/{id}/cancel` of an unpaid MPM payment.
    Cancel,
    /// An unpaid MPM payment reaching its expiry.
    Expiry,
    /// A CPM payment that never settles, reversed at the deadline.
    Reversal,
    /// A partial refund of a succeeded payment.
    Refund,
}

/// One row: what to break and where.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// `kind` on the next call of `method`, landing at `at`.
    Fault(&'static str, &'static str, At),
    /// A notification fault (`drop`, `duplicate`, `reorder`, `delay`) on a paid MPM payment.
    Notify(&'static str),
    /// The wallet pays while payfac's `order.revoker` (slow, ~4 s) closes the order.
    PayDuringClose,
    /// A PIN payment completes while payfac reverses it at the CPM deadline (slow revoker).
    PayDuringReversal,
    /// CodePay's notification of a CPM success arrives before the create's (slow) answer.
    NotifyBeforeCreateAnswer,
}

const TRANSPORT_FAULTS: [&str; 6] = [
    "http_500",
    "timeout",
    "drop_response_after_commit",
    "unsigned",
    "bad_signature",
    "slow",
];

/// Each upstream operation with the places its faults can land. A new place is one entry.
const OPERATIONS: &[(&str, &[At])] = &[
    ("cscanb.pay.getqrcode", &[At::CreateMpm]),
    ("bscanc.pay.submit", &[At::CreateCpm]),
    (
        "order.query",
        &[At::Settle, At::Cancel, At::Expiry, At::Reversal],
    ),
    ("order.revoker", &[At::Cancel, At::Expiry, At::Reversal]),
    ("order.refund.submit", &[At::Refund]),
    ("order.refund.query", &[At::Refund]),
];

/// The rows beside the operation × fault grid. A new case is one line.
const SPECIAL: &[Case] = &[
    Case::Notify("drop"),
    Case::Notify("duplicate"),
    Case::Notify("reorder"),
    Case::Notify("delay"),
    Case::PayDuringClose,
    Case::PayDuringReversal,
    Case::NotifyBeforeCreateAnswer,
];

/// The full matrix.
fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (method, places) in OPERATIONS {
        for at in *places {
            for kind in TRANSPORT_FAULTS {
                cases.push(Case::Fault(method, kind, *at));
            }
        }
    }
    cases.extend_from_slice(SPECIAL);
    cases
}

/// The subset run on the embedded SQLite mode too.
fn sqlite_cases() -> Vec<Case> {
    vec![
        Case::Fault(
            "bscanc.pay.submit",
            "drop_response_after_commit",
            At::CreateCpm,
        ),
        Case::Fault("cscanb.pay.getqrcode", "timeout", At::CreateMpm),
        Case::Fault("order.revoker", "timeout", At::Cancel),
        Case::Fault(
            "order.refund.submit",
            "drop_response_after_commit",
            At::Refund,
        ),
        Case::Notify("drop"),
        Case::PayDuringClose,
    ]
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Fault(method, kind, at) => format!("{method} × {kind} @ {at:?}"),
            Case::Notify(kind) => format!("payment.result.notify × {kind}"),
            other => format!("race: {other:?}"),
        }
    }
}

/// payfac's CPM deadline in the matrix: shorter than the stack's, as a third of the rows wait
/// for it (the PIN rows' 2 s entry still fits before it).
const CPM_DEADLINE_SECONDS: u64 = 4;
/// payfac's default MPM expiry in the matrix: the expiry rows wait for it. The simulator's
/// window to pay (this / `TIME_SCALE`, 0.6 s) still covers the wallet paying right after create.
const MPM_EXPIRES_SECONDS: u64 = 3;

/// The simulator, payfac and the webhook receiver the rows share.
struct Ctx {
    sim: Sim,
    payfac: PayfacProc,
    rx: Receiver,
    /// Until when a `slow`/`timeout` fault may still be holding a request: a `slow` one applies
    /// its operation only after the delay, so the books may change until then.
    held: std::sync::Mutex<Vec<tokio::task::JoinHandle<Instant>>>,
    _keys: Keys,
}

impl Ctx {
    async fn start(db: Db) -> Ctx {
        let keys = Keys::write();
        let sim = Sim::start(&keys).await;
        let (deadline, expiry) = (
            CPM_DEADLINE_SECONDS.to_string(),
            MPM_EXPIRES_SECONDS.to_string(),
        );
        let env = [
            ("PAYFAC_CPM_DEADLINE_SECONDS", deadline.as_str()),
            ("PAYFAC_MPM_EXPIRES_SECONDS", expiry.as_str()),
        ];
        let payfac = PayfacProc::start(&sim, &keys, db, &env).await;
        let rx = Receiver::start();
        Ctx {
            sim,
            payfac,
            rx,
            held: std::sync::Mutex::new(Vec::new()),
            _keys: keys,
        }
    }

    async fn arm(&self, method: &str, kind: &str, delay_ms: Option<u64>) {
        let delay =
            delay_ms.or(matches!(kind, "timeout" | "slow").then_some(stack::FAULT_DELAY_MS));
        self.sim.fault(method, kind, 1, delay).await;
        if let Some(ms) = delay.filter(|_| kind != "delay") {
            // Watch for the moment the simulator takes the fault (a job may take it seconds
            // later); the held request lands at most `ms` after that.
            let (base, method, kind) = (self.sim.base.clone(), method.to_owned(), kind.to_owned());
            let watcher = tokio::spawn(async move {
                let http = reqwest::Client::new();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(15) {
                    let armed = match http.get(format!("{base}/sim/faults")).send().await {
                        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                        Err(_) => Value::Null,
                    };
                    let still = armed["faults"].as_array().is_some_and(|l| {
                        l.iter()
                            .any(|f| f["method"] == method.as_str() && f["kind"] == kind.as_str())
                    });
                    if !still {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Instant::now() + Duration::from_millis(ms + 300)
            });
            self.held.lock().expect("lock").push(watcher);
        }
    }

    async fn create(&self, m: &Merchant, body: Value) -> (u16, Value) {
        self.payfac
            .call(Method::POST, "/v1/payments", &m.key, Some(body))
            .await
    }

    /// An MPM payment of 1000; `expires_in` None = payfac's short default.
    async fn mpm(&self, m: &Merchant, order: &str, expires_in: Option<u64>) -> (u16, Value) {
        let mut body = json!({"mode": "mpm", "amount": 1000, "currency": "USD",
            "merchant_order_id": order, "wallet": "alipay"});
        if let Some(e) = expires_in {
            body["expires_in"] = json!(e);
        }
        self.create(m, body).await
    }

    async fn cpm(&self, m: &Merchant, order: &str, code: &str) -> (u16, Value) {
        self.create(
            m,
            json!({"mode": "cpm", "amount": 1000, "currency": "USD",
                "merchant_order_id": order, "wallet": "alipay", "auth_code": code}),
        )
        .await
    }

    async fn get(&self, m: &Merchant, id: &str) -> Value {
        self.payfac
            .call(Method::GET, &format!("/v1/payments/{id}"), &m.key, None)
            .await
            .1
    }

    /// Waits (≤ 10 s) for `id` to be `succeeded`.
    async fn until_succeeded(&self, m: &Merchant, id: &str) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let p = self.get(m, id).await;
            if p["status"] == "succeeded" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("setup: {id} never succeeded"))
    }

    async fn cancel(&self, m: &Merchant, id: &str) -> (u16, Value) {
        self.payfac
            .call(
                Method::POST,
                &format!("/v1/payments/{id}/cancel"),
                &m.key,
                Some(json!({})),
            )
            .await
    }
}

/// Drives one row up to the point where only settlement is left; returns notes for the report.
async fn drive(ctx: &Ctx, m: &Merchant, case: Case) -> Result<String, String> {
    let sim = &ctx.sim;
    let mut notes = String::new();
    match case {
        Case::Fault(method, kind, at) => match at {
            At::CreateMpm => {
                ctx.arm(method, kind, None).await;
                // payfac's short default expiry, so a payment left without a QR code is closed
                // by its expiry job within the row (the wallet still pays in the 1 s window).
                let (status, p) = ctx.mpm(m, "o1", None).await;
                notes = format!("create {status} {}", p["status"]);
                if let Some(qr) = p["qr_code"].as_str() {
                    notes += &format!(", wallet pay {}", sim.pay(qr).await);
                }
            }
            At::CreateCpm => {
                let code = sim.auth_code("approve", None).await;
                ctx.arm(method, kind, None).await;
                let (status, p) = ctx.cpm(m, "o1", &code).await;
                notes = format!("create {status} {}", p["status"]);
            }
            At::Settle => {
                // PIN entry: 10 s scaled by the simulator (2 s real), so polls (every 300 ms)
                // meet the fault before the success is notified.
                let code = sim.auth_code("pin", Some(10_000)).await;
                ctx.arm(method, kind, None).await;
                let (status, p) = ctx.cpm(m, "o1", &code).await;
                notes = format!("create {status} {}", p["status"]);
            }
            At::Cancel => {
                let (status, p) = ctx.mpm(m, "o1", Some(60)).await;
                let id = p["id"]
                    .as_str()
                    .ok_or(format!("setup: create {status} {p}"))?;
                ctx.arm(method, kind, None).await;
                let (cs, c) = ctx.cancel(m, id).await;
                notes = format!("cancel {cs} {}", c["status"]);
            }
            At::Expiry => {
                // CodePay closes the order itself at the expiry payfac sent it (1 s real at
                // the simulator's time scale) and notifies `1/ORDER_EXPIRED`, which payfac
                // applies: the fault would never meet payfac's own expiry job. So this row's
                // notifications are dropped (every one: `drop` is per notification) and the
                // simulator's order outlives payfac's expiry (scale 1, clock set back), so the
                // expiry job's query → revoke → query is what meets the fault.
                sim.fault(NOTIFY, "drop", 100, None).await;
                sim.clock(Some(1), None).await;
                let (status, p) = ctx.mpm(m, "o1", None).await;
                sim.clock(None, Some(-EXPIRY_HOLD_SECONDS)).await;
                p["id"]
                    .as_str()
                    .ok_or(format!("setup: create {status} {p}"))?;
                ctx.arm(method, kind, None).await;
            }
            At::Reversal => {
                let code = sim.auth_code("never_settles", None).await;
                let (status, p) = ctx.cpm(m, "o1", &code).await;
                p["id"]
                    .as_str()
                    .ok_or(format!("setup: create {status} {p}"))?;
                // Polls call order.query every 300 ms: arm a query fault only near the deadline
                // so it lands on the reversal, not on an ordinary poll.
                if method == "order.query" {
                    tokio::time::sleep(Duration::from_secs(CPM_DEADLINE_SECONDS - 1)).await;
                }
                ctx.arm(method, kind, None).await;
            }
            At::Refund => {
                let code = sim.auth_code("approve", None).await;
                let (status, p) = ctx.cpm(m, "o1", &code).await;
                let id = p["id"]
                    .as_str()
                    .ok_or(format!("setup: create {status} {p}"))?;
                ctx.until_succeeded(m, id).await?;
                ctx.arm(method, kind, None).await;
                let (rs, r) = ctx
                    .payfac
                    .call(
                        Method::POST,
                        &format!("/v1/payments/{id}/refunds"),
                        &m.key,
                        Some(json!({"amount": 300, "merchant_refund_id": "r1"})),
                    )
                    .await;
                notes = format!("refund {rs} {}", r["status"]);
            }
        },
        Case::Notify(kind) => {
            let delay = (kind == "delay").then_some(5000);
            ctx.arm("payment.result.notify", kind, delay).await;
            // payfac's short default expiry: without a notification its expiry job's query is
            // what finds the payment (the simulator's window to pay is 1 s, ample here).
            let (status, p) = ctx.mpm(m, "o1", None).await;
            let qr = p["qr_code"]
                .as_str()
                .ok_or(format!("setup: create {status} {p}"))?;
            notes = format!("wallet pay {}", sim.pay(qr).await);
            if kind == "reorder" {
                // A reordered notification waits for the next one: give it one.
                let (_, p2) = ctx.mpm(m, "o2", None).await;
                if let Some(qr) = p2["qr_code"].as_str() {
                    sim.decline(qr).await;
                }
            }
        }
        Case::PayDuringClose => {
            let (status, p) = ctx.mpm(m, "o1", Some(60)).await;
            let id = p["id"]
                .as_str()
                .ok_or(format!("setup: create {status} {p}"))?
                .to_owned();
            let qr = p["qr_code"].as_str().unwrap_or_default().to_owned();
            // Two held revokes: the cancel's, and the one of the poll job `reverse` commits
            // (300 ms later, to resume the close should the process die) — unheld, the second
            // would close the order before the wallet pays.
            ctx.arm("order.revoker", "slow", Some(4000)).await;
            ctx.arm("order.revoker", "slow", Some(4000)).await;
            let cancel = {
                let (payfac_base, key) = (ctx.payfac.base.clone(), m.key.clone());
                let http = ctx.payfac.http.clone();
                tokio::spawn(async move {
                    http.post(format!("{payfac_base}/v1/payments/{id}/cancel"))
                        .bearer_auth(key)
                        .json(&json!({}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            };
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let paid = sim.pay(&qr).await;
            let cs = cancel.await.map_err(|e| e.to_string())?;
            notes = format!("wallet pay {paid} during revoke, cancel {cs:?}");
        }
        Case::PayDuringReversal => {
            // The PIN completes ~5 s after create (25 s scaled by 5), the deadline is 4 s and
            // the revoke is held 4 s: the payment lands while the reversal is in flight.
            let code = sim.auth_code("pin", Some(25_000)).await;
            let (status, p) = ctx.cpm(m, "o1", &code).await;
            p["id"]
                .as_str()
                .ok_or(format!("setup: create {status} {p}"))?;
            // Both revokes held (the reversal's and its poll job's, as in `PayDuringClose`).
            ctx.arm("order.revoker", "slow", Some(4000)).await;
            ctx.arm("order.revoker", "slow", Some(4000)).await;
            notes = format!("create {status} {}", p["status"]);
        }
        Case::NotifyBeforeCreateAnswer => {
            // Held 1 s (under payfac's timeout) before the order is created and paid: the
            // notification of the success is sent at once, while payfac still waits.
            let code = sim.auth_code("approve", None).await;
            ctx.arm("bscanc.pay.submit", "slow", Some(1000)).await;
            let (status, p) = ctx.cpm(m, "o1", &code).await;
            notes = format!("create {status} {}", p["status"]);
        }
    }
    Ok(notes)
}

/// The notification method, for faults on CodePay's notifications.
const NOTIFY: &str = "payment.result.notify";

/// How far an expiry row sets the simulator's clock back, so its order is still open when
/// payfac's expiry job runs ([`MPM_EXPIRES_SECONDS`] after the create, on real time).
const EXPIRY_HOLD_SECONDS: i64 = 3;

/// True for the rows that run with the simulator's clock held back (see `drive`).
fn holds_clock(case: Case) -> bool {
    matches!(case, Case::Fault(_, _, At::Expiry))
}

/// Runs one row: its own merchant, drive, settle, compare. `Ok(summary)` or `Err(details)`.
async fn run_case(ctx: &Ctx, case: Case) -> Result<String, String> {
    ctx.sim.clear_faults().await;
    let m = ctx.payfac.onboard(&ctx.sim, &ctx.rx).await;
    let notes = drive(ctx, &m, case).await;
    let result = match notes {
        Ok(notes) => settle_and_compare(ctx, &m, case, notes).await,
        Err(e) => Err(e),
    };
    if holds_clock(case) {
        ctx.sim
            .clock(Some(stack::TIME_SCALE), Some(EXPIRY_HOLD_SECONDS))
            .await;
    }
    result
}

/// The second half of a row: waits for payfac, the simulator and the events to settle (and for
/// any held request to land), then compares and checks that the row's fault fired.
async fn settle_and_compare(
    ctx: &Ctx,
    m: &Merchant,
    case: Case,
    notes: String,
) -> Result<String, String> {
    let mut settled =
        wait_settled(&ctx.payfac, &ctx.sim, &ctx.rx, m, Duration::from_secs(25)).await;
    // A request held by a `slow` fault lands only after its delay: look again once it must
    // have landed, so a late revoke or a late order is part of the comparison.
    let watchers: Vec<_> = ctx.held.lock().expect("lock").drain(..).collect();
    let mut held = Instant::now();
    for w in watchers {
        held = held.max(w.await.unwrap_or(held));
    }
    if held > Instant::now() {
        tokio::time::sleep(held - Instant::now()).await;
        settled = wait_settled(&ctx.payfac, &ctx.sim, &ctx.rx, m, Duration::from_secs(15)).await;
    }
    let mut unused = ctx.sim.faults().await;
    ctx.sim.clear_faults().await;
    if holds_clock(case) {
        // The notification drops are the row's setup, not its fault.
        unused.retain(|f| f["method"] != NOTIFY);
    }
    let mut problems = compare(&settled, &final_events(&ctx.rx, &m.hook_path));
    if settled.settled {
        problems.extend(books_problems(&ctx.payfac, m, &settled).await);
    }
    if !settled.settled {
        problems
            .push("not settled (payfac + simulator final, events delivered) within 25 s".into());
    }
    // A fault that never fired leaves the row untested.
    if !unused.is_empty() {
        problems.push(format!("fault never fired: {unused:?}"));
    }
    let states: Vec<String> = settled
        .view
        .iter()
        .map(|v| {
            let refunds: Vec<String> = v
                .refunds
                .iter()
                .map(|(r, _)| {
                    format!(
                        "{}={}",
                        r["merchant_refund_id"].as_str().unwrap_or("?"),
                        r["status"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            format!("{} {} refunds[{}]", v.id(), v.status(), refunds.join(","))
        })
        .collect();
    let upstream: Vec<String> = settled
        .orders
        .iter()
        .map(|o| {
            format!(
                "{}:{}{}",
                o["merchant_order_no"].as_str().unwrap_or("?"),
                crate::support::ledger::trans_status(o),
                o["trans_error_code"]
                    .as_str()
                    .map(|c| format!("/{c}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let summary = format!(
        "{notes}; payfac [{}]; sim [{}]; merchant {}",
        states.join("; "),
        upstream.join(", "),
        m.id
    );
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!(
            "{summary}\n      - {}",
            problems.join("\n      - ")
        ))
    }
}

/// Runs `cases` in order against one stack, prints the matrix, fails listing every failed row.
async fn run_matrix(db: Db, cases: Vec<Case>) {
    let started = Instant::now();
    let ctx = Ctx::start(db).await;
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    for case in cases {
        let t = Instant::now();
        let result = run_case(&ctx, case).await;
        let line = match &result {
            Ok(summary) => format!(
                "{:<60} PASS ({:.1}s)  {summary}",
                case.name(),
                t.elapsed().as_secs_f64()
            ),
            Err(e) => format!(
                "{:<60} FAIL ({:.1}s)  {e}",
                case.name(),
                t.elapsed().as_secs_f64()
            ),
        };
        println!("[{db:?}] {line}");
        let short = format!(
            "{:<60} {}",
            case.name(),
            if result.is_ok() { "PASS" } else { "FAIL" }
        );
        if result.is_err() {
            failed.push(line);
        }
        lines.push(short);
    }
    let panics = ctx
        .payfac
        .logs()
        .lines()
        .filter(|l| l.contains("panicked"))
        .count();
    println!(
        "\n[{db:?}] fault matrix: {} rows, {} failed, {panics} panic lines, {:.0}s\n{}",
        lines.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        lines.join("\n")
    );
    assert!(
        failed.is_empty() && panics == 0,
        "[{db:?}] {} of {} rows failed ({panics} panics in payfac's log):\n{}",
        failed.len(),
        lines.len(),
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_stays_right_under_faults_postgres_redis() {
    run_matrix(Db::PostgresRedis, all_cases()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_stays_right_under_faults_sqlite() {
    run_matrix(Db::Sqlite, sqlite_cases()).await;
}

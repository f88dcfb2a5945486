//! Transaction result notifications: built from the order, signed with the gateway key, POSTed to
//! the order's `notify_url` and retried on CodePay's schedule until the body is exactly `success`.

use crate::faults::{FaultKind, NOTIFY_METHOD};
use crate::ledger::{Job, Notification, TRANS_TYPE_REFUND};
use crate::ops::sale_view;
use crate::refunds::refund_view;
use crate::sim::{Inner, Simulator, State};
use gateway_client::sign_message;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Waits before each retry, seconds: CodePay's 5s, 10s, 15s, 30s, 60s, 3m, 10m, 15m, 30m ×3,
/// 3h ×3 (15 attempts with the first, over about 12 hours), compressed by the time scale.
pub const RETRY_SCHEDULE_SECS: [i64; 14] = [
    5, 10, 15, 30, 60, 180, 600, 900, 1800, 1800, 1800, 10_800, 10_800, 10_800,
];

/// How long a `reorder`ed notification waits for another one to overtake it, scheduling ms.
const REORDER_FALLBACK_MS: i64 = 30_000;

/// Longest receiver reply kept in the attempt log.
const EXCERPT_CHARS: usize = 200;

/// One notification attempt, as `GET /sim/notifications` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// The notification's `http_request_id`.
    pub http_request_id: String,
    /// The order it is about.
    pub trans_no: String,
    /// `trans_status` it announced.
    pub trans_status: Option<i64>,
    /// Where it went.
    pub url: String,
    /// 1-based attempt number (0 when dropped by a fault).
    pub attempt: u32,
    /// Gateway wall-clock time, `YYYY-MM-DD HH:mm:ss`.
    pub at: String,
    /// `delivered`, `failed`, `dropped` (fault) or `gave_up` (schedule exhausted).
    pub outcome: &'static str,
    /// Receiver's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Start of the receiver's reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Transport error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Queues a notification for the order's current (final) state, if it has a `notify_url`,
/// applying the next notification fault.
pub(crate) fn enqueue(sim: &Simulator, st: &mut State, trans_no: &str) {
    let Some(order) = st.ledger.orders.get(trans_no) else {
        return;
    };
    let Some(url) = order.notify_url.clone() else {
        return;
    };
    let id = sim.next_number("N");
    let mut fields = if order.trans_type == TRANS_TYPE_REFUND {
        refund_view(order)
    } else {
        sale_view(order)
    };
    fields.insert("method".into(), json!(NOTIFY_METHOD));
    fields.insert("http_request_id".into(), json!(id));
    fields.insert("app_id".into(), json!(order.app_id));
    fields.insert("sign_type".into(), json!("RSA2"));
    let mut n = Notification {
        id: id.clone(),
        url,
        fields,
        attempts: 0,
        duplicate: false,
    };
    let now = sim.inner.clock.virtual_ms();
    match st.faults.take(NOTIFY_METHOD) {
        Some(f) if f.kind == FaultKind::Drop => {
            let record = record(sim, &n, 0, "dropped");
            st.log_attempt(record);
        }
        Some(f) if f.kind == FaultKind::Delay => {
            let delay = i64::try_from(f.delay()).unwrap_or(i64::MAX);
            st.ledger
                .schedule(now.saturating_add(delay), Job::Notify(n));
        }
        Some(f) if f.kind == FaultKind::Reorder => {
            if let Some(previous) = st.ledger.held.take() {
                st.ledger.schedule(now, Job::Notify(previous));
            }
            st.ledger.schedule(
                now.saturating_add(REORDER_FALLBACK_MS),
                Job::ReleaseHeld { id },
            );
            st.ledger.held = Some(n);
        }
        Some(f) if f.kind == FaultKind::Duplicate => {
            n.duplicate = true;
            st.ledger.schedule(now, Job::Notify(n));
        }
        _ => st.ledger.schedule(now, Job::Notify(n)),
    }
}

/// Sends the held notification now if it is still the one the timer was set for.
pub(crate) fn release_held(sim: &Simulator, st: &mut State, id: Option<&str>) {
    let matches = st
        .ledger
        .held
        .as_ref()
        .is_some_and(|h| id.is_none_or(|id| h.id == id));
    if let Some(h) = st.ledger.held.take_if(|_| matches) {
        let now = sim.inner.clock.virtual_ms();
        st.ledger.schedule(now, Job::Notify(h));
    }
}

fn record(sim: &Simulator, n: &Notification, attempt: u32, outcome: &'static str) -> AttemptRecord {
    AttemptRecord {
        http_request_id: n.id.clone(),
        trans_no: n
            .fields
            .get("trans_no")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        trans_status: n.fields.get("trans_status").and_then(Value::as_i64),
        url: n.url.clone(),
        attempt,
        at: crate::clock::format_utc(sim.inner.clock.now_ms()),
        outcome,
        http_status: None,
        response: None,
        error: None,
    }
}

/// One attempt (twice under `duplicate`), then the next retry or the end of the schedule.
pub(crate) async fn deliver(inner: Arc<Inner>, mut n: Notification) {
    let sim = Simulator { inner };
    let mut msg = n.fields.clone();
    msg.insert(
        "timestamp".into(),
        json!(sim.inner.clock.now_ms().to_string()),
    );
    sign_message(&mut msg, &sim.inner.gateway_key);
    let body = Value::Object(msg).to_string();
    let attempt = n.attempts.saturating_add(1);
    let sends = if n.duplicate { 2 } else { 1 };
    let mut delivered = false;
    let mut records = Vec::new();
    for _ in 0..sends {
        let mut rec = record(&sim, &n, attempt, "failed");
        let res = sim
            .inner
            .http
            .post(&n.url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                // CodePay's rule: only a 2xx whose body is exactly `success` stops the retries.
                if status.is_success() && text == "success" {
                    delivered = true;
                    rec.outcome = "delivered";
                }
                rec.http_status = Some(status.as_u16());
                rec.response = Some(text.chars().take(EXCERPT_CHARS).collect());
            }
            Err(e) => rec.error = Some(e.to_string()),
        }
        records.push(rec);
    }
    let mut st = sim.inner.state.lock();
    for r in records {
        st.log_attempt(r);
    }
    n.attempts = attempt;
    n.duplicate = false;
    if !delivered {
        let retry = usize::try_from(attempt - 1)
            .ok()
            .and_then(|i| RETRY_SCHEDULE_SECS.get(i));
        match retry {
            Some(secs) => {
                let due = sim.inner.clock.virtual_ms().saturating_add(secs * 1000);
                st.ledger.schedule(due, Job::Notify(n.clone()));
            }
            None => {
                let rec = record(&sim, &n, attempt, "gave_up");
                st.log_attempt(rec);
            }
        }
    }
    // A held (`reorder`) notification goes out once another one has been sent ahead of it.
    if attempt == 1 {
        let other_held = st.ledger.held.as_ref().is_some_and(|h| h.id != n.id);
        if other_held {
            release_held(&sim, &mut st, None);
        }
    }
    drop(st);
    sim.changed();
}

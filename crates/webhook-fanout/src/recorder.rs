//! Group commit of delivery outcomes: many finished deliveries written in one transaction.
//!
//! The pump's delivery tasks hand what happened to the recorder; it writes a whole batch at
//! once — one multi-row insert of attempts, grouped delivery updates, the endpoints' health
//! (`failing_since`, disabling and the `endpoint.disabled` event), and every job completed, retried or failed
//! while this pump still holds its lease. A batch that fails is written again one delivery per
//! transaction, so one bad row cannot hold back the others; a delivery whose record still
//! fails keeps its job leased and runs again after the lease (receivers deduplicate on
//! `webhook-id`).

use crate::outbox::announce_endpoint_disabled;
use crate::outcome::{Decision, failing_too_long};
use crate::sender::AttemptRecord;
use crate::worker::describe;
use domain::{AttemptId, WebhookEndpointId};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};
use store::deliveries::{self, Delivery, DeliveryAttempt};
use store::{DbConnection, StoreResult, jobs, webhook_endpoints};
use tokio::sync::OwnedSemaphorePermit;

/// What became of one claimed job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to send (already delivered): complete the job.
    Done,
    /// Give up on the job without touching a delivery (no such delivery, bad payload).
    Dead(String),
    /// No attempt was made; run the job again after `wait` (deferral, unreadable secret,
    /// storage error). Not an attempt: the retry schedule does not advance.
    Later {
        /// How long to wait.
        wait: Duration,
        /// Why (kept on the job row).
        error: String,
    },
    /// The delivery cannot be sent (endpoint disabled or deleted, unreadable event): it dies
    /// without an attempt.
    GiveUp {
        /// The delivery.
        delivery: Box<Delivery>,
        /// Why.
        why: String,
    },
    /// An attempt was made.
    Sent {
        /// The delivery as loaded before the attempt.
        delivery: Box<Delivery>,
        /// What happened.
        record: Box<AttemptRecord>,
        /// The schedule's answer to it.
        decision: Decision,
    },
}

/// One claimed job and what became of it, holding its pump slot until it is recorded.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The job row id.
    pub job_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// Released once the outcome is committed, so the pump never runs ahead of its records.
    pub _slot: Option<OwnedSemaphorePermit>,
}

/// What a committed batch did, for metrics and the dispatcher.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Deliveries finished: (`delivered`/`failed`/`endpoint_disabled`, attempts made).
    pub finished: Vec<(&'static str, u32)>,
    /// Endpoints disabled by this batch: (id, reason, whether this batch disabled it).
    pub disabled: Vec<(String, &'static str, bool)>,
    /// Jobs whose lease this pump no longer held when finishing them.
    pub lost_leases: usize,
    /// Jobs whose lease this pump still held when finishing them.
    held: usize,
}

/// Per-endpoint health while a batch is planned.
struct Health {
    failing_since: Option<i64>,
    stored: Option<i64>,
    disable: Option<&'static str>,
}

/// Writes `batch` in the caller's transaction, fenced by `owner`.
pub(crate) fn write_batch(
    conn: &mut DbConnection,
    batch: &[Finished],
    owner: &str,
    disable_after: Duration,
    now: i64,
) -> StoreResult<Written> {
    let mut written = Written::default();
    let mut health = load_health(conn, batch)?;
    let mut plan = Plan::default();
    for item in batch {
        let job = item.job_id.as_str();
        match &item.outcome {
            Outcome::Done => plan.complete.push(job.to_owned()),
            Outcome::Dead(why) => plan.job_failures.push((job, why.clone())),
            Outcome::Later { wait, error } => plan
                .later
                .entry((now.saturating_add(store::clock::ms(*wait)), error.as_str()))
                .or_default()
                .push(job.to_owned()),
            Outcome::GiveUp { delivery, why } => {
                deliveries::mark_dead(conn, &delivery.id, why, now)?;
                written.finished.push((
                    "endpoint_disabled",
                    u32::try_from(delivery.attempts).unwrap_or(0),
                ));
                plan.job_failures.push((job, why.clone()));
            }
            Outcome::Sent {
                delivery,
                record,
                decision,
            } => {
                let h = health
                    .entry(delivery.endpoint_id.clone())
                    .or_insert(Health {
                        failing_since: None,
                        stored: None,
                        disable: None,
                    });
                let sent = Sent {
                    job,
                    delivery,
                    record,
                    decision: *decision,
                };
                plan.sent(sent, h, disable_after, now, &mut written);
            }
        }
    }
    plan.write(conn, &health, owner, now, &mut written)?;
    written.lost_leases = batch.len().saturating_sub(written.held);
    Ok(written)
}

/// One attempt made, as the plan sees it.
struct Sent<'a> {
    job: &'a str,
    delivery: &'a Delivery,
    record: &'a AttemptRecord,
    decision: Decision,
}

/// The rows a batch writes, grouped so that each kind is one statement (or one per group).
#[derive(Default)]
struct Plan<'a> {
    attempts: Vec<DeliveryAttempt>,
    /// Deliveries that succeeded, by (attempt number, HTTP status).
    succeeded: BTreeMap<(i32, Option<i32>), Vec<String>>,
    /// Deliveries that failed or died, with their next attempt.
    failed_updates: Vec<(DeliveryAttempt, &'static str, Option<i64>)>,
    complete: Vec<String>,
    /// Jobs to run again without an attempt, by (when, why).
    later: BTreeMap<(i64, &'a str), Vec<String>>,
    job_retries: Vec<(&'a str, i64, String)>,
    job_failures: Vec<(&'a str, String)>,
}

impl<'a> Plan<'a> {
    /// Plans the rows of one attempt: the endpoint's health, the delivery's new state and its
    /// job's.
    fn sent(
        &mut self,
        s: Sent<'a>,
        h: &mut Health,
        disable_after: Duration,
        now: i64,
        written: &mut Written,
    ) {
        let attempt = attempt_row(s.delivery, s.record);
        let attempt_no = u32::try_from(attempt.attempt).unwrap_or(u32::MAX);
        match s.decision {
            Decision::Delivered => h.failing_since = None,
            Decision::DisableEndpoint => h.disable = h.disable.or(Some("gone")),
            Decision::RetryIn(_) | Decision::GiveUp => {
                h.failing_since = h.failing_since.or(Some(attempt.started_at));
                let since = h.failing_since.map(ms_to_system);
                if failing_too_long(since, ms_to_system(now), disable_after) {
                    h.disable = h.disable.or(Some("failing"));
                }
            }
        }
        match (s.decision, h.disable) {
            (Decision::Delivered, _) => {
                self.succeeded
                    .entry((attempt.attempt, attempt.http_status))
                    .or_default()
                    .push(s.delivery.id.clone());
                self.complete.push(s.job.to_owned());
                written.finished.push(("delivered", attempt_no));
            }
            (Decision::RetryIn(d), None) => {
                let at = now.saturating_add(store::clock::ms(d));
                self.failed_updates
                    .push((attempt.clone(), deliveries::FAILED, Some(at)));
                self.job_retries.push((s.job, at, describe(s.record)));
            }
            (_, disable) => {
                self.failed_updates
                    .push((attempt.clone(), deliveries::DEAD, None));
                let (label, why) = match disable {
                    Some(r) => ("endpoint_disabled", format!("endpoint disabled ({r})")),
                    None => ("failed", "retry schedule exhausted".to_owned()),
                };
                written.finished.push((label, attempt_no));
                self.job_failures.push((
                    s.job,
                    format!("{why}; last attempt: {}", describe(s.record)),
                ));
            }
        }
        self.attempts.push(attempt);
    }

    /// Writes the plan; `written.held` counts the jobs whose lease this pump still held.
    fn write(
        &self,
        conn: &mut DbConnection,
        health: &HashMap<String, Health>,
        owner: &str,
        now: i64,
        written: &mut Written,
    ) -> StoreResult<()> {
        deliveries::insert_attempts(conn, &self.attempts)?;
        for ((attempt, http_status), ids) in &self.succeeded {
            deliveries::mark_succeeded(conn, ids, *attempt, *http_status, now)?;
        }
        for (attempt, status, next) in &self.failed_updates {
            deliveries::set_after_attempt(conn, attempt, status, *next, now)?;
        }
        write_health(conn, health, now, written)?;
        let mut held = jobs::complete_many(conn, &self.complete, owner, now)?;
        for ((run_at, error), ids) in &self.later {
            held += jobs::retry_many(conn, ids, owner, *run_at, error, now)?;
        }
        for (id, at, error) in &self.job_retries {
            held += usize::from(jobs::retry(conn, id, owner, *at, error, now)?);
        }
        for (id, error) in &self.job_failures {
            held += usize::from(jobs::fail(conn, id, owner, error, now)?);
        }
        written.held = held;
        Ok(())
    }
}

/// The current `failing_since` of every endpoint the batch made an attempt to.
fn load_health(
    conn: &mut DbConnection,
    batch: &[Finished],
) -> StoreResult<HashMap<String, Health>> {
    let mut ids: Vec<String> = batch
        .iter()
        .filter_map(|f| match &f.outcome {
            Outcome::Sent { delivery, .. } => Some(delivery.endpoint_id.clone()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(webhook_endpoints::get_many_any(conn, &ids)?
        .into_iter()
        .map(|e| {
            (
                e.id,
                Health {
                    failing_since: e.failing_since,
                    stored: e.failing_since,
                    disable: None,
                },
            )
        })
        .collect())
}

/// Writes each endpoint's new `failing_since`, and disables (announcing it) those that must be.
fn write_health(
    conn: &mut DbConnection,
    health: &HashMap<String, Health>,
    now: i64,
    written: &mut Written,
) -> StoreResult<()> {
    for (id, h) in health {
        let endpoint = WebhookEndpointId::parse(id)?;
        if h.failing_since != h.stored {
            webhook_endpoints::set_failing_since(conn, &endpoint, h.failing_since, now)?;
        }
        if let Some(reason) = h.disable {
            let disabled_now = webhook_endpoints::disable(conn, &endpoint, reason, now)?;
            if disabled_now {
                let current = webhook_endpoints::get_any(conn, id)?;
                announce_endpoint_disabled(conn, &current, now)?;
            }
            written.disabled.push((id.clone(), reason, disabled_now));
        }
    }
    Ok(())
}

fn attempt_row(delivery: &Delivery, record: &AttemptRecord) -> DeliveryAttempt {
    let started_ms = record
        .started_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    DeliveryAttempt {
        id: AttemptId::generate().into_string(),
        delivery_id: delivery.id.clone(),
        event_id: delivery.event_id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        merchant_id: delivery.merchant_id.clone(),
        attempt: delivery.attempts.saturating_add(1),
        started_at: started_ms,
        duration_ms: i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
        http_status: record.status.map(i32::from),
        response_excerpt: Some(record.response_excerpt.clone()).filter(|e| !e.is_empty()),
        error: record.error.clone(),
    }
}

fn ms_to_system(ms: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

//! The job handlers the server's runner calls, one per job kind.

use super::Engine;
use super::model::JobKind;
pub use super::settle::JobOutcome;
use domain::{PaymentId, RefundId};
use std::time::Duration;

/// Every job kind [`handle`] runs, for the runner to claim.
pub const KINDS: [&str; 5] = [
    "payment.poll",
    "payment.expire",
    "refund.poll",
    "payment.reconcile",
    "payment.confirm_late_success",
];

/// The one `payment.reconcile` job's dedupe key (its subject): the partial unique index over
/// unfinished jobs keeps it single however many processes seed it.
pub const RECONCILE_SUBJECT: &str = "reconcile";

/// How many unsettled payments one reconciliation pass examines.
const RECONCILE_BATCH: usize = 200;

/// How long to wait before retrying a job whose handler hit a storage or upstream error.
const ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// Runs one job: `kind` is the stored kind name (one of [`KINDS`]), `subject` the payment or refund id (the reconcile job's
/// is [`RECONCILE_SUBJECT`]). Never panics; errors become a retry. The reconcile job never
/// finishes: it asks to run again after `reconcile_interval`.
pub async fn handle(engine: &Engine, kind: &str, subject: &str) -> JobOutcome {
    let Some(kind) = JobKind::parse(kind) else {
        tracing::error!(%kind, "unknown job kind; dropping it");
        return JobOutcome::Done;
    };
    let result = match kind {
        JobKind::PollPayment | JobKind::ExpirePayment | JobKind::ConfirmLateSuccess => {
            match PaymentId::parse(subject) {
                Ok(id) if kind == JobKind::PollPayment => engine.poll_payment(&id).await,
                Ok(id) if kind == JobKind::ExpirePayment => engine.expire_payment(&id).await,
                Ok(id) => engine.confirm_late_success(&id).await,
                Err(_) => return bad_subject(kind, subject),
            }
        }
        JobKind::PollRefund => match RefundId::parse(subject) {
            Ok(id) => engine.poll_refund(&id).await,
            Err(_) => return bad_subject(kind, subject),
        },
        JobKind::Reconcile => {
            let cfg = engine.config();
            let next = chrono::Utc::now()
                + chrono::Duration::from_std(cfg.reconcile_interval)
                    .unwrap_or(chrono::Duration::seconds(60));
            match engine
                .reconcile(cfg.reconcile_min_age, RECONCILE_BATCH)
                .await
            {
                Ok(n) => {
                    tracing::info!(examined = n, "reconciliation pass done");
                    return JobOutcome::RetryAt(next);
                }
                Err(e) => Err(e),
            }
        }
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(kind = kind.as_str(), %subject, error = %e, "job failed; will retry");
        JobOutcome::RetryAt(
            chrono::Utc::now() + chrono::Duration::from_std(ERROR_BACKOFF).unwrap_or_default(),
        )
    })
}

/// Seeds the jobs that always exist (today the periodic `payment.reconcile`), due now. Safe to
/// call at every start and from every process: an unfinished job with the same kind and dedupe
/// key is kept, not duplicated. Returns how many were created.
pub async fn seed_jobs(db: &store::Database) -> crate::Result<usize> {
    let now = chrono::Utc::now().timestamp_millis();
    db.write(move |c| {
        let payload = serde_json::json!({ "subject": RECONCILE_SUBJECT }).to_string();
        let created = store::jobs::enqueue(
            c,
            &store::jobs::NewJob {
                kind: JobKind::Reconcile.as_str(),
                dedupe_key: Some(RECONCILE_SUBJECT),
                payload: &payload,
                run_at: now,
            },
            now,
        )?;
        Ok(usize::from(matches!(
            created,
            store::jobs::Enqueued::Created(_)
        )))
    })
    .await
    .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))
}

/// The job that closes each business day at the settlement cut-off (one job, dedupe key
/// [`CLOSE_DAY_SUBJECT`], rescheduling itself at the next cut-off).
pub const CLOSE_DAY_KIND: &str = "settlement.close_day";
/// The close-day job's dedupe key (its subject).
pub const CLOSE_DAY_SUBJECT: &str = "settlement";
/// The job that reconciles one closed business day with CodePay (dedupe key: the date).
pub const RECONCILE_DAY_KIND: &str = "reconciliation.run";
/// The books' job kinds, run by [`handle_books`].
pub const BOOKS_KINDS: [&str; 2] = [CLOSE_DAY_KIND, RECONCILE_DAY_KIND];

/// Runs one of the books' jobs ([`BOOKS_KINDS`]). The close-day job closes the business day
/// that just ended (its statements, `Books::close_day`), enqueues that day's reconciliation,
/// and asks to run again at the next cut-off; the reconciliation job runs
/// `Engine::reconcile_day` once. Errors become a retry.
pub async fn handle_books(
    engine: &Engine,
    books: &crate::books::Books,
    recon: &crate::recon::ReconConfig,
    kind: &str,
    subject: &str,
) -> JobOutcome {
    let now = chrono::Utc::now();
    let result = match kind {
        CLOSE_DAY_KIND => close_day(books, now).await,
        RECONCILE_DAY_KIND => match chrono::NaiveDate::parse_from_str(subject, "%Y-%m-%d") {
            Ok(date) => engine
                .reconcile_day(books, date, recon)
                .await
                .map(|_| JobOutcome::Done),
            Err(_) => {
                tracing::error!(%kind, %subject, "job subject is not a date; dropping it");
                return JobOutcome::Done;
            }
        },
        _ => {
            tracing::error!(%kind, "unknown job kind; dropping it");
            return JobOutcome::Done;
        }
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(%kind, %subject, error = %e, "books job failed; will retry");
        JobOutcome::RetryAt(now + chrono::Duration::from_std(ERROR_BACKOFF).unwrap_or_default())
    })
}

async fn close_day(
    books: &crate::books::Books,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::Result<JobOutcome> {
    let (date, next) = crate::recon::day_to_close(books.cutoff(), now)
        .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))?;
    let closed = books.close_day(date, now).await?;
    tracing::info!(%date, statements = closed.len(), "business day closed");
    let day = date.to_string();
    let at = now.timestamp_millis();
    books
        .db()
        .write(move |c| {
            let payload = serde_json::json!({ "subject": day }).to_string();
            store::jobs::enqueue(
                c,
                &store::jobs::NewJob {
                    kind: RECONCILE_DAY_KIND,
                    dedupe_key: Some(&day),
                    payload: &payload,
                    run_at: at,
                },
                at,
            )
        })
        .await
        .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))?;
    Ok(JobOutcome::RetryAt(next))
}

/// Seeds the close-day job, due at the end of the current business day under `cutoff`. Safe
/// at every start and from every process (the unfinished job is kept, not duplicated).
pub async fn seed_books_jobs(
    db: &store::Database,
    cutoff: &ledger::Cutoff,
) -> crate::Result<usize> {
    let now = chrono::Utc::now();
    let (_, next) = crate::recon::day_to_close(cutoff, now)
        .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))?;
    let (now, next) = (now.timestamp_millis(), next.timestamp_millis());
    db.write(move |c| {
        let payload = serde_json::json!({ "subject": CLOSE_DAY_SUBJECT }).to_string();
        let created = store::jobs::enqueue(
            c,
            &store::jobs::NewJob {
                kind: CLOSE_DAY_KIND,
                dedupe_key: Some(CLOSE_DAY_SUBJECT),
                payload: &payload,
                run_at: next,
            },
            now,
        )?;
        Ok(usize::from(matches!(
            created,
            store::jobs::Enqueued::Created(_)
        )))
    })
    .await
    .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))
}

fn bad_subject(kind: JobKind, subject: &str) -> JobOutcome {
    tracing::error!(kind = kind.as_str(), %subject, "job subject is not a valid id; dropping it");
    JobOutcome::Done
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_parses() {
        for k in super::KINDS {
            assert!(super::JobKind::parse(k).is_some(), "{k}");
        }
    }
}

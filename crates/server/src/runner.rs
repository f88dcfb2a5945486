//! The job runner: claims due jobs with a lease, runs their handlers, records the outcome.
//!
//! Jobs are rows; Redis (or the in-process coordinator) only wakes runners early, so a runner
//! that misses a wake-up still finds the job at its next poll. Any number of runners may run
//! against one database: claims are exclusive (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and a
//! runner killed mid-job leaves the job to whoever claims it after the lease.

use futures::future::BoxFuture;
use prometheus::{IntGaugeVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::jobs::{self, Job};
use store::{Coordinator, Database, clock};
use tokio::sync::{Semaphore, watch};

/// The coordination channel that wakes runners when a job is enqueued.
pub const WAKE_CHANNEL: &str = "jobs";

/// How a handler finished a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; never run again.
    Done,
    /// Run again at this unix-ms time (the error, if any, is kept on the row).
    RetryAt {
        /// Unix ms.
        at_ms: i64,
        /// Why it must run again.
        error: String,
    },
    /// Give up; the row stays as `dead` for inspection.
    Dead(String),
}

/// A handler for one job kind.
pub type Handler = Arc<dyn Fn(Job) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Runner settings.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Unique per runner instance (`host:ulid`): fencing relies on it.
    pub owner: String,
    /// Lease per claim; must exceed the longest handler (webhook timeout 15 s, CodePay 10 s).
    pub lease: Duration,
    /// Jobs run at once by this runner.
    pub concurrency: usize,
    /// Longest sleep between claims when nothing wakes the runner.
    pub poll_interval: Duration,
}

/// Claims and runs jobs until shutdown.
pub struct Runner {
    db: Database,
    coordinator: Arc<dyn Coordinator>,
    config: RunnerConfig,
    handlers: HashMap<String, Handler>,
}

impl Runner {
    /// A runner without handlers yet.
    pub fn new(db: Database, coordinator: Arc<dyn Coordinator>, config: RunnerConfig) -> Self {
        Self {
            db,
            coordinator,
            config,
            handlers: HashMap::new(),
        }
    }

    /// Routes jobs of `kind` to `handler`.
    pub fn register(&mut self, kind: &str, handler: Handler) {
        self.handlers.insert(kind.to_owned(), handler);
    }

    /// The kinds this runner claims.
    pub fn kinds(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    /// Runs until `shutdown` turns true, then waits up to `grace` for in-flight jobs and hands
    /// back the leases of any still running, so another runner takes them at once.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let runner = Arc::new(self);
        let slots = Arc::new(Semaphore::new(runner.config.concurrency));
        let kinds = runner.kinds();
        let mut wake = runner.coordinator.subscribe(WAKE_CHANNEL).await.ok();
        tracing::info!(owner = %runner.config.owner, kinds = ?kinds, "job runner started");
        while !*shutdown.borrow() {
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    permit = slots.clone().acquire_owned() => drop(permit),
                }
                continue;
            }
            let claimed = runner.claim(&kinds, free).await;
            let full_batch = claimed.len() == free;
            for job in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let runner = runner.clone();
                tokio::spawn(async move {
                    runner.execute(job).await;
                    drop(permit);
                });
            }
            if full_batch {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(runner.config.poll_interval) => {}
                woke = async {
                    match wake.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if woke.is_none() {
                        // The subscription broke (Redis restarted): poll meanwhile, resubscribe.
                        wake = runner.coordinator.subscribe(WAKE_CHANNEL).await.ok();
                    }
                }
            }
        }
        let all = u32::try_from(runner.config.concurrency).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(grace, slots.acquire_many(all))
            .await
            .is_ok();
        let owner = runner.config.owner.clone();
        let released = runner
            .db
            .write(move |tx| jobs::release_owner(tx, &owner, clock::now_ms()))
            .await;
        tracing::info!(drained, released = ?released.ok(), "job runner stopped");
    }

    async fn claim(&self, kinds: &[String], limit: usize) -> Vec<Job> {
        let kinds = kinds.to_vec();
        let owner = self.config.owner.clone();
        let lease = self.config.lease;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let claimed = self
            .db
            .write(move |tx| {
                let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
                jobs::claim(tx, &kinds, &owner, lease, limit, clock::now_ms())
            })
            .await;
        claimed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot claim jobs; will retry");
            Vec::new()
        })
    }

    async fn execute(&self, job: Job) {
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            return;
        };
        let (id, kind) = (job.id.clone(), job.kind.clone());
        let span = tracing::info_span!("job", job_id = %id, kind = %kind, attempt = job.attempts);
        let outcome = tracing::Instrument::instrument(handler(job), span).await;
        let owner = self.config.owner.clone();
        let recorded = self
            .db
            .write(move |tx| {
                let now = clock::now_ms();
                match &outcome {
                    Outcome::Done => jobs::complete(tx, &id, &owner, now),
                    Outcome::RetryAt { at_ms, error } => {
                        jobs::retry(tx, &id, &owner, *at_ms, error, now)
                    }
                    Outcome::Dead(error) => jobs::fail(tx, &id, &owner, error, now),
                }
            })
            .await;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%kind, "job lease was lost before completion; another runner owns it")
            }
            Err(e) => {
                tracing::warn!(%kind, error = %e, "cannot record job outcome; the lease will expire")
            }
        }
    }
}

/// Queue depth and lag gauges (`payfac_jobs_queue_depth{kind}`, `payfac_jobs_oldest_age_seconds{kind}`),
/// refreshed periodically from the database.
pub struct QueueGauges {
    depth: IntGaugeVec,
    oldest: IntGaugeVec,
}

impl QueueGauges {
    /// Registers the gauges.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let depth = IntGaugeVec::new(
            Opts::new("payfac_jobs_queue_depth", "Unfinished jobs by kind."),
            &["kind"],
        )?;
        let oldest = IntGaugeVec::new(
            Opts::new(
                "payfac_jobs_oldest_age_seconds",
                "Age of the oldest due job by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(oldest.clone()))?;
        Ok(Self { depth, oldest })
    }

    /// Refreshes the gauges every `every` until `shutdown`.
    pub async fn refresh_loop(
        self,
        db: Database,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let now = clock::now_ms();
            let read = db
                .read(move |tx| {
                    Ok((
                        jobs::depth_by_kind(tx)?,
                        jobs::oldest_due_age_by_kind(tx, now)?,
                    ))
                })
                .await;
            if let Ok((depth, oldest)) = read {
                self.depth.reset();
                self.oldest.reset();
                for (kind, n) in depth {
                    self.depth.with_label_values(&[&kind]).set(n);
                }
                for (kind, age_ms) in oldest {
                    self.oldest.with_label_values(&[&kind]).set(age_ms / 1000);
                }
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

//! The delivery pump: batched claim → one read → concurrent sends → group commit.
//!
//! Per batch the database sees one claim transaction (up to `batch` due `webhook.deliver`
//! jobs, leased for [`FanoutConfig::job_lease`], taken lane by lane: from each endpoint only as
//! many as it can take now, none from an endpoint at its in-flight cap or with an open
//! circuit), one read transaction loading every delivery, event
//! and endpoint with `IN (…)` queries, and then the recorder's write transactions, each of
//! which records many finished deliveries at once ([`crate::recorder`]). Between claim and
//! record nothing is locked, so a 15 s request holds no connection. Its guarantees: a
//! `succeeded` delivery is never sent again, the body bytes are the event's, deferrals are not
//! attempts, storage errors retry later, and a pump killed mid-batch leaves its jobs to
//! whoever claims them after the lease.

use crate::dispatcher::Dispatch;
use crate::outcome::decide;
use crate::recorder::{Finished, Outcome, write_batch};
use crate::schedule::Jitter;
use crate::sender::{EndpointTarget, WebhookMessage};
use crate::worker::{DeliveryWorker, SECRET_RETRY, STORAGE_RETRY, delivery_id_of, message_of};
use domain::WebhookEndpointId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::deliveries::{self, Delivery};
use store::delivery_queue::{self, LaneQuotas};
use store::events::Event;
use store::jobs::{self, Job};
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{Coordinator, clock, events};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Pump settings.
#[derive(Clone, Debug)]
pub struct PumpConfig {
    /// Lease owner, unique per pump instance (`host:ulid`): fencing relies on it.
    pub owner: String,
    /// Most jobs claimed in one transaction.
    pub batch: usize,
    /// Deliveries between claim and record at once (sending, waiting or being recorded).
    pub max_in_flight: usize,
    /// Longest sleep between claims when nothing wakes the pump.
    pub poll_interval: Duration,
    /// How long a delivery waits for a slot of its endpoint before being deferred.
    pub endpoint_wait: Duration,
    /// The coordinator channel that announces new jobs.
    pub wake_channel: String,
    /// Most finished deliveries written in one transaction.
    pub record_batch: usize,
}

impl PumpConfig {
    /// Defaults for `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            batch: 256,
            max_in_flight: 512,
            poll_interval: Duration::from_millis(500),
            endpoint_wait: Duration::from_millis(500),
            wake_channel: "jobs".to_owned(),
            record_batch: 1024,
        }
    }
}

/// An endpoint's opened target, reused while its URL and sealed secrets stay the same.
struct CachedTarget {
    key: (String, String, Option<String>),
    target: Arc<EndpointTarget>,
}

/// A claimed job ready to send, or already decided.
enum Prepared {
    Send {
        delivery: Box<Delivery>,
        // Shared by every delivery to the endpoint: no URL or secrets copied per delivery.
        target: Arc<EndpointTarget>,
        message: WebhookMessage,
    },
    Decided(Outcome),
}

/// Claims, sends and records webhook deliveries in batches; see the module docs.
pub struct Pump {
    worker: Arc<DeliveryWorker>,
    config: PumpConfig,
    slots: Arc<Semaphore>,
    targets: Mutex<HashMap<String, CachedTarget>>,
    /// Per endpoint (lane), jobs this pump claimed that are not yet sent or decided.
    held: Arc<Held>,
}

/// Per endpoint, the jobs a pump holds; signals when an endpoint has room for a claim again.
#[derive(Default)]
struct Held {
    by_lane: Mutex<HashMap<String, usize>>,
    /// Notified when an endpoint's holding falls to half its budget: without it, a pump whose
    /// endpoints were all at their share would sleep until the next poll though they keep up.
    room: tokio::sync::Notify,
}

/// One claimed job counted against its endpoint in [`Held`] until dropped.
struct LaneHold {
    held: Arc<Held>,
    lane: String,
    /// The count at which dropping this hold signals room.
    wake_at: usize,
}

impl Drop for LaneHold {
    fn drop(&mut self) {
        let mut by_lane = self.held.by_lane.lock();
        let Some(n) = by_lane.get_mut(&self.lane) else {
            return;
        };
        *n = n.saturating_sub(1);
        let left = *n;
        if left == 0 {
            by_lane.remove(&self.lane);
        }
        drop(by_lane);
        if left == self.wake_at {
            self.held.room.notify_one();
        }
    }
}

impl Pump {
    /// A pump over `worker`'s database, keyring, dispatcher and settings.
    pub fn new(worker: Arc<DeliveryWorker>, config: PumpConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        Self {
            worker,
            config,
            slots,
            targets: Mutex::new(HashMap::new()),
            held: Arc::new(Held::default()),
        }
    }

    /// The lease owner.
    pub fn owner(&self) -> &str {
        &self.config.owner
    }

    /// Claims, sends and records until `shutdown` turns true; then stops claiming, waits up to
    /// `grace` for deliveries in flight, writes what finished and hands the remaining leases
    /// back. `coordinator` only wakes the pump early: without it (or while Redis is away) the
    /// pump polls every `poll_interval`.
    pub async fn run(
        self: Arc<Self>,
        coordinator: Option<Arc<dyn Coordinator>>,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let (tx, rx) = mpsc::unbounded_channel::<Finished>();
        let recorder = tokio::spawn(self.clone().record_loop(rx));
        let mut tasks = JoinSet::new();
        let mut wake = self.subscribe(coordinator.as_ref()).await;
        let batch = self.config.batch.clamp(1, self.config.max_in_flight.max(1));
        tracing::info!(owner = %self.config.owner, "webhook delivery pump started");
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            // Small claims cost as much as big ones: wait until a useful share is free.
            let want = (batch / 4).max(1);
            if self.slots.available_permits() < want {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    p = self.slots.clone().acquire_many_owned(u32::try_from(want).unwrap_or(1)) => drop(p),
                }
                continue;
            }
            let limit = self.slots.available_permits().min(batch);
            let (claimed, mut holds) = self.claim(limit).await;
            let full = claimed.len() == limit;
            if !claimed.is_empty() {
                for (job_id, prepared) in self.prepare(claimed).await {
                    let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                        // Cannot happen (we claimed at most the free slots); the lease covers it.
                        continue;
                    };
                    let (pump, tx) = (self.clone(), tx.clone());
                    let hold = holds.remove(&job_id);
                    tasks.spawn(async move {
                        let outcome = pump.deliver(prepared).await;
                        drop(hold);
                        let _ = tx.send(Finished {
                            job_id,
                            outcome,
                            _slot: Some(slot),
                        });
                    });
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                () = self.held.room.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {
                    if wake.is_none() {
                        wake = self.subscribe(coordinator.as_ref()).await;
                    }
                }
                woke = async {
                    match wake.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if woke.is_none() {
                        // The subscription broke (Redis restarted): poll meanwhile, resubscribe.
                        wake = self.subscribe(coordinator.as_ref()).await;
                    }
                }
            }
        }
        let all = u32::try_from(self.config.max_in_flight.max(1)).unwrap_or(u32::MAX);
        // Slots come back only once recorded, so this waits for sends and records alike.
        let drained = tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_ok();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        drop(tx);
        let _ = recorder.await;
        let owner = self.config.owner.clone();
        let released = self
            .worker
            .db()
            .write(move |c| jobs::release_owner(c, &owner, clock::now_ms()))
            .await;
        tracing::info!(drained, released = ?released.ok(), "webhook delivery pump stopped");
    }

    /// One claim of up to `batch` due jobs, sent concurrently and recorded in one batch;
    /// returns how many jobs were claimed (tests and tools).
    pub async fn run_once(self: &Arc<Self>) -> usize {
        let (claimed, _holds) = self.claim(self.config.batch.max(1)).await;
        self.deliver_claimed(claimed).await
    }

    /// Sends and records jobs this pump's owner has already claimed; returns how many.
    pub async fn deliver_claimed(self: &Arc<Self>, claimed: Vec<Job>) -> usize {
        let n = claimed.len();
        let mut tasks = JoinSet::new();
        for (job_id, prepared) in self.prepare(claimed).await {
            let pump = self.clone();
            tasks.spawn(async move {
                let outcome = pump.deliver(prepared).await;
                Finished {
                    job_id,
                    outcome,
                    _slot: None,
                }
            });
        }
        let mut finished = Vec::with_capacity(n);
        while let Some(done) = tasks.join_next().await {
            if let Ok(f) = done {
                finished.push(f);
            }
        }
        self.record(finished).await;
        n
    }

    async fn subscribe(
        &self,
        coordinator: Option<&Arc<dyn Coordinator>>,
    ) -> Option<store::WakeReceiver> {
        coordinator?.subscribe(&self.config.wake_channel).await.ok()
    }

    /// Claims up to `limit` jobs, from each endpoint no more than it can take now: twice its
    /// in-flight cap (one set in flight, one waiting up to `endpoint_wait` for a slot) less
    /// what this pump already holds of it, and nothing from an endpoint at its cap or with an
    /// open circuit. Returns the jobs and, by job id, what each holds against its endpoint.
    async fn claim(&self, limit: usize) -> (Vec<Job>, HashMap<String, LaneHold>) {
        let dispatcher = self.worker.dispatcher();
        let budget = dispatcher
            .config()
            .per_endpoint_in_flight
            .max(1)
            .saturating_mul(2);
        let mut quotas = LaneQuotas {
            default: budget,
            limits: self
                .held
                .by_lane
                .lock()
                .iter()
                .map(|(lane, n)| (lane.clone(), budget.saturating_sub(*n)))
                .collect(),
        };
        for id in dispatcher.unavailable_endpoints() {
            quotas.limits.insert(id.into_string(), 0);
        }
        let owner = self.config.owner.clone();
        let lease = self.worker.job_lease();
        let claimed = self
            .worker
            .db()
            .write(move |c| {
                delivery_queue::claim_deliver_jobs(
                    c,
                    &owner,
                    lease,
                    limit,
                    clock::now_ms(),
                    &quotas,
                )
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot claim delivery jobs; will retry");
                Vec::new()
            });
        let mut holds = HashMap::with_capacity(claimed.len());
        let mut by_lane = self.held.by_lane.lock();
        for job in &claimed {
            if let Some(lane) = &job.lane {
                *by_lane.entry(lane.clone()).or_default() += 1;
                let hold = LaneHold {
                    held: self.held.clone(),
                    lane: lane.clone(),
                    wake_at: budget / 2,
                };
                holds.insert(job.id.clone(), hold);
            }
        }
        drop(by_lane);
        (claimed, holds)
    }

    /// Loads every claimed delivery with its event and endpoint in one read transaction and
    /// decides what needs no request.
    async fn prepare(&self, claimed: Vec<Job>) -> Vec<(String, Prepared)> {
        let mut out = Vec::with_capacity(claimed.len());
        let mut wanted = Vec::with_capacity(claimed.len());
        for job in claimed {
            match delivery_id_of(&job) {
                Some(id) => wanted.push((job.id, id.into_string())),
                None => out.push((
                    job.id,
                    Prepared::Decided(Outcome::Dead("job payload names no delivery".to_owned())),
                )),
            }
        }
        if wanted.is_empty() {
            return out;
        }
        let ids: Vec<String> = wanted.iter().map(|(_, d)| d.clone()).collect();
        let loaded = self
            .worker
            .db()
            .read(move |c| {
                let found = deliveries::get_many(c, &ids)?;
                let mut event_ids: Vec<String> = found.iter().map(|d| d.event_id.clone()).collect();
                event_ids.sort_unstable();
                event_ids.dedup();
                let mut endpoint_ids: Vec<String> =
                    found.iter().map(|d| d.endpoint_id.clone()).collect();
                endpoint_ids.sort_unstable();
                endpoint_ids.dedup();
                let events = events::get_many_any(c, &event_ids)?;
                let endpoints = webhook_endpoints::get_many_any(c, &endpoint_ids)?;
                Ok((found, events, endpoints))
            })
            .await;
        let (found, events, endpoints) = match loaded {
            Ok(l) => l,
            Err(e) => {
                let error = format!("loading deliveries: {e}");
                out.extend(wanted.into_iter().map(|(job, _)| {
                    let later = Outcome::Later {
                        wait: STORAGE_RETRY,
                        error: error.clone(),
                    };
                    (job, Prepared::Decided(later))
                }));
                return out;
            }
        };
        let mut found: HashMap<String, Delivery> =
            found.into_iter().map(|d| (d.id.clone(), d)).collect();
        let events: HashMap<String, Event> =
            events.into_iter().map(|e| (e.id.clone(), e)).collect();
        let endpoints: HashMap<String, WebhookEndpoint> =
            endpoints.into_iter().map(|e| (e.id.clone(), e)).collect();
        // One body per event, shared by all its deliveries: the bytes are the event's.
        let mut messages: HashMap<String, Result<WebhookMessage, String>> = HashMap::new();
        let now = clock::now_ms();
        for (job_id, delivery_id) in wanted {
            let prepared = match found.remove(&delivery_id) {
                None => {
                    Prepared::Decided(Outcome::Dead(format!("delivery {delivery_id} not found")))
                }
                Some(delivery) => {
                    let message = messages
                        .entry(delivery.event_id.clone())
                        .or_insert_with(|| match events.get(&delivery.event_id) {
                            Some(ev) => message_of(ev),
                            None => Err(format!("event {} not found", delivery.event_id)),
                        })
                        .clone();
                    let endpoint = endpoints.get(&delivery.endpoint_id);
                    self.prepare_one(delivery, endpoint, message, now)
                }
            };
            out.push((job_id, prepared));
        }
        out
    }

    fn prepare_one(
        &self,
        delivery: Delivery,
        endpoint: Option<&WebhookEndpoint>,
        message: Result<WebhookMessage, String>,
        now: i64,
    ) -> Prepared {
        match delivery.status.as_str() {
            // Acknowledged already (a leftover of a runner whose lease ran out, or a
            // duplicate): never send twice.
            deliveries::SUCCEEDED => return Prepared::Decided(Outcome::Done),
            deliveries::DEAD => {
                return Prepared::Decided(Outcome::Dead("delivery is dead".to_owned()));
            }
            _ => {}
        }
        let delivery = Box::new(delivery);
        let Some(endpoint) = endpoint else {
            return Prepared::Decided(Outcome::GiveUp {
                delivery,
                why: "endpoint not found".to_owned(),
            });
        };
        if !endpoint.enabled || endpoint.deleted_at.is_some() {
            let why = match &endpoint.disabled_reason {
                _ if endpoint.deleted_at.is_some() => "endpoint deleted".to_owned(),
                Some(r) => format!("endpoint disabled ({r})"),
                None => "endpoint disabled".to_owned(),
            };
            return Prepared::Decided(Outcome::GiveUp { delivery, why });
        }
        let target = match self.target(endpoint, now) {
            Ok(t) => t,
            Err(error) => {
                return Prepared::Decided(Outcome::Later {
                    wait: SECRET_RETRY,
                    error,
                });
            }
        };
        match message {
            Ok(message) => Prepared::Send {
                delivery,
                target,
                message,
            },
            Err(why) => Prepared::Decided(Outcome::GiveUp { delivery, why }),
        }
    }

    /// The endpoint's target, opened once per (URL, secrets) and reused.
    fn target(&self, endpoint: &WebhookEndpoint, now: i64) -> Result<Arc<EndpointTarget>, String> {
        let previous_live = match (
            &endpoint.previous_secret_ciphertext,
            endpoint.previous_secret_expires_at,
        ) {
            (Some(sealed), Some(expires)) if expires > now => Some(sealed.clone()),
            _ => None,
        };
        let key = (
            endpoint.url.clone(),
            endpoint.secret_ciphertext.clone(),
            previous_live,
        );
        if let Some(hit) = self.targets.lock().get(&endpoint.id)
            && hit.key == key
        {
            return Ok(hit.target.clone());
        }
        let target = Arc::new(self.worker.target(endpoint, now)?);
        self.targets.lock().insert(
            endpoint.id.clone(),
            CachedTarget {
                key,
                target: target.clone(),
            },
        );
        Ok(target)
    }

    async fn deliver(&self, prepared: Prepared) -> Outcome {
        let (delivery, target, message) = match prepared {
            Prepared::Decided(outcome) => return outcome,
            Prepared::Send {
                delivery,
                target,
                message,
            } => (delivery, target, message),
        };
        let dispatched = self
            .worker
            .dispatcher()
            .dispatch_within(&target, &message, self.config.endpoint_wait)
            .await;
        match dispatched {
            Dispatch::Deferred { reason, retry_in } => Outcome::Later {
                wait: retry_in,
                error: format!("deferred: {}", reason.label()),
            },
            Dispatch::Sent(record) => {
                let attempt_no = delivery.attempts.saturating_add(1);
                let decision = decide(
                    &self.worker.config().schedule,
                    u32::try_from(attempt_no).unwrap_or(u32::MAX),
                    record.outcome,
                    record.retry_after,
                    Jitter::random(),
                );
                Outcome::Sent {
                    delivery,
                    record: Box::new(record),
                    decision,
                }
            }
        }
    }

    /// Collects finished deliveries and writes them in batches until every sender is gone.
    async fn record_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Finished>) {
        let most = self.config.record_batch.max(1);
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < most
                && let Ok(next) = rx.try_recv()
            {
                batch.push(next);
            }
            self.record(batch).await;
        }
    }

    /// Writes `batch` in one transaction, or one delivery per transaction if that fails.
    async fn record(&self, batch: Vec<Finished>) {
        if batch.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        let written = self.write(batch.clone()).await;
        let batch = Arc::try_unwrap(batch).unwrap_or_default();
        match written {
            Ok(w) => self.after_commit(w),
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "cannot record a batch of deliveries; recording one by one");
                for one in batch {
                    match self.write(Arc::new(vec![one])).await {
                        Ok(w) => self.after_commit(w),
                        Err(e) => tracing::warn!(
                            error = %e,
                            "cannot record a delivery; its job runs again after the lease"
                        ),
                    }
                }
            }
        }
    }

    async fn write(
        &self,
        batch: Arc<Vec<Finished>>,
    ) -> store::StoreResult<crate::recorder::Written> {
        let owner = self.config.owner.clone();
        let disable_after = self.worker.config().disable_after;
        self.worker
            .db()
            .write(move |c| write_batch(c, &batch, &owner, disable_after, clock::now_ms()))
            .await
    }

    fn after_commit(&self, written: crate::recorder::Written) {
        for (id, _, _) in &written.disabled {
            if let Ok(id) = WebhookEndpointId::parse(id) {
                self.worker.dispatcher().forget(&id);
            }
            self.targets.lock().remove(id);
        }
        if written.lost_leases > 0 {
            tracing::warn!(
                jobs = written.lost_leases,
                "delivery job leases were lost before recording; another runner owns them"
            );
        }
        if let Some(m) = self.worker.metrics() {
            for (label, attempts) in &written.finished {
                m.delivery_finished(label, *attempts);
            }
            for (_, reason, disabled_now) in &written.disabled {
                if *disabled_now {
                    m.endpoint_disabled(reason);
                }
            }
        }
    }
}

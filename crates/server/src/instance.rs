//! This process's identity and heartbeat (`store::instances`): idempotency claims name the
//! instance that holds them, and a retry takes over the claims of an instance whose heartbeat
//! stopped, instead of waiting out the lease.

use std::time::Duration;
use store::Database;
use store::clock::now_ms;
use store::instances::{FORGET_AFTER_MS, HEARTBEAT_EVERY, beat, forget_silent, remove};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a process also deletes the rows that killed processes left behind.
const FORGET_EVERY: Duration = Duration::from_secs(600);

/// The running heartbeat of this process's instance id.
pub struct Heartbeat {
    id: String,
    db: Database,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Registers a new instance id and keeps it beating. The first beat is written before this
    /// returns: a claim made by this process must never look like a dead process's.
    pub async fn start(db: Database) -> anyhow::Result<Self> {
        let id = ulid::Ulid::new().to_string();
        let first = id.clone();
        db.write(move |c| beat(c, &first, now_ms()))
            .await
            .map_err(|e| anyhow::anyhow!("cannot register this instance: {e}"))?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(beat_loop(db.clone(), id.clone(), stopped));
        Ok(Self { id, db, stop, task })
    }

    /// The instance id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops beating and deletes the row, so claims this process still holds are taken over at
    /// once. Call it only when nothing of this process can claim or answer any more.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let id = self.id;
        if let Err(e) = self.db.write(move |c| remove(c, &id)).await {
            tracing::warn!(error = %e, "cannot deregister this instance; its claims lapse in seconds");
        }
    }
}

async fn beat_loop(db: Database, id: String, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_forget = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let me = id.clone();
        if let Err(e) = db.write(move |c| beat(c, &me, now_ms())).await {
            // Missing beats make this process's in-flight claims look dead to other replicas:
            // say so, since a duplicate of a running request may then run.
            tracing::warn!(error = %e, "instance heartbeat failed");
        }
        if last_forget.elapsed() >= FORGET_EVERY {
            last_forget = tokio::time::Instant::now();
            let before = now_ms() - FORGET_AFTER_MS;
            if let Err(e) = db.write(move |c| forget_silent(c, before)).await {
                tracing::debug!(error = %e, "cannot forget silent instances");
            }
        }
    }
}

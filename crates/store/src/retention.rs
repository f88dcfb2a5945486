//! Retention: deleting rows that only ever grow (replayable idempotency answers, finished jobs,
//! webhook delivery attempts, received CodePay notifications) once they are older than their
//! configured period.
//!
//! Each call deletes at most `batch` rows in its own short transaction, selected by primary key
//! first, so the write lock (SQLite's single writer, PostgreSQL's row locks) is held for one
//! small batch and the API's writes interleave between batches. Callers loop until a batch comes
//! back short ([`purge_all`] does, yielding between batches).

use crate::schema::{
    delivery_attempts as da, idempotency_keys as ik, jobs, upstream_notifications as un,
};
use crate::{Database, DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// Which table a purge works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `idempotency_keys`: rows created before the cutoff whose key has also expired.
    IdempotencyKeys,
    /// `jobs` in state `done` last updated before the cutoff (dead jobs stay for inspection).
    DoneJobs,
    /// `delivery_attempts` started before the cutoff.
    DeliveryAttempts,
    /// `upstream_notifications` received before the cutoff.
    UpstreamNotifications,
}

impl Table {
    /// Every table retention covers.
    pub const ALL: [Table; 4] = [
        Table::IdempotencyKeys,
        Table::DoneJobs,
        Table::DeliveryAttempts,
        Table::UpstreamNotifications,
    ];

    /// The table's name (metrics, logs).
    pub fn name(self) -> &'static str {
        match self {
            Table::IdempotencyKeys => "idempotency_keys",
            Table::DoneJobs => "jobs",
            Table::DeliveryAttempts => "delivery_attempts",
            Table::UpstreamNotifications => "upstream_notifications",
        }
    }
}

/// Deletes up to `batch` rows of `table` older than `cutoff` (ms since the epoch); `now` keeps
/// unexpired idempotency keys whatever their age. Returns how many were deleted.
pub fn purge_batch(
    conn: &mut DbConnection,
    table: Table,
    cutoff: i64,
    now: i64,
    batch: i64,
) -> StoreResult<usize> {
    let deleted = match table {
        Table::IdempotencyKeys => {
            let keys: Vec<(String, String)> = on_backend!(conn, |c| ik::table
                .filter(ik::created_at.lt(cutoff))
                .filter(ik::expires_at.le(now))
                .select((ik::owner_id, ik::idem_key))
                .limit(batch)
                .load(c))?;
            let mut n = 0;
            for (owner, key) in keys {
                n += on_backend!(conn, |c| diesel::delete(
                    ik::table
                        .filter(ik::owner_id.eq(&owner))
                        .filter(ik::idem_key.eq(&key))
                        .filter(ik::expires_at.le(now))
                )
                .execute(c))?;
            }
            n
        }
        Table::DoneJobs => {
            let ids: Vec<String> = on_backend!(conn, |c| jobs::table
                .filter(jobs::state.eq(crate::jobs::DONE))
                .filter(jobs::updated_at.lt(cutoff))
                .select(jobs::id)
                .limit(batch)
                .load(c))?;
            on_backend!(conn, |c| diesel::delete(
                jobs::table
                    .filter(jobs::id.eq_any(&ids))
                    .filter(jobs::state.eq(crate::jobs::DONE))
            )
            .execute(c))?
        }
        Table::DeliveryAttempts => {
            let ids: Vec<String> = on_backend!(conn, |c| da::table
                .filter(da::started_at.lt(cutoff))
                .select(da::id)
                .limit(batch)
                .load(c))?;
            on_backend!(conn, |c| diesel::delete(
                da::table.filter(da::id.eq_any(&ids))
            )
            .execute(c))?
        }
        Table::UpstreamNotifications => {
            let ids: Vec<String> = on_backend!(conn, |c| un::table
                .filter(un::received_at.lt(cutoff))
                .select(un::id)
                .limit(batch)
                .load(c))?;
            on_backend!(conn, |c| diesel::delete(
                un::table.filter(un::id.eq_any(&ids))
            )
            .execute(c))?
        }
    };
    Ok(deleted)
}

/// Purges `table` older than `cutoff` batch by batch, each batch its own transaction, yielding
/// between batches; stops after `max_batches` (the next run continues). Returns the rows
/// deleted.
pub async fn purge_all(
    db: &Database,
    table: Table,
    cutoff: i64,
    now: i64,
    batch: i64,
    max_batches: usize,
) -> StoreResult<usize> {
    let batch = batch.max(1);
    let mut total = 0;
    for _ in 0..max_batches {
        let n = db
            .write(move |tx| purge_batch(tx, table, cutoff, now, batch))
            .await?;
        total += n;
        if (n as i64) < batch {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

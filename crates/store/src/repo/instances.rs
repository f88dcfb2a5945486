//! Running payfac processes and their heartbeats: how a request tells that the process holding
//! an idempotency claim is gone, on every backend and across replicas.
//!
//! Each process registers an instance id at start, beats every [`HEARTBEAT_EVERY`] and deletes
//! its row at a clean shutdown. A process whose heartbeat is older than [`STALE_AFTER_MS`], or
//! whose row is missing, is dead. Heartbeats are written with the beating process's clock and
//! judged with the reader's, so replicas' clocks must agree to well within that margin (NTP).

use crate::schema::instances as inst;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use std::time::Duration;

/// How often a running process beats.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A heartbeat older than this (ms) means the process is gone. Five missed beats: long enough
/// that a busy database or a paused thread does not pass for a crash, short enough that a
/// client retrying a create after one is answered within seconds.
pub const STALE_AFTER_MS: i64 = 5_000;

/// Rows of processes silent this long (ms) are deleted: a killed process leaves its row behind.
pub const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// A running (or killed) process.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inst)]
pub struct Instance {
    /// The instance id (a ULID chosen at start).
    pub id: String,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms of the last beat.
    pub heartbeat_at: i64,
}

/// Records a beat of `id` at `now`, registering it when it has no row (first beat, or a row
/// forgotten while the process was unreachable).
pub fn beat(conn: &mut DbConnection, id: &str, now: i64) -> StoreResult<()> {
    let updated = on_backend!(conn, |c| diesel::update(inst::table.find(id))
        .set(inst::heartbeat_at.eq(now))
        .execute(c))?;
    if updated == 0 {
        let row = Instance {
            id: id.to_owned(),
            started_at: now,
            heartbeat_at: now,
        };
        on_backend!(conn, |c| diesel::insert_into(inst::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

/// Whether `id` beat within [`STALE_AFTER_MS`] before `now`.
pub fn is_alive(conn: &mut DbConnection, id: &str, now: i64) -> StoreResult<bool> {
    let last: Option<i64> = on_backend!(conn, |c| inst::table
        .find(id)
        .select(inst::heartbeat_at)
        .first(c)
        .optional())?;
    Ok(last.is_some_and(|at| at + STALE_AFTER_MS >= now))
}

/// Deletes `id`'s row (a clean shutdown: its claims are dead at once).
pub fn remove(conn: &mut DbConnection, id: &str) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::delete(inst::table.find(id)).execute(c))?;
    Ok(())
}

/// Deletes the rows of processes that last beat before `before`; returns how many.
pub fn forget_silent(conn: &mut DbConnection, before: i64) -> StoreResult<usize> {
    Ok(on_backend!(conn, |c| diesel::delete(
        inst::table.filter(inst::heartbeat_at.lt(before))
    )
    .execute(c))?)
}

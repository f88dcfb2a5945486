//! The durable job queue: rows claimed with a lease.
//!
//! A runner claims due jobs (setting `lease_owner` and `lease_expires_at`), commits, does the work
//! outside any transaction, then completes or retries. Nothing stays locked while the work runs,
//! so hundreds of slow jobs never hold pool connections. A runner that dies leaves its jobs
//! `running` with a lease that runs out; the next claim takes them again. `complete`/`retry`/
//! `fail` act only while `lease_owner` is still the caller (fencing), so a runner whose lease
//! expired and was re-claimed cannot finish someone else's claim. Owners must be unique per
//! runner instance (e.g. `hostname:ulid`).

use crate::schema::jobs;
use crate::{DbConnection, StoreResult};
use diesel::prelude::*;
use domain::JobId;
use std::time::Duration;

/// Waiting for its `run_at`.
pub const QUEUED: &str = "queued";
/// Claimed by a runner under a lease.
pub const RUNNING: &str = "running";
/// Finished.
pub const DONE: &str = "done";
/// Gave up; kept for inspection.
pub const DEAD: &str = "dead";

/// A job row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs)]
pub struct Job {
    /// `job_…`.
    pub id: String,
    /// What to do (`poll_payment`, `expire_payment`, `deliver_webhook`, …).
    pub kind: String,
    /// At most one unfinished job per (kind, dedupe key).
    pub dedupe_key: Option<String>,
    /// JSON arguments.
    pub payload: String,
    /// Unix ms when it becomes due.
    pub run_at: i64,
    /// Claims so far (including the current one).
    pub attempts: i32,
    /// Runner holding the lease.
    pub lease_owner: Option<String>,
    /// Unix ms when the lease runs out.
    pub lease_expires_at: Option<i64>,
    /// `queued`/`running`/`done`/`dead`.
    pub state: String,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The lane (the endpoint id of a webhook delivery): jobs in a lane are claimed only by a
    /// claimer asking for that lane ([`crate::delivery_queue::claim_deliver_jobs`]), never by
    /// [`claim`].
    pub lane: Option<String>,
}

impl Job {
    /// Typed id.
    pub fn job_id(&self) -> StoreResult<JobId> {
        Ok(JobId::parse(&self.id)?)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// What to do.
    pub kind: &'a str,
    /// Deduplication key (e.g. the payment id for "poll payment X").
    pub dedupe_key: Option<&'a str>,
    /// JSON arguments.
    pub payload: &'a str,
    /// Unix ms when it becomes due.
    pub run_at: i64,
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job row.
    Created(JobId),
    /// An unfinished job of this kind and dedupe key already exists; nothing was added.
    Duplicate,
}

/// Adds a job (inside the caller's transaction, so it commits with the change that caused it).
pub fn enqueue(conn: &mut DbConnection, job: &NewJob<'_>, now: i64) -> StoreResult<Enqueued> {
    enqueue_in_lane(conn, job, None, now)
}

/// [`enqueue`] into `lane` (see [`Job::lane`]).
pub fn enqueue_in_lane(
    conn: &mut DbConnection,
    job: &NewJob<'_>,
    lane: Option<&str>,
    now: i64,
) -> StoreResult<Enqueued> {
    let id = JobId::generate();
    let row = Job {
        id: id.as_str().to_owned(),
        kind: job.kind.to_owned(),
        dedupe_key: job.dedupe_key.map(str::to_owned),
        payload: job.payload.to_owned(),
        run_at: job.run_at,
        attempts: 0,
        lease_owner: None,
        lease_expires_at: None,
        state: QUEUED.to_owned(),
        last_error: None,
        created_at: now,
        updated_at: now,
        lane: lane.map(str::to_owned),
    };
    // the partial unique index (kind, dedupe_key) over unfinished jobs turns a duplicate into
    // "nothing inserted" rather than an error that would abort the caller's transaction
    let n = crate::on_backend!(conn, |c| diesel::insert_into(jobs::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(c))?;
    // Only a job due now is worth waking runners for; later ones are found by the poll.
    if n == 1 && job.run_at <= now {
        crate::db::note_job_enqueued();
    }
    Ok(if n == 1 {
        Enqueued::Created(id)
    } else {
        Enqueued::Duplicate
    })
}

/// Claims up to `limit` due jobs of `kinds` outside lanes for `owner` for `lease`; each claim
/// counts as an attempt. Due means running with an expired lease (taken first: those were
/// claimed before), or queued with `run_at <= now`.
///
/// Call it inside [`crate::Database::write`]: on PostgreSQL the candidate rows are selected
/// `FOR UPDATE SKIP LOCKED`, so concurrent runners pass over each other's rows instead of
/// waiting or double-claiming; on SQLite the immediate transaction already serialises claims.
pub fn claim(
    conn: &mut DbConnection,
    kinds: &[&str],
    owner: &str,
    lease: Duration,
    limit: i64,
    now: i64,
) -> StoreResult<Vec<Job>> {
    if kinds.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    // Two index-ordered scans rather than one `queued OR expired` condition, which PostgreSQL
    // answers by collecting and sorting every due row of every kind.
    let expired = jobs::table
        .filter(jobs::kind.eq_any(kinds))
        .filter(jobs::state.eq(RUNNING))
        .filter(jobs::lease_expires_at.le(now))
        .order(jobs::lease_expires_at.asc())
        .limit(limit)
        .select(jobs::id);
    let mut ids: Vec<String> = match conn {
        DbConnection::Postgresql(c) => expired.for_update().skip_locked().load(c)?,
        DbConnection::Sqlite(c) => expired.load(c)?,
    };
    let left = limit.saturating_sub(i64::try_from(ids.len()).unwrap_or(limit));
    if left > 0 {
        // served by the partial index jobs_kind_due (queued, outside lanes)
        let queued = |kinds: Vec<String>| {
            jobs::table
                .filter(jobs::kind.eq_any(kinds))
                .filter(jobs::state.eq(QUEUED))
                .filter(jobs::lane.is_null())
                .filter(jobs::run_at.le(now))
                .order(jobs::run_at.asc())
                .limit(left)
                .select((jobs::id, jobs::run_at))
        };
        let mut due: Vec<(String, i64)> = match conn {
            DbConnection::Postgresql(c) => {
                let all = kinds.iter().map(|k| (*k).to_owned()).collect();
                queued(all).for_update().skip_locked().load(c)?
            }
            // One kind at a time: with `kind IN (…)` and no statistics, SQLite's planner took
            // `jobs_due (state, run_at)` and read past every queued delivery job (lanes).
            DbConnection::Sqlite(c) => {
                let mut all = Vec::new();
                for kind in kinds {
                    all.extend(queued(vec![(*kind).to_owned()]).load::<(String, i64)>(c)?);
                }
                all
            }
        };
        due.sort_by_key(|(_, run_at)| *run_at);
        due.truncate(usize::try_from(left).unwrap_or(usize::MAX));
        ids.extend(due.into_iter().map(|(id, _)| id));
    }
    lease_claimed(conn, &ids, owner, lease, now)
}

/// The common tail of every claim: puts the selected (and, on PostgreSQL, locked) jobs `ids`
/// under `owner`'s lease, counts the attempt and returns them in due order.
pub(crate) fn lease_claimed(
    conn: &mut DbConnection,
    ids: &[String],
    owner: &str,
    lease: Duration,
    now: i64,
) -> StoreResult<Vec<Job>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(crate::clock::ms(lease));
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let update = diesel::update(jobs::table.filter(jobs::id.eq_any(chunk))).set((
            jobs::state.eq(RUNNING),
            jobs::lease_owner.eq(owner),
            jobs::lease_expires_at.eq(expires),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::updated_at.eq(now),
        ));
        let rows: Vec<Job> = match conn {
            // one round trip instead of two: claims are on the delivery pump's critical path
            DbConnection::Postgresql(c) => update.returning(Job::as_returning()).get_results(c)?,
            DbConnection::Sqlite(c) => {
                update.execute(c)?;
                jobs::table
                    .filter(jobs::id.eq_any(chunk))
                    .select(Job::as_select())
                    .load(c)?
            }
        };
        out.extend(rows);
    }
    out.sort_by_key(|j| j.run_at);
    Ok(out)
}

/// The jobs `ids` that `owner` still holds under its lease: the fence every finishing call goes
/// through.
type HeldBy<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<jobs::table, diesel::dsl::EqAny<jobs::id, &'a [String]>>,
        diesel::dsl::Eq<jobs::lease_owner, &'a str>,
    >,
    diesel::dsl::Eq<diesel::dsl::Concat<jobs::state, &'static str>, &'static str>,
>;

fn held_by<'a>(ids: &'a [String], owner: &'a str) -> HeldBy<'a> {
    jobs::table
        .filter(jobs::id.eq_any(ids))
        .filter(jobs::lease_owner.eq(owner))
        // `state || ''`: the same test, but no index on `state` can serve it, so the primary
        // key finds the rows. Running jobs are few when statistics are gathered, and with
        // `state = 'running'` PostgreSQL chose `jobs_due (state, run_at)` and read every
        // running entry, live or dead (each finished job leaves one until vacuum): a batch
        // of 256 completions read ~1 100 index entries and fetched ~250 heap rows.
        .filter(jobs::state.concat("").eq(RUNNING))
}

/// Marks a job done; `false` when `owner` no longer holds it.
pub fn complete(conn: &mut DbConnection, id: &str, owner: &str, now: i64) -> StoreResult<bool> {
    Ok(complete_many(conn, &[id.to_owned()], owner, now)? == 1)
}

/// Marks many jobs done while `owner` still holds them; returns how many it did.
pub fn complete_many(
    conn: &mut DbConnection,
    ids: &[String],
    owner: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(1000) {
        n += crate::on_backend!(conn, |c| diesel::update(held_by(chunk, owner))
            .set((
                jobs::state.eq(DONE),
                jobs::lease_expires_at.eq(None::<i64>),
                jobs::updated_at.eq(now),
            ))
            .execute(c))?;
    }
    Ok(n)
}

/// Puts a job back in the queue for `run_at` with the error; `false` when `owner` no longer holds
/// it.
pub fn retry(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    run_at: i64,
    error: &str,
    now: i64,
) -> StoreResult<bool> {
    Ok(retry_many(conn, &[id.to_owned()], owner, run_at, error, now)? == 1)
}

/// Puts many jobs `owner` still holds back in the queue for `run_at` with `error` (deferrals
/// that share a delay); returns how many it did.
pub fn retry_many(
    conn: &mut DbConnection,
    ids: &[String],
    owner: &str,
    run_at: i64,
    error: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(1000) {
        n += crate::on_backend!(conn, |c| diesel::update(held_by(chunk, owner))
            .set((
                jobs::state.eq(QUEUED),
                jobs::run_at.eq(run_at),
                jobs::last_error.eq(error),
                jobs::lease_owner.eq(None::<String>),
                jobs::lease_expires_at.eq(None::<i64>),
                jobs::updated_at.eq(now),
            ))
            .execute(c))?;
    }
    Ok(n)
}

/// Gives up on a job (kept as `dead`); `false` when `owner` no longer holds it.
pub fn fail(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    error: &str,
    now: i64,
) -> StoreResult<bool> {
    let one = [id.to_owned()];
    let n = crate::on_backend!(conn, |c| diesel::update(held_by(&one, owner))
        .set((
            jobs::state.eq(DEAD),
            jobs::last_error.eq(error),
            jobs::lease_expires_at.eq(None::<i64>),
            jobs::updated_at.eq(now),
        ))
        .execute(c))?;
    Ok(n == 1)
}

/// Extends the lease of a long job; `false` when `owner` no longer holds it.
pub fn extend_lease(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    lease: Duration,
    now: i64,
) -> StoreResult<bool> {
    let expires = now.saturating_add(crate::clock::ms(lease));
    let one = [id.to_owned()];
    let n = crate::on_backend!(conn, |c| diesel::update(held_by(&one, owner))
        .set((jobs::lease_expires_at.eq(expires), jobs::updated_at.eq(now),))
        .execute(c))?;
    Ok(n == 1)
}

/// Graceful shutdown: hands every job `owner` holds back to the queue, due now, without counting
/// the interrupted attempt. Returns how many.
pub fn release_owner(conn: &mut DbConnection, owner: &str, now: i64) -> StoreResult<usize> {
    Ok(crate::on_backend!(conn, |c| diesel::update(
        jobs::table
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(RUNNING))
    )
    .set((
        jobs::state.eq(QUEUED),
        jobs::run_at.eq(now),
        jobs::attempts.eq(jobs::attempts - 1),
        jobs::lease_owner.eq(None::<String>),
        jobs::lease_expires_at.eq(None::<i64>),
        jobs::updated_at.eq(now),
    ))
    .execute(c))?)
}

/// One job.
pub fn get(conn: &mut DbConnection, id: &str) -> StoreResult<Job> {
    Ok(crate::on_backend!(conn, |c| jobs::table
        .find(id)
        .select(Job::as_select())
        .first(c))?)
}

/// Unfinished (queued + running) jobs per kind, for the queue-depth gauge.
pub fn depth_by_kind(conn: &mut DbConnection) -> StoreResult<Vec<(String, i64)>> {
    Ok(crate::on_backend!(conn, |c| jobs::table
        .filter(jobs::state.eq_any([QUEUED, RUNNING]))
        .group_by(jobs::kind)
        .select((jobs::kind, diesel::dsl::count_star()))
        .order(jobs::kind.asc())
        .load(c))?)
}

/// Per kind, how long (ms) the oldest due-but-unclaimed job has waited, for the lag gauge.
pub fn oldest_due_age_by_kind(
    conn: &mut DbConnection,
    now: i64,
) -> StoreResult<Vec<(String, i64)>> {
    let rows: Vec<(String, Option<i64>)> = crate::on_backend!(conn, |c| jobs::table
        .filter(jobs::state.eq(QUEUED))
        .filter(jobs::run_at.le(now))
        .group_by(jobs::kind)
        .select((jobs::kind, diesel::dsl::min(jobs::run_at)))
        .order(jobs::kind.asc())
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, oldest)| oldest.map(|o| (kind, now.saturating_sub(o).max(0))))
        .collect())
}

/// Deletes finished (`done`) jobs last updated before `before`; returns how many.
pub fn purge_done(conn: &mut DbConnection, before: i64) -> StoreResult<usize> {
    Ok(crate::on_backend!(conn, |c| diesel::delete(
        jobs::table
            .filter(jobs::state.eq(DONE))
            .filter(jobs::updated_at.lt(before))
    )
    .execute(c))?)
}

/// Marks the queued job `(kind, dedupe_key)` done, inside the caller's transaction, so a change
/// that makes a job pointless retires it with itself (a payment settled before its poll job
/// ran). A running job is left alone: it finishes on its own. Returns how many it retired.
pub fn retire_queued(
    conn: &mut DbConnection,
    kind: &str,
    dedupe_key: &str,
    now: i64,
) -> StoreResult<usize> {
    // The partial unique index's predicate, written out so both planners pick that index.
    let unfinished = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "dedupe_key IS NOT NULL AND state IN ('queued', 'running')",
    );
    Ok(crate::on_backend!(conn, |c| diesel::update(
        jobs::table
            .filter(jobs::kind.eq(kind))
            .filter(jobs::dedupe_key.eq(dedupe_key))
            .filter(unfinished.clone())
            .filter(jobs::state.eq(QUEUED))
    )
    .set((jobs::state.eq(DONE), jobs::updated_at.eq(now)))
    .execute(c))?)
}

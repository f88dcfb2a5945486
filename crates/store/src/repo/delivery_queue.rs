//! The `webhook.deliver` jobs in the `jobs` queue: enqueueing a delivery's job in its lane (the
//! lane of a delivery job is its endpoint), and the delivery pump's claims of many jobs at once,
//! lane by lane. Finishing many jobs at once is [`jobs::complete_many`] / [`jobs::retry_many`];
//! the rows a batch needs are read by `deliveries::get_many`, `events::get_many_any` and
//! `webhook_endpoints::get_many_any`.
//!
//! Why lanes: with one queue ordered by due time, the backlog of an endpoint that cannot take
//! requests (dead, or at its in-flight cap) sits at the head of the queue, and every claim has
//! to walk past all of it. Claiming per lane, for as many jobs as each endpoint can take now,
//! never reads a job that will not be sent; a dead endpoint's backlog costs nothing until it
//! can take requests again.

use crate::jobs::{self, Enqueued, NewJob};
use crate::schema::jobs as jb;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use std::collections::HashMap;

/// The job kind that delivers one webhook delivery (payload `{"delivery_id":"dlv_…"}`).
pub const DELIVER_JOB_KIND: &str = "webhook.deliver";

/// The payload of a delivery job.
pub fn job_payload(delivery_id: &str) -> String {
    serde_json::json!({ "delivery_id": delivery_id }).to_string()
}

/// Enqueues the job of a delivery to `endpoint_id` (its lane) for `run_at`; if an unfinished job
/// already exists for it, it is moved earlier when it is queued for later (never later, never
/// while running).
pub fn enqueue_delivery(
    conn: &mut DbConnection,
    delivery_id: &str,
    endpoint_id: &str,
    run_at: i64,
    now: i64,
) -> StoreResult<()> {
    let payload = job_payload(delivery_id);
    let job = NewJob {
        kind: DELIVER_JOB_KIND,
        dedupe_key: Some(delivery_id),
        payload: &payload,
        run_at,
    };
    if jobs::enqueue_in_lane(conn, &job, Some(endpoint_id), now)? == Enqueued::Duplicate {
        on_backend!(conn, |c| diesel::update(
            jb::table
                .filter(jb::kind.eq(DELIVER_JOB_KIND))
                .filter(jb::dedupe_key.eq(delivery_id))
                .filter(jb::state.eq(jobs::QUEUED))
                .filter(jb::run_at.gt(run_at))
        )
        .set((jb::run_at.eq(run_at), jb::updated_at.eq(now)))
        .execute(c))?;
    }
    Ok(())
}

/// [`enqueue_delivery`] for many deliveries of one endpoint at once, all due at `run_at`: a
/// multi-row insert that skips deliveries with an unfinished job, then one update moving those
/// jobs earlier (never later, never while running). Recover queues up to thousands of
/// deliveries in one transaction; a statement or two per delivery would hold it open for
/// seconds on PostgreSQL.
pub fn enqueue_deliveries(
    conn: &mut DbConnection,
    delivery_ids: &[String],
    endpoint_id: &str,
    run_at: i64,
    now: i64,
) -> StoreResult<()> {
    // 13 columns a row: well under PostgreSQL's bind limit
    for chunk in delivery_ids.chunks(500) {
        let rows: Vec<jobs::Job> = chunk
            .iter()
            .map(|id| jobs::Job {
                id: domain::JobId::generate().into_string(),
                kind: DELIVER_JOB_KIND.to_owned(),
                dedupe_key: Some(id.clone()),
                payload: job_payload(id),
                run_at,
                attempts: 0,
                lease_owner: None,
                lease_expires_at: None,
                state: jobs::QUEUED.to_owned(),
                last_error: None,
                created_at: now,
                updated_at: now,
                lane: Some(endpoint_id.to_owned()),
            })
            .collect();
        // the partial unique index over unfinished jobs turns a duplicate into "not inserted"
        let inserted = match conn {
            DbConnection::Postgresql(c) => diesel::insert_into(jb::table)
                .values(&rows)
                .on_conflict_do_nothing()
                .execute(c)?,
            // diesel has no multi-row insert with ON CONFLICT for SQLite; in process, a
            // statement a row costs microseconds
            DbConnection::Sqlite(c) => {
                let mut n = 0;
                for row in &rows {
                    n += diesel::insert_into(jb::table)
                        .values(row)
                        .on_conflict_do_nothing()
                        .execute(c)?;
                }
                n
            }
        };
        if inserted > 0 && run_at <= now {
            crate::db::note_job_enqueued();
        }
        if inserted < chunk.len() {
            on_backend!(conn, |c| diesel::update(
                jb::table
                    .filter(jb::kind.eq(DELIVER_JOB_KIND))
                    .filter(jb::dedupe_key.eq_any(chunk))
                    .filter(jb::state.eq(jobs::QUEUED))
                    .filter(jb::run_at.gt(run_at))
            )
            .set((jb::run_at.eq(run_at), jb::updated_at.eq(now)))
            .execute(c))?;
        }
    }
    Ok(())
}

/// How many due jobs one claim may take from each lane (for deliveries: each endpoint).
#[derive(Clone, Debug, Default)]
pub struct LaneQuotas {
    /// The quota of a lane not in `limits`.
    pub default: usize,
    /// Lanes with another quota; 0 leaves the lane's jobs queued (endpoint busy or circuit open).
    pub limits: HashMap<String, usize>,
}

impl LaneQuotas {
    /// The quota of `lane`.
    pub fn of(&self, lane: &str) -> usize {
        self.limits.get(lane).copied().unwrap_or(self.default)
    }
}

/// Claims up to `limit` due delivery jobs for `owner` under `lease` (like [`jobs::claim`]),
/// taking no more from a lane than `quotas` allows: jobs whose lease ran out first, then
/// queued jobs outside lanes (enqueued before lanes existed), then each lane's due jobs in due
/// order, the limit shared fairly between the lanes with work.
pub fn claim_deliver_jobs(
    conn: &mut DbConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: usize,
    now: i64,
    quotas: &LaneQuotas,
) -> StoreResult<Vec<jobs::Job>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    // Leases that ran out are few (a pump died): they are taken whatever their lane's quota,
    // since their endpoint may be one this pump has never called; they count against it.
    for row in load_stragglers(conn, limit, now)?.into_iter().take(limit) {
        if let Some(lane) = &row.lane {
            *taken.entry(lane.clone()).or_default() += 1;
        }
        ids.push(row.id);
    }
    let left = limit.saturating_sub(ids.len());
    if left > 0 {
        let lanes = queued_lanes(conn)?;
        let wanted: Vec<(String, usize)> = lanes
            .into_iter()
            .map(|lane| {
                let q = quotas
                    .of(&lane)
                    .saturating_sub(taken.get(&lane).copied().unwrap_or(0));
                (lane, q)
            })
            .filter(|(_, q)| *q > 0)
            .collect();
        let rotate = usize::try_from(now).unwrap_or(0);
        let plan = share(wanted, left, rotate);
        ids.extend(claim_lanes(conn, &plan, now)?);
    }
    jobs::lease_claimed(conn, &ids, owner, lease, now)
}

/// Splits `limit` between lanes each wanting some jobs: every lane gets an equal share (or
/// what it wants, if less), and what is left goes round the lanes again, starting at a
/// rotating lane so that no lane is always served last when the limit is tight.
pub fn share(wanted: Vec<(String, usize)>, limit: usize, rotate: usize) -> Vec<(String, usize)> {
    let n = wanted.len();
    if n == 0 || limit == 0 {
        return Vec::new();
    }
    let mut lanes = wanted;
    lanes.rotate_left(rotate % n);
    let mut given = vec![0usize; n];
    let mut left = limit;
    while left > 0 {
        let hungry = lanes
            .iter()
            .zip(&given)
            .filter(|((_, want), got)| *got < want)
            .count();
        if hungry == 0 {
            break;
        }
        let each = (left / hungry).max(1);
        for ((_, want), got) in lanes.iter().zip(given.iter_mut()) {
            if left == 0 {
                break;
            }
            let more = (*want - *got).min(each).min(left);
            *got += more;
            left -= more;
        }
    }
    lanes
        .into_iter()
        .zip(given)
        .filter(|(_, got)| *got > 0)
        .map(|((lane, _), got)| (lane, got))
        .collect()
}

/// The lanes with queued jobs, due or not, by a skip scan over the index `jobs_lane_due`: one
/// index descent per lane however long each lane's backlog is.
pub fn queued_lanes(conn: &mut DbConnection) -> StoreResult<Vec<String>> {
    let by = indexed_by(conn, "jobs_lane_due");
    let sql = format!(
        "WITH RECURSIVE lanes(lane) AS ( \
           SELECT (SELECT min(lane) FROM jobs{by} WHERE state = '{q}' AND lane IS NOT NULL) \
           UNION ALL \
           SELECT (SELECT min(j.lane) FROM jobs j{by} WHERE j.state = '{q}' \
                   AND j.lane IS NOT NULL AND j.lane > lanes.lane) \
           FROM lanes WHERE lanes.lane IS NOT NULL) \
         SELECT lane FROM lanes WHERE lane IS NOT NULL",
        q = jobs::QUEUED
    );
    let rows: Vec<LaneRow> = on_backend!(conn, |c| diesel::sql_query(&sql).load(c))?;
    Ok(rows.into_iter().map(|r| r.lane).collect())
}

/// Selects (and on PostgreSQL locks) up to the planned number of due jobs of each lane.
fn claim_lanes(
    conn: &mut DbConnection,
    plan: &[(String, usize)],
    now: i64,
) -> StoreResult<Vec<String>> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let due = format!("state = '{}' AND run_at <= ", jobs::QUEUED);
    match conn {
        // One statement for all lanes: a LATERAL index probe per lane, SKIP LOCKED so
        // concurrent pumps pass over each other's rows. The lane is written as the range
        // `lane >= l.lane AND lane <= l.lane` and the order as (lane, run_at), which only
        // `jobs_lane_due (lane, run_at)` gives without sorting the lane: with
        // `lane = l.lane ... ORDER BY run_at` the lane is a constant to the planner, and with
        // statistics of a full queue PostgreSQL preferred `jobs_due (state, run_at)`,
        // filtering all lanes' queued jobs in due order to find one lane's (20 lanes: 20
        // index entries and heap rows read per job claimed). A row comparison
        // `(lane, run_at) <= (l.lane, $3)` is not a scan bound: a lane with fewer due jobs
        // than asked read on to the end of the index.
        DbConnection::Postgresql(c) => {
            let lanes: Vec<&str> = plan.iter().map(|(l, _)| l.as_str()).collect();
            let counts: Vec<i64> = plan
                .iter()
                .map(|(_, n)| i64::try_from(*n).unwrap_or(i64::MAX))
                .collect();
            let rows: Vec<IdRow> = diesel::sql_query(format!(
                "SELECT j.id FROM unnest($1::text[], $2::bigint[]) AS l(lane, n) \
                 CROSS JOIN LATERAL (SELECT id FROM jobs WHERE lane >= l.lane \
                 AND lane <= l.lane AND run_at <= $3 AND state = '{q}' \
                 ORDER BY lane, run_at LIMIT l.n FOR UPDATE SKIP LOCKED) j",
                q = jobs::QUEUED
            ))
            .bind::<Array<Text>, _>(lanes)
            .bind::<Array<BigInt>, _>(counts)
            .bind::<BigInt, _>(now)
            .load(c)?;
            Ok(rows.into_iter().map(|r| r.id).collect())
        }
        // In-process and inside the immediate transaction: a probe per lane costs microseconds.
        DbConnection::Sqlite(c) => {
            let sql = format!(
                "SELECT id FROM jobs INDEXED BY jobs_lane_due WHERE lane = ?1 AND lane IS NOT NULL AND {due}?2 ORDER BY run_at LIMIT ?3"
            );
            let mut out = Vec::new();
            for (lane, n) in plan {
                let rows: Vec<IdRow> = diesel::sql_query(&sql)
                    .bind::<Text, _>(lane)
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(i64::try_from(*n).unwrap_or(i64::MAX))
                    .load(c)?;
                out.extend(rows.into_iter().map(|r| r.id));
            }
            Ok(out)
        }
    }
}

/// In one statement: delivery jobs whose lease ran out, oldest first (index `jobs_lease`),
/// then due ones outside lanes (index `jobs_kind_due`), up to `limit` of each.
fn load_stragglers(
    conn: &mut DbConnection,
    limit: usize,
    now: i64,
) -> StoreResult<Vec<LanedIdRow>> {
    let lock = match conn {
        DbConnection::Postgresql(_) => " FOR UPDATE SKIP LOCKED",
        DbConnection::Sqlite(_) => "",
    };
    let (by_lease, by_kind) = (
        indexed_by(conn, "jobs_lease"),
        indexed_by(conn, "jobs_kind_due"),
    );
    let sql = |now: &str| {
        format!(
            "WITH expired AS (SELECT id, lane FROM jobs{by_lease} WHERE kind = '{DELIVER_JOB_KIND}' \
               AND state = '{r}' AND lease_expires_at <= {now} \
               ORDER BY lease_expires_at LIMIT {limit}{lock}), \
             unlaned AS (SELECT id, lane FROM jobs{by_kind} WHERE kind = '{DELIVER_JOB_KIND}' \
               AND state = '{q}' AND lane IS NULL AND run_at <= {now} \
               ORDER BY run_at LIMIT {limit}{lock}) \
             SELECT id, lane FROM expired UNION ALL SELECT id, lane FROM unlaned",
            r = jobs::RUNNING,
            q = jobs::QUEUED,
        )
    };
    Ok(match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql("$1"))
            .bind::<BigInt, _>(now)
            .load(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(sql("?1"))
            .bind::<BigInt, _>(now)
            .load(c)?,
    })
}

/// SQLite only: ` INDEXED BY index`. Without statistics (nothing runs ANALYZE on an embedded
/// database) SQLite's planner answered the lane skip scan through `jobs_lease (state)`, reading
/// every queued job once per lane: the isolation the lanes exist for was lost on SQLite.
/// PostgreSQL picks the partial indexes without help and has no such clause.
fn indexed_by(conn: &DbConnection, index: &str) -> String {
    match conn {
        DbConnection::Postgresql(_) => String::new(),
        DbConnection::Sqlite(_) => format!(" INDEXED BY {index}"),
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct LanedIdRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    lane: Option<String>,
}

#[derive(QueryableByName)]
struct LaneRow {
    #[diesel(sql_type = Text)]
    lane: String,
}

#[cfg(test)]
mod tests {
    use super::share;

    fn want(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
    }

    #[test]
    fn every_lane_gets_what_it_wants_when_the_limit_allows() {
        let got = share(want(&[("a", 3), ("b", 5)]), 100, 0);
        assert_eq!(got, want(&[("a", 3), ("b", 5)]));
    }

    #[test]
    fn a_tight_limit_is_split_evenly_and_leftovers_go_round() {
        // 10 between a lane wanting 2 and two wanting plenty: 2 + 4 + 4
        let got = share(want(&[("a", 2), ("b", 50), ("c", 50)]), 10, 0);
        assert_eq!(got, want(&[("a", 2), ("b", 4), ("c", 4)]));
        // 2 between 3 hungry lanes: the rotation decides who waits
        assert_eq!(
            share(want(&[("a", 9), ("b", 9), ("c", 9)]), 2, 1),
            want(&[("b", 1), ("c", 1)])
        );
        assert_eq!(
            share(want(&[("a", 9), ("b", 9), ("c", 9)]), 2, 2),
            want(&[("c", 1), ("a", 1)])
        );
    }

    #[test]
    fn nothing_to_share() {
        assert!(share(Vec::new(), 10, 0).is_empty());
        assert!(share(want(&[("a", 3)]), 0, 0).is_empty());
    }
}

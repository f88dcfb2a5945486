//! The delivery pump's batch queries over the `jobs` queue: claim many `webhook.deliver` jobs at
//! once (passing over endpoints that cannot take requests), park a stalled endpoint's backlog,
//! load a batch's events and endpoints, and finish many jobs in one statement. Re-exported from
//! [`crate::webhook_delivery`].

use crate::jobs;
use crate::repo::deliveries;
use crate::repo::events::Event;
use crate::repo::webhook_delivery::DELIVER_JOB_KIND;
use crate::repo::webhook_endpoints::WebhookEndpoint;
use crate::schema::{events, jobs as jb, webhook_endpoints as we};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::WebhookEndpointId;

/// Claims up to `limit` due delivery jobs for `owner` under `lease` (like [`jobs::claim`]),
/// passing over jobs whose delivery goes to one of `skip_endpoints`: the delivery pump names
/// the endpoints already at their in-flight cap or with an open circuit, so their backlog
/// stays queued instead of being claimed only to be deferred again.
pub fn claim_deliver_jobs(
    conn: &mut DbConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: i64,
    now: i64,
    skip_endpoints: &[String],
) -> StoreResult<Vec<jobs::Job>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    // An anti-join probing the delivery's primary key per candidate job: cheap however many
    // jobs of skipped endpoints sort first (a `NOT IN (subquery)` here compared every candidate
    // with every skipped delivery, seconds per claim with a few thousand of them). The skipped
    // ids are inlined, and only after parsing as endpoint ids (`we_` + ULID: nothing to quote).
    let skipped: Vec<String> = skip_endpoints
        .iter()
        .filter_map(|id| WebhookEndpointId::parse(id).ok())
        .map(|id| format!("'{}'", id.as_str()))
        .collect();
    let not_skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = j.dedupe_key \
             AND d.endpoint_id IN ({}))",
            skipped.join(",")
        )
    };
    // Two index-ordered scans instead of one `queued OR expired-lease` condition, which
    // PostgreSQL answered by collecting and sorting every due row (100+ ms per claim with a
    // backlog of tens of thousands). Expired leases first: those jobs were claimed before.
    let select = |due: String, order: &str, limit: i64| {
        format!(
            "SELECT j.id FROM jobs j WHERE {due} AND j.kind = '{DELIVER_JOB_KIND}'{not_skipped} \
             ORDER BY {order} LIMIT {limit}"
        )
    };
    let expired = select(
        format!(
            "j.state = '{running}' AND j.lease_expires_at <= {now}",
            running = jobs::RUNNING
        ),
        "j.lease_expires_at",
        limit,
    );
    let mut ids = load_ids(conn, &expired)?;
    let left = limit - i64::try_from(ids.len()).unwrap_or(limit);
    if left > 0 {
        let queued = select(
            format!(
                "j.state = '{queued}' AND j.run_at <= {now}",
                queued = jobs::QUEUED
            ),
            "j.run_at",
            left,
        );
        ids.extend(load_ids(conn, &queued)?);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(crate::clock::ms(lease));
    Ok(on_backend!(conn, |c| {
        diesel::update(jb::table.filter(jb::id.eq_any(&ids)))
            .set((
                jb::state.eq(jobs::RUNNING),
                jb::lease_owner.eq(owner),
                jb::lease_expires_at.eq(expires),
                jb::attempts.eq(jb::attempts + 1),
                jb::updated_at.eq(now),
            ))
            .execute(c)?;
        jb::table
            .filter(jb::id.eq_any(&ids))
            .order(jb::run_at.asc())
            .select(jobs::Job::as_select())
            .load(c)
    })?)
}

/// Runs a claim's candidate query, locking on PostgreSQL (`SKIP LOCKED`: concurrent pumps
/// pass over each other's rows); SQLite's immediate transaction already serialises claims.
fn load_ids(conn: &mut DbConnection, select: &str) -> StoreResult<Vec<String>> {
    let rows = match conn {
        DbConnection::Postgresql(c) => {
            diesel::sql_query(format!("{select} FOR UPDATE OF j SKIP LOCKED")).load::<IdRow>(c)?
        }
        DbConnection::Sqlite(c) => diesel::sql_query(select).load::<IdRow>(c)?,
    };
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Moves the queued delivery jobs of one endpoint to `until` (unix ms) when they are due
/// earlier; returns how many moved. For an endpoint that cannot take requests for a while
/// (circuit open, every slot held by a slow request): without this its due jobs stay at the
/// head of the queue and every claim must scan past all of them. Not an attempt: attempts,
/// delivery rows and the retry schedule are untouched.
pub fn park_endpoint_jobs(
    conn: &mut DbConnection,
    endpoint_id: &str,
    until: i64,
    now: i64,
) -> StoreResult<usize> {
    use diesel::sql_types::{BigInt, Text};
    // Driven from the endpoint's deliveries (index deliveries_endpoint) into their jobs
    // (unique index on kind + dedupe_key): a `dedupe_key IN (subquery)` form was planned as a
    // scan of all jobs, a few hundred ms per endpoint with a large backlog.
    let sql = |p: fn(usize) -> String| {
        format!(
            "UPDATE jobs SET run_at = {until}, updated_at = {now} FROM deliveries d \
             WHERE d.endpoint_id = {endpoint} AND d.status IN ('{pending}', '{failed}') \
             AND jobs.kind = '{DELIVER_JOB_KIND}' AND jobs.dedupe_key = d.id \
             AND jobs.state = '{queued}' AND jobs.run_at < {until}",
            until = p(1),
            now = p(2),
            endpoint = p(3),
            pending = deliveries::PENDING,
            failed = deliveries::FAILED,
            queued = jobs::QUEUED,
        )
    };
    Ok(match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql(|i| format!("${i}")))
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(now)
            .bind::<Text, _>(endpoint_id)
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(sql(|i| format!("?{i}")))
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(now)
            .bind::<Text, _>(endpoint_id)
            .execute(c)?,
    })
}

/// Events by id whatever their merchant (the pump's batch read); ids not found are left out.
pub fn events_any(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<Event>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<Event> = on_backend!(conn, |c| events::table
            .filter(events::id.eq_any(chunk))
            .select(Event::as_select())
            .load(c))?;
        out.extend(rows);
    }
    Ok(out)
}

/// Endpoints by id, deleted ones included (the pump's batch read); ids not found are left out.
pub fn endpoints_any(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<WebhookEndpoint>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<WebhookEndpoint> = on_backend!(conn, |c| we::table
            .filter(we::id.eq_any(chunk))
            .select(WebhookEndpoint::as_select())
            .load(c))?;
        out.extend(rows);
    }
    Ok(out)
}

/// Marks many jobs done while `owner` still holds them; returns how many it did.
pub fn complete_jobs(
    conn: &mut DbConnection,
    ids: &[String],
    owner: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(1000) {
        n += on_backend!(conn, |c| diesel::update(
            jb::table
                .filter(jb::id.eq_any(chunk))
                .filter(jb::lease_owner.eq(owner))
                .filter(jb::state.eq(jobs::RUNNING))
        )
        .set((
            jb::state.eq(jobs::DONE),
            jb::lease_expires_at.eq(None::<i64>),
            jb::updated_at.eq(now),
        ))
        .execute(c))?;
    }
    Ok(n)
}

/// Puts many jobs `owner` still holds back in the queue for `run_at` with `error` (deferrals
/// that share a delay); returns how many it did.
pub fn retry_jobs(
    conn: &mut DbConnection,
    ids: &[String],
    owner: &str,
    run_at: i64,
    error: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(1000) {
        n += on_backend!(conn, |c| diesel::update(
            jb::table
                .filter(jb::id.eq_any(chunk))
                .filter(jb::lease_owner.eq(owner))
                .filter(jb::state.eq(jobs::RUNNING))
        )
        .set((
            jb::state.eq(jobs::QUEUED),
            jb::run_at.eq(run_at),
            jb::last_error.eq(error),
            jb::lease_owner.eq(None::<String>),
            jb::lease_expires_at.eq(None::<i64>),
            jb::updated_at.eq(now),
        ))
        .execute(c))?;
    }
    Ok(n)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

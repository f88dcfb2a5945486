//! Idempotency keys: the first request with a key runs, later ones replay or are refused.
//!
//! The row is the durable record; a coordinator lock may sit in front of it, but correctness
//! rests on the primary key (owner, key): only one `begin` can insert it.
//!
//! An in-flight record names its claimant (the process's instance id, see
//! [`crate::instances`]): when that process is gone, the request's retry takes the claim over at
//! once ([`claim`] answers [`Begin::Recovered`]) instead of waiting out the lease.

use crate::schema::idempotency_keys as ik;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// Being processed by the request that created it.
pub const IN_FLIGHT: &str = "in_flight";
/// Finished; the response is stored for replay.
pub const COMPLETED: &str = "completed";

/// A stored idempotency record. Its `Debug` omits the response body, which may hold a secret
/// shown once (an API key or webhook secret).
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ik)]
pub struct IdempotencyRecord {
    /// The merchant id, or the operator key id for operator requests.
    pub owner_id: String,
    /// The `Idempotency-Key` header.
    pub idem_key: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Hash of the request body (and whatever else must match).
    pub fingerprint: String,
    /// `in_flight`/`completed`.
    pub state: String,
    /// Stored response status.
    pub response_status: Option<i32>,
    /// Stored response body.
    pub response_body: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the key may be reused.
    pub expires_at: i64,
    /// The instance id of the process running the request (`None`: written before claimants
    /// were recorded, or by a caller without one; only the lease frees such a claim).
    pub claimed_by: Option<String>,
}

impl std::fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("owner_id", &self.owner_id)
            .field("idem_key", &self.idem_key)
            .field("state", &self.state)
            .field("claimed_by", &self.claimed_by)
            .field("response_status", &self.response_status)
            .finish_non_exhaustive()
    }
}

/// What [`begin`] found.
#[derive(Debug, Clone)]
pub enum Begin {
    /// The key is new (or expired): the caller runs the request, then calls [`complete`] or
    /// [`abandon`].
    Started,
    /// Another request with this key holds it or finished it; the caller compares the
    /// fingerprint and replays, refuses (422) or answers 409 when still in flight.
    Existing(Box<IdempotencyRecord>),
    /// Only from [`claim`]: the same request (same fingerprint) held the key in flight, and its
    /// claimant is gone (its process stopped heartbeating, or the lease ran out); this request
    /// holds the key now. The caller runs the request, but what the dead attempt committed may
    /// already be there: a "reference taken" refusal may be this request's own earlier work.
    Recovered,
}

/// Claims `(owner, key)` for a request with `fingerprint`, valid until `expires_at`, without
/// naming a claimant. The fingerprint already covers method and path, so their columns only
/// hold `-`.
pub fn begin(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<Begin> {
    begin_as(conn, owner, key, fingerprint, now, expires_at, None)
}

#[allow(clippy::too_many_arguments)]
fn begin_as(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
    claimed_by: Option<&str>,
) -> StoreResult<Begin> {
    let row = IdempotencyRecord {
        owner_id: owner.to_owned(),
        idem_key: key.to_owned(),
        method: "-".to_owned(),
        path: "-".to_owned(),
        fingerprint: fingerprint.to_owned(),
        state: IN_FLIGHT.to_owned(),
        response_status: None,
        response_body: None,
        created_at: now,
        expires_at,
        claimed_by: claimed_by.map(str::to_owned),
    };
    // The common case, a new key, is one statement; an existing record is examined only when
    // the insert found one.
    if insert_new(conn, &row)? {
        return Ok(Begin::Started);
    }
    // an expired record no longer binds the key
    let expired = on_backend!(conn, |c| diesel::delete(
        ik::table
            .filter(ik::owner_id.eq(owner))
            .filter(ik::idem_key.eq(key))
            .filter(ik::expires_at.le(now))
    )
    .execute(c))?;
    if expired > 0 && insert_new(conn, &row)? {
        return Ok(Begin::Started);
    }
    let existing = on_backend!(conn, |c| ik::table
        .find((owner, key))
        .select(IdempotencyRecord::as_select())
        .first(c))?;
    Ok(Begin::Existing(Box::new(existing)))
}

fn insert_new(conn: &mut DbConnection, row: &IdempotencyRecord) -> StoreResult<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(ik::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// [`begin`] as `claimant` (this process's instance id), taking over an in-flight record of the
/// same request whose claimant is gone: its process no longer heartbeats
/// ([`crate::instances::is_alive`]), or the record is older than `lease_ms` (the rule for
/// records without a claimant, and for a request lost inside a living process). The claim
/// every caller should use.
///
/// A gone claimant's record with another fingerprint is left alone (the caller answers it as
/// a reused key, as while it lived): the key belongs to the request that may have committed
/// work under it, and only that request's retry may recover it.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
    lease_ms: i64,
    claimant: Option<&str>,
) -> StoreResult<Begin> {
    let outcome = begin_as(conn, owner, key, fingerprint, now, expires_at, claimant)?;
    let Begin::Existing(r) = &outcome else {
        return Ok(outcome);
    };
    if r.state == COMPLETED
        || r.fingerprint != fingerprint
        || !claimant_gone(conn, r, now, lease_ms)?
    {
        return Ok(outcome);
    }
    if take_over(conn, r, now, expires_at, claimant)? {
        return Ok(Begin::Recovered);
    }
    // Another retry took it over first (or it finished meanwhile): answer what holds it now.
    begin_as(conn, owner, key, fingerprint, now, expires_at, claimant)
}

/// Whether the claimant of the in-flight record `r` is gone.
fn claimant_gone(
    conn: &mut DbConnection,
    r: &IdempotencyRecord,
    now: i64,
    lease_ms: i64,
) -> StoreResult<bool> {
    if r.created_at + lease_ms < now {
        return Ok(true);
    }
    match &r.claimed_by {
        Some(id) => Ok(!crate::instances::is_alive(conn, id, now)?),
        None => Ok(false),
    }
}

/// Moves the in-flight record `r` to `claimant`, only if it is still exactly `r` (the same
/// claimant and claim time): of two retries recovering one key, one wins and the other finds
/// the winner's live claim.
fn take_over(
    conn: &mut DbConnection,
    r: &IdempotencyRecord,
    now: i64,
    expires_at: i64,
    claimant: Option<&str>,
) -> StoreResult<bool> {
    let moved = (
        ik::created_at.eq(now),
        ik::expires_at.eq(expires_at),
        ik::claimed_by.eq(claimant),
    );
    let this = ik::table
        .filter(ik::owner_id.eq(&r.owner_id))
        .filter(ik::idem_key.eq(&r.idem_key))
        .filter(ik::state.eq(IN_FLIGHT))
        .filter(ik::fingerprint.eq(&r.fingerprint))
        .filter(ik::created_at.eq(r.created_at));
    let updated = match &r.claimed_by {
        Some(by) => on_backend!(conn, |c| diesel::update(this.filter(ik::claimed_by.eq(by)))
            .set(moved)
            .execute(c))?,
        None => on_backend!(conn, |c| diesel::update(
            this.filter(ik::claimed_by.is_null())
        )
        .set(moved)
        .execute(c))?,
    };
    Ok(updated == 1)
}

/// Stores the response of a started request.
pub fn complete(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    status: i32,
    body: &str,
) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(ik::table.find((owner, key)))
        .set((
            ik::state.eq(COMPLETED),
            ik::response_status.eq(Some(status)),
            ik::response_body.eq(Some(body)),
        ))
        .execute(c))?;
    Ok(())
}

/// Forgets an in-flight key whose request failed before doing anything, so a retry may run.
pub fn abandon(conn: &mut DbConnection, owner: &str, key: &str) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::delete(
        ik::table
            .filter(ik::owner_id.eq(owner))
            .filter(ik::idem_key.eq(key))
            .filter(ik::state.eq(IN_FLIGHT))
    )
    .execute(c))?;
    Ok(())
}

/// Deletes expired records; returns how many.
pub fn purge_expired(conn: &mut DbConnection, now: i64) -> StoreResult<usize> {
    Ok(on_backend!(conn, |c| diesel::delete(
        ik::table.filter(ik::expires_at.le(now))
    )
    .execute(c))?)
}

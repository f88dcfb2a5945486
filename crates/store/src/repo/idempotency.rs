//! Idempotency keys: the first request with a key runs, later ones replay or are refused.
//!
//! The row is the durable record; a coordinator lock may sit in front of it, but correctness
//! rests on the primary key (owner, key): only one `begin` can insert it.

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
}

impl std::fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("owner_id", &self.owner_id)
            .field("idem_key", &self.idem_key)
            .field("state", &self.state)
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
    Existing(IdempotencyRecord),
}

/// Claims `(owner, key)` for a request with `fingerprint`, valid until `expires_at`. The
/// fingerprint already covers method and path, so their columns only hold `-`.
pub fn begin(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
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
    Ok(Begin::Existing(existing))
}

fn insert_new(conn: &mut DbConnection, row: &IdempotencyRecord) -> StoreResult<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(ik::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// [`begin`], taking over an in-flight record older than `lease_ms` (the request that claimed
/// it died): the claim every caller should use.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
    lease_ms: i64,
) -> StoreResult<Begin> {
    let outcome = begin(conn, owner, key, fingerprint, now, expires_at)?;
    if let Begin::Existing(r) = &outcome
        && r.state != COMPLETED
        && r.created_at + lease_ms < now
    {
        abandon(conn, owner, key)?;
        return begin(conn, owner, key, fingerprint, now, expires_at);
    }
    Ok(outcome)
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

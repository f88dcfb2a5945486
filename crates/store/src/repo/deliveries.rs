//! The `deliveries` table (one row per event × endpoint) and its `delivery_attempts`: inserting,
//! reading, and the delivery state changes the pump records.

use crate::schema::{deliveries, delivery_attempts};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{DeliveryId, EventId, MerchantId, WebhookEndpointId};

/// Not yet delivered; `next_attempt_at` says when.
pub const PENDING: &str = "pending";
/// A 2xx was received.
pub const SUCCEEDED: &str = "succeeded";
/// The last attempt failed; another is scheduled.
pub const FAILED: &str = "failed";
/// Gave up (schedule exhausted or endpoint disabled).
pub const DEAD: &str = "dead";

/// A delivery row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Owner.
    pub merchant_id: String,
    /// `pending`/`succeeded`/`failed`/`dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Unix ms of the next attempt.
    pub next_attempt_at: Option<i64>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl Delivery {
    /// A pending delivery of `event` to `endpoint`, due at `now`.
    pub fn new(
        event: &EventId,
        endpoint: &WebhookEndpointId,
        merchant: &MerchantId,
        now: i64,
    ) -> Self {
        Self {
            id: DeliveryId::generate().into_string(),
            event_id: event.as_str().to_owned(),
            endpoint_id: endpoint.as_str().to_owned(),
            merchant_id: merchant.as_str().to_owned(),
            status: PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub struct DeliveryAttempt {
    /// `att_…`.
    pub id: String,
    /// The delivery.
    pub delivery_id: String,
    /// The event (for `GET /v1/events/{id}/attempts`).
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Owner.
    pub merchant_id: String,
    /// 1-based attempt number.
    pub attempt: i32,
    /// Unix ms.
    pub started_at: i64,
    /// Wall time of the request.
    pub duration_ms: i64,
    /// HTTP status, if a response came.
    pub http_status: Option<i32>,
    /// First bytes of the response body.
    pub response_excerpt: Option<String>,
    /// Transport error, if any.
    pub error: Option<String>,
}

/// Creates a delivery unless one exists for the same (event, endpoint); returns whether it was
/// created.
pub fn insert(conn: &mut DbConnection, delivery: &Delivery) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| diesel::insert_into(deliveries::table)
        .values(delivery)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Creates many deliveries with multi-row inserts, skipping any whose (event, endpoint) already
/// has one; returns how many were created.
pub fn insert_many(conn: &mut DbConnection, rows: &[Delivery]) -> StoreResult<usize> {
    let mut n = 0;
    match conn {
        // 11 columns a row: each statement stays well under PostgreSQL's bind limit
        DbConnection::Postgresql(c) => {
            for chunk in rows.chunks(500) {
                n += diesel::insert_into(deliveries::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
        }
        // diesel has no multi-row insert with ON CONFLICT for SQLite; in process, a statement
        // a row costs microseconds
        DbConnection::Sqlite(c) => {
            for row in rows {
                n += diesel::insert_into(deliveries::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
        }
    }
    Ok(n)
}

/// Makes deliveries pending again and due at `run_at` (their jobs are the caller's); one that
/// succeeded meanwhile is left alone. Returns how many rows changed.
pub fn set_pending(
    conn: &mut DbConnection,
    ids: &[String],
    run_at: i64,
    now: i64,
) -> StoreResult<usize> {
    super::update_in_chunks(ids, |chunk| {
        Ok(on_backend!(conn, |c| diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(chunk))
                .filter(deliveries::status.ne(SUCCEEDED))
        )
        .set((
            deliveries::status.eq(PENDING),
            deliveries::next_attempt_at.eq(Some(run_at)),
            deliveries::updated_at.eq(now),
        ))
        .execute(c))?)
    })
}

/// One delivery by id.
pub fn get(conn: &mut DbConnection, id: &DeliveryId) -> StoreResult<Delivery> {
    Ok(on_backend!(conn, |c| deliveries::table
        .find(id.as_str())
        .select(Delivery::as_select())
        .first(c))?)
}

/// Deliveries of one of the merchant's events.
pub fn list_for_event(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    event: &EventId,
) -> StoreResult<Vec<Delivery>> {
    Ok(on_backend!(conn, |c| deliveries::table
        .filter(deliveries::merchant_id.eq(merchant.as_str()))
        .filter(deliveries::event_id.eq(event.as_str()))
        .order(deliveries::id.asc())
        .select(Delivery::as_select())
        .load(c))?)
}

/// Attempts of one of the merchant's events, oldest first.
pub fn attempts_for_event(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    event: &EventId,
) -> StoreResult<Vec<DeliveryAttempt>> {
    Ok(on_backend!(conn, |c| delivery_attempts::table
        .filter(delivery_attempts::merchant_id.eq(merchant.as_str()))
        .filter(delivery_attempts::event_id.eq(event.as_str()))
        .order(delivery_attempts::id.asc())
        .select(DeliveryAttempt::as_select())
        .load(c))?)
}

/// Deliveries by id (the delivery pump's batch read); ids not found are left out.
pub fn get_many(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<Delivery>> {
    super::by_ids_in_chunks(ids, |chunk| {
        Ok(on_backend!(conn, |c| deliveries::table
            .filter(deliveries::id.eq_any(chunk))
            .select(Delivery::as_select())
            .load(c))?)
    })
}

/// Inserts many attempts with multi-row inserts; returns how many.
pub fn insert_attempts(
    conn: &mut DbConnection,
    attempts: &[DeliveryAttempt],
) -> StoreResult<usize> {
    let mut n = 0;
    // 11 columns a row: keep each statement well under SQLite's and PostgreSQL's bind limits
    for chunk in attempts.chunks(500) {
        n += on_backend!(conn, |c| diesel::insert_into(delivery_attempts::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(n)
}

/// Marks deliveries `succeeded` after their attempt number `attempt` answered `http_status`
/// (one statement for a group of deliveries that share both); a delivery already succeeded is
/// left alone. Returns how many rows changed.
pub fn mark_succeeded(
    conn: &mut DbConnection,
    ids: &[String],
    attempt: i32,
    http_status: Option<i32>,
    now: i64,
) -> StoreResult<usize> {
    super::update_in_chunks(ids, |chunk| {
        Ok(on_backend!(conn, |c| diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(chunk))
                .filter(deliveries::status.ne(SUCCEEDED))
        )
        .set((
            deliveries::status.eq(SUCCEEDED),
            deliveries::attempts.eq(attempt),
            deliveries::next_attempt_at.eq(None::<i64>),
            deliveries::last_status.eq(http_status),
            deliveries::last_error.eq(None::<String>),
            deliveries::updated_at.eq(now),
        ))
        .execute(c))?)
    })
}

/// Sets a delivery's state after an attempt already inserted (the pump inserts attempts in
/// bulk); a delivery already `succeeded` keeps that state. Returns whether the row changed.
pub fn set_after_attempt(
    conn: &mut DbConnection,
    attempt: &DeliveryAttempt,
    status: &str,
    next_attempt_at: Option<i64>,
    now: i64,
) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| diesel::update(
        deliveries::table
            .filter(deliveries::id.eq(&attempt.delivery_id))
            .filter(deliveries::status.ne(SUCCEEDED))
    )
    .set((
        deliveries::status.eq(status),
        deliveries::attempts.eq(attempt.attempt),
        deliveries::next_attempt_at.eq(next_attempt_at),
        deliveries::last_status.eq(attempt.http_status),
        deliveries::last_error.eq(&attempt.error),
        deliveries::updated_at.eq(now),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// Marks a delivery dead without an attempt (its endpoint was disabled or deleted).
pub fn mark_dead(
    conn: &mut DbConnection,
    delivery_id: &str,
    error: &str,
    now: i64,
) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(
        deliveries::table
            .filter(deliveries::id.eq(delivery_id))
            .filter(deliveries::status.ne(SUCCEEDED))
    )
    .set((
        deliveries::status.eq(DEAD),
        deliveries::next_attempt_at.eq(None::<i64>),
        deliveries::last_error.eq(Some(error)),
        deliveries::updated_at.eq(now),
    ))
    .execute(c))?;
    Ok(())
}

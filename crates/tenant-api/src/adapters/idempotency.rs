//! [`IdempotencyStore`] over the store's `idempotency_keys` table: the row's primary key
//! (owner, key) is the serialisation point, so concurrent duplicates cannot both run.

use super::accounts::store_error;
use crate::error::Result;
use crate::idempotency::{Claim, IdempotencyStore, LEASE, RETENTION, StoredResponse};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use store::Database;
use store::idempotency::{Begin, COMPLETED, abandon, begin, complete};

/// Idempotency records in SQL.
#[derive(Clone)]
pub struct SqlIdempotencyStore {
    db: Database,
}

impl SqlIdempotencyStore {
    /// Over a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl IdempotencyStore for SqlIdempotencyStore {
    async fn claim(&self, scope: &str, key: &str, fp: &str, now: DateTime<Utc>) -> Result<Claim> {
        let (scope, key, fp) = (scope.to_owned(), key.to_owned(), fp.to_owned());
        let now_ms = now.timestamp_millis();
        let expires = (now + RETENTION).timestamp_millis();
        let lease_ms = LEASE.num_milliseconds();
        self.db
            .write(move |c| {
                let mut outcome = begin(c, &scope, &key, "-", "-", &fp, now_ms, expires)?;
                if let Begin::Existing(r) = &outcome
                    && r.state != COMPLETED
                    && r.created_at + lease_ms < now_ms
                {
                    // The request that claimed it died: take the key over.
                    abandon(c, &scope, &key)?;
                    outcome = begin(c, &scope, &key, "-", "-", &fp, now_ms, expires)?;
                }
                Ok(match outcome {
                    Begin::Started => Claim::Proceed,
                    Begin::Existing(r) if r.fingerprint != fp => Claim::Mismatch,
                    Begin::Existing(r) if r.state == COMPLETED => Claim::Replay(StoredResponse {
                        status: u16::try_from(r.response_status.unwrap_or(200)).unwrap_or(200),
                        body: r.response_body.unwrap_or_default(),
                    }),
                    Begin::Existing(_) => Claim::InFlight,
                })
            })
            .await
            .map_err(store_error)
    }

    async fn complete(&self, scope: &str, key: &str, response: &StoredResponse) -> Result<()> {
        let (scope, key, r) = (scope.to_owned(), key.to_owned(), response.clone());
        self.db
            .write(move |c| complete(c, &scope, &key, i32::from(r.status), &r.body))
            .await
            .map_err(store_error)
    }

    async fn release(&self, scope: &str, key: &str) -> Result<()> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.db
            .write(move |c| abandon(c, &scope, &key))
            .await
            .map_err(store_error)
    }
}

//! [`IdempotencyStore`] over the store's `idempotency_keys` table: the row's primary key
//! (owner, key) is the serialisation point, so concurrent duplicates cannot both run.
//!
//! Stored response bodies are sealed with the master keyring (bound to
//! `idempotency_keys:<scope>:<key>`): some creates answer a secret exactly once (API keys,
//! webhook signing secrets) and their replay must not leave it readable in the table.

use super::accounts::store_error;
use crate::error::{Error, Result};
use crate::idempotency::{Claim, IdempotencyStore, LEASE, RETENTION, StoredResponse};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use store::Database;
use store::idempotency::{Begin, COMPLETED, abandon, claim as claim_row, complete};
use store::sealing::MasterKeyring;

/// Idempotency records in SQL.
#[derive(Clone)]
pub struct SqlIdempotencyStore {
    db: Database,
    keyring: Option<Arc<MasterKeyring>>,
    claimant: Option<String>,
}

impl SqlIdempotencyStore {
    /// Over a migrated database, keeping bodies in plaintext (tests without secrets only).
    pub fn new(db: Database) -> Self {
        Self {
            db,
            keyring: None,
            claimant: None,
        }
    }

    /// Seals every stored response body with `keyring`.
    pub fn with_keyring(mut self, keyring: Arc<MasterKeyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Names this process (its instance id, heartbeating in `store::instances`) as the claimant
    /// of the keys it claims, so a retry after this process died takes them over at once.
    /// Without one, a claim left in flight is freed only by the lease ([`LEASE`]).
    pub fn with_claimant(mut self, instance_id: impl Into<String>) -> Self {
        self.claimant = Some(instance_id.into());
        self
    }
}

fn binding(scope: &str, key: &str) -> String {
    store::sealing::binding::idempotency_response(scope, key)
}

/// Opens a stored body; a JSON body is a record written before sealing existed (or without a
/// keyring) and is replayed as is.
fn open_body(
    keyring: Option<&MasterKeyring>,
    scope: &str,
    key: &str,
    body: String,
) -> Result<String> {
    let plaintext = body.is_empty() || body.starts_with('{') || body.starts_with('[');
    match keyring {
        Some(k) if !plaintext => k
            .open(&body, &binding(scope, key))
            .map(|s| s.expose().to_owned())
            .map_err(|e| Error::Unavailable(format!("idempotency record cannot be opened: {e}"))),
        _ => Ok(body),
    }
}

#[async_trait]
impl IdempotencyStore for SqlIdempotencyStore {
    async fn claim(&self, scope: &str, key: &str, fp: &str, now: DateTime<Utc>) -> Result<Claim> {
        let (scope, key, fp) = (scope.to_owned(), key.to_owned(), fp.to_owned());
        let now_ms = now.timestamp_millis();
        let expires = (now + RETENTION).timestamp_millis();
        let lease_ms = LEASE.num_milliseconds();
        let (s2, k2) = (scope.clone(), key.clone());
        let claimant = self.claimant.clone();
        let claim = self
            .db
            .write(move |c| {
                let by = claimant.as_deref();
                let outcome = claim_row(c, &scope, &key, &fp, now_ms, expires, lease_ms, by)?;
                Ok(match outcome {
                    Begin::Started => Claim::Proceed,
                    Begin::Recovered => Claim::Recovered,
                    Begin::Existing(r) if r.fingerprint != fp => Claim::Mismatch,
                    Begin::Existing(r) if r.state == COMPLETED => Claim::Replay(StoredResponse {
                        status: u16::try_from(r.response_status.unwrap_or(200)).unwrap_or(200),
                        body: r.response_body.unwrap_or_default(),
                    }),
                    Begin::Existing(_) => Claim::InFlight,
                })
            })
            .await
            .map_err(store_error)?;
        Ok(match claim {
            Claim::Replay(r) => Claim::Replay(StoredResponse {
                status: r.status,
                body: open_body(self.keyring.as_deref(), &s2, &k2, r.body)?,
            }),
            other => other,
        })
    }

    async fn complete(&self, scope: &str, key: &str, response: &StoredResponse) -> Result<()> {
        let (scope, key, mut r) = (scope.to_owned(), key.to_owned(), response.clone());
        if let Some(k) = &self.keyring {
            r.body = k
                .seal(r.body.as_bytes(), &binding(&scope, &key))
                .map_err(|e| Error::Unavailable(format!("cannot seal a response: {e}")))?;
        }
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

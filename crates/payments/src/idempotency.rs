//! `Idempotency-Key` on a create, folded into the create's own two commits: the claim commits
//! with the payment row and its settling job (before CodePay hears of the order), the response
//! with CodePay's answer. The API's separate idempotency store (`tenant_api::idempotency`)
//! keeps the same records with the same rules, for every other create.

use crate::model::IdempotencyWrite;
use crate::objects::PaymentObject;

/// How long a stored response is replayed.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);
/// After this long an in-flight claim is considered abandoned whoever holds it. A claim that
/// names its claimant is taken over sooner, as soon as that process stops heartbeating
/// (`store::instances::STALE_AFTER_MS`); the lease remains for claims without one and for a
/// request lost inside a process that still lives.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(2);

/// A create's `Idempotency-Key`, claimed in the transaction that inserts the payment and
/// answered in the one that records CodePay's answer.
#[derive(Clone, Debug)]
pub struct IdempotentCreate {
    /// Merchant the key belongs to.
    pub scope: String,
    /// The header value.
    pub key: String,
    /// Method, path and body hash.
    pub fingerprint: String,
}

impl IdempotentCreate {
    /// The claim written with the payment row.
    pub(crate) fn claim(&self) -> IdempotencyWrite {
        IdempotencyWrite::Claim {
            scope: self.scope.clone(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// The `201` answer with `object`, stored with the change that produced it (the store seals
    /// the body).
    pub(crate) fn completion(&self, object: &PaymentObject) -> Option<IdempotencyWrite> {
        let body = serde_json::to_string(object).ok()?;
        Some(IdempotencyWrite::Complete {
            scope: self.scope.clone(),
            key: self.key.clone(),
            status: 201,
            body,
        })
    }
}

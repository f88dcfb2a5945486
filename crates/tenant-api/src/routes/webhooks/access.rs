//! The shape every webhook handler shares: check the caller, then make one call on the
//! [`WebhookStore`] port, which turns storage errors into the public 404 or 503. Handlers parse
//! their path id and body between the check and the call, so a caller without the scope gets
//! the 403 before any 400 or 404.

use super::{WebhookStore, Webhooks};
use crate::auth::Principal;
use crate::error::Result;
use domain::MerchantId;

impl Webhooks {
    /// The caller's merchant when its credential holds `scope` (403 otherwise).
    pub(super) fn for_merchant(&self, principal: &Principal, scope: &str) -> Result<MerchantId> {
        Ok(principal.merchant(scope)?.clone())
    }

    /// The storage port (operators' handlers check the operator first).
    pub(super) fn store(&self) -> &dyn WebhookStore {
        self.0.store.as_ref()
    }
}

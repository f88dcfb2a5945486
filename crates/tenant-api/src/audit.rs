//! The audit trail of configuration and money changes: who (an API key) asked for what. Each
//! entry is written by the store adapter in the transaction of the change it describes, so the
//! log never shows a change that did not happen nor misses one that did.

use crate::auth::Principal;
use store::{DbConnection, StoreResult};

/// Who asked for a change, and what the change is called in the log (`merchant.suspend`,
/// `api_key.revoke`, …). The adapter adds the target and the details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// The API key that asked (`key_…`), or `system` / `admin-cli` outside requests.
    pub actor: String,
    /// The action's name.
    pub action: &'static str,
}

impl Audit {
    /// `action` asked by the caller `principal`.
    pub fn by(principal: &Principal, action: &'static str) -> Self {
        Self {
            actor: principal.key_id().to_string(),
            action,
        }
    }

    /// `action` done by payfac itself (bootstrap, tests, the admin CLI).
    pub fn system(action: &'static str) -> Self {
        Self {
            actor: "system".to_owned(),
            action,
        }
    }

    /// Writes the entry for `target` (`(type, id)`) of `merchant_id` with `details` (never a
    /// secret) in the caller's transaction.
    pub fn record(
        &self,
        c: &mut DbConnection,
        target: (&str, &str),
        merchant_id: Option<&str>,
        details: &serde_json::Value,
        now_ms: i64,
    ) -> StoreResult<()> {
        store::audit::record(
            c,
            &self.actor,
            self.action,
            target,
            merchant_id,
            details,
            now_ms,
        )
        .map(|_| ())
    }
}

//! Sandbox onboarding against the in-process simulator, and the notification recorder over
//! the store's `upstream_notifications`.

use super::accounts::store_error;
use super::codepay::NotificationRecorder;
use crate::SandboxRegistrar;
use crate::error::{Error, Result};
use async_trait::async_trait;

/// Registers sandbox merchants with an in-process [`codepay_sim::Simulator`].
pub struct SimulatorRegistrar(pub codepay_sim::Simulator);

#[async_trait]
impl SandboxRegistrar for SimulatorRegistrar {
    async fn register_merchant(&self, _name: &str) -> Result<String> {
        self.0
            .register_merchant(None, None)
            .map(|m| m.merchant_no)
            .map_err(|e| Error::Upstream {
                code: "sandbox_unavailable",
                message: format!("the sandbox could not register a merchant: {e}"),
            })
    }
}

/// Keeps every received notification, raw, with its verification result (audit, dedupe).
pub struct SqlNotificationRecorder(pub store::Database);

#[async_trait]
impl NotificationRecorder for SqlNotificationRecorder {
    async fn record(&self, body: &[u8], verified: bool, outcome: &str) -> Result<()> {
        let row = store::notifications::UpstreamNotification {
            id: domain::NotificationId::generate().into_string(),
            received_at: chrono::Utc::now().timestamp_millis(),
            raw_body: String::from_utf8_lossy(body).into_owned(),
            verified,
            verification_error: (!verified).then(|| outcome.chars().take(500).collect()),
            dedupe_key: None,
            object_type: None,
            object_id: None,
            merchant_id: None,
        };
        self.0
            .write(move |c| store::notifications::insert(c, &row))
            .await
            .map_err(store_error)
    }
}

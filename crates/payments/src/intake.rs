//! CodePay notification intake: parse and verify a raw callback body with the gateway's public
//! key, and keep every notification received, raw, with its verification result (audit,
//! dedupe). Applying it is [`crate::Engine::apply_notification`].

use crate::codepay::parse_time;
use crate::error::{PaymentError, Result};
use crate::ports::UpstreamOrder;
use crate::settle::InboundNotification;
use async_trait::async_trait;
use gateway_client::{NotificationError, PublicKey};

/// What the callback route needs from the gateway layer: parse + verify a raw notification,
/// and keep every one received.
#[async_trait]
pub trait NotificationIntake: Send + Sync + 'static {
    /// Parses a body; `Err(reason)` for a forged or unreadable one. A notification whose
    /// signature could not be checked (no key configured) comes back with `verified: false`.
    fn parse(&self, body: &[u8]) -> std::result::Result<InboundNotification, String>;
    /// Records the raw notification with its verification result and what it did.
    async fn record(&self, body: &[u8], verified: bool, outcome: &str) -> Result<()>;
}

/// Keeps received notifications (the store's `upstream_notifications`); plug one in when the
/// store provides it.
#[async_trait]
pub trait NotificationRecorder: Send + Sync + 'static {
    /// Stores one raw notification with its verification result and effect.
    async fn record(&self, body: &[u8], verified: bool, outcome: &str) -> Result<()>;
}

/// Parses and verifies notifications with the gateway public key.
pub struct CodePayIntake {
    gateway_key: PublicKey,
    recorder: Option<std::sync::Arc<dyn NotificationRecorder>>,
}

impl CodePayIntake {
    /// Verifies with `gateway_key`; records through `recorder` (or only logs without one).
    pub fn new(
        gateway_key: PublicKey,
        recorder: Option<std::sync::Arc<dyn NotificationRecorder>>,
    ) -> Self {
        Self {
            gateway_key,
            recorder,
        }
    }
}

#[async_trait]
impl NotificationIntake for CodePayIntake {
    fn parse(&self, body: &[u8]) -> std::result::Result<InboundNotification, String> {
        let n = gateway_client::parse_notification(body, &self.gateway_key)
            .map_err(|e: NotificationError| e.to_string())?;
        let merchant_order_no = n
            .merchant_order_no
            .clone()
            .ok_or_else(|| "notification without merchant_order_no".to_owned())?;
        let amount = n.trans_amount.or(n.order_amount);
        Ok(InboundNotification {
            merchant_no: n.merchant_no.clone(),
            merchant_order_no,
            trans_type: n.trans_type.unwrap_or(1),
            order: UpstreamOrder {
                trans_no: n.trans_no,
                status: n.trans_status,
                amount,
                end_time: parse_time(n.trans_end_time.as_deref()),
                error_code: n.trans_error_code,
                error_msg: n.trans_error_msg,
                fee: n.trans_fee_c,
            },
            verified: true,
        })
    }

    async fn record(&self, body: &[u8], verified: bool, outcome: &str) -> Result<()> {
        match &self.recorder {
            Some(r) => r.record(body, verified, outcome).await,
            None => {
                tracing::info!(verified, %outcome, bytes = body.len(), "CodePay notification");
                Ok(())
            }
        }
    }
}

/// Keeps every received notification in the store's `upstream_notifications`.
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
            .map_err(|e| PaymentError::Unavailable(e.to_string()))
    }
}

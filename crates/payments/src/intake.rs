//! CodePay notification intake: parse and verify a raw callback body with the gateway public key
//! of the account it is addressed to, and keep every notification received, raw, with its
//! verification result (audit, dedupe). Applying it is [`crate::Engine::apply_notification`].

use crate::codepay::parse_time;
use crate::error::{PaymentError, Result};
use crate::gateways::{Gateways, NotificationVerifier};
use crate::ports::{AccountScope, UpstreamOrder};
use crate::settle::InboundNotification;
use async_trait::async_trait;
use gateway_client::{NotificationError, PublicKey};
use std::sync::Arc;

/// What the callback route needs from the gateway layer: parse + verify a raw notification,
/// and keep every one received.
#[async_trait]
pub trait NotificationIntake: Send + Sync + 'static {
    /// Parses a body posted to `/callbacks/codepay/{account}` (`account` is that path segment)
    /// or to `/callbacks/codepay` (`None`); `Err(reason)` for a forged, unreadable or
    /// misaddressed one. The notification it returns may touch only the verifying account's
    /// orders ([`InboundNotification::scope`]).
    async fn parse(
        &self,
        account: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<InboundNotification, String>;
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

/// Whose keys verify notifications.
enum Keys {
    /// One configured gateway, no accounts: its orders are the ones recorded without one.
    One(PublicKey),
    /// Each gateway account's own key ([`Gateways::verifiers`]).
    Accounts(Arc<Gateways>),
}

/// Parses and verifies notifications with the gateway public keys.
pub struct CodePayIntake {
    keys: Keys,
    recorder: Option<std::sync::Arc<dyn NotificationRecorder>>,
}

impl CodePayIntake {
    /// Verifies with `gateway_key`, one gateway without accounts (posted to an account's URL, a
    /// notification is refused); records through `recorder` (or only logs without one).
    pub fn new(
        gateway_key: PublicKey,
        recorder: Option<std::sync::Arc<dyn NotificationRecorder>>,
    ) -> Self {
        Self {
            keys: Keys::One(gateway_key),
            recorder,
        }
    }

    /// Verifies each notification with the key of the gateway account it is addressed to.
    pub fn for_accounts(
        gateways: Arc<Gateways>,
        recorder: Option<std::sync::Arc<dyn NotificationRecorder>>,
    ) -> Self {
        Self {
            keys: Keys::Accounts(gateways),
            recorder,
        }
    }

    fn verifiers(
        &self,
        account: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Vec<NotificationVerifier>, String> {
        match &self.keys {
            Keys::One(_) if account.is_some() => {
                Err("this deployment has no gateway accounts".to_owned())
            }
            Keys::One(key) => Ok(vec![NotificationVerifier {
                scope: AccountScope::unrouted(),
                gateway_key: key.clone(),
            }]),
            Keys::Accounts(gateways) => gateways.verifiers(account, app_id(body).as_deref()),
        }
    }
}

/// The `app_id` a notification names, if it is readable JSON that names one (CodePay's
/// notifications may omit it). Read before the signature is checked only to pick the key; the
/// signature covers it.
fn app_id(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("app_id")?.as_str().map(str::to_owned)
}

#[async_trait]
impl NotificationIntake for CodePayIntake {
    async fn parse(
        &self,
        account: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<InboundNotification, String> {
        let mut failure = String::new();
        let mut verified = None;
        for v in self.verifiers(account, body)? {
            match gateway_client::parse_notification(body, &v.gateway_key) {
                Ok(n) => {
                    verified = Some((n, v.scope));
                    break;
                }
                Err(e @ NotificationError::BadSignature) => failure = e.to_string(),
                // Unsigned or unreadable: no other key makes it readable.
                Err(e) => return Err(e.to_string()),
            }
        }
        let (n, scope) = verified.ok_or(failure)?;
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
            scope,
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

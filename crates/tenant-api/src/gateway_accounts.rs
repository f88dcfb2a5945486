//! Operator gateway accounts (CodePay apps) as the API sees them, and the storage trait behind
//! them. The app's private key is write-only: it goes in sealed and only its public half comes
//! back out.

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{GatewayAccountId, MerchantId, RoutingRule};
use gateway_client::signing::PrivateKey;

/// Everything about an account except its private key.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayAccountSettings {
    /// Operator's label.
    pub name: String,
    /// CodePay base URL.
    pub base_url: String,
    /// CodePay `app_id`.
    pub app_id: String,
    /// CodePay's public key (PEM), verifies its answers and notifications.
    pub gateway_public_key: String,
    /// Connect timeout.
    pub connect_timeout_ms: i64,
    /// Whole-request timeout.
    pub request_timeout_ms: i64,
    /// Whether routing may pick it.
    pub enabled: bool,
}

/// A stored account, private key left out.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayAccountRecord {
    /// `gwa_…`.
    pub id: GatewayAccountId,
    /// Settings.
    pub settings: GatewayAccountSettings,
    /// PEM public half of the sealed app key (what the operator uploads to CodePay); `None`
    /// when the sealed key does not open with the configured master keys.
    pub app_public_key: Option<String>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A change of which gateway accounts carry a merchant's new payments; `None` leaves a part as
/// it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MerchantRouting {
    /// The merchant's own account: `Some(None)` clears it (the default account then).
    pub gateway_account_id: Option<Option<GatewayAccountId>>,
    /// The ordered per-currency/per-wallet rules, replacing the old ones (`[]` clears them).
    pub routing: Option<Vec<RoutingRule>>,
}

/// What the API needs from storage for gateway accounts.
#[async_trait]
pub trait GatewayAccountStore: Send + Sync + 'static {
    /// Stores a new account with its private key sealed; `actor` goes to the audit log.
    async fn create(
        &self,
        id: &GatewayAccountId,
        settings: &GatewayAccountSettings,
        key: &PrivateKey,
        actor: &str,
    ) -> Result<GatewayAccountRecord>;
    /// One account.
    async fn get(&self, id: &GatewayAccountId) -> Result<Option<GatewayAccountRecord>>;
    /// Every account, oldest first.
    async fn list(&self) -> Result<Vec<GatewayAccountRecord>>;
    /// Replaces the settings, and re-seals the private key when `new_key` is given; `None`
    /// when no such account.
    async fn update(
        &self,
        id: &GatewayAccountId,
        settings: &GatewayAccountSettings,
        new_key: Option<&PrivateKey>,
        actor: &str,
    ) -> Result<Option<GatewayAccountRecord>>;
    /// Changes which gateway accounts carry `merchant`'s new payments: its own account
    /// (`Some(None)` clears it) and its ordered routing rules, each when given. The merchant row
    /// and the audit entry (`merchant.gateway_account`, `merchant.routing`, by `actor`) are
    /// written in one transaction. The caller has checked the accounts.
    async fn route_merchant(
        &self,
        merchant: &MerchantId,
        change: &MerchantRouting,
        actor: &str,
    ) -> Result<()>;
}

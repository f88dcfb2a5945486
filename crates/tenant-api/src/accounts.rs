//! Merchants and API keys as the API sees them, and the narrow storage trait behind them.

use crate::audit::Audit;
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApiKeyId, Currency, MerchantId, Wallet};
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// `active`, `suspended` or `closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MerchantStatus {
    /// Takes payments.
    Active,
    /// Temporarily barred from new payments (reads, refunds of old payments allowed).
    Suspended,
    /// Gone.
    Closed,
}

impl MerchantStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Suspended, Self::Closed]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A sub-merchant, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MerchantRecord {
    /// `mer_…`.
    pub id: MerchantId,
    /// Display name.
    pub name: String,
    /// Lifecycle.
    pub status: MerchantStatus,
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// CodePay `store_no`.
    pub store_no: Option<String>,
    /// Currency used when a payment names none.
    pub default_currency: Currency,
    /// Wallets allowed; empty means all.
    pub allowed_wallets: Vec<Wallet>,
    /// Per-payment limit in minor units of the default currency.
    pub max_amount_minor: Option<i64>,
    /// Contact e-mail.
    pub contact_email: Option<String>,
    /// The gateway account its payments go through (`None`: the platform's default).
    pub gateway_account_id: Option<domain::GatewayAccountId>,
    /// Ordered per-currency/per-wallet overrides of `gateway_account_id`.
    pub routing: Vec<domain::RoutingRule>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl MerchantRecord {
    /// An active merchant `name` on CodePay merchant `merchant_no`, taking every wallet in
    /// `currency` without a limit, created at `now`.
    pub fn active(
        id: MerchantId,
        name: &str,
        merchant_no: &str,
        currency: Currency,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: name.to_owned(),
            status: MerchantStatus::Active,
            merchant_no: merchant_no.to_owned(),
            store_no: None,
            default_currency: currency,
            allowed_wallets: vec![],
            max_amount_minor: None,
            contact_email: None,
            gateway_account_id: None,
            routing: vec![],
            created_at: now,
            updated_at: now,
        }
    }

    /// What the payment logic needs of this merchant.
    pub fn profile(&self) -> ::payments::model::MerchantProfile {
        ::payments::model::MerchantProfile {
            id: self.id.clone(),
            active: self.status == MerchantStatus::Active,
            merchant_no: self.merchant_no.clone(),
            store_no: self.store_no.clone(),
            default_currency: self.default_currency,
            allowed_wallets: self.allowed_wallets.clone(),
            max_amount_minor: self.max_amount_minor,
            gateway_account_id: self.gateway_account_id.clone(),
            routing: self.routing.clone(),
        }
    }
}

/// An API key, as stored: never the secret, only its SHA-256.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyRecord {
    /// `key_…`.
    pub id: ApiKeyId,
    /// The merchant it acts for; `None` for an operator key.
    pub merchant_id: Option<MerchantId>,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The first characters of the secret, to recognise it in a list.
    pub prefix: String,
    /// Free label.
    pub label: Option<String>,
    /// Scopes (merchant keys).
    pub scopes: Vec<String>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// When revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The store or terminal it is bound to (merchant keys; fixed at creation).
    pub binding: Option<crate::auth::Binding>,
}

/// What the API needs from storage for merchants and keys.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Inserts a merchant, with `audit`'s entry in the same transaction.
    async fn insert_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()>;
    /// A merchant by id.
    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>>;
    /// Replaces a merchant row, with `audit`'s entry in the same transaction.
    async fn update_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()>;
    /// Merchants newest first, strictly older than `starting_after`.
    async fn list_merchants(
        &self,
        starting_after: Option<&MerchantId>,
        limit: usize,
    ) -> Result<Vec<MerchantRecord>>;
    /// Inserts a key, with `audit`'s entry in the same transaction.
    async fn insert_api_key(&self, k: &ApiKeyRecord, audit: &Audit) -> Result<()>;
    /// A key by the hash of its secret.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>>;
    /// A key by id.
    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>>;
    /// A merchant's keys, newest first.
    async fn api_keys_of(&self, merchant: &MerchantId) -> Result<Vec<ApiKeyRecord>>;
    /// Revokes a merchant's key (with `audit`'s entry in the same transaction); false when no
    /// such key belongs to that merchant.
    async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key: &ApiKeyId,
        at: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<bool>;
    /// Operator keys, newest first (the default store has none to list).
    async fn operator_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        Ok(Vec::new())
    }
    /// Revokes an operator key (with `audit`'s entry in the same transaction); false when no
    /// such active operator key exists.
    async fn revoke_operator_key(
        &self,
        _key: &ApiKeyId,
        _at: DateTime<Utc>,
        _audit: &Audit,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Records that `key` authenticated a request at `at` (callers throttle it).
    async fn touch_api_key(&self, _key: &ApiKeyId, _at: DateTime<Utc>) -> Result<()> {
        Ok(())
    }
    /// When each of `keys` was last used, for those ever used.
    async fn api_keys_last_used(
        &self,
        _keys: &[ApiKeyId],
    ) -> Result<std::collections::HashMap<ApiKeyId, DateTime<Utc>>> {
        Ok(Default::default())
    }
    /// A page of at most `limit` audit-log entries matching `filter`, newest first, strictly
    /// older than `starting_after`, and whether more follow (503 where no log is kept).
    async fn audit_events(
        &self,
        _filter: &store::audit::AuditFilter,
        _starting_after: Option<&str>,
        _limit: usize,
    ) -> Result<(Vec<store::audit::AuditEntry>, bool)> {
        Err(Error::Unavailable(
            "this deployment keeps no audit log".to_owned(),
        ))
    }
    /// Operator gateway accounts, when this store can seal their keys (none: those routes
    /// answer 503 and merchants cannot name one).
    fn gateway_accounts(&self) -> Option<&dyn crate::gateway_accounts::GatewayAccountStore> {
        None
    }
    /// Merchants' stores and terminals, when this store keeps them (none: the store and
    /// terminal routes answer 503, and no request may name a store or terminal).
    fn locations(&self) -> Option<&dyn crate::locations::LocationStore> {
        None
    }
}

/// An in-memory [`AccountStore`] for tests (it keeps no audit log).
#[derive(Default)]
pub struct MemoryAccountStore {
    merchants: Mutex<BTreeMap<String, MerchantRecord>>,
    keys: Mutex<BTreeMap<String, ApiKeyRecord>>,
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn insert_merchant(&self, m: &MerchantRecord, _audit: &Audit) -> Result<()> {
        self.merchants.lock().insert(m.id.to_string(), m.clone());
        Ok(())
    }
    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        Ok(self.merchants.lock().get(id.as_str()).cloned())
    }
    async fn update_merchant(&self, m: &MerchantRecord, _audit: &Audit) -> Result<()> {
        match self.merchants.lock().get_mut(m.id.as_str()) {
            Some(slot) => {
                *slot = m.clone();
                Ok(())
            }
            None => Err(Error::not_found("merchant", m.id.as_str())),
        }
    }
    async fn list_merchants(
        &self,
        starting_after: Option<&MerchantId>,
        limit: usize,
    ) -> Result<Vec<MerchantRecord>> {
        Ok(self
            .merchants
            .lock()
            .values()
            .rev()
            .filter(|m| starting_after.is_none_or(|c| m.id < *c))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn insert_api_key(&self, k: &ApiKeyRecord, _audit: &Audit) -> Result<()> {
        self.keys.lock().insert(k.id.to_string(), k.clone());
        Ok(())
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self
            .keys
            .lock()
            .values()
            .find(|k| k.secret_hash == hash)
            .cloned())
    }
    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        Ok(self.keys.lock().get(id.as_str()).cloned())
    }
    async fn api_keys_of(&self, merchant: &MerchantId) -> Result<Vec<ApiKeyRecord>> {
        Ok(self
            .keys
            .lock()
            .values()
            .rev()
            .filter(|k| k.merchant_id.as_ref() == Some(merchant))
            .cloned()
            .collect())
    }
    async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key: &ApiKeyId,
        at: DateTime<Utc>,
        _audit: &Audit,
    ) -> Result<bool> {
        match self.keys.lock().get_mut(key.as_str()) {
            Some(k) if k.merchant_id.as_ref() == Some(merchant) => {
                k.revoked_at.get_or_insert(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

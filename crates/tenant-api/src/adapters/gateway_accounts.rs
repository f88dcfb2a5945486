//! [`GatewayAccountStore`] over the `store` crate's gateway_accounts, merchants and audit_log
//! repositories, the private key sealed with the master keyring; a merchant's routing and its
//! audit entry are written in one transaction.

use super::accounts::store_error;
use crate::error::{Error, Result};
use crate::gateway_accounts::{
    GatewayAccountRecord, GatewayAccountSettings, GatewayAccountStore, MerchantRouting,
};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use domain::{GatewayAccountId, MerchantId};
use gateway_client::signing::PrivateKey;
use std::sync::Arc;
use store::gateway_accounts::{self as repo, GatewayAccount, NewGatewayAccount};
use store::sealing::MasterKeyring;
use store::{Database, clock};

/// The sealing binding of an account's private key; the server's sandbox account uses the same,
/// so either side opens what the other sealed.
pub fn seal_binding(id: &str) -> String {
    store::sealing::binding::gateway_private_key(id)
}

/// Gateway accounts in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SqlGatewayAccountStore {
    db: Database,
    keyring: Arc<MasterKeyring>,
}

impl SqlGatewayAccountStore {
    /// Over a connected, migrated database, sealing with `keyring`.
    pub fn new(db: Database, keyring: Arc<MasterKeyring>) -> Self {
        Self { db, keyring }
    }

    fn seal(&self, id: &str, key: &PrivateKey) -> Result<String> {
        self.keyring
            .seal(key.to_pkcs8_pem().expose().as_bytes(), &seal_binding(id))
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    fn record(&self, row: GatewayAccount) -> Result<GatewayAccountRecord> {
        // A key that no longer opens (master key changed) is reported, not fatal: the operator
        // sees `private_key_configured` without a public key and can rotate it.
        let app_public_key = self
            .keyring
            .open(row.private_key_ciphertext.expose(), &seal_binding(&row.id))
            .ok()
            .and_then(|pem| PrivateKey::from_pem_or_base64(pem.expose()).ok())
            .map(|k| k.public_key().to_pem());
        let at = |ms: i64| Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        Ok(GatewayAccountRecord {
            id: GatewayAccountId::parse(&row.id)
                .map_err(|e| Error::Unavailable(format!("corrupt row: {e}")))?,
            settings: GatewayAccountSettings {
                name: row.name,
                base_url: row.base_url,
                app_id: row.app_id,
                gateway_public_key: row.gateway_public_key,
                connect_timeout_ms: row.connect_timeout_ms,
                request_timeout_ms: row.request_timeout_ms,
                enabled: row.enabled,
            },
            app_public_key,
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
        })
    }
}

fn audit_details(s: &GatewayAccountSettings, key_rotated: bool) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "base_url": domain::SecretUrl::new(s.base_url.clone()).masked(),
        "app_id": s.app_id,
        "enabled": s.enabled,
        "private_key_rotated": key_rotated,
    })
}

#[async_trait]
impl GatewayAccountStore for SqlGatewayAccountStore {
    async fn create(
        &self,
        id: &GatewayAccountId,
        settings: &GatewayAccountSettings,
        key: &PrivateKey,
        actor: &str,
    ) -> Result<GatewayAccountRecord> {
        let sealed = self.seal(id.as_str(), key)?;
        let (id, s, actor) = (id.clone(), settings.clone(), actor.to_owned());
        let row = self
            .db
            .write(move |c| {
                let now = clock::now_ms();
                repo::insert(
                    c,
                    &NewGatewayAccount {
                        id: id.as_str(),
                        name: &s.name,
                        base_url: &s.base_url,
                        app_id: &s.app_id,
                        private_key_ciphertext: &sealed,
                        gateway_public_key: &s.gateway_public_key,
                        connect_timeout_ms: s.connect_timeout_ms,
                        request_timeout_ms: s.request_timeout_ms,
                        enabled: s.enabled,
                        created_at: now,
                        updated_at: now,
                    },
                )?;
                store::audit::record(
                    c,
                    &actor,
                    "gateway_account.create",
                    ("gateway_account", id.as_str()),
                    None,
                    &audit_details(&s, true),
                    now,
                )?;
                repo::get(c, &id)
            })
            .await
            .map_err(store_error)?;
        self.record(row)
    }

    async fn get(&self, id: &GatewayAccountId) -> Result<Option<GatewayAccountRecord>> {
        let id = id.clone();
        match self.db.read(move |c| repo::get(c, &id)).await {
            Ok(row) => self.record(row).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn list(&self) -> Result<Vec<GatewayAccountRecord>> {
        let rows = self.db.read(repo::list).await.map_err(store_error)?;
        rows.into_iter().map(|r| self.record(r)).collect()
    }

    async fn update(
        &self,
        id: &GatewayAccountId,
        settings: &GatewayAccountSettings,
        new_key: Option<&PrivateKey>,
        actor: &str,
    ) -> Result<Option<GatewayAccountRecord>> {
        let sealed = new_key.map(|k| self.seal(id.as_str(), k)).transpose()?;
        let (id, s, actor) = (id.clone(), settings.clone(), actor.to_owned());
        let row = self
            .db
            .write(move |c| {
                let old = match repo::get(c, &id) {
                    Ok(old) => old,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e),
                };
                let now = clock::now_ms();
                let rotated = sealed.is_some();
                let ciphertext =
                    sealed.unwrap_or_else(|| old.private_key_ciphertext.expose().to_owned());
                repo::update(
                    c,
                    &NewGatewayAccount {
                        id: id.as_str(),
                        name: &s.name,
                        base_url: &s.base_url,
                        app_id: &s.app_id,
                        private_key_ciphertext: &ciphertext,
                        gateway_public_key: &s.gateway_public_key,
                        connect_timeout_ms: s.connect_timeout_ms,
                        request_timeout_ms: s.request_timeout_ms,
                        enabled: s.enabled,
                        created_at: old.created_at,
                        updated_at: now,
                    },
                )?;
                store::audit::record(
                    c,
                    &actor,
                    "gateway_account.update",
                    ("gateway_account", id.as_str()),
                    None,
                    &audit_details(&s, rotated),
                    now,
                )?;
                repo::get(c, &id).map(Some)
            })
            .await
            .map_err(store_error)?;
        row.map(|r| self.record(r)).transpose()
    }

    async fn route_merchant(
        &self,
        merchant: &MerchantId,
        change: &MerchantRouting,
        actor: &str,
    ) -> Result<()> {
        let routing = change
            .routing
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Unavailable(format!("cannot encode the routing rules: {e}")))?;
        let account = change
            .gateway_account_id
            .as_ref()
            .map(|a| a.as_ref().map(|g| g.to_string()));
        let (mid, rules, actor) = (merchant.clone(), change.routing.clone(), actor.to_owned());
        self.db
            .write(move |c| {
                let now = clock::now_ms();
                let patch = store::merchants::MerchantPatch {
                    gateway_account_id: account.clone(),
                    routing,
                    ..Default::default()
                };
                store::merchants::update(c, &mid, &patch, now)?;
                if let Some(account) = &account {
                    store::audit::record(
                        c,
                        &actor,
                        "merchant.gateway_account",
                        ("merchant", mid.as_str()),
                        Some(mid.as_str()),
                        &serde_json::json!({ "gateway_account_id": account }),
                        now,
                    )?;
                }
                if let Some(rules) = &rules {
                    store::audit::record(
                        c,
                        &actor,
                        "merchant.routing",
                        ("merchant", mid.as_str()),
                        Some(mid.as_str()),
                        &serde_json::json!({ "routing": rules }),
                        now,
                    )?;
                }
                Ok(())
            })
            .await
            .map_err(store_error)
    }
}

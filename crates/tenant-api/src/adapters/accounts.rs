//! [`AccountStore`] over the `store` crate's merchants and api_keys repositories.

use super::gateway_accounts::SqlGatewayAccountStore;
use super::locations::SqlLocationStore;
use crate::accounts::{AccountStore, ApiKeyRecord, MerchantRecord, MerchantStatus};
use crate::audit::Audit;
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{ApiKeyId, Currency, MerchantId};
use serde_json::json;
use std::sync::Arc;
use store::sealing::MasterKeyring;
use store::{Database, PageRequest, StoreError};

/// Merchants and keys (and their stores and terminals) in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SqlAccountStore {
    db: Database,
    gateway: Option<SqlGatewayAccountStore>,
    locations: SqlLocationStore,
}

impl SqlAccountStore {
    /// Over a connected, migrated database (no gateway accounts until [`Self::with_keyring`]).
    pub fn new(db: Database) -> Self {
        Self {
            locations: SqlLocationStore::new(db.clone()),
            db,
            gateway: None,
        }
    }

    /// Also serves operator gateway accounts, their private keys sealed with `keyring`.
    pub fn with_keyring(mut self, keyring: Arc<MasterKeyring>) -> Self {
        self.gateway = Some(SqlGatewayAccountStore::new(self.db.clone(), keyring));
        self
    }
}

/// Storage failures become 503 (details logged), uniqueness 409, missing rows 404.
pub fn store_error(e: StoreError) -> Error {
    if e.is_conflict() {
        Error::Duplicate("row")
    } else if e.is_not_found() {
        Error::not_found("object", "")
    } else {
        Error::Unavailable(e.to_string())
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("corrupt row: {e}"))
}

fn to_row(m: &MerchantRecord) -> store::merchants::Merchant {
    let wallets: Vec<&str> = m.allowed_wallets.iter().map(|w| w.name()).collect();
    store::merchants::Merchant {
        id: m.id.to_string(),
        name: m.name.clone(),
        status: m.status.as_str().to_owned(),
        gateway_account_id: m.gateway_account_id.as_ref().map(|g| g.to_string()),
        codepay_merchant_no: Some(m.merchant_no.clone()),
        codepay_store_no: m.store_no.clone(),
        default_currency: m.default_currency.code().to_owned(),
        allowed_wallets: serde_json::to_string(&wallets).unwrap_or_else(|_| "[]".to_owned()),
        max_amount_minor: m.max_amount_minor,
        contact: m
            .contact_email
            .as_ref()
            .map(|e| serde_json::json!({ "email": e }).to_string()),
        metadata: "{}".to_owned(),
        created_at: ms(m.created_at),
        updated_at: ms(m.updated_at),
        routing: serde_json::to_string(&m.routing).unwrap_or_else(|_| "[]".to_owned()),
    }
}

/// A merchant's audited fields (its public settings; it holds no secret).
fn merchant_details(m: &MerchantRecord) -> serde_json::Value {
    json!({
        "name": m.name,
        "status": m.status.as_str(),
        "codepay_merchant_no": m.merchant_no,
        "default_currency": m.default_currency.code(),
        "allowed_wallets": m.allowed_wallets.iter().map(|w| w.name()).collect::<Vec<_>>(),
        "max_amount": m.max_amount_minor,
    })
}

fn from_row(r: store::merchants::Merchant) -> Result<MerchantRecord> {
    Ok(MerchantRecord {
        id: r.merchant_id().map_err(corrupt)?,
        status: MerchantStatus::parse(&r.status).ok_or_else(|| corrupt(&r.status))?,
        default_currency: Currency::from_code(&r.default_currency).map_err(corrupt)?,
        allowed_wallets: r.allowed_wallets().map_err(corrupt)?,
        contact_email: r
            .contact
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| v.get("email").and_then(|e| e.as_str()).map(str::to_owned)),
        name: r.name,
        merchant_no: r.codepay_merchant_no.unwrap_or_default(),
        store_no: r.codepay_store_no,
        max_amount_minor: r.max_amount_minor,
        gateway_account_id: r
            .gateway_account_id
            .as_deref()
            .map(domain::GatewayAccountId::parse)
            .transpose()
            .map_err(corrupt)?,
        routing: serde_json::from_str(&r.routing).map_err(corrupt)?,
        created_at: at(r.created_at),
        updated_at: at(r.updated_at),
    })
}

fn key_from_row(k: store::api_keys::ApiKey) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: ApiKeyId::parse(&k.id).map_err(corrupt)?,
        merchant_id: k
            .merchant_id
            .as_deref()
            .map(MerchantId::parse)
            .transpose()
            .map_err(corrupt)?,
        scopes: k.scopes().map_err(corrupt)?,
        secret_hash: k.secret_hash,
        prefix: k.prefix,
        label: Some(k.label).filter(|l| !l.is_empty()),
        created_at: at(k.created_at),
        revoked_at: k.revoked_at.map(at),
        expires_at: k.expires_at.map(at),
        binding: crate::auth::Binding::from_parts(k.store_id.as_deref(), k.terminal_id.as_deref())
            .map_err(|()| corrupt(format!("binding of key {}", k.id)))?,
    })
}

#[async_trait]
impl AccountStore for SqlAccountStore {
    async fn insert_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()> {
        let row = to_row(m);
        let (audit, details) = (audit.clone(), merchant_details(m));
        self.db
            .write(move |c| {
                store::merchants::insert(c, &row)?;
                audit.record(
                    c,
                    ("merchant", &row.id),
                    Some(&row.id),
                    &details,
                    row.created_at,
                )
            })
            .await
            .map_err(store_error)
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        let id = id.clone();
        match self.db.read(move |c| store::merchants::get(c, &id)).await {
            Ok(r) => from_row(r).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn update_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()> {
        let row = to_row(m);
        let id = m.id.clone();
        let patch = store::merchants::MerchantPatch {
            name: Some(row.name),
            status: Some(row.status),
            codepay_merchant_no: Some(row.codepay_merchant_no),
            codepay_store_no: Some(row.codepay_store_no),
            default_currency: Some(row.default_currency),
            allowed_wallets: Some(row.allowed_wallets),
            max_amount_minor: Some(row.max_amount_minor),
            contact: Some(row.contact),
            ..Default::default()
        };
        let now = ms(m.updated_at);
        let (audit, details) = (audit.clone(), merchant_details(m));
        self.db
            .write(move |c| {
                store::merchants::update(c, &id, &patch, now)?;
                audit.record(
                    c,
                    ("merchant", id.as_str()),
                    Some(id.as_str()),
                    &details,
                    now,
                )
            })
            .await
            .map_err(store_error)
    }

    async fn list_merchants(
        &self,
        starting_after: Option<&MerchantId>,
        limit: usize,
    ) -> Result<Vec<MerchantRecord>> {
        // `limit` may be page + 1 (the caller's has_more probe); the store caps at 100.
        let page = PageRequest {
            limit: i64::try_from(limit).unwrap_or(100),
            starting_after: starting_after.map(|m| m.to_string()),
        };
        let p = self
            .db
            .read(move |c| store::merchants::list(c, &page))
            .await
            .map_err(store_error)?;
        p.items.into_iter().map(from_row).collect()
    }

    async fn insert_api_key(&self, k: &ApiKeyRecord, audit: &Audit) -> Result<()> {
        let row = store::api_keys::ApiKey {
            id: k.id.to_string(),
            merchant_id: k.merchant_id.as_ref().map(|m| m.to_string()),
            kind: if k.merchant_id.is_some() {
                "secret"
            } else {
                "operator"
            }
            .to_owned(),
            secret_hash: k.secret_hash.clone(),
            prefix: k.prefix.clone(),
            label: k.label.clone().unwrap_or_default(),
            scopes: serde_json::to_string(&k.scopes).unwrap_or_else(|_| "[]".to_owned()),
            created_at: ms(k.created_at),
            last_used_at: None,
            revoked_at: k.revoked_at.map(ms),
            expires_at: k.expires_at.map(ms),
            store_id: k.binding.as_ref().map(|b| b.store_id.to_string()),
            terminal_id: k
                .binding
                .as_ref()
                .and_then(|b| b.terminal_id.as_ref())
                .map(ToString::to_string),
        };
        // What the key may do, never its secret or hash.
        let details = json!({
            "kind": row.kind, "label": row.label, "prefix": row.prefix, "scopes": k.scopes,
            "store_id": row.store_id, "terminal_id": row.terminal_id,
        });
        let audit = audit.clone();
        self.db
            .write(move |c| {
                store::api_keys::insert(c, &row)?;
                let target = ("api_key", row.id.as_str());
                audit.record(
                    c,
                    target,
                    row.merchant_id.as_deref(),
                    &details,
                    row.created_at,
                )
            })
            .await
            .map_err(store_error)
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>> {
        let hash = hash.to_owned();
        let row = self
            .db
            .read(move |c| store::api_keys::find_by_hash(c, &hash))
            .await
            .map_err(store_error)?;
        row.map(key_from_row).transpose()
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        let row = self
            .db
            .read(move |c| store::api_keys::find(c, &id))
            .await
            .map_err(store_error)?;
        row.map(key_from_row).transpose()
    }

    async fn api_keys_of(&self, merchant: &MerchantId) -> Result<Vec<ApiKeyRecord>> {
        let m = merchant.clone();
        let p = self
            .db
            .read(move |c| store::api_keys::list(c, Some(&m), &PageRequest::first(100)))
            .await
            .map_err(store_error)?;
        p.items.into_iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key: &ApiKeyId,
        when: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<bool> {
        let (m, k, audit) = (merchant.clone(), key.clone(), audit.clone());
        self.db
            .write(move |c| {
                let revoked = store::api_keys::revoke(c, Some(&m), &k, ms(when))?;
                if revoked {
                    let target = ("api_key", k.as_str());
                    audit.record(c, target, Some(m.as_str()), &json!({}), ms(when))?;
                }
                Ok(revoked)
            })
            .await
            .map_err(store_error)
    }

    async fn operator_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let p = self
            .db
            .read(move |c| store::api_keys::list(c, None, &PageRequest::first(100)))
            .await
            .map_err(store_error)?;
        p.items.into_iter().map(key_from_row).collect()
    }

    async fn revoke_operator_key(
        &self,
        key: &ApiKeyId,
        when: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<bool> {
        let (k, audit) = (key.clone(), audit.clone());
        self.db
            .write(move |c| {
                let revoked = store::api_keys::revoke(c, None, &k, ms(when))?;
                if revoked {
                    audit.record(c, ("api_key", k.as_str()), None, &json!({}), ms(when))?;
                }
                Ok(revoked)
            })
            .await
            .map_err(store_error)
    }

    async fn touch_api_key(&self, key: &ApiKeyId, when: DateTime<Utc>) -> Result<()> {
        let k = key.clone();
        self.db
            .write(move |c| store::api_keys::touch_last_used(c, &k, ms(when)))
            .await
            .map_err(store_error)
    }

    async fn api_keys_last_used(
        &self,
        keys: &[ApiKeyId],
    ) -> Result<std::collections::HashMap<ApiKeyId, DateTime<Utc>>> {
        let ids: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let rows = self
            .db
            .read(move |c| {
                let mut out = Vec::new();
                for id in &ids {
                    if let Some(k) = store::api_keys::find(c, id)? {
                        out.push(k);
                    }
                }
                Ok(out)
            })
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|k| Some((ApiKeyId::parse(&k.id).ok()?, at(k.last_used_at?))))
            .collect())
    }

    async fn audit_events(
        &self,
        filter: &store::audit::AuditFilter,
        starting_after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<store::audit::AuditEntry>, bool)> {
        let filter = filter.clone();
        let page = PageRequest {
            limit: i64::try_from(limit).unwrap_or(100),
            starting_after: starting_after.map(str::to_owned),
        };
        let p = self
            .db
            .read(move |c| store::audit::search(c, &filter, &page))
            .await
            .map_err(store_error)?;
        Ok((p.items, p.has_more))
    }

    fn gateway_accounts(&self) -> Option<&dyn crate::gateway_accounts::GatewayAccountStore> {
        self.gateway
            .as_ref()
            .map(|g| g as &dyn crate::gateway_accounts::GatewayAccountStore)
    }

    fn locations(&self) -> Option<&dyn crate::locations::LocationStore> {
        Some(&self.locations)
    }
}

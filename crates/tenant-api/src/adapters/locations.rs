//! [`LocationStore`] over the `store` crate's stores and terminals repositories.

use super::accounts::store_error;
use crate::audit::Audit;
use crate::error::{Error, Result};
use crate::locations::{
    LocationStore, STORE_NO_TAKEN, StorePatch, StoreRecord, TERMINAL_SN_TAKEN, TerminalKind,
    TerminalPatch, TerminalRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{MerchantId, StoreId, TerminalId};
use store::{Database, PageRequest, StoreError};

/// Stores and terminals in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SqlLocationStore {
    db: Database,
}

impl SqlLocationStore {
    /// Over a connected, migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
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

/// A uniqueness failure of an insert is the one conflict it can meet: the number is taken.
fn taken(e: StoreError, code: &'static str, what: &str) -> Error {
    if e.is_conflict() {
        Error::conflict(code, format!("this {what} is already used"))
    } else {
        store_error(e)
    }
}

fn page(starting_after: Option<String>, limit: usize) -> PageRequest {
    PageRequest {
        limit: i64::try_from(limit).unwrap_or(100),
        starting_after,
    }
}

fn store_from(r: store::stores::Store) -> Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::parse(&r.id).map_err(corrupt)?,
        merchant_id: MerchantId::parse(&r.merchant_id).map_err(corrupt)?,
        name: r.name,
        store_no: r.codepay_store_no,
        address: r.address,
        timezone: r.timezone,
        enabled: r.enabled,
        created_at: at(r.created_at),
        updated_at: at(r.updated_at),
    })
}

fn terminal_from(r: store::terminals::Terminal) -> Result<TerminalRecord> {
    Ok(TerminalRecord {
        id: TerminalId::parse(&r.id).map_err(corrupt)?,
        store_id: StoreId::parse(&r.store_id).map_err(corrupt)?,
        merchant_id: MerchantId::parse(&r.merchant_id).map_err(corrupt)?,
        name: r.name,
        terminal_sn: r.codepay_terminal_sn,
        kind: TerminalKind::parse(&r.kind).ok_or_else(|| corrupt(&r.kind))?,
        enabled: r.enabled,
        created_at: at(r.created_at),
        updated_at: at(r.updated_at),
    })
}

/// A store's audited fields.
fn store_details(s: &store::stores::Store) -> serde_json::Value {
    serde_json::json!({
        "name": s.name, "store_no": s.codepay_store_no, "address": s.address,
        "timezone": s.timezone, "enabled": s.enabled,
    })
}

/// A terminal's audited fields.
fn terminal_details(t: &store::terminals::Terminal) -> serde_json::Value {
    serde_json::json!({
        "store_id": t.store_id, "name": t.name, "terminal_sn": t.codepay_terminal_sn,
        "kind": t.kind, "enabled": t.enabled,
    })
}

#[async_trait]
impl LocationStore for SqlLocationStore {
    async fn insert_store(&self, s: &StoreRecord, audit: &Audit) -> Result<()> {
        let row = store::stores::Store {
            id: s.id.to_string(),
            merchant_id: s.merchant_id.to_string(),
            name: s.name.clone(),
            codepay_store_no: s.store_no.clone(),
            address: s.address.clone(),
            timezone: s.timezone.clone(),
            enabled: s.enabled,
            created_at: ms(s.created_at),
            updated_at: ms(s.updated_at),
        };
        let audit = audit.clone();
        self.db
            .write(move |c| {
                store::stores::insert(c, &row)?;
                audit.record(
                    c,
                    ("store", &row.id),
                    Some(&row.merchant_id),
                    &store_details(&row),
                    row.created_at,
                )
            })
            .await
            .map_err(|e| taken(e, STORE_NO_TAKEN, "codepay.store_no"))
    }

    async fn store(&self, id: &StoreId) -> Result<Option<StoreRecord>> {
        let id = id.to_string();
        let row = self
            .db
            .read(move |c| store::stores::find(c, &id))
            .await
            .map_err(store_error)?;
        row.map(store_from).transpose()
    }

    async fn list_stores(
        &self,
        merchant: &MerchantId,
        starting_after: Option<&StoreId>,
        limit: usize,
    ) -> Result<(Vec<StoreRecord>, bool)> {
        let m = merchant.to_string();
        let p = page(starting_after.map(ToString::to_string), limit);
        let rows = self
            .db
            .read(move |c| store::stores::list(c, &m, &p))
            .await
            .map_err(store_error)?;
        let items = rows
            .items
            .into_iter()
            .map(store_from)
            .collect::<Result<_>>()?;
        Ok((items, rows.has_more))
    }

    async fn update_store(
        &self,
        id: &StoreId,
        patch: &StorePatch,
        audit: &Audit,
    ) -> Result<StoreRecord> {
        let id = id.to_string();
        let update = store::stores::StoreUpdate {
            name: patch.name.clone(),
            address: patch.address.clone(),
            timezone: patch.timezone.clone(),
            enabled: patch.enabled,
        };
        let audit = audit.clone();
        let row = self
            .db
            .write(move |c| {
                let row = store::stores::update(c, &id, &update, store::clock::now_ms())?;
                audit.record(
                    c,
                    ("store", &row.id),
                    Some(&row.merchant_id),
                    &store_details(&row),
                    row.updated_at,
                )?;
                Ok(row)
            })
            .await
            .map_err(store_error)?;
        store_from(row)
    }

    async fn insert_terminal(&self, t: &TerminalRecord, audit: &Audit) -> Result<()> {
        let row = store::terminals::Terminal {
            id: t.id.to_string(),
            store_id: t.store_id.to_string(),
            merchant_id: t.merchant_id.to_string(),
            name: t.name.clone(),
            codepay_terminal_sn: t.terminal_sn.clone(),
            kind: t.kind.as_str().to_owned(),
            enabled: t.enabled,
            created_at: ms(t.created_at),
            updated_at: ms(t.updated_at),
        };
        let audit = audit.clone();
        self.db
            .write(move |c| {
                store::terminals::insert(c, &row)?;
                audit.record(
                    c,
                    ("terminal", &row.id),
                    Some(&row.merchant_id),
                    &terminal_details(&row),
                    row.created_at,
                )
            })
            .await
            .map_err(|e| taken(e, TERMINAL_SN_TAKEN, "codepay.terminal_sn"))
    }

    async fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>> {
        let id = id.to_string();
        let row = self
            .db
            .read(move |c| store::terminals::find(c, &id))
            .await
            .map_err(store_error)?;
        row.map(terminal_from).transpose()
    }

    async fn list_terminals(
        &self,
        store_id: &StoreId,
        starting_after: Option<&TerminalId>,
        limit: usize,
    ) -> Result<(Vec<TerminalRecord>, bool)> {
        let s = store_id.to_string();
        let p = page(starting_after.map(ToString::to_string), limit);
        let rows = self
            .db
            .read(move |c| store::terminals::list(c, &s, &p))
            .await
            .map_err(store_error)?;
        let items = rows
            .items
            .into_iter()
            .map(terminal_from)
            .collect::<Result<_>>()?;
        Ok((items, rows.has_more))
    }

    async fn update_terminal(
        &self,
        id: &TerminalId,
        patch: &TerminalPatch,
        audit: &Audit,
    ) -> Result<TerminalRecord> {
        let (id, audit) = (id.to_string(), audit.clone());
        let update = store::terminals::TerminalUpdate {
            name: patch.name.clone(),
            kind: patch.kind.map(|k| k.as_str().to_owned()),
            enabled: patch.enabled,
        };
        let row = self
            .db
            .write(move |c| {
                let row = store::terminals::update(c, &id, &update, store::clock::now_ms())?;
                audit.record(
                    c,
                    ("terminal", &row.id),
                    Some(&row.merchant_id),
                    &terminal_details(&row),
                    row.updated_at,
                )?;
                Ok(row)
            })
            .await
            .map_err(store_error)?;
        terminal_from(row)
    }
}

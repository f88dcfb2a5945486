//! Sub-merchants.

use crate::page::{Page, PageRequest};
use crate::schema::merchants;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{Currency, MerchantId, Wallet};

/// Whether a merchant may transact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantStatus {
    /// Takes payments.
    Active,
    /// Temporarily blocked by an operator.
    Suspended,
    /// Permanently closed.
    Closed,
}

impl MerchantStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "active" => Ok(MerchantStatus::Active),
            "suspended" => Ok(MerchantStatus::Suspended),
            "closed" => Ok(MerchantStatus::Closed),
            other => Err(StoreError::Corrupt(format!("merchant status `{other}`"))),
        }
    }
}

/// A merchant row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchants)]
pub struct Merchant {
    /// `mer_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `active`/`suspended`/`closed`.
    pub status: String,
    /// The CodePay app its payments go through.
    pub gateway_account_id: Option<String>,
    /// CodePay `merchant_no`.
    pub codepay_merchant_no: Option<String>,
    /// CodePay `store_no`.
    pub codepay_store_no: Option<String>,
    /// ISO 4217 code used when a request names none.
    pub default_currency: String,
    /// JSON array of wallet names (empty = all).
    pub allowed_wallets: String,
    /// Largest single payment in minor units of the payment's currency.
    pub max_amount_minor: Option<i64>,
    /// JSON contact details.
    pub contact: Option<String>,
    /// JSON object of the operator's own key/values.
    pub metadata: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// JSON array of ordered routing rules `{currency?, wallet?, gateway_account_id}`.
    pub routing: String,
}

impl Merchant {
    /// Typed id.
    pub fn merchant_id(&self) -> StoreResult<MerchantId> {
        Ok(MerchantId::parse(&self.id)?)
    }

    /// Typed status.
    pub fn status(&self) -> StoreResult<MerchantStatus> {
        MerchantStatus::parse(&self.status)
    }

    /// Typed default currency.
    pub fn default_currency(&self) -> StoreResult<Currency> {
        Ok(Currency::from_code(&self.default_currency)?)
    }

    /// Typed allowed wallets (empty = every wallet).
    pub fn allowed_wallets(&self) -> StoreResult<Vec<Wallet>> {
        let names: Vec<String> = serde_json::from_str(&self.allowed_wallets)?;
        names
            .iter()
            .map(|n| Wallet::from_name(n).map_err(StoreError::from))
            .collect()
    }
}

/// Fields an operator may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = merchants)]
pub struct MerchantPatch {
    /// New name.
    pub name: Option<String>,
    /// New status.
    pub status: Option<String>,
    /// New gateway account.
    pub gateway_account_id: Option<Option<String>>,
    /// New CodePay merchant number.
    pub codepay_merchant_no: Option<Option<String>>,
    /// New store number.
    pub codepay_store_no: Option<Option<String>>,
    /// New default currency.
    pub default_currency: Option<String>,
    /// New allowed wallets JSON.
    pub allowed_wallets: Option<String>,
    /// New limit.
    pub max_amount_minor: Option<Option<i64>>,
    /// New contact JSON.
    pub contact: Option<Option<String>>,
    /// New metadata JSON.
    pub metadata: Option<String>,
    /// New routing rules JSON (an ordered array).
    pub routing: Option<String>,
    /// Set by [`update`].
    pub updated_at: Option<i64>,
}

/// Stores a new merchant.
pub fn insert(conn: &mut DbConnection, merchant: &Merchant) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(merchants::table)
        .values(merchant)
        .execute(c))?;
    Ok(())
}

/// On PostgreSQL, locks the merchant's row until the transaction ends, so that writers
/// enforcing a per-merchant count (the webhook endpoint cap) count and insert one after
/// another; SQLite's `BEGIN IMMEDIATE` already serialises them. A missing merchant is not an
/// error here.
pub fn lock(conn: &mut DbConnection, id: &MerchantId) -> StoreResult<()> {
    if let DbConnection::Postgresql(c) = conn {
        merchants::table
            .find(id.as_str())
            .select(merchants::id)
            .for_update()
            .load::<String>(c)?;
    }
    Ok(())
}

/// One merchant.
pub fn get(conn: &mut DbConnection, id: &MerchantId) -> StoreResult<Merchant> {
    Ok(on_backend!(conn, |c| merchants::table
        .find(id.as_str())
        .select(Merchant::as_select())
        .first(c))?)
}

/// Merchants, newest first.
pub fn list(conn: &mut DbConnection, page: &PageRequest) -> StoreResult<Page<Merchant>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = merchants::table.select(Merchant::as_select()).into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(merchants::id.lt(after));
        }
        q.order(merchants::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Applies a patch and returns the merchant as it now is.
pub fn update(
    conn: &mut DbConnection,
    id: &MerchantId,
    patch: &MerchantPatch,
    now: i64,
) -> StoreResult<Merchant> {
    let mut patch = patch.clone();
    patch.updated_at = Some(now);
    let n = on_backend!(conn, |c| diesel::update(merchants::table.find(id.as_str()))
        .set(&patch)
        .execute(c))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(conn, id)
}

/// Sets the status (suspend/activate/close).
pub fn set_status(
    conn: &mut DbConnection,
    id: &MerchantId,
    status: MerchantStatus,
    now: i64,
) -> StoreResult<Merchant> {
    update(
        conn,
        id,
        &MerchantPatch {
            status: Some(status.as_str().to_owned()),
            ..MerchantPatch::default()
        },
        now,
    )
}

/// The gateway account each of `ids` is attached to, for those attached to one.
pub fn gateway_links(
    conn: &mut DbConnection,
    ids: &[String],
) -> StoreResult<Vec<(String, String)>> {
    let rows: Vec<(String, Option<String>)> = on_backend!(conn, |c| merchants::table
        .filter(merchants::id.eq_any(ids))
        .filter(merchants::gateway_account_id.is_not_null())
        .select((merchants::id, merchants::gateway_account_id))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, account)| Some((id, account?)))
        .collect())
}

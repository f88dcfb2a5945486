//! Upstream CodePay apps (credentials, encrypted by the caller).

use crate::schema::gateway_accounts;
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{GatewayAccountId, Secret};

/// A gateway account row. The private key is ciphertext, and still masked in `Debug`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = gateway_accounts)]
pub struct GatewayAccount {
    /// `gwa_…`.
    pub id: String,
    /// Operator's label.
    pub name: String,
    /// CodePay base URL.
    pub base_url: String,
    /// CodePay `app_id`.
    pub app_id: String,
    /// The merchant private key, encrypted by the caller.
    #[diesel(deserialize_as = String)]
    pub private_key_ciphertext: Secret,
    /// The gateway's public key (PEM).
    pub gateway_public_key: String,
    /// Connect timeout.
    pub connect_timeout_ms: i64,
    /// Whole-request timeout.
    pub request_timeout_ms: i64,
    /// Whether routing may pick it.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A gateway account to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = gateway_accounts)]
pub struct NewGatewayAccount<'a> {
    /// `gwa_…`.
    pub id: &'a str,
    /// Operator's label.
    pub name: &'a str,
    /// CodePay base URL.
    pub base_url: &'a str,
    /// CodePay `app_id`.
    pub app_id: &'a str,
    /// Encrypted private key.
    pub private_key_ciphertext: &'a str,
    /// Gateway public key (PEM).
    pub gateway_public_key: &'a str,
    /// Connect timeout.
    pub connect_timeout_ms: i64,
    /// Whole-request timeout.
    pub request_timeout_ms: i64,
    /// Whether routing may pick it.
    pub enabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Stores a gateway account.
pub fn insert(conn: &mut DbConnection, account: &NewGatewayAccount<'_>) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(gateway_accounts::table)
        .values(account)
        .execute(c))?;
    Ok(())
}

/// One account.
pub fn get(conn: &mut DbConnection, id: &GatewayAccountId) -> StoreResult<GatewayAccount> {
    Ok(on_backend!(conn, |c| gateway_accounts::table
        .find(id.as_str())
        .select(GatewayAccount::as_select())
        .first(c))?)
}

/// Every account, oldest first (few rows; routing and startup read them all).
pub fn list(conn: &mut DbConnection) -> StoreResult<Vec<GatewayAccount>> {
    Ok(on_backend!(conn, |c| gateway_accounts::table
        .order(gateway_accounts::id.asc())
        .select(GatewayAccount::as_select())
        .load(c))?)
}

/// Replaces an account's credentials and settings (same id).
pub fn update(conn: &mut DbConnection, account: &NewGatewayAccount<'_>) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| diesel::update(
        gateway_accounts::table.find(account.id)
    )
    .set((
        gateway_accounts::name.eq(account.name),
        gateway_accounts::base_url.eq(account.base_url),
        gateway_accounts::app_id.eq(account.app_id),
        gateway_accounts::private_key_ciphertext.eq(account.private_key_ciphertext),
        gateway_accounts::gateway_public_key.eq(account.gateway_public_key),
        gateway_accounts::connect_timeout_ms.eq(account.connect_timeout_ms),
        gateway_accounts::request_timeout_ms.eq(account.request_timeout_ms),
        gateway_accounts::enabled.eq(account.enabled),
        gateway_accounts::updated_at.eq(account.updated_at),
    ))
    .execute(c))?;
    Ok(n > 0)
}

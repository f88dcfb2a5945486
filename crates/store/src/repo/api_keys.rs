//! API keys: operator (`op_…`) and merchant secret (`sk_…`) keys, stored as hashes only.
//!
//! Why SHA-256 and not argon2/bcrypt: the secrets are 256-bit random tokens we generate, not
//! human passwords, so there is no dictionary to brute-force and a fast hash loses nothing; a
//! deliberately slow hash would instead cost tens of milliseconds of CPU on *every* API request.
//! A plain digest also makes the lookup an indexed equality on `secret_hash`; comparing hashes
//! through the index leaks nothing useful, since learning a hash's prefix does not help forge a
//! preimage.

use crate::page::{Page, PageRequest};
use crate::schema::api_keys;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{ApiKeyId, MerchantId, Secret};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a key may act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// Manages merchants (`op_…`).
    Operator,
    /// Acts as one merchant (`sk_…`).
    Secret,
}

impl ApiKeyKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyKind::Operator => "operator",
            ApiKeyKind::Secret => "secret",
        }
    }

    /// The prefix of secrets of this kind.
    pub fn secret_prefix(self) -> &'static str {
        match self {
            ApiKeyKind::Operator => "op_",
            ApiKeyKind::Secret => "sk_",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "operator" => Ok(ApiKeyKind::Operator),
            "secret" => Ok(ApiKeyKind::Secret),
            other => Err(StoreError::Corrupt(format!("api key kind `{other}`"))),
        }
    }
}

/// Hex SHA-256 of a key secret: the only form in which a secret is stored or looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret: the kind's prefix plus 32 random bytes in hex (256 bits of entropy).
pub fn generate_secret(kind: ApiKeyKind) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{}{}", kind.secret_prefix(), hex::encode(bytes)))
}

/// The part of a secret that may be shown again later (`sk_1a2b3c4d`), enough to tell keys apart.
pub fn display_prefix(secret: &Secret) -> String {
    secret.expose().chars().take(11).collect()
}

/// A stored API key (never the secret).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    /// `key_…`.
    pub id: String,
    /// The merchant it acts as; `None` for operator keys.
    pub merchant_id: Option<String>,
    /// `operator` or `secret`.
    pub kind: String,
    /// [`hash_secret`] of the secret.
    pub secret_hash: String,
    /// Display prefix of the secret.
    pub prefix: String,
    /// Free-text label.
    pub label: String,
    /// JSON array of scope names (empty = everything the kind allows).
    pub scopes: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last authenticated request.
    pub last_used_at: Option<i64>,
    /// Unix ms when revoked.
    pub revoked_at: Option<i64>,
    /// Unix ms after which the key no longer works.
    pub expires_at: Option<i64>,
    /// The store it is bound to (`store_…`): it acts only for that store.
    pub store_id: Option<String>,
    /// The terminal it is bound to (`term_…`): it acts only for that terminal.
    pub terminal_id: Option<String>,
}

impl ApiKey {
    /// Builds a key row for `secret`, hashing it; the secret itself is not kept.
    pub fn new(
        kind: ApiKeyKind,
        merchant_id: Option<&MerchantId>,
        secret: &Secret,
        label: &str,
        scopes: &[String],
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Self> {
        Ok(Self {
            id: ApiKeyId::generate().into_string(),
            merchant_id: merchant_id.map(|m| m.as_str().to_owned()),
            kind: kind.as_str().to_owned(),
            secret_hash: hash_secret(secret.expose()),
            prefix: display_prefix(secret),
            label: label.to_owned(),
            scopes: serde_json::to_string(scopes)?,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            expires_at,
            store_id: None,
            terminal_id: None,
        })
    }

    /// The kind as an enum.
    pub fn kind(&self) -> StoreResult<ApiKeyKind> {
        ApiKeyKind::parse(&self.kind)
    }

    /// The scopes as a list.
    pub fn scopes(&self) -> StoreResult<Vec<String>> {
        Ok(serde_json::from_str(&self.scopes)?)
    }

    /// True when the key authenticates at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Stores a key row.
pub fn insert(conn: &mut DbConnection, key: &ApiKey) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(api_keys::table)
        .values(key)
        .execute(c))?;
    Ok(())
}

/// The active key whose secret is `secret`, if any (revoked and expired keys are `None`).
pub fn find_active_by_secret(
    conn: &mut DbConnection,
    secret: &str,
    now: i64,
) -> StoreResult<Option<ApiKey>> {
    let hash = hash_secret(secret);
    let key: Option<ApiKey> = on_backend!(conn, |c| api_keys::table
        .filter(api_keys::secret_hash.eq(&hash))
        .select(ApiKey::as_select())
        .first(c)
        .optional())?;
    Ok(key.filter(|k| k.is_active(now)))
}

/// A key by the SHA-256 hash of its secret, whatever its state (the caller checks revocation
/// and expiry, so that it can say which).
pub fn find_by_hash(conn: &mut DbConnection, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
    Ok(on_backend!(conn, |c| api_keys::table
        .filter(api_keys::secret_hash.eq(secret_hash))
        .select(ApiKey::as_select())
        .first(c)
        .optional())?)
}

/// A key by id, whoever owns it.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<ApiKey>> {
    Ok(on_backend!(conn, |c| api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(c)
        .optional())?)
}

/// Records a use of the key (best kept coarse by the caller, e.g. once a minute).
pub fn touch_last_used(conn: &mut DbConnection, id: &ApiKeyId, now: i64) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::update(api_keys::table.find(id.as_str()))
        .set(api_keys::last_used_at.eq(Some(now)))
        .execute(c))?;
    Ok(())
}

/// One key of a merchant (`None` = an operator key).
pub fn get(
    conn: &mut DbConnection,
    merchant_id: Option<&MerchantId>,
    id: &ApiKeyId,
) -> StoreResult<ApiKey> {
    let mid = merchant_id.map(|m| m.as_str().to_owned());
    let key: ApiKey = on_backend!(conn, |c| {
        let q = api_keys::table
            .find(id.as_str())
            .select(ApiKey::as_select())
            .into_boxed();
        let q = match &mid {
            Some(m) => q.filter(api_keys::merchant_id.eq(m)),
            None => q.filter(api_keys::merchant_id.is_null()),
        };
        q.first(c)
    })?;
    Ok(key)
}

/// Keys of a merchant (`None` = operator keys), newest first.
pub fn list(
    conn: &mut DbConnection,
    merchant_id: Option<&MerchantId>,
    page: &PageRequest,
) -> StoreResult<Page<ApiKey>> {
    let limit = page.effective_limit();
    let mid = merchant_id.map(|m| m.as_str().to_owned());
    let rows: Vec<ApiKey> = on_backend!(conn, |c| {
        let mut q = api_keys::table.select(ApiKey::as_select()).into_boxed();
        q = match &mid {
            Some(m) => q.filter(api_keys::merchant_id.eq(m)),
            None => q.filter(api_keys::merchant_id.is_null()),
        };
        if let Some(after) = &page.starting_after {
            q = q.filter(api_keys::id.lt(after));
        }
        q.order(api_keys::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// Revokes a key; `false` when no such (unrevoked) key belongs to that merchant.
pub fn revoke(
    conn: &mut DbConnection,
    merchant_id: Option<&MerchantId>,
    id: &ApiKeyId,
    now: i64,
) -> StoreResult<bool> {
    let mid = merchant_id.map(|m| m.as_str().to_owned());
    let n = on_backend!(conn, |c| {
        let target = api_keys::table
            .filter(api_keys::id.eq(id.as_str()))
            .filter(api_keys::revoked_at.is_null());
        match &mid {
            Some(m) => diesel::update(target.filter(api_keys::merchant_id.eq(m)))
                .set(api_keys::revoked_at.eq(Some(now)))
                .execute(c),
            None => diesel::update(target.filter(api_keys::merchant_id.is_null()))
                .set(api_keys::revoked_at.eq(Some(now)))
                .execute(c),
        }
    })?;
    Ok(n > 0)
}

/// How many operator keys are still usable (first start prints one when there is none).
pub fn count_active_operator_keys(conn: &mut DbConnection, now: i64) -> StoreResult<i64> {
    let n = on_backend!(conn, |c| api_keys::table
        .filter(api_keys::kind.eq(ApiKeyKind::Operator.as_str()))
        .filter(api_keys::revoked_at.is_null())
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(now))
        )
        .count()
        .get_result::<i64>(c))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_secrets_are_prefixed_random_and_distinct() {
        let a = generate_secret(ApiKeyKind::Secret);
        let b = generate_secret(ApiKeyKind::Secret);
        assert!(a.expose().starts_with("sk_"));
        assert_eq!(a.expose().len(), 3 + 64);
        assert_ne!(a.expose(), b.expose());
        assert!(
            generate_secret(ApiKeyKind::Operator)
                .expose()
                .starts_with("op_")
        );
        assert_eq!(display_prefix(&a).len(), 11);
    }
}

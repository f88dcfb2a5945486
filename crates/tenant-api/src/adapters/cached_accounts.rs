//! A short-lived read cache in front of an [`AccountStore`]: API keys (by secret hash and by id)
//! and merchants, so a steady stream of requests does not read the same key and merchant rows
//! from the database on every call.
//!
//! An entry lives at most `ttl` (≤ 1 s in production) counted from *before* it was read, so a
//! key revoked or a merchant suspended by another payfac process is refused within `ttl`. A
//! write through this process (insert, update, revoke) empties the cache at once, and a read
//! that raced such a write is not cached (generation check). Unknown keys are never cached, so
//! guessing secrets cannot grow it; it is bounded by `MAX_ENTRIES` anyway.

use crate::accounts::{AccountStore, ApiKeyRecord, MerchantRecord};
use crate::audit::Audit;
use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApiKeyId, MerchantId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long production caches an entry: revocation and suspension land within this.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);
/// More live entries than this and the cache starts over (a memory bound, not a working limit).
const MAX_ENTRIES: usize = 10_000;

struct Map<T> {
    entries: HashMap<String, (Instant, T)>,
}

impl<T: Clone> Map<T> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }

    fn get(&self, k: &str, ttl: Duration) -> Option<T> {
        self.entries
            .get(k)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&mut self, k: String, read_at: Instant, v: T, ttl: Duration) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(k, (read_at, v));
    }
}

struct Maps {
    keys_by_hash: Map<ApiKeyRecord>,
    keys_by_id: Map<ApiKeyRecord>,
    merchants: Map<MerchantRecord>,
}

/// [`AccountStore`] with a read cache of at most `ttl` (see the module doc).
pub struct CachedAccountStore {
    inner: Arc<dyn AccountStore>,
    ttl: Duration,
    maps: Mutex<Maps>,
    /// Bumped by every write: a read that started before a write is not cached.
    generation: AtomicU64,
}

impl CachedAccountStore {
    /// Caches reads of `inner` for `ttl`.
    pub fn new(inner: Arc<dyn AccountStore>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            maps: Mutex::new(Maps {
                keys_by_hash: Map::new(),
                keys_by_id: Map::new(),
                merchants: Map::new(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut m = self.maps.lock();
        m.keys_by_hash.entries.clear();
        m.keys_by_id.entries.clear();
        m.merchants.entries.clear();
    }

    /// Reads through `fetch`, caching a found value with `put` unless a write intervened.
    async fn read_through<T, Fut>(
        &self,
        cached: impl FnOnce(&Maps) -> Option<T>,
        fetch: impl FnOnce() -> Fut,
        put: impl FnOnce(&mut Maps, Instant, T),
    ) -> Result<Option<T>>
    where
        T: Clone,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        if let Some(v) = cached(&self.maps.lock()) {
            return Ok(Some(v));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let read_at = Instant::now();
        let found = fetch().await?;
        if let Some(v) = &found {
            let mut maps = self.maps.lock();
            if self.generation.load(Ordering::SeqCst) == generation {
                put(&mut maps, read_at, v.clone());
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl AccountStore for CachedAccountStore {
    async fn insert_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()> {
        let r = self.inner.insert_merchant(m, audit).await;
        self.invalidate();
        r
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        let ttl = self.ttl;
        self.read_through(
            |m| m.merchants.get(id.as_str(), ttl),
            || self.inner.merchant(id),
            |m, at, v| m.merchants.put(id.to_string(), at, v, ttl),
        )
        .await
    }

    async fn update_merchant(&self, m: &MerchantRecord, audit: &Audit) -> Result<()> {
        let r = self.inner.update_merchant(m, audit).await;
        self.invalidate();
        r
    }

    async fn list_merchants(
        &self,
        starting_after: Option<&MerchantId>,
        limit: usize,
    ) -> Result<Vec<MerchantRecord>> {
        self.inner.list_merchants(starting_after, limit).await
    }

    async fn insert_api_key(&self, k: &ApiKeyRecord, audit: &Audit) -> Result<()> {
        let r = self.inner.insert_api_key(k, audit).await;
        self.invalidate();
        r
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>> {
        let ttl = self.ttl;
        self.read_through(
            |m| m.keys_by_hash.get(hash, ttl),
            || self.inner.api_key_by_hash(hash),
            |m, at, v| m.keys_by_hash.put(hash.to_owned(), at, v, ttl),
        )
        .await
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        let ttl = self.ttl;
        self.read_through(
            |m| m.keys_by_id.get(id.as_str(), ttl),
            || self.inner.api_key(id),
            |m, at, v| m.keys_by_id.put(id.to_string(), at, v, ttl),
        )
        .await
    }

    async fn api_keys_of(&self, merchant: &MerchantId) -> Result<Vec<ApiKeyRecord>> {
        self.inner.api_keys_of(merchant).await
    }

    async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key: &ApiKeyId,
        at: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<bool> {
        let r = self.inner.revoke_api_key(merchant, key, at, audit).await;
        self.invalidate();
        r
    }

    async fn operator_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.inner.operator_keys().await
    }

    async fn revoke_operator_key(
        &self,
        key: &ApiKeyId,
        at: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<bool> {
        let r = self.inner.revoke_operator_key(key, at, audit).await;
        self.invalidate();
        r
    }

    async fn audit_events(
        &self,
        filter: &store::audit::AuditFilter,
        starting_after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<store::audit::AuditEntry>, bool)> {
        self.inner.audit_events(filter, starting_after, limit).await
    }

    async fn touch_api_key(&self, key: &ApiKeyId, at: DateTime<Utc>) -> Result<()> {
        self.inner.touch_api_key(key, at).await
    }

    async fn api_keys_last_used(
        &self,
        keys: &[ApiKeyId],
    ) -> Result<std::collections::HashMap<ApiKeyId, DateTime<Utc>>> {
        self.inner.api_keys_last_used(keys).await
    }

    fn gateway_accounts(&self) -> Option<&dyn crate::gateway_accounts::GatewayAccountStore> {
        self.inner.gateway_accounts()
    }

    fn locations(&self) -> Option<&dyn crate::locations::LocationStore> {
        self.inner.locations()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::MemoryAccountStore;
    use crate::auth::keys;

    fn key(merchant: &MerchantId) -> (String, ApiKeyRecord) {
        let secret = keys::generate_secret(keys::MERCHANT_PREFIX);
        let rec = ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: Some(merchant.clone()),
            secret_hash: keys::hash_secret(&secret),
            prefix: keys::display_prefix(&secret),
            label: None,
            scopes: vec![],
            created_at: Utc::now(),
            revoked_at: None,
            expires_at: None,
            binding: None,
        };
        (secret, rec)
    }

    #[tokio::test]
    async fn a_change_behind_its_back_shows_within_the_ttl_and_its_own_writes_at_once() {
        let inner = Arc::new(MemoryAccountStore::default());
        let ttl = Duration::from_millis(200);
        let cache = CachedAccountStore::new(inner.clone(), ttl);
        let m = MerchantId::generate();
        let (secret, rec) = key(&m);
        cache
            .insert_api_key(&rec, &Audit::system("api_key.create"))
            .await
            .expect("insert");
        let hash = keys::hash_secret(&secret);
        async fn read(c: &CachedAccountStore, hash: &str) -> Option<ApiKeyRecord> {
            c.api_key_by_hash(hash).await.expect("read")
        }
        assert!(
            read(&cache, &hash)
                .await
                .is_some_and(|k| k.revoked_at.is_none())
        );

        // Revoked by "another process" (straight in the inner store): stale for < ttl only.
        inner
            .revoke_api_key(&m, &rec.id, Utc::now(), &Audit::system("api_key.revoke"))
            .await
            .expect("revoke");
        assert!(
            read(&cache, &hash)
                .await
                .is_some_and(|k| k.revoked_at.is_none()),
            "served from the cache inside the ttl"
        );
        tokio::time::sleep(ttl + Duration::from_millis(20)).await;
        assert!(
            read(&cache, &hash)
                .await
                .is_some_and(|k| k.revoked_at.is_some())
        );

        // Revoked through the cache: refused at once.
        let (secret2, rec2) = key(&m);
        cache
            .insert_api_key(&rec2, &Audit::system("api_key.create"))
            .await
            .expect("insert");
        let hash2 = keys::hash_secret(&secret2);
        assert!(cache.api_key(&rec2.id).await.expect("read").is_some());
        assert!(cache.api_key_by_hash(&hash2).await.expect("read").is_some());
        cache
            .revoke_api_key(&m, &rec2.id, Utc::now(), &Audit::system("api_key.revoke"))
            .await
            .expect("revoke");
        let by_hash = cache.api_key_by_hash(&hash2).await.expect("read");
        let by_id = cache.api_key(&rec2.id).await.expect("read");
        assert!(by_hash.is_some_and(|k| k.revoked_at.is_some()));
        assert!(by_id.is_some_and(|k| k.revoked_at.is_some()));

        // Unknown secrets are not remembered: a key created later is found at once.
        assert!(cache.api_key_by_hash("nope").await.expect("read").is_none());
        assert!(cache.maps.lock().keys_by_hash.get("nope", ttl).is_none());
    }
}

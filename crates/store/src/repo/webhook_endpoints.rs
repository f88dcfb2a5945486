//! Merchants' webhook endpoints (secrets stored as caller-made ciphertext, sealed under the
//! bindings below), read by merchant or, for the delivery pump, by id alone.

use crate::page::{Page, PageRequest};
use crate::schema::webhook_endpoints as we;
use crate::{DbConnection, StoreError, StoreResult, on_backend};
use diesel::prelude::*;
use domain::{EventType, MerchantId, WebhookEndpointId};

/// The sealing binding of an endpoint's current secret.
pub fn secret_binding(endpoint_id: &str) -> String {
    crate::sealing::binding::webhook_secret(endpoint_id)
}

/// The sealing binding of an endpoint's previous (rotated-out) secret.
pub fn previous_secret_binding(endpoint_id: &str) -> String {
    crate::sealing::binding::webhook_previous_secret(endpoint_id)
}

/// An endpoint row. `Debug` leaves the secret ciphertexts out.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = we)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: String,
    /// Owner.
    pub merchant_id: String,
    /// Where to POST.
    pub url: String,
    /// Merchant's note.
    pub description: Option<String>,
    /// JSON array of event types; `["*"]` = all.
    pub event_filter: String,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled (`gone_410`, `failing_5_days`, `merchant`).
    pub disabled_reason: Option<String>,
    /// Current signing secret, encrypted by the caller.
    pub secret_ciphertext: String,
    /// Previous secret during a rotation.
    pub previous_secret_ciphertext: Option<String>,
    /// Unix ms when the previous secret stops signing.
    pub previous_secret_expires_at: Option<i64>,
    /// Unix ms of the first failure of the current failing streak.
    pub failing_since: Option<i64>,
    /// Unix ms of deletion (kept for delivery history).
    pub deleted_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Only this store's events (`store_…`), when set.
    pub store_id: Option<String>,
}

impl WebhookEndpoint {
    /// A new, enabled endpoint of `merchant_id` receiving `event_filter` at `url`, signing with
    /// the sealed secret `secret_ciphertext`, created at `now` (Unix ms).
    pub fn new(
        id: &str,
        merchant_id: &str,
        url: &str,
        event_filter: String,
        secret_ciphertext: String,
        now: i64,
    ) -> Self {
        Self {
            id: id.to_owned(),
            merchant_id: merchant_id.to_owned(),
            url: url.to_owned(),
            description: None,
            event_filter,
            enabled: true,
            disabled_reason: None,
            secret_ciphertext,
            previous_secret_ciphertext: None,
            previous_secret_expires_at: None,
            failing_since: None,
            deleted_at: None,
            created_at: now,
            updated_at: now,
            store_id: None,
        }
    }
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("merchant_id", &self.merchant_id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("event_filter", &self.event_filter)
            .finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    /// Typed id.
    pub fn endpoint_id(&self) -> StoreResult<WebhookEndpointId> {
        Ok(WebhookEndpointId::parse(&self.id)?)
    }

    /// Whether this endpoint wants events of `event_type`.
    pub fn subscribes_to(&self, event_type: EventType) -> StoreResult<bool> {
        let filter: Vec<String> = serde_json::from_str(&self.event_filter)?;
        Ok(filter.iter().any(|f| f == "*" || f == event_type.as_str()))
    }
}

/// Changes a merchant may make; `None` leaves a field.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = we)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New filter JSON.
    pub event_filter: Option<String>,
    /// Enable/disable.
    pub enabled: Option<bool>,
    /// Reason (cleared with `Some(None)` when re-enabling).
    pub disabled_reason: Option<Option<String>>,
    /// Only this store's events (`Some(None)` clears the filter).
    pub store_id: Option<Option<String>>,
    /// Set by [`update`].
    pub updated_at: Option<i64>,
}

/// Stores a new endpoint.
pub fn insert(conn: &mut DbConnection, endpoint: &WebhookEndpoint) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(we::table)
        .values(endpoint)
        .execute(c))?;
    Ok(())
}

/// One live (not deleted) endpoint of a merchant.
pub fn get(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
) -> StoreResult<WebhookEndpoint> {
    Ok(on_backend!(conn, |c| we::table
        .filter(we::id.eq(id.as_str()))
        .filter(we::merchant_id.eq(merchant.as_str()))
        .filter(we::deleted_at.is_null())
        .select(WebhookEndpoint::as_select())
        .first(c))?)
}

/// One endpoint by id alone (delivery workers hold the merchant through the delivery); deleted
/// endpoints included.
pub fn get_any(conn: &mut DbConnection, id: &str) -> StoreResult<WebhookEndpoint> {
    Ok(on_backend!(conn, |c| we::table
        .find(id)
        .select(WebhookEndpoint::as_select())
        .first(c))?)
}

/// Endpoints by id, deleted ones included (the pump's batch read); ids not found are left out.
pub fn get_many_any(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<WebhookEndpoint>> {
    super::by_ids_in_chunks(ids, |chunk| {
        Ok(on_backend!(conn, |c| we::table
            .filter(we::id.eq_any(chunk))
            .select(WebhookEndpoint::as_select())
            .load(c))?)
    })
}

/// A merchant's live endpoints, newest first.
pub fn list(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    page: &PageRequest,
) -> StoreResult<Page<WebhookEndpoint>> {
    let limit = page.effective_limit();
    let rows = on_backend!(conn, |c| {
        let mut q = we::table
            .filter(we::merchant_id.eq(merchant.as_str()))
            .filter(we::deleted_at.is_null())
            .select(WebhookEndpoint::as_select())
            .into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(we::id.lt(after));
        }
        q.order(we::id.desc()).limit(limit + 1).load(c)
    })?;
    Ok(Page::from_rows(rows, limit))
}

/// How many live (not deleted) endpoints the merchant has, enabled or not: what the
/// per-merchant endpoint cap counts.
pub fn count_live(conn: &mut DbConnection, merchant: &MerchantId) -> StoreResult<i64> {
    Ok(on_backend!(conn, |c| we::table
        .filter(we::merchant_id.eq(merchant.as_str()))
        .filter(we::deleted_at.is_null())
        .count()
        .get_result(c))?)
}

/// The merchant's enabled endpoints subscribed to `event_type` (fan-out).
pub fn subscribers(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    event_type: EventType,
) -> StoreResult<Vec<WebhookEndpoint>> {
    let all: Vec<WebhookEndpoint> = on_backend!(conn, |c| we::table
        .filter(we::merchant_id.eq(merchant.as_str()))
        .filter(we::deleted_at.is_null())
        .filter(we::enabled.eq(true))
        .order(we::id.asc())
        .select(WebhookEndpoint::as_select())
        .load(c))?;
    let mut out = Vec::with_capacity(all.len());
    for e in all {
        if e.subscribes_to(event_type)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Applies a patch; returns the endpoint as it now is.
pub fn update(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
    patch: &EndpointPatch,
    now: i64,
) -> StoreResult<WebhookEndpoint> {
    let mut patch = patch.clone();
    patch.updated_at = Some(now);
    let n = on_backend!(conn, |c| diesel::update(
        we::table
            .filter(we::id.eq(id.as_str()))
            .filter(we::merchant_id.eq(merchant.as_str()))
            .filter(we::deleted_at.is_null())
    )
    .set(&patch)
    .execute(c))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(conn, merchant, id)
}

/// Soft-deletes an endpoint (its deliveries stay for history); `false` if none.
pub fn delete(
    conn: &mut DbConnection,
    merchant: &MerchantId,
    id: &WebhookEndpointId,
    now: i64,
) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| diesel::update(
        we::table
            .filter(we::id.eq(id.as_str()))
            .filter(we::merchant_id.eq(merchant.as_str()))
            .filter(we::deleted_at.is_null())
    )
    .set((
        we::deleted_at.eq(Some(now)),
        we::enabled.eq(false),
        we::updated_at.eq(now),
    ))
    .execute(c))?;
    Ok(n > 0)
}

/// Records the health of an endpoint: `Some(t)` starts (or keeps) a failing streak, `None` ends
/// it. An existing streak start is kept.
pub fn set_failing_since(
    conn: &mut DbConnection,
    id: &WebhookEndpointId,
    failing_since: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    on_backend!(conn, |c| match failing_since {
        Some(t) => diesel::update(
            we::table
                .filter(we::id.eq(id.as_str()))
                .filter(we::failing_since.is_null())
        )
        .set((we::failing_since.eq(Some(t)), we::updated_at.eq(now)))
        .execute(c),
        None => diesel::update(we::table.find(id.as_str()))
            .set((we::failing_since.eq(None::<i64>), we::updated_at.eq(now)))
            .execute(c),
    })?;
    Ok(())
}

/// Disables an endpoint with a reason (410 Gone, failing for 5 days).
pub fn disable(
    conn: &mut DbConnection,
    id: &WebhookEndpointId,
    reason: &str,
    now: i64,
) -> StoreResult<bool> {
    let n = on_backend!(conn, |c| diesel::update(
        we::table
            .filter(we::id.eq(id.as_str()))
            .filter(we::enabled.eq(true))
    )
    .set((
        we::enabled.eq(false),
        we::disabled_reason.eq(Some(reason)),
        we::updated_at.eq(now),
    ))
    .execute(c))?;
    Ok(n > 0)
}

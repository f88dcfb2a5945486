//! `/v1/webhook-endpoints…`, `/v1/events…` and the operator's webhook views: thin handlers over
//! the [`WebhookStore`] port (implemented over the `store` crate by
//! [`crate::adapters::webhooks::SqlWebhookStore`]).
//!
//! The delivery side's rules (URL checks against SSRF, `whsec_` generation) live in the
//! `webhook-fanout` crate; the server injects them through [`WebhookApi::new`], so this crate
//! does not depend on the delivery machinery. Endpoint secrets are sealed with the master key
//! before they reach a row and appear only in the create and rotate responses.
//!
//! Scopes: reading endpoints, events and attempts needs `webhooks:read`; creating, changing,
//! deleting, rotating, recovering and redelivering needs `webhooks:write`. A secret key issued
//! with the default scopes holds both; a token holds them only when minted with them (a POS
//! token minted for payments cannot redirect the merchant's notifications). Credentials bound to
//! a store or terminal are refused here (403 `credential_bound`): endpoints belong to the whole
//! merchant. An endpoint may itself be limited to one store's events (`store_id`).

use crate::audit::Audit;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::routes::list::{List, page_limit};
use crate::{AppState, idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use chrono::{DateTime, Utc};
use domain::{EventId, EventType, Secret, WebhookEndpointId};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;
use store::Database;
use store::events;
use store::page::PageRequest;
use store::sealing::MasterKeyring;
use store::webhook_endpoints::EndpointPatch;
use utoipa::{IntoParams, ToSchema};

use super::params::{EndpointPath, EventPath, IdempotencyKey};
use super::responses::{Authenticated, BadQuery, Idempotent, JsonBody, Lookup, Refused};
use super::schemas::{EventFilterName, EventTypeName, StoreIdText, WebhookUrl, is_webhook_url};

mod access;
pub mod objects;
pub mod operator;
pub mod port;

use port::{ENDPOINT, EVENT};
pub use port::{NewEndpoint, WebhookLimits, WebhookStore};

pub use objects::{
    AttemptObject, DeletedObject, DeliveryObject, EventObject, RecoveryObject, RedeliveryObject,
    WebhookEndpointObject,
};
use objects::{attempt_object, delivery_object, endpoint_object, event_object};

/// Parses and SSRF-checks an endpoint URL (`webhook_fanout::NetworkPolicy::parse_endpoint_url`),
/// returning it normalised, or the reason it is refused.
pub type UrlCheck = Arc<dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync>;
/// Makes a fresh `whsec_…` secret (`webhook_fanout::WebhookSecret::generate`).
pub type SecretMaker = Arc<dyn Fn() -> std::result::Result<Secret, String> + Send + Sync>;

/// What the webhook routes need; the server registers it with `app_data(web::Data::new(…))`.
pub struct WebhookApi {
    store: Arc<dyn WebhookStore>,
    check_url: UrlCheck,
    new_secret: SecretMaker,
    secret_overlap: Duration,
    limits: WebhookLimits,
}

impl WebhookApi {
    /// The same routes with other per-merchant limits than [`WebhookLimits::default`].
    pub fn with_limits(mut self, limits: WebhookLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The routes over the SQL store ([`crate::adapters::webhooks::SqlWebhookStore`] on `db`,
    /// sealing endpoint secrets with `keyring`); `secret_overlap` is how long a rotated-out
    /// secret keeps signing (`FanoutConfig::secret_overlap`, 24 h by default).
    pub fn new(
        db: Database,
        keyring: Arc<MasterKeyring>,
        check_url: UrlCheck,
        new_secret: SecretMaker,
        secret_overlap: Duration,
    ) -> Self {
        let store = crate::adapters::webhooks::SqlWebhookStore::new(db, keyring);
        Self::with_store(Arc::new(store), check_url, new_secret, secret_overlap)
    }

    /// The routes over any [`WebhookStore`].
    pub fn with_store(
        store: Arc<dyn WebhookStore>,
        check_url: UrlCheck,
        new_secret: SecretMaker,
        secret_overlap: Duration,
    ) -> Self {
        Self {
            store,
            check_url,
            new_secret,
            secret_overlap,
            limits: WebhookLimits::default(),
        }
    }
}

/// The registered [`WebhookApi`], or 503 when the server did not register one.
pub struct Webhooks(web::Data<WebhookApi>);

impl FromRequest for Webhooks {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<WebhookApi>>()
                .cloned()
                .map(Webhooks)
                .ok_or_else(|| Error::Unavailable("webhooks are not configured".to_owned())),
        )
    }
}

crate::routes::route_table! {
    /// Mounts the webhook routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    post "/webhook-endpoints" => create_endpoint,
    get "/webhook-endpoints" => list_endpoints,
    get "/webhook-endpoints/{id}" => get_endpoint,
    patch "/webhook-endpoints/{id}" => update_endpoint,
    delete "/webhook-endpoints/{id}" => delete_endpoint,
    post "/webhook-endpoints/{id}/rotate-secret" => rotate_secret,
    post "/webhook-endpoints/{id}/recover" => recover,
    get "/events" => list_events,
    get "/events/{id}" => get_event,
    get "/events/{id}/attempts" => list_attempts,
    post "/events/{id}/redeliver" => redeliver,
    get "/operator/webhook-deliveries" => operator::operator_deliveries,
    get "/operator/webhook-endpoints" => operator::operator_endpoints,
}

/// `POST /v1/webhook-endpoints` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// The URL receiving the events.
    #[schema(value_type = WebhookUrl)]
    pub url: String,
    /// Your note: at most 256 bytes (of UTF-8).
    #[schema(max_length = 256)]
    pub description: Option<String>,
    /// Event types to receive (`["*"]`, the default, is all).
    #[schema(value_type = Option<Vec<EventFilterName>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// Deliver to it (default true).
    pub enabled: Option<bool>,
    /// Receive only the events of this store of yours (`store_…`): payments and refunds taken
    /// there. Events about no store then do not reach it.
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<String>,
}

/// `PATCH /v1/webhook-endpoints/{id}` body; omitted fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    /// New URL (as on create).
    #[schema(value_type = Option<WebhookUrl>)]
    pub url: Option<String>,
    /// New note, at most 256 bytes (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    pub description: Option<Option<String>>,
    /// New event filter.
    #[schema(value_type = Option<Vec<EventFilterName>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// Enable (also clears a failing streak) or disable.
    pub enabled: Option<bool>,
    /// Receive only this store's events (`null`: every event again).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<Option<String>>,
}

/// `POST /v1/webhook-endpoints/{id}/recover` body: the range `[since, until)` of event times.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Start of the range, inclusive (RFC 3339); not in the future.
    pub since: DateTime<Utc>,
    /// End of the range, exclusive (RFC 3339); after `since`, at most 30 days after it. Default
    /// (and upper limit): the time of the call.
    pub until: Option<DateTime<Utc>>,
}

/// The longest range one recover may ask for.
pub const RECOVER_MAX_RANGE: chrono::Duration = chrono::Duration::days(30);

impl RecoverRequest {
    /// The range in unix ms, checked: `since` not in the future, `until` after `since` and at
    /// most [`RECOVER_MAX_RANGE`] after it; an `until` omitted or later than `now` is `now`
    /// (no event is created later than now).
    pub fn range(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        if self.since > now {
            return Err(Error::invalid(
                "parameter_invalid",
                "since must not be in the future",
                Some("since"),
            ));
        }
        if let Some(until) = self.until {
            if until <= self.since {
                return Err(Error::invalid(
                    "parameter_invalid",
                    "until must be after since",
                    Some("until"),
                ));
            }
            if until - self.since > RECOVER_MAX_RANGE {
                return Err(Error::invalid(
                    "parameter_invalid",
                    "the range from since to until is limited to 30 days; recover a longer outage in several calls",
                    Some("until"),
                ));
            }
        } else if now - self.since > RECOVER_MAX_RANGE {
            return Err(Error::invalid(
                "parameter_invalid",
                "since is more than 30 days ago: give an until at most 30 days after it, and recover a longer outage in several calls",
                Some("since"),
            ));
        }
        Ok((self.since, self.until.unwrap_or(now).min(now)))
    }
}

/// Query of the merchant's lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: an id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Exact event type.
    #[serde(rename = "type")]
    #[param(value_type = EventTypeName, inline, required = false)]
    pub kind: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(nullable = false)]
    pub created_gte: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[param(nullable = false)]
    pub created_lt: Option<DateTime<Utc>>,
    /// `false`: events with a delivery not (yet) succeeded; `true`: all deliveries succeeded.
    #[param(nullable = false)]
    pub delivery_success: Option<bool>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: an event id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Reading the webhook API.
pub const READ: &str = "webhooks:read";
/// Changing it (endpoints, secrets, re-sends).
pub const WRITE: &str = "webhooks:write";

fn page(limit: Option<usize>, starting_after: Option<String>) -> Result<PageRequest> {
    let limit = page_limit(limit)?;
    Ok(PageRequest {
        limit: i64::try_from(limit).unwrap_or(100),
        starting_after,
    })
}

fn json_value(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn list<T: Serialize>(data: Vec<T>, has_more: bool) -> HttpResponse {
    List::new(data, has_more).respond()
}

fn endpoint_id(id: &str) -> Result<WebhookEndpointId> {
    WebhookEndpointId::parse(id).map_err(|_| Error::not_found(ENDPOINT, id))
}

fn event_id(id: &str) -> Result<EventId> {
    EventId::parse(id).map_err(|_| Error::not_found(EVENT, id))
}

/// The event filter as stored: known types or `*`, deduplicated.
fn event_filter(events: Option<Vec<String>>) -> Result<String> {
    let events = events.unwrap_or_else(|| vec!["*".to_owned()]);
    if events.is_empty() {
        return Err(Error::invalid(
            "parameter_invalid",
            "events must name at least one event type or `*`",
            Some("events"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if e != "*" && e.parse::<EventType>().is_err() {
            let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(Error::invalid(
                "parameter_invalid",
                format!(
                    "unknown event type `{e}`; use `*` or one of {}",
                    known.join(", ")
                ),
                Some("events"),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[\"*\"]".to_owned()))
}

fn check_description(d: Option<&String>) -> Result<()> {
    if d.is_some_and(|d| d.len() > 256) {
        return Err(Error::invalid(
            "parameter_invalid",
            "description is limited to 256 bytes",
            Some("description"),
        ));
    }
    Ok(())
}

/// The store an endpoint request names, checked to be the merchant's (404 otherwise).
async fn endpoint_store(
    state: &AppState,
    merchant: &domain::MerchantId,
    store_id: Option<&str>,
) -> Result<Option<String>> {
    let Some(id) = store_id else { return Ok(None) };
    let locations = crate::locations::locations(state)?;
    let store = crate::locations::store_of(locations, merchant, id).await?;
    Ok(Some(store.id.to_string()))
}

impl WebhookApi {
    fn url(&self, input: &str) -> Result<String> {
        if !is_webhook_url(input) {
            return Err(Error::invalid(
                "url_invalid",
                "url must be http(s):// and a host name or IPv4 address, an optional port, then \
                 path, query and fragment in visible ASCII",
                Some("url"),
            ));
        }
        (self.check_url)(input).map_err(|reason| Error::invalid("url_invalid", reason, Some("url")))
    }

    fn secret(&self) -> Result<Secret> {
        (self.new_secret)().map_err(Error::Unavailable)
    }
}

/// Create a webhook endpoint (its `secret` is shown once, in this response).
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = CreateEndpointRequest, params(IdempotencyKey),
    responses(
        (status = 201, description = "The endpoint, with its secret (shown this once).",
            body = WebhookEndpointObject),
        Authenticated, JsonBody, Lookup, Idempotent, Refused),
    security(("bearer" = [])))]
pub async fn create_endpoint(
    state: web::Data<AppState>,
    api: Webhooks,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let b: CreateEndpointRequest = json::parse(&body)?;
    let url = api.0.url(&b.url)?;
    let filter = event_filter(b.events)?;
    check_description(b.description.as_ref())?;
    let store_id = endpoint_store(&state, &merchant, b.store_id.as_deref()).await?;
    let scope = merchant.to_string();
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let secret = api.0.secret()?;
        let endpoint = NewEndpoint {
            id: WebhookEndpointId::generate(),
            url,
            description: b.description,
            event_filter: filter,
            enabled: b.enabled.unwrap_or(true),
            disabled_reason: (b.enabled == Some(false)).then(|| "merchant".to_owned()),
            store_id,
        };
        let row = api
            .store()
            .create_endpoint(
                &merchant,
                endpoint,
                &secret,
                api.0.limits.max_endpoints,
                &Audit::by(&principal, "webhook_endpoint.create"),
            )
            .await?;
        Ok((
            StatusCode::CREATED,
            json_value(endpoint_object(&row, Some(&secret))),
        ))
    })
    .await
}

/// List webhook endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints.", body = List<WebhookEndpointObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_endpoints(
    api: Webhooks,
    principal: Principal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, READ)?;
    let q = query.into_inner();
    let p = page(q.limit, q.starting_after)?;
    let rows = api.store().list_endpoints(&merchant, p).await?;
    let data = rows.items.iter().map(|e| endpoint_object(e, None));
    Ok(list(data.collect(), rows.has_more))
}

/// Read a webhook endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint.", body = WebhookEndpointObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_endpoint(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, READ)?;
    let id = endpoint_id(&path)?;
    let e = api.store().get_endpoint(&merchant, &id).await?;
    Ok(HttpResponse::Ok().json(endpoint_object(&e, None)))
}

/// Change an endpoint's URL, description, event filter or enabled flag.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    request_body = UpdateEndpointRequest, params(EndpointPath),
    responses(
        (status = 200, description = "The endpoint as updated.", body = WebhookEndpointObject),
        Authenticated, JsonBody, Lookup),
    security(("bearer" = [])))]
pub async fn update_endpoint(
    state: web::Data<AppState>,
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let id = endpoint_id(&path)?;
    let b: UpdateEndpointRequest = json::parse(&body)?;
    check_description(b.description.as_ref().and_then(Option::as_ref))?;
    let store_id = match b.store_id {
        Some(named) => Some(endpoint_store(&state, &merchant, named.as_deref()).await?),
        None => None,
    };
    let patch = EndpointPatch {
        url: b.url.as_deref().map(|u| api.0.url(u)).transpose()?,
        description: b.description,
        event_filter: b.events.map(|e| event_filter(Some(e))).transpose()?,
        enabled: b.enabled,
        disabled_reason: b.enabled.map(|on| (!on).then(|| "merchant".to_owned())),
        store_id,
        updated_at: None,
    };
    let audit = Audit::by(&principal, "webhook_endpoint.update");
    let e = api
        .store()
        .update_endpoint(&merchant, &id, patch, &audit)
        .await?;
    Ok(HttpResponse::Ok().json(endpoint_object(&e, None)))
}

/// Delete an endpoint (its delivery history stays readable through events).
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint is deleted.", body = DeletedObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn delete_endpoint(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let id = endpoint_id(&path)?;
    let audit = Audit::by(&principal, "webhook_endpoint.delete");
    let deleted = api.store().delete_endpoint(&merchant, &id, &audit).await?;
    if !deleted {
        return Err(Error::not_found(ENDPOINT, path.as_str()));
    }
    Ok(HttpResponse::Ok().json(DeletedObject {
        id: path.into_inner(),
        object: "webhook_endpoint",
        deleted: true,
    }))
}

/// Replace the signing secret; the old one keeps signing beside it for 24 h (configurable).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(EndpointPath, IdempotencyKey),
    responses(
        (status = 200, description = "The endpoint, with its new secret (shown this once).",
            body = WebhookEndpointObject),
        Authenticated, Lookup, Idempotent),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    api: Webhooks,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let id = endpoint_id(&path)?;
    let scope = merchant.to_string();
    // No body: the path alone fingerprints the request.
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, b"", |_| async {
        let secret = api.0.secret()?;
        let e = api
            .store()
            .rotate_secret(
                &merchant,
                &id,
                &secret,
                api.0.secret_overlap,
                &Audit::by(&principal, "webhook_endpoint.rotate_secret"),
            )
            .await?;
        Ok((
            StatusCode::OK,
            json_value(endpoint_object(&e, Some(&secret))),
        ))
    })
    .await
}

/// Re-enable the endpoint and deliver every event of `[since, until)` it subscribes to that it
/// has not received: deliveries not succeeded are queued again, events raised while it was
/// disabled get a delivery, succeeded ones are left alone. At most 10 000 events a call:
/// `has_more` and `next_since` say where to go on.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/recover", tag = "webhooks",
    request_body = RecoverRequest, params(EndpointPath),
    responses((status = 202, description = "What was queued.", body = RecoveryObject),
        Authenticated, JsonBody, Lookup),
    security(("bearer" = [])))]
pub async fn recover(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let id = endpoint_id(&path)?;
    let b: RecoverRequest = json::parse(&body)?;
    let (since, until) = b.range(Utc::now())?;
    let done = api
        .store()
        .recover_endpoint(
            &merchant,
            &id,
            since.timestamp_millis(),
            until.timestamp_millis(),
            &Audit::by(&principal, "webhook_endpoint.recover"),
        )
        .await?;
    Ok(HttpResponse::Accepted().json(RecoveryObject {
        object: "webhook_recovery",
        endpoint_id: path.into_inner(),
        since: b.since,
        until,
        enabled: true,
        reenabled: done.reenabled,
        events: done.events,
        deliveries_queued: done.queued(),
        deliveries_created: done.created,
        deliveries_requeued: done.requeued,
        deliveries_already_succeeded: done.already_succeeded,
        has_more: done.next_since.is_some(),
        next_since: done.next_since.and_then(DateTime::from_timestamp_millis),
    }))
}

/// List events, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "webhooks",
    params(EventQuery),
    responses((status = 200, description = "A page of events.", body = List<EventObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_events(
    api: Webhooks,
    principal: Principal,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, READ)?;
    let q = query.into_inner();
    let types = match q.kind.as_deref() {
        None => vec![],
        Some(t) => vec![t.parse::<EventType>().map_err(|_| {
            Error::invalid("parameter_invalid", "unknown event type", Some("type"))
        })?],
    };
    let filter = events::EventFilter {
        types,
        object_id: None,
        created_gte: q.created_gte.map(|t| t.timestamp_millis()),
        created_lt: q.created_lt.map(|t| t.timestamp_millis()),
    };
    let p = page(q.limit, q.starting_after)?;
    let rows = api
        .store()
        .list_events(&merchant, filter, q.delivery_success, p)
        .await?;
    Ok(list(
        rows.items.iter().map(event_object).collect(),
        rows.has_more,
    ))
}

/// Read an event (its body exactly as delivered, with its deliveries).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "webhooks",
    params(EventPath),
    responses((status = 200, description = "The event with its deliveries.", body = EventObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_event(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, READ)?;
    let id = event_id(&path)?;
    let (e, ds) = api.store().get_event(&merchant, &id).await?;
    let mut v = event_object(&e);
    v.deliveries = Some(ds.iter().map(delivery_object).collect());
    Ok(HttpResponse::Ok().json(v))
}

/// Every delivery attempt of an event, oldest first.
#[utoipa::path(get, path = "/v1/events/{id}/attempts", tag = "webhooks",
    params(EventPath),
    responses(
        (status = 200, description = "The event's delivery attempts.", body = List<AttemptObject>),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn list_attempts(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, READ)?;
    let id = event_id(&path)?;
    let rows = api.store().event_attempts(&merchant, &id).await?;
    Ok(list(rows.iter().map(attempt_object).collect(), false))
}

/// Send an event again to every enabled endpoint subscribed to it.
#[utoipa::path(post, path = "/v1/events/{id}/redeliver", tag = "webhooks",
    params(EventPath),
    responses((status = 202, description = "The deliveries queued again.", body = RedeliveryObject),
        Authenticated, Lookup, Refused),
    security(("bearer" = [])))]
pub async fn redeliver(
    api: Webhooks,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let merchant = api.for_merchant(&principal, WRITE)?;
    let id = event_id(&path)?;
    let queued = api
        .store()
        .redeliver_event(&merchant, &id, api.0.limits.max_redeliveries_per_event)
        .await?;
    Ok(HttpResponse::Accepted().json(RedeliveryObject {
        object: "webhook_redelivery",
        event_id: path.into_inner(),
        deliveries: queued,
    }))
}

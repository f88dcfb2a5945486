//! Key lifecycle beside the operator's `/v1/merchants/{id}/api-keys`: operators manage operator
//! keys (`/v1/operator/api-keys`), and merchants manage their own secret keys (`/v1/api-keys`)
//! with a key holding `keys:write`. Every listed key shows when it was last used.
//!
//! A merchant key may be bound to a store or a terminal (`store_id` / `terminal_id` on create).
//! A bound key managing keys stays inside its binding: the keys it creates are bound within it
//! (to its own binding when the request names none), and it lists and revokes only keys bound
//! within it.

use super::list::List;
use super::merchants::{ApiKeyObject, NewKey, issue_key, key_objects, revoked_key};
use crate::AppState;
use crate::audit::Audit;
use crate::auth::{Binding, MerchantCaller, Principal, keys};
use crate::error::{Error, Result};
use crate::{idempotency, json};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use domain::ApiKeyId;
use serde::Deserialize;
use utoipa::ToSchema;

use super::params::{IdempotencyKey, KeyPath};
use super::responses::{Authenticated, Idempotent, JsonBody, Lookup, Refused};
use super::schemas::{ScopeName, StoreIdText, TerminalIdText};

/// Longest lifetime a merchant may give a key it creates itself (`expires_in`).
const MAX_EXPIRES_IN_SECS: i64 = 5 * 366 * 86_400;

/// `POST /v1/operator/api-keys` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyRequest {
    /// Free label.
    pub label: Option<String>,
}

/// `POST /v1/api-keys` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnKeyRequest {
    /// Free label.
    pub label: Option<String>,
    /// Scopes, each held by the calling key (default: all of the calling key's).
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub scopes: Option<Vec<String>>,
    /// Seconds until the key stops working by itself (60 … 5 × 366 days; default: never).
    #[schema(minimum = 60, maximum = 158112000)]
    pub expires_in: Option<i64>,
    /// Bind the key to this store (`store_…`); a bound calling key may only name its own.
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<String>,
    /// Bind the key to this terminal (`term_…`, implies its store); within the calling key's
    /// binding.
    #[schema(value_type = Option<TerminalIdText>)]
    pub terminal_id: Option<String>,
}

fn body_or_default<T: Default + serde::de::DeserializeOwned>(body: &web::Bytes) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json::parse(body)
    }
}

fn parse_key_id(id: &str) -> Result<ApiKeyId> {
    ApiKeyId::parse(id).map_err(|_| Error::not_found("api key", id))
}

/// The binding a key request names (`store_id` / `terminal_id`), checked against `merchant`:
/// `None` when it names neither; a missing or foreign store or terminal is a 404.
pub(crate) async fn key_binding(
    state: &AppState,
    merchant: &domain::MerchantId,
    store_id: Option<&str>,
    terminal_id: Option<&str>,
) -> Result<Option<Binding>> {
    if store_id.is_none() && terminal_id.is_none() {
        return Ok(None);
    }
    let locations = crate::locations::locations(state)?;
    crate::locations::binding_of(locations, merchant, store_id, terminal_id).await
}

/// List operator keys (never their secrets).
#[utoipa::path(get, path = "/v1/operator/api-keys", tag = "operator",
    responses((status = 200, description = "The operator keys.", body = List<ApiKeyObject>),
        Authenticated),
    security(("bearer" = [])))]
pub async fn list_operator_keys(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse> {
    principal.operator()?;
    let keys = state.accounts.operator_keys().await?;
    Ok(List::all(key_objects(&state, &keys).await?).respond())
}

/// Create an operator key; its secret is in this response only.
#[utoipa::path(post, path = "/v1/operator/api-keys", tag = "operator",
    request_body(content = ref("#/components/schemas/OperatorKeyRequest"),
        description = "Optional: an empty body means `{}`."),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "The key, with its secret (shown this once).",
            body = ApiKeyObject),
        Authenticated, JsonBody, Idempotent),
    security(("bearer" = [])))]
pub async fn create_operator_key(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let b: OperatorKeyRequest = body_or_default(&body)?;
    let scope = format!("operator:{}", principal.key_id());
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let new = NewKey {
            merchant: None,
            prefix: keys::OPERATOR_PREFIX,
            label: b.label,
            scopes: Vec::new(),
            expires_at: None,
            binding: None,
            audit: Audit::by(&principal, "operator_key.create"),
        };
        issue_key(&state, new).await
    })
    .await
}

/// Revoke an operator key (the calling one included: it stops working at once).
#[utoipa::path(delete, path = "/v1/operator/api-keys/{key_id}", tag = "operator",
    params(KeyPath),
    responses((status = 200, description = "The key, revoked.", body = ApiKeyObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn revoke_operator_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let kid = path.into_inner();
    let key_id = parse_key_id(&kid)?;
    let revoked = state
        .accounts
        .revoke_operator_key(
            &key_id,
            Utc::now(),
            &Audit::by(&principal, "operator_key.revoke"),
        )
        .await?;
    revoked_key(&state, revoked, &key_id, None).await
}

/// The merchant (and its binding) behind a secret key holding `keys:write`. Tokens are
/// refused: a key created with a token would outlive the token's hour.
fn key_manager(principal: &Principal) -> Result<(MerchantCaller, Vec<String>)> {
    let caller = principal.caller("keys:write")?;
    match principal {
        Principal::Merchant {
            via_token: false,
            scopes,
            ..
        } => Ok((caller, scopes.clone())),
        _ => Err(Error::Forbidden {
            code: "secret_key_required",
            message: "managing API keys needs the secret key, not a token".to_owned(),
        }),
    }
}

/// List your API keys (never their secrets), with their last use.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api keys",
    responses((status = 200, description = "Your keys.", body = List<ApiKeyObject>), Authenticated),
    security(("bearer" = [])))]
pub async fn list_own_keys(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse> {
    let (caller, _) = key_manager(&principal)?;
    let mut keys = state.accounts.api_keys_of(&caller.id).await?;
    keys.retain(|k| Binding::within(k.binding.as_ref(), caller.binding.as_ref()));
    Ok(List::all(key_objects(&state, &keys).await?).respond())
}

/// Create an API key with a subset of your key's scopes and an optional expiry; its secret is
/// in this response only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api keys",
    request_body(content = ref("#/components/schemas/OwnKeyRequest"),
        description = "Optional: an empty body means `{}`."),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "The key, with its secret (shown this once).",
            body = ApiKeyObject),
        Authenticated, JsonBody, Lookup, Idempotent, Refused),
    security(("bearer" = [])))]
pub async fn create_own_key(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let (caller, held) = key_manager(&principal)?;
    let merchant = caller.id.clone();
    let b: OwnKeyRequest = body_or_default(&body)?;
    let scopes = match b.scopes {
        None => held,
        Some(wanted) => {
            if let Some(bad) = wanted.iter().find(|w| !held.contains(w)) {
                return Err(Error::invalid(
                    "parameter_invalid",
                    format!("scope `{bad}` is not held by the calling key"),
                    Some("scopes"),
                ));
            }
            wanted
        }
    };
    let expires_at = match b.expires_in {
        None => None,
        Some(secs) if (60..=MAX_EXPIRES_IN_SECS).contains(&secs) => {
            Some(Utc::now() + Duration::seconds(secs))
        }
        Some(_) => {
            return Err(Error::invalid(
                "parameter_invalid",
                format!("expires_in must be 60 … {MAX_EXPIRES_IN_SECS} seconds"),
                Some("expires_in"),
            ));
        }
    };
    let named = key_binding(
        &state,
        &merchant,
        b.store_id.as_deref(),
        b.terminal_id.as_deref(),
    )
    .await?;
    // A bound key creates keys within its binding only: its own when none is named.
    let binding = match (named, &caller.binding) {
        (None, own) => own.clone(),
        (Some(n), Some(own)) if !own.contains(&n) => {
            return Err(own.refusal(&format!("a key bound to {}", n.describe())));
        }
        (Some(n), _) => Some(n),
    };
    let scope = caller.idempotency_scope(&format!("merchant:{merchant}:keys"));
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let new = NewKey {
            merchant: Some(merchant.clone()),
            prefix: keys::MERCHANT_PREFIX,
            label: b.label,
            scopes,
            expires_at,
            binding,
            audit: Audit::by(&principal, "api_key.create"),
        };
        issue_key(&state, new).await
    })
    .await
}

/// Revoke one of your API keys (tokens it minted stop working too).
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api keys",
    params(KeyPath),
    responses((status = 200, description = "The key, revoked.", body = ApiKeyObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn revoke_own_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let (caller, _) = key_manager(&principal)?;
    let kid = path.into_inner();
    let key_id = parse_key_id(&kid)?;
    if caller.binding.is_some() {
        // A bound key revokes only keys bound within it; any other key is "no such key".
        let within = state.accounts.api_key(&key_id).await?.is_some_and(|k| {
            k.merchant_id.as_ref() == Some(&caller.id)
                && Binding::within(k.binding.as_ref(), caller.binding.as_ref())
        });
        if !within {
            return Err(Error::not_found("api key", kid.as_str()));
        }
    }
    let revoked = state
        .accounts
        .revoke_api_key(
            &caller.id,
            &key_id,
            Utc::now(),
            &Audit::by(&principal, "api_key.revoke"),
        )
        .await?;
    revoked_key(&state, revoked, &key_id, Some(&caller.id)).await
}

//! Operator routes: gateway accounts (CodePay apps). The private key is write-only.

use super::list::List;
use crate::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::gateway_accounts::{GatewayAccountRecord, GatewayAccountSettings, GatewayAccountStore};
use crate::{idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::{GatewayAccountId, Secret};
use gateway_client::signing::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{GatewayAccountPath, IdempotencyKey};
use super::responses::{Authenticated, Idempotent, JsonBody, Lookup};
use super::schemas::CreateGatewayAccountBody;

/// `POST /v1/gateway-accounts` and `PATCH /v1/gateway-accounts/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayAccountRequest {
    /// Operator's label: 1 to 200 bytes (of UTF-8) once trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub name: Option<String>,
    /// CodePay base URL, absolute `https://…` (or `http://…`), at most 500 bytes once trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*https?://[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub base_url: Option<String>,
    /// CodePay `app_id`: 1 to 64 bytes (of UTF-8) once trimmed.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub app_id: Option<String>,
    /// The app's RSA private key, PEM or base64 DER (write-only: stored sealed, never
    /// returned); 400 when it does not parse as one.
    #[schema(value_type = Option<String>, write_only)]
    pub private_key: Option<Secret>,
    /// CodePay's public key, PEM or base64 DER; 400 when it does not parse as an RSA key.
    pub gateway_public_key: Option<String>,
    /// Connect timeout in ms (default 2000).
    #[schema(minimum = 1, maximum = 120000)]
    pub connect_timeout_ms: Option<i64>,
    /// Whole-request timeout in ms (default 10000).
    #[schema(minimum = 1, maximum = 120000)]
    pub request_timeout_ms: Option<i64>,
    /// Whether routing may pick it (default true).
    pub enabled: Option<bool>,
}

/// A gateway account as operators see it: never the private key.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayAccountObject {
    /// `gwa_…`.
    pub id: String,
    /// Always `gateway_account`.
    pub object: &'static str,
    /// Operator's label.
    pub name: String,
    /// CodePay base URL (a password in it shows as `***`).
    pub base_url: String,
    /// CodePay `app_id`.
    pub app_id: String,
    /// Always true: a private key is stored (sealed).
    pub private_key_configured: bool,
    /// PEM public half of the stored private key: what to upload to CodePay. Null when the
    /// sealed key does not open with the configured master keys (rotate it).
    pub app_public_key: Option<String>,
    /// CodePay's public key (PEM).
    pub gateway_public_key: String,
    /// Connect timeout.
    pub connect_timeout_ms: i64,
    /// Whole-request timeout.
    pub request_timeout_ms: i64,
    /// Whether routing may pick it.
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&GatewayAccountRecord> for GatewayAccountObject {
    fn from(r: &GatewayAccountRecord) -> Self {
        let s = &r.settings;
        Self {
            id: r.id.to_string(),
            object: "gateway_account",
            name: s.name.clone(),
            base_url: domain::SecretUrl::new(s.base_url.clone()).masked(),
            app_id: s.app_id.clone(),
            private_key_configured: true,
            app_public_key: r.app_public_key.clone(),
            gateway_public_key: s.gateway_public_key.clone(),
            connect_timeout_ms: s.connect_timeout_ms,
            request_timeout_ms: s.request_timeout_ms,
            enabled: s.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The gateway account store, or 503 when this deployment cannot seal keys.
pub(crate) fn store(state: &AppState) -> Result<&dyn GatewayAccountStore> {
    state
        .accounts
        .gateway_accounts()
        .ok_or_else(|| Error::Unavailable("gateway accounts are not configured".to_owned()))
}

fn text(value: String, param: &str, max: usize) -> Result<String> {
    let v = value.trim().to_owned();
    if v.is_empty() || v.len() > max {
        return Err(Error::invalid(
            "parameter_invalid",
            format!("{param} must be 1 to {max} characters"),
            Some(param),
        ));
    }
    Ok(v)
}

fn timeout(ms: i64, param: &str) -> Result<i64> {
    if !(1..=120_000).contains(&ms) {
        return Err(Error::invalid(
            "parameter_invalid",
            format!("{param} must be between 1 and 120000"),
            Some(param),
        ));
    }
    Ok(ms)
}

/// Applies the body to `s`; returns the parsed new private key, if one was given.
fn apply(s: &mut GatewayAccountSettings, b: GatewayAccountRequest) -> Result<Option<PrivateKey>> {
    if let Some(name) = b.name {
        s.name = text(name, "name", 200)?;
    }
    if let Some(url) = b.base_url {
        let url = text(url, "base_url", 500)?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(Error::invalid(
                "parameter_invalid",
                "base_url must be an absolute http(s) URL",
                Some("base_url"),
            ));
        }
        s.base_url = url.trim_end_matches('/').to_owned();
    }
    if let Some(app_id) = b.app_id {
        s.app_id = text(app_id, "app_id", 64)?;
    }
    if let Some(pem) = b.gateway_public_key {
        let key = PublicKey::from_pem_or_base64(&pem).map_err(|e| {
            Error::invalid(
                "parameter_invalid",
                format!("gateway_public_key is not a usable RSA public key: {e}"),
                Some("gateway_public_key"),
            )
        })?;
        s.gateway_public_key = key.to_pem();
    }
    if let Some(ms) = b.connect_timeout_ms {
        s.connect_timeout_ms = timeout(ms, "connect_timeout_ms")?;
    }
    if let Some(ms) = b.request_timeout_ms {
        s.request_timeout_ms = timeout(ms, "request_timeout_ms")?;
    }
    if let Some(enabled) = b.enabled {
        s.enabled = enabled;
    }
    b.private_key
        .map(|k| {
            // The parser's message names the problem (encoding, label, size), never the key.
            PrivateKey::from_pem_or_base64(k.expose()).map_err(|e| {
                Error::invalid(
                    "parameter_invalid",
                    format!("private_key is not a usable RSA private key: {e}"),
                    Some("private_key"),
                )
            })
        })
        .transpose()
}

fn missing(param: &str) -> Error {
    Error::invalid(
        "parameter_missing",
        format!("missing field `{param}`"),
        Some(param),
    )
}

async fn load(gw: &dyn GatewayAccountStore, id: &str) -> Result<GatewayAccountRecord> {
    let gid = GatewayAccountId::parse(id).map_err(|_| Error::not_found("gateway account", id))?;
    gw.get(&gid)
        .await?
        .ok_or_else(|| Error::not_found("gateway account", id))
}

/// Register a CodePay app (its private key is sealed and never shown again).
#[utoipa::path(post, path = "/v1/gateway-accounts", tag = "operator",
    request_body = CreateGatewayAccountBody, params(IdempotencyKey),
    responses(
        (status = 201, description = "The account (never its private key).",
            body = GatewayAccountObject),
        Authenticated, JsonBody, Idempotent),
    security(("bearer" = [])))]
pub async fn create_gateway_account(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let gw = store(&state)?;
    let b = json::parse::<GatewayAccountRequest>(&body)?;
    for (present, param) in [
        (b.name.is_some(), "name"),
        (b.base_url.is_some(), "base_url"),
        (b.app_id.is_some(), "app_id"),
        (b.private_key.is_some(), "private_key"),
        (b.gateway_public_key.is_some(), "gateway_public_key"),
    ] {
        if !present {
            return Err(missing(param));
        }
    }
    let mut settings = GatewayAccountSettings {
        name: String::new(),
        base_url: String::new(),
        app_id: String::new(),
        gateway_public_key: String::new(),
        connect_timeout_ms: 2_000,
        request_timeout_ms: 10_000,
        enabled: true,
    };
    let key = apply(&mut settings, b)?.ok_or_else(|| missing("private_key"))?;
    let scope = format!("operator:{}", principal.key_id());
    let actor = principal.key_id().to_string();
    let response =
        idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
            let rec = gw
                .create(&GatewayAccountId::generate(), &settings, &key, &actor)
                .await?;
            Ok((
                StatusCode::CREATED,
                json::value(&GatewayAccountObject::from(&rec))?,
            ))
        })
        .await?;
    // Routable from this process's next payment on (other processes: within a refresh).
    state.engine.gateway_accounts_changed().await;
    Ok(response)
}

/// List gateway accounts, oldest first.
#[utoipa::path(get, path = "/v1/gateway-accounts", tag = "operator",
    responses(
        (status = 200, description = "Every gateway account.", body = List<GatewayAccountObject>),
        Authenticated),
    security(("bearer" = [])))]
pub async fn list_gateway_accounts(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse> {
    principal.operator()?;
    let rows = store(&state)?.list().await?;
    Ok(List::all(rows.iter().map(GatewayAccountObject::from).collect()).respond())
}

/// Read a gateway account.
#[utoipa::path(get, path = "/v1/gateway-accounts/{id}", tag = "operator",
    params(GatewayAccountPath),
    responses((status = 200, description = "The account.", body = GatewayAccountObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_gateway_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let rec = load(store(&state)?, &path).await?;
    Ok(HttpResponse::Ok().json(GatewayAccountObject::from(&rec)))
}

/// Update a gateway account; a new `private_key` replaces (and re-seals) the old one. Takes
/// effect on the next payment (other payfac processes: within about a second).
#[utoipa::path(patch, path = "/v1/gateway-accounts/{id}", tag = "operator",
    request_body = GatewayAccountRequest, params(GatewayAccountPath),
    responses((status = 200, description = "The account as updated.", body = GatewayAccountObject),
        Authenticated, JsonBody, Lookup),
    security(("bearer" = [])))]
pub async fn update_gateway_account(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let gw = store(&state)?;
    let b = json::parse::<GatewayAccountRequest>(&body)?;
    let rec = load(gw, &path).await?;
    let mut settings = rec.settings.clone();
    let key = apply(&mut settings, b)?;
    let rec = gw
        .update(
            &rec.id,
            &settings,
            key.as_ref(),
            principal.key_id().as_str(),
        )
        .await?
        .ok_or_else(|| Error::not_found("gateway account", path.as_str()))?;
    // A rotated key, new settings or a disabled account take effect on this process's next
    // payment; the others re-read the accounts within `payments::gateways::REFRESH_INTERVAL`.
    state.engine.gateway_accounts_changed().await;
    Ok(HttpResponse::Ok().json(GatewayAccountObject::from(&rec)))
}

crate::routes::route_table! {
    /// Mounts the gateway account routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    post "/gateway-accounts" => create_gateway_account,
    get "/gateway-accounts" => list_gateway_accounts,
    get "/gateway-accounts/{id}" => get_gateway_account,
    patch "/gateway-accounts/{id}" => update_gateway_account,
}

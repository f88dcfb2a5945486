//! `/v1/stores/{id}/terminals` and `/v1/terminals/{id}`: a store's terminals (POS, counter,
//! kiosk), each one CodePay `terminal_sn` sent with every order taken there. Access follows the
//! store's (see [`super::stores`]): a store-bound credential reads its store's terminals, a
//! terminal-bound one its own terminal only, and neither changes any.

use super::list::{List, page_limit};
use super::stores::{READ, check_name, create_scope, cursor, manager, visible_store};
use crate::audit::Audit;
use crate::auth::{Access, Principal};
use crate::error::{Error, Result};
use crate::locations::{self, TerminalKind, TerminalPatch, TerminalRecord};
use crate::{AppState, idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::TerminalId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::{IdempotencyKey, StorePath, TerminalPath};
use super::responses::{Authenticated, BadQuery, Conflict, Idempotent, JsonBody, Lookup, Upstream};
use super::schemas::{TerminalIdText, TerminalKindName};

/// A terminal's CodePay identity.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalCodepay {
    /// CodePay `terminal_sn`: 1 to 32 letters, digits, `_` or `-`, unique per store (sandbox:
    /// assigned when omitted).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub terminal_sn: Option<String>,
}

/// `POST /v1/stores/{id}/terminals` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminalRequest {
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = super::schemas::location_name)]
    pub name: String,
    /// CodePay identity (`terminal_sn` required outside sandbox mode).
    pub codepay: Option<TerminalCodepay>,
    /// `pos` (default), `counter`, `kiosk` or `other`.
    #[schema(value_type = Option<TerminalKindName>)]
    pub kind: Option<String>,
    /// Whether payments may name it (default true).
    pub enabled: Option<bool>,
}

/// `PATCH /v1/terminals/{id}` body; omitted fields stay (`terminal_sn` never changes).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTerminalRequest {
    /// New name.
    #[schema(schema_with = super::schemas::location_name_update)]
    pub name: Option<String>,
    /// New kind.
    #[schema(value_type = Option<TerminalKindName>)]
    pub kind: Option<String>,
    /// Enable or disable (a disabled terminal takes no new payment).
    pub enabled: Option<bool>,
}

/// A terminal.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerminalObject {
    /// `term_…`.
    pub id: String,
    /// Always `terminal`.
    pub object: &'static str,
    /// Owner.
    pub merchant_id: String,
    /// The store it stands in.
    pub store_id: String,
    /// Display name.
    pub name: String,
    /// CodePay identity.
    pub codepay: TerminalCodepay,
    /// `pos`, `counter`, `kiosk` or `other`.
    #[schema(value_type = TerminalKindName)]
    pub kind: String,
    /// Whether payments may name it.
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&TerminalRecord> for TerminalObject {
    fn from(t: &TerminalRecord) -> Self {
        Self {
            id: t.id.to_string(),
            object: "terminal",
            merchant_id: t.merchant_id.to_string(),
            store_id: t.store_id.to_string(),
            name: t.name.clone(),
            codepay: TerminalCodepay {
                terminal_sn: Some(t.terminal_sn.clone()),
            },
            kind: t.kind.as_str().to_owned(),
            enabled: t.enabled,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Cursor of the terminal list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a terminal id from the previous page.
    #[param(value_type = TerminalIdText, inline, required = false)]
    pub starting_after: Option<String>,
}

fn kind(value: &str) -> Result<TerminalKind> {
    TerminalKind::parse(value).ok_or_else(|| {
        Error::invalid(
            "parameter_invalid",
            "kind must be `pos`, `counter`, `kiosk` or `other`",
            Some("kind"),
        )
    })
}

/// The terminal `id` as `access` may see it (a 404 otherwise, whatever the reason).
async fn visible_terminal(state: &AppState, access: &Access, id: &str) -> Result<TerminalRecord> {
    let missing = || Error::not_found("terminal", id);
    let tid = TerminalId::parse(id).map_err(|_| missing())?;
    locations::locations(state)?
        .terminal(&tid)
        .await?
        .filter(|t| access.sees(&t.merchant_id, Some(&t.store_id), Some(&t.id)))
        .ok_or_else(missing)
}

/// Add a terminal to a store. In sandbox mode it is registered with the simulator, which
/// assigns the `terminal_sn` when none is given.
#[utoipa::path(post, path = "/v1/stores/{id}/terminals", tag = "stores",
    request_body = CreateTerminalRequest, params(StorePath, IdempotencyKey),
    responses((status = 201, description = "The terminal.", body = TerminalObject),
        Authenticated, Lookup, JsonBody, Idempotent, Conflict, Upstream),
    security(("bearer" = [])))]
pub async fn create_terminal(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let access = manager(&principal)?;
    let store = visible_store(&state, &access, &path).await?;
    let b = json::parse::<CreateTerminalRequest>(&body)?;
    let name = check_name(&b.name)?;
    let given = b.codepay.and_then(|c| c.terminal_sn);
    if let Some(sn) = &given {
        locations::check_codepay_identifier(sn, "codepay.terminal_sn")?;
    }
    let kind = b.kind.as_deref().map(kind).transpose()?;
    let locations = locations::locations(&state)?;
    let scope = create_scope(&principal, &access, "terminals");
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let terminal_sn = match (given, &state.sandbox) {
            (given, Some(sandbox)) => {
                let merchant = state
                    .accounts
                    .merchant(&store.merchant_id)
                    .await?
                    .ok_or_else(|| Error::not_found("merchant", store.merchant_id.as_str()))?;
                sandbox
                    .register_terminal(&merchant.merchant_no, &store.store_no, given.as_deref())
                    .await?
            }
            (Some(sn), None) => sn,
            (None, None) => {
                return Err(Error::invalid(
                    "parameter_missing",
                    "codepay.terminal_sn is required outside sandbox mode",
                    Some("codepay.terminal_sn"),
                ));
            }
        };
        let now = Utc::now();
        let terminal = TerminalRecord {
            id: TerminalId::generate(),
            store_id: store.id.clone(),
            merchant_id: store.merchant_id.clone(),
            name,
            terminal_sn,
            kind: kind.unwrap_or(TerminalKind::Pos),
            enabled: b.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        locations
            .insert_terminal(&terminal, &Audit::by(&principal, "terminal.create"))
            .await?;
        Ok((
            StatusCode::CREATED,
            json::value(&TerminalObject::from(&terminal))?,
        ))
    })
    .await
}

/// List a store's terminals, newest first (a terminal-bound credential sees its own only).
#[utoipa::path(get, path = "/v1/stores/{id}/terminals", tag = "stores",
    params(StorePath, PageQuery),
    responses((status = 200, description = "A page of terminals.", body = List<TerminalObject>),
        Authenticated, Lookup, BadQuery),
    security(("bearer" = [])))]
pub async fn list_terminals(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let access = principal.access(READ)?;
    let store = visible_store(&state, &access, &path).await?;
    let limit = page_limit(query.limit)?;
    let after = cursor(
        query.starting_after.as_deref(),
        "terminal",
        TerminalId::parse,
    )?;
    let locations = locations::locations(&state)?;
    if let Access::Merchant(c) = &access
        && let Some(own) = c.binding.as_ref().and_then(|b| b.terminal_id.as_ref())
    {
        // A terminal-bound credential's list is its one terminal.
        let own = locations
            .terminal(own)
            .await?
            .filter(|t| after.as_ref().is_none_or(|a| t.id < *a));
        let data = own.iter().map(TerminalObject::from).collect();
        return Ok(List::new(data, false).respond());
    }
    let (rows, has_more) = locations
        .list_terminals(&store.id, after.as_ref(), limit)
        .await?;
    Ok(List::new(rows.iter().map(TerminalObject::from).collect(), has_more).respond())
}

/// Read a terminal.
#[utoipa::path(get, path = "/v1/terminals/{id}", tag = "stores",
    params(TerminalPath),
    responses((status = 200, description = "The terminal.", body = TerminalObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn get_terminal(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let access = principal.access(READ)?;
    let t = visible_terminal(&state, &access, &path).await?;
    Ok(HttpResponse::Ok().json(TerminalObject::from(&t)))
}

/// Change a terminal's name, kind or enabled flag (its `terminal_sn` never changes).
#[utoipa::path(patch, path = "/v1/terminals/{id}", tag = "stores",
    request_body = UpdateTerminalRequest, params(TerminalPath),
    responses((status = 200, description = "The terminal as updated.", body = TerminalObject),
        Authenticated, JsonBody, Lookup),
    security(("bearer" = [])))]
pub async fn update_terminal(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let access = manager(&principal)?;
    let t = visible_terminal(&state, &access, &path).await?;
    let b = json::parse::<UpdateTerminalRequest>(&body)?;
    let patch = TerminalPatch {
        name: b.name.as_deref().map(check_name).transpose()?,
        kind: b.kind.as_deref().map(kind).transpose()?,
        enabled: b.enabled,
    };
    let t = locations::locations(&state)?
        .update_terminal(&t.id, &patch, &Audit::by(&principal, "terminal.update"))
        .await?;
    Ok(HttpResponse::Ok().json(TerminalObject::from(&t)))
}

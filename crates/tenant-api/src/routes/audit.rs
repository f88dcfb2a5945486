//! `GET /v1/audit-events`: who changed what. Operators read every merchant's trail (and the
//! platform's own, such as gateway accounts and operator keys); a merchant reads its own with
//! an administrator key (`keys:write`, the scope that can mint keys).

use super::list::{List, page_limit};
use super::responses::{Authenticated, BadQuery};
use super::schemas::MerchantIdText;
use crate::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeZone, Utc};
use domain::MerchantId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /v1/audit-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this merchant (operators; a merchant always reads its own).
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub merchant_id: Option<String>,
    /// Only this action (`merchant.suspend`, `api_key.revoke`, `refund.create`, …).
    #[param(nullable = false, max_length = 64)]
    pub action: Option<String>,
    /// Only entries about this object (`key_…`, `store_…`, `pay_…`, …).
    #[param(nullable = false, max_length = 64)]
    pub target_id: Option<String>,
    /// Only what this API key did (`key_…`).
    #[param(nullable = false, max_length = 64)]
    pub actor: Option<String>,
    /// At or after (RFC 3339).
    #[param(nullable = false)]
    pub created_gte: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    #[param(nullable = false)]
    pub created_lt: Option<DateTime<Utc>>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: the id of the last entry of the previous page (`aud_…`).
    #[param(nullable = false, max_length = 64)]
    pub starting_after: Option<String>,
}

/// What the target of an entry is.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTarget {
    /// `merchant`, `api_key`, `gateway_account`, `store`, `terminal`, `webhook_endpoint`,
    /// `payment`, `refund`, `event`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: String,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventObject {
    /// `aud_…`.
    pub id: String,
    /// Always `audit_event`.
    pub object: &'static str,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who: the API key (`key_…`) that asked, or `system` / `config` for payfac itself.
    pub actor: String,
    /// What.
    pub action: String,
    /// On which object.
    pub target: AuditTarget,
    /// The merchant concerned, if any.
    pub merchant_id: Option<String>,
    /// What changed (never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<store::audit::AuditEntry> for AuditEventObject {
    fn from(e: store::audit::AuditEntry) -> Self {
        Self {
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            created_at: Utc.timestamp_millis_opt(e.at).single().unwrap_or_default(),
            id: e.id,
            object: "audit_event",
            actor: e.actor,
            action: e.action,
            target: AuditTarget {
                kind: e.target_type,
                id: e.target_id,
            },
            merchant_id: e.merchant_id,
        }
    }
}

/// List audit entries, newest first.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of audit entries.",
        body = List<AuditEventObject>), Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    for (param, value) in [
        ("action", &q.action),
        ("target_id", &q.target_id),
        ("actor", &q.actor),
        ("starting_after", &q.starting_after),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > 64) {
            return Err(Error::invalid(
                "parameter_invalid",
                format!("{param} is at most 64 characters"),
                Some(param),
            ));
        }
    }
    let named = q
        .merchant_id
        .as_deref()
        .map(|m| {
            MerchantId::parse(m).map_err(|_| {
                Error::invalid(
                    "parameter_invalid",
                    "merchant_id must be a merchant id",
                    Some("merchant_id"),
                )
            })
        })
        .transpose()?;
    let merchant_id = match principal {
        Principal::Operator { .. } => named,
        Principal::Merchant { .. } => Some(principal.merchant("keys:write")?.clone()),
    };
    let limit = page_limit(q.limit)?;
    let filter = store::audit::AuditFilter {
        merchant_id: merchant_id.map(|m| m.to_string()),
        action: q.action,
        target_id: q.target_id,
        actor: q.actor,
        at_gte: q.created_gte.map(|t| t.timestamp_millis()),
        at_lt: q.created_lt.map(|t| t.timestamp_millis()),
    };
    let (rows, has_more) = state
        .accounts
        .audit_events(&filter, q.starting_after.as_deref(), limit)
        .await?;
    Ok(List::new(
        rows.into_iter().map(AuditEventObject::from).collect(),
        has_more,
    )
    .respond())
}

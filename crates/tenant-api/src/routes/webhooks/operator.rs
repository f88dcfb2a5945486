//! The operator's webhook views across merchants: deliveries and endpoint health.

use super::objects::{DeliveryObject, WebhookEndpointObject, delivery_object, endpoint_object};
use super::{Webhooks, list, page};
use crate::auth::Principal;
use crate::error::Result;
use crate::routes::list::List;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use store::webhook_admin as wd;
use utoipa::IntoParams;

use crate::routes::responses::{Authenticated, BadQuery};

/// Query of `GET /v1/operator/webhook-deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// One merchant's.
    #[param(nullable = false)]
    pub merchant_id: Option<String>,
    /// One endpoint's.
    #[param(nullable = false)]
    pub endpoint_id: Option<String>,
    /// One event's.
    #[param(nullable = false)]
    pub event_id: Option<String>,
    /// `pending`, `failed`, `succeeded` or `dead` (another value matches nothing).
    #[param(nullable = false)]
    pub status: Option<String>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a delivery id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

/// Query of `GET /v1/operator/webhook-endpoints`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    /// One merchant's.
    #[param(nullable = false)]
    pub merchant_id: Option<String>,
    /// Only enabled or disabled ones.
    #[param(nullable = false)]
    pub enabled: Option<bool>,
    /// Only endpoints in a failing streak.
    #[param(nullable = false)]
    pub failing: Option<bool>,
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: an endpoint id from the previous page.
    #[param(nullable = false)]
    pub starting_after: Option<String>,
}

/// Operators: deliveries across merchants, newest first.
#[utoipa::path(get, path = "/v1/operator/webhook-deliveries", tag = "operator",
    params(DeliveryQuery),
    responses((status = 200, description = "A page of deliveries.", body = List<DeliveryObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn operator_deliveries(
    api: Webhooks,
    principal: Principal,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let q = query.into_inner();
    let p = page(q.limit, q.starting_after)?;
    let filter = wd::DeliveryFilter {
        merchant_id: q.merchant_id,
        endpoint_id: q.endpoint_id,
        event_id: q.event_id,
        status: q.status,
    };
    let rows = api.store().list_deliveries(filter, p).await?;
    Ok(list(
        rows.items.iter().map(delivery_object).collect(),
        rows.has_more,
    ))
}

/// Operators: endpoint health (failing streak, backlog, dead deliveries) across merchants.
#[utoipa::path(get, path = "/v1/operator/webhook-endpoints", tag = "operator",
    params(HealthQuery),
    responses(
        (status = 200, description = "A page of endpoints with their health.",
            body = List<WebhookEndpointObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn operator_endpoints(
    api: Webhooks,
    principal: Principal,
    query: web::Query<HealthQuery>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let q = query.into_inner();
    let p = page(q.limit, q.starting_after)?;
    let filter = wd::EndpointHealthFilter {
        merchant_id: q.merchant_id,
        enabled: q.enabled,
        failing: q.failing.unwrap_or(false),
    };
    let rows = api.store().endpoint_health(filter, p).await?;
    let data = rows
        .items
        .iter()
        .map(|h| WebhookEndpointObject {
            merchant_id: Some(h.endpoint.merchant_id.clone()),
            backlog: Some(h.backlog),
            dead_deliveries: Some(h.dead),
            ..endpoint_object(&h.endpoint, None)
        })
        .collect();
    Ok(list(data, rows.has_more))
}

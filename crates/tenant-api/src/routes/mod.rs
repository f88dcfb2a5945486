//! The route table, the extractor error mapping, and the OpenAPI document.

/// Declares a route table once: `$configure` mounts it and `$list` names every `(method, path)`
/// it mounts, so a test can hold the OpenAPI document against what is actually served.
macro_rules! route_table {
    ($(#[$doc:meta])* $vis:vis fn $configure:ident, $list:ident;
     $($method:ident $path:literal => $handler:path),* $(,)?) => {
        $(#[$doc])*
        $vis fn $configure(cfg: &mut actix_web::web::ServiceConfig) {
            cfg$(.route($path, actix_web::web::$method().to($handler)))*;
        }

        /// The `(method, path)` pairs the matching `configure` mounts (relative to `/v1`).
        $vis const $list: &[(&str, &str)] = &[$((stringify!($method), $path)),*];
    };
}
pub(crate) use route_table;

pub mod api_keys;
pub mod audit;
pub mod books;
pub mod gateway_accounts;
pub mod ledger;
pub mod list;
pub mod merchants;
pub mod params;
pub mod payments;
pub mod pricing;
pub mod public;
pub mod reconciliation;
pub mod responses;
pub mod schemas;
pub mod search;
pub mod settlements;
pub mod stores;
pub mod terminals;
pub mod tokens;
pub mod webhooks;

#[cfg(test)]
mod tests;

use crate::AppState;
use crate::error::Error;
use actix_web::web;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The OpenAPI 3.1 document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "payfac tenant API", description = "Multi-merchant QR payments over CodePay."),
    paths(
        merchants::create_merchant, merchants::list_merchants, merchants::get_merchant,
        merchants::update_merchant, merchants::suspend_merchant, merchants::activate_merchant,
        merchants::create_api_key, merchants::list_api_keys, merchants::revoke_api_key,
        api_keys::list_operator_keys, api_keys::create_operator_key, api_keys::revoke_operator_key,
        api_keys::list_own_keys, api_keys::create_own_key, api_keys::revoke_own_key,
        payments::create_payment, payments::list_payments, payments::get_payment,
        payments::cancel_payment, payments::qr_svg, payments::qr_png,
        payments::create_refund, payments::list_refunds, payments::get_refund,
        tokens::create_token,
        payments::search_refunds,
        audit::list_audit_events,
        stores::create_store, stores::list_stores, stores::get_store, stores::update_store,
        terminals::create_terminal, terminals::list_terminals, terminals::get_terminal,
        terminals::update_terminal,
        gateway_accounts::create_gateway_account, gateway_accounts::list_gateway_accounts,
        gateway_accounts::get_gateway_account, gateway_accounts::update_gateway_account,
        webhooks::create_endpoint, webhooks::list_endpoints, webhooks::get_endpoint,
        webhooks::update_endpoint, webhooks::delete_endpoint, webhooks::rotate_secret,
        webhooks::recover, webhooks::list_events, webhooks::get_event, webhooks::list_attempts,
        webhooks::redeliver,
        webhooks::operator::operator_deliveries, webhooks::operator::operator_endpoints,
        pricing::set_pricing, pricing::get_pricing,
        ledger::list_entries, ledger::create_adjustment, ledger::get_balance,
        settlements::list_settlements, settlements::run_settlement, settlements::get_settlement,
        settlements::settlement_lines,
        reconciliation::list_breaks, reconciliation::run_reconciliation,
    ),
    // The error body is named by the response bundles, the optional bodies by `ref(…)`: neither
    // registers its schema itself.
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, merchants::ApiKeyRequest,
        api_keys::OperatorKeyRequest, api_keys::OwnKeyRequest,
    )),
    modifiers(&Bearer, &OneParameterEach),
)]
pub struct ApiDoc;

/// utoipa takes a handler's `{id}` both from its `web::Path` argument (undescribed) and from the
/// shared path type its `params(…)` names (`params::PaymentPath`, …): each parameter is kept
/// once, described.
struct OneParameterEach;

impl utoipa::Modify for OneParameterEach {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for params in operations
                .into_iter()
                .flatten()
                .filter_map(|op| op.parameters.as_mut())
            {
                let mut kept: Vec<RefOr<utoipa::openapi::path::Parameter>> = Vec::new();
                for param in params.drain(..) {
                    let RefOr::T(p) = &param else {
                        kept.push(param);
                        continue;
                    };
                    let same = kept.iter_mut().find(|k| {
                        matches!(k, RefOr::T(k) if k.name == p.name && k.parameter_in == p.parameter_in)
                    });
                    match same {
                        Some(RefOr::T(k)) if k.description.is_none() => *k = p.clone(),
                        Some(_) => {}
                        None => kept.push(param),
                    }
                }
                *params = kept;
            }
        }
    }
}

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Mounts every route of the tenant API on `cfg` with `state`. Wrap the app (or scope) with
/// `actix_web::middleware::from_fn(tenant_api::request_id::middleware)` for `x-request-id`.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let path_cfg = web::PathConfig::default()
        .error_handler(|e, _| Error::invalid("parameter_invalid", e.to_string(), None).into());
    let query_cfg = web::QueryConfig::default().error_handler(|e, _| {
        let text = e.to_string();
        let param = text.split('`').nth(1).map(str::to_owned);
        Error::InvalidRequest {
            code: "parameter_invalid",
            message: text,
            param,
        }
        .into()
    });
    let body_cfg = web::PayloadConfig::new(64 * 1024);
    cfg.app_data(state)
        .app_data(path_cfg)
        .app_data(query_cfg)
        .app_data(body_cfg)
        .route("/openapi.json", web::get().to(openapi_json))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .url("/openapi.json", ApiDoc::openapi()),
        )
        .route("/pay/{id}", web::get().to(public::pay_page))
        .route("/pay/{id}/status", web::get().to(public::pay_status))
        .route(
            "/callbacks/codepay",
            web::post().to(public::codepay_callback),
        )
        .route(
            "/callbacks/codepay/{gateway_account_id}",
            web::post().to(public::codepay_account_callback),
        )
        .service(
            web::scope("/v1")
                .configure(v1_routes)
                .configure(gateway_accounts::configure)
                .configure(stores::configure)
                .configure(webhooks::configure)
                .configure(pricing::configure)
                .configure(ledger::configure)
                .configure(settlements::configure)
                .configure(reconciliation::configure)
                .default_service(web::to(not_found)),
        );
}

route_table! {
    /// The merchant, payment, refund and token routes inside the `/v1` scope.
    fn v1_routes, V1_ROUTES;
    post "/merchants" => merchants::create_merchant,
    get "/merchants" => merchants::list_merchants,
    get "/merchants/{id}" => merchants::get_merchant,
    patch "/merchants/{id}" => merchants::update_merchant,
    post "/merchants/{id}/suspend" => merchants::suspend_merchant,
    post "/merchants/{id}/activate" => merchants::activate_merchant,
    post "/merchants/{id}/api-keys" => merchants::create_api_key,
    get "/merchants/{id}/api-keys" => merchants::list_api_keys,
    delete "/merchants/{id}/api-keys/{key_id}" => merchants::revoke_api_key,
    get "/operator/api-keys" => api_keys::list_operator_keys,
    post "/operator/api-keys" => api_keys::create_operator_key,
    delete "/operator/api-keys/{key_id}" => api_keys::revoke_operator_key,
    get "/api-keys" => api_keys::list_own_keys,
    post "/api-keys" => api_keys::create_own_key,
    delete "/api-keys/{key_id}" => api_keys::revoke_own_key,
    post "/payments" => payments::create_payment,
    get "/payments" => payments::list_payments,
    get "/payments/{id}" => payments::get_payment,
    post "/payments/{id}/cancel" => payments::cancel_payment,
    get "/payments/{id}/qr.svg" => payments::qr_svg,
    get "/payments/{id}/qr.png" => payments::qr_png,
    post "/payments/{id}/refunds" => payments::create_refund,
    get "/payments/{id}/refunds" => payments::list_refunds,
    get "/refunds/{id}" => payments::get_refund,
    get "/refunds" => payments::search_refunds,
    get "/audit-events" => audit::list_audit_events,
    post "/tokens" => tokens::create_token,
}

/// Every `(method, path)` mounted inside `/v1`: what the OpenAPI document must describe.
pub fn mounted_v1_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    V1_ROUTES
        .iter()
        .chain(gateway_accounts::ROUTES)
        .chain(stores::ROUTES)
        .chain(webhooks::ROUTES)
        .chain(pricing::ROUTES)
        .chain(ledger::ROUTES)
        .chain(settlements::ROUTES)
        .chain(reconciliation::ROUTES)
        .copied()
}

async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Unknown `/v1` routes get the error body too; a mounted path asked with a method it is not
/// mounted for is a 405 naming the methods it is (`Allow`), not a 404 that would say the path
/// does not exist.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Error> {
    use actix_web::HttpMessage;
    let matching: Vec<_> = mounted_v1_routes()
        .filter(|(_, path)| {
            actix_web::dev::ResourceDef::new(format!("/v1{path}")).is_match(req.path())
        })
        .collect();
    // A literal path (`/settlements/run`) is its own resource even where a pattern
    // (`/settlements/{id}`) would match it too: only its own methods are allowed.
    let literal = matching.iter().any(|(_, path)| !path.contains('{'));
    let allowed: std::collections::BTreeSet<String> = matching
        .into_iter()
        .filter(|(_, path)| !literal || !path.contains('{'))
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect();
    if allowed.is_empty() {
        return Err(Error::not_found("route", req.path()));
    }
    let allow = Vec::from_iter(allowed).join(", ");
    let mut body = Error::invalid(
        "method_not_allowed",
        format!("{} is served with {allow} only", req.path()),
        None,
    )
    .body();
    // Answered, not raised: the request-id middleware re-renders raised errors without `Allow`.
    body.error.request_id = req
        .extensions()
        .get::<crate::request_id::RequestId>()
        .map(|id| id.0.clone());
    Ok(actix_web::HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(body))
}

//! The route table, the extractor error mapping, and the OpenAPI document.

pub mod gateway_accounts;
pub mod merchants;
pub mod payments;
pub mod public;
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
        payments::create_payment, payments::list_payments, payments::get_payment,
        payments::cancel_payment, payments::qr_svg, payments::qr_png,
        payments::create_refund, payments::list_refunds, payments::get_refund,
        tokens::create_token,
        gateway_accounts::create_gateway_account, gateway_accounts::list_gateway_accounts,
        gateway_accounts::get_gateway_account, gateway_accounts::update_gateway_account,
    ),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

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
        .service(
            web::scope("/v1")
                .route("/merchants", web::post().to(merchants::create_merchant))
                .route("/merchants", web::get().to(merchants::list_merchants))
                .route("/merchants/{id}", web::get().to(merchants::get_merchant))
                .route(
                    "/merchants/{id}",
                    web::patch().to(merchants::update_merchant),
                )
                .route(
                    "/merchants/{id}/suspend",
                    web::post().to(merchants::suspend_merchant),
                )
                .route(
                    "/merchants/{id}/activate",
                    web::post().to(merchants::activate_merchant),
                )
                .route(
                    "/merchants/{id}/api-keys",
                    web::post().to(merchants::create_api_key),
                )
                .route(
                    "/merchants/{id}/api-keys",
                    web::get().to(merchants::list_api_keys),
                )
                .route(
                    "/merchants/{id}/api-keys/{key_id}",
                    web::delete().to(merchants::revoke_api_key),
                )
                .route("/payments", web::post().to(payments::create_payment))
                .route("/payments", web::get().to(payments::list_payments))
                .route("/payments/{id}", web::get().to(payments::get_payment))
                .route(
                    "/payments/{id}/cancel",
                    web::post().to(payments::cancel_payment),
                )
                .route("/payments/{id}/qr.svg", web::get().to(payments::qr_svg))
                .route("/payments/{id}/qr.png", web::get().to(payments::qr_png))
                .route(
                    "/payments/{id}/refunds",
                    web::post().to(payments::create_refund),
                )
                .route(
                    "/payments/{id}/refunds",
                    web::get().to(payments::list_refunds),
                )
                .route("/refunds/{id}", web::get().to(payments::get_refund))
                .route("/tokens", web::post().to(tokens::create_token))
                .configure(gateway_accounts::configure)
                .configure(webhooks::configure)
                .default_service(web::to(not_found)),
        );
}

async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Unknown `/v1` routes get the error body too.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Error> {
    Err(Error::not_found("route", req.path()))
}

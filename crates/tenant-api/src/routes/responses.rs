//! The error responses of the OpenAPI document, in bundles: each bundle is the statuses one
//! family of routes can answer, every one with the [`ErrorBody`] and one description per status.
//! A route lists the bundles of the families it belongs to beside its success response, so a
//! new route documents its errors by saying what it does:
//!
//! ```ignore
//! #[utoipa::path(post, path = "/v1/things/{id}/frobs", tag = "things",
//!     params(ThingPath, IdempotencyKey), // see `super::params`
//!     request_body = FrobRequest,
//!     responses((status = 201, body = FrobObject), Authenticated, JsonBody, Lookup, Idempotent),
//!     security(("bearer" = [])))]
//! ```
//!
//! | bundle            | statuses        | a route uses it when it …                            |
//! |-------------------|-----------------|------------------------------------------------------|
//! | [`Authenticated`] | 401 403 429 503 | takes a [`crate::auth::Principal`] (every `/v1` one) |
//! | [`JsonBody`]      | 400 413         | parses a JSON body ([`crate::json::parse`])          |
//! | [`BadQuery`]      | 400             | takes a `web::Query` (unknown or bad parameters)     |
//! | [`Lookup`]        | 404             | looks up an id of its path (or a store of its body)  |
//! | [`Idempotent`]    | 400 409 422     | runs under [`crate::idempotency::run_resuming`]      |
//! | [`Conflict`]      | 409             | can be refused by a state or a taken reference       |
//! | [`Refused`]       | 422             | can be refused by a business rule                    |
//! | [`Upstream`]      | 502             | calls CodePay (or the sandbox) on the request's path |
//!
//! Bundles may overlap (400 of a body and of a query): a status has one description whichever
//! bundle brings it.

use crate::error::ErrorBody;
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

/// What a documented error status means in this API (the `code` of the body says which case).
pub fn description(status: u16) -> &'static str {
    match status {
        400 => {
            "The request is malformed: a body that is not JSON (`invalid_json`), an unknown \
             field (`unknown_field`), a missing one (`parameter_missing`), a wrong type \
             (`invalid_type`) or value (`parameter_invalid`, …), a bad query parameter or \
             `Idempotency-Key`; `param` names the field."
        }
        401 => {
            "No credential, or an unknown, revoked or expired one (`missing_api_key`, \
             `invalid_api_key`, …); answered with `WWW-Authenticate: Bearer`."
        }
        403 => {
            "The credential may not do this: a scope it lacks (`insufficient_scope`), the wrong \
             kind of key (`operator_key_required`, `merchant_key_required`, \
             `secret_key_required`), a suspended merchant (`merchant_suspended`), or a \
             credential bound to a store or terminal naming or managing what lies beyond its \
             binding (`credential_bound`)."
        }
        404 => {
            "No such object for this caller (`resource_missing`): a malformed id, another \
             merchant's, or one beyond a bound credential's store or terminal is a 404 too; so \
             is a `store_id` or `terminal_id` the request names that is not the merchant's."
        }
        409 => {
            "The object's state, a reference already taken or a concurrent request forbids this \
             now (`conflict_error`), e.g. a request with the same `Idempotency-Key` still running \
             (`idempotency_key_in_flight`)."
        }
        413 => "The body is larger than 64 KiB (`payload_too_large`).",
        422 => {
            "Well-formed, but refused by a business rule or by other objects' state (`code` says \
             which: e.g. `store_disabled`, `terminal_disabled`, `terminal_store_mismatch`, \
             `gateway_account_unknown`, `gateway_account_disabled`), or an `Idempotency-Key` \
             used before with another request (`idempotency_key_reused`)."
        }
        429 => "Over the per-key request rate (`rate_limited`); retry after `Retry-After` seconds.",
        502 => {
            "CodePay (in the sandbox: the simulator) gave no usable answer, or the gateway \
             account the request is routed to cannot be used (`gateway_account_unavailable`); \
             the error `type` is `upstream_error` and the body says what stands."
        }
        503 => {
            "Storage or another dependency is unavailable (`service_unavailable`); nothing was \
             done, retry later."
        }
        _ => "An error.",
    }
}

/// The documented response of an error `status`: its description and the [`ErrorBody`], with
/// the headers that come with it.
pub fn error_response(status: u16) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description(status))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        );
    let header = |text: &str, kind: Type| {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(kind)))
            .description(Some(text))
            .build()
    };
    match status {
        401 => {
            response =
                response.header("WWW-Authenticate", header("Always `Bearer`.", Type::String));
        }
        429 => {
            response = response.header(
                "Retry-After",
                header("Seconds until a request may pass.", Type::Integer),
            );
        }
        _ => {}
    }
    response.build()
}

/// Declares a bundle: a unit type whose [`IntoResponses`] is the error responses of `statuses`.
macro_rules! bundle {
    ($($(#[$doc:meta])* $name:ident: $($status:literal),+;)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl $name {
            /// The statuses this bundle documents.
            pub const STATUSES: &'static [u16] = &[$($status),+];
        }

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                Self::STATUSES
                    .iter()
                    .map(|s| (s.to_string(), RefOr::T(error_response(*s))))
                    .collect()
            }
        }
    )+};
}

bundle! {
    /// Any route behind a key or token: no or a bad credential (401), one not allowed here
    /// (403), the rate limit (429), and the credential's lookup failing (503).
    Authenticated: 401, 403, 429, 503;
    /// A route that parses a JSON body: it does not parse or validate (400), or is over the
    /// 64 KiB body limit (413).
    JsonBody: 400, 413;
    /// A route with query parameters: an unknown or bad one (400).
    BadQuery: 400;
    /// A route that looks up the id in its path, or a `store_id` / `terminal_id` its body
    /// names (404 for a missing, malformed or foreign one).
    Lookup: 404;
    /// A create under `Idempotency-Key`: a bad key (400), the same key still running (409), the
    /// key used with another request (422).
    Idempotent: 400, 409, 422;
    /// A route the object's state or a taken reference can refuse (409).
    Conflict: 409;
    /// A route a business rule can refuse (422).
    Refused: 422;
    /// A route that calls CodePay (or registers with the sandbox) before it answers (502).
    Upstream: 502;
}

//! The crate's one error type, and the ONE place every failure becomes the public error body
//! `{"error":{"type","code","message","param","request_id"}}` with its HTTP status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Everything that can go wrong in the tenant API (the engine's [`payments::PaymentError`]
/// converts into it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed (bad JSON, unknown field, wrong type, bad value).
    #[error("{message}")]
    InvalidRequest {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// The offending field path, if any.
        param: Option<String>,
    },
    /// 401: no, unknown, revoked or expired credentials.
    #[error("{message}")]
    Unauthenticated {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// 403: authenticated but not allowed (scope, suspended merchant, wrong kind of key).
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// 404: no such object for this caller (a foreign id is a 404, never a 403).
    #[error("no such {what}: {id}")]
    NotFound {
        /// `payment`, `refund`, `merchant`, …
        what: &'static str,
        /// The id as asked.
        id: String,
    },
    /// 409: the object's state or a concurrent request forbids this now.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// 422: well-formed but refused by a business rule.
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// The offending field, if any.
        param: Option<String>,
    },
    /// 429: rate limit hit.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may pass.
        retry_after_secs: u64,
    },
    /// 502: CodePay did not give a usable answer.
    #[error("{message}")]
    Upstream {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// 503: storage or coordination unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-swap lost (storage port); retried internally, 409 if it ever escapes.
    #[error("concurrent update, retry")]
    VersionConflict,
    /// A unique reference is taken (storage port).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 400 with a code, message and param.
    pub fn invalid(code: &'static str, message: impl Into<String>, param: Option<&str>) -> Self {
        // The engine's refusals and the API's share their shape: one constructor each.
        payments::PaymentError::invalid(code, message, param).into()
    }

    /// 422 with a code, message and param.
    pub fn unprocessable(
        code: &'static str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        payments::PaymentError::unprocessable(code, message, param).into()
    }

    /// 409 with a code and message.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        payments::PaymentError::conflict(code, message).into()
    }

    /// 404 for a kind of object and the id asked.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        payments::PaymentError::not_found(what, id).into()
    }

    /// The public body, without the request id (added by the request-id middleware).
    pub fn body(&self) -> ErrorBody {
        let (kind, code, param) = match self {
            Error::InvalidRequest { code, param, .. } => {
                ("invalid_request_error", *code, param.clone())
            }
            Error::Unauthenticated { code, .. } => ("authentication_error", *code, None),
            Error::Forbidden { code, .. } => ("permission_error", *code, None),
            Error::NotFound { .. } => ("invalid_request_error", "resource_missing", None),
            Error::Conflict { code, .. } => ("conflict_error", *code, None),
            Error::Unprocessable { code, param, .. } => {
                ("invalid_request_error", *code, param.clone())
            }
            Error::RateLimited { .. } => ("rate_limit_error", "rate_limited", None),
            Error::Upstream { code, .. } => ("upstream_error", *code, None),
            Error::Unavailable(_) => ("api_error", "service_unavailable", None),
            Error::VersionConflict => ("conflict_error", "concurrent_update", None),
            Error::Duplicate(_) => ("conflict_error", "duplicate", None),
        };
        // Storage details are for logs, not for merchants.
        let message = match self {
            Error::Unavailable(_) => "a dependency is unavailable; retry later".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                kind: kind.to_owned(),
                code: code.to_owned(),
                message,
                param,
                request_id: None,
            },
        }
    }
}

/// The error envelope every failure uses.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Broad class: `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `conflict_error`, `rate_limit_error`, `upstream_error`, `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable machine code (`parameter_invalid`, `resource_missing`, …).
    pub code: String,
    /// Human-readable text.
    pub message: String,
    /// The offending request field, when there is one.
    pub param: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } | Error::VersionConflict | Error::Duplicate(_) => {
                StatusCode::CONFLICT
            }
            Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Error::Unavailable(detail) = self {
            tracing::warn!(%detail, "dependency unavailable");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let Error::RateLimited { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let Error::Unauthenticated { .. } = self {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(self.body())
    }
}

/// The engine's errors as the API answers them: the one place a payment failure gets its
/// HTTP status and public code.
impl From<payments::PaymentError> for Error {
    fn from(e: payments::PaymentError) -> Self {
        use payments::PaymentError as P;
        match e {
            P::Invalid {
                code,
                message,
                param,
            } => Error::InvalidRequest {
                code,
                message,
                param,
            },
            P::MerchantInactive => Error::Forbidden {
                code: "merchant_suspended",
                message: e.to_string(),
            },
            P::NotFound { what, id } => Error::NotFound { what, id },
            P::Conflict { code, message } => Error::Conflict { code, message },
            P::Unprocessable {
                code,
                message,
                param,
            } => Error::Unprocessable {
                code,
                message,
                param,
            },
            P::Upstream { code, message } => Error::Upstream { code, message },
            P::Unavailable(detail) => Error::Unavailable(detail),
            P::VersionConflict => Error::VersionConflict,
            P::Duplicate(what) => Error::Duplicate(what),
        }
    }
}

impl From<domain::DomainError> for Error {
    fn from(e: domain::DomainError) -> Self {
        Error::invalid("parameter_invalid", e.to_string(), None)
    }
}

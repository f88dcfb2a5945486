//! `x-request-id` on every response (an incoming sane one is honoured), and the request id
//! written into every error body, including errors raised by extractors and by actix itself.

use crate::error::{Error, ErrorBody, ErrorDetail};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};

/// The request id of the current request, in request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// `x-request-id`.
pub const HEADER: &str = "x-request-id";

fn sane(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware (`actix_web::middleware::from_fn(request_id::middleware)`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", ulid::Ulid::new()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let (http_req, res) = match next.call(req).await {
        Ok(res) => {
            let res = res.map_into_boxed_body();
            let rendered = res.response().error().map(|e| render(e, &id));
            match rendered {
                Some(new) => {
                    let (r, _) = res.into_parts();
                    (r, new)
                }
                None => {
                    let (r, resp) = res.into_parts();
                    (r, resp)
                }
            }
        }
        Err(e) => {
            // Middleware errors carry no request; answer them without failing the connection.
            return Err(e);
        }
    };
    let mut res = ServiceResponse::new(http_req, res);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}

/// Renders any error as the public body with the request id; actix's own errors (payload too
/// large, …) are mapped to the same envelope.
fn render(err: &actix_web::Error, id: &str) -> HttpResponse {
    let (status, mut body, retry_after) = match err.as_error::<Error>() {
        Some(e) => {
            let retry = match e {
                Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
                _ => None,
            };
            (e.status_code(), e.body(), retry)
        }
        None => {
            let status = err.as_response_error().status_code();
            let code = if status.as_u16() == 413 {
                "payload_too_large"
            } else if status.is_client_error() {
                "invalid_request"
            } else {
                "internal_error"
            };
            let body = ErrorBody {
                error: ErrorDetail {
                    kind: if status.is_client_error() {
                        "invalid_request_error"
                    } else {
                        "api_error"
                    }
                    .to_owned(),
                    code: code.to_owned(),
                    message: err.to_string(),
                    param: None,
                    request_id: None,
                },
            };
            (status, body, None)
        }
    };
    body.error.request_id = Some(id.to_owned());
    let mut builder = HttpResponse::build(status);
    if let Some(secs) = retry_after {
        builder.insert_header(("Retry-After", secs.to_string()));
    }
    if status.as_u16() == 401 {
        builder.insert_header(("WWW-Authenticate", "Bearer"));
    }
    builder.json(body)
}

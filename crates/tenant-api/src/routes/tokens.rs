//! `POST /v1/tokens`: a merchant key mints a short-lived token with a subset of its scopes,
//! optionally bound to a store or a terminal (a POS token). A token minted by a bound key is
//! bound within the key's binding: to the key's own when the request names none, never wider.

use crate::AppState;
use crate::auth::Principal;
use crate::auth::jwt::Claims;
use crate::error::{Error, Result};
use crate::json;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::responses::{Authenticated, JsonBody, Lookup, Refused};
use super::schemas::{ScopeName, StoreIdText, TerminalIdText};

/// Longest token life, seconds.
const MAX_TTL: i64 = 3600;
/// Default token life, seconds.
const DEFAULT_TTL: i64 = 900;

/// `POST /v1/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Scopes wanted, each held by the calling key (403 `insufficient_scope` otherwise).
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
    /// Lifetime in seconds (60 … 3600, default 900).
    #[schema(minimum = 60, maximum = 3600)]
    pub expires_in: Option<i64>,
    /// Bind the token to this store of the merchant (`store_…`).
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<String>,
    /// Bind the token to this terminal of the merchant (`term_…`, implies its store).
    #[schema(value_type = Option<TerminalIdText>)]
    pub terminal_id: Option<String>,
}

/// A minted token (its bearer value never appears in `Debug`).
#[derive(Serialize, ToSchema)]
pub struct TokenObject {
    /// Always `token`.
    pub object: &'static str,
    /// The bearer token.
    pub token: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The store the token is bound to (also its claim `store_id`), if any.
    pub store_id: Option<String>,
    /// The terminal the token is bound to (also its claim `terminal_id`), if any.
    pub terminal_id: Option<String>,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for TokenObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenObject")
            .field("token", &"***")
            .field("scopes", &self.scopes)
            .field("store_id", &self.store_id)
            .field("terminal_id", &self.terminal_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mint a scoped token (needs the merchant's secret key, not another token).
#[utoipa::path(post, path = "/v1/tokens", tag = "auth",
    request_body = TokenRequest,
    responses((status = 201, description = "The token.", body = TokenObject), Authenticated,
        JsonBody, Lookup, Refused),
    security(("bearer" = [])))]
pub async fn create_token(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let Principal::Merchant {
        id,
        key_id,
        scopes,
        via_token,
        binding: key_binding,
    } = &principal
    else {
        return Err(Error::Forbidden {
            code: "merchant_key_required",
            message: "tokens are minted with a merchant secret key".to_owned(),
        });
    };
    if *via_token {
        return Err(Error::Forbidden {
            code: "secret_key_required",
            message: "a token cannot mint tokens".to_owned(),
        });
    }
    let b = json::parse::<TokenRequest>(&body)?;
    if b.scopes.is_empty() {
        return Err(Error::invalid(
            "parameter_invalid",
            "ask for at least one scope",
            Some("scopes"),
        ));
    }
    if let Some(extra) = b.scopes.iter().find(|s| !scopes.contains(s)) {
        return Err(Error::Forbidden {
            code: "insufficient_scope",
            message: format!("this key does not hold `{extra}`"),
        });
    }
    let ttl = b.expires_in.unwrap_or(DEFAULT_TTL);
    if !(60..=MAX_TTL).contains(&ttl) {
        return Err(Error::invalid(
            "parameter_invalid",
            "expires_in must be between 60 and 3600",
            Some("expires_in"),
        ));
    }
    let named =
        super::api_keys::key_binding(&state, id, b.store_id.as_deref(), b.terminal_id.as_deref())
            .await?;
    let binding = match (named, key_binding) {
        (None, own) => own.clone(),
        (Some(n), Some(own)) if !own.contains(&n) => {
            return Err(own.refusal(&format!("a token bound to {}", n.describe())));
        }
        (Some(n), _) => Some(n),
    };
    let store_id = binding.as_ref().map(|b| b.store_id.to_string());
    let terminal_id = binding
        .as_ref()
        .and_then(|b| b.terminal_id.as_ref())
        .map(ToString::to_string);
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: id.to_string(),
        key: key_id.to_string(),
        scope: b.scopes.join(" "),
        iat: now,
        exp: now + ttl,
        iss: "payfac".to_owned(),
        aud: crate::auth::jwt::AUDIENCE.to_owned(),
        store_id: store_id.clone(),
        terminal_id: terminal_id.clone(),
    };
    let token = state.tokens.mint(&claims)?;
    Ok(HttpResponse::Created().json(TokenObject {
        object: "token",
        token,
        scopes: b.scopes,
        store_id,
        terminal_id,
        expires_at: claims.exp,
    }))
}

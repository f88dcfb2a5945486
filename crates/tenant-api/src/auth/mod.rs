//! Who is calling: operator keys, merchant secret keys, and scoped tokens, resolved into a
//! [`Principal`] by an actix extractor that also applies the per-key rate limit. A merchant
//! credential may be bound to a store or a terminal ([`binding`]).

pub mod binding;
pub mod jwt;
pub mod keys;
pub mod rate_limit;

use crate::AppState;
use crate::error::{Error, Result};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
pub use binding::{Access, Binding, MerchantCaller};
use domain::{ApiKeyId, MerchantId};
use std::future::Future;
use std::pin::Pin;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A facilitator operator (manages merchants).
    Operator {
        /// The key used.
        key_id: ApiKeyId,
    },
    /// A merchant's system, with the scopes of its key or token.
    Merchant {
        /// The merchant.
        id: MerchantId,
        /// The key used (directly or to mint the token).
        key_id: ApiKeyId,
        /// What it may do.
        scopes: Vec<String>,
        /// True when authenticated by a token rather than the secret key.
        via_token: bool,
        /// The store or terminal the credential is bound to (`None`: the whole merchant).
        binding: Option<Binding>,
    },
}

impl Principal {
    /// The merchant, if it holds `scope` and is not bound to a store or terminal; operators
    /// get 403 (they act on merchants, not as them). This is what a route that knows nothing of
    /// bindings uses, so a bound credential is refused there (403 `credential_bound`) rather
    /// than let through to the whole merchant; routes that honour a binding use
    /// [`Self::caller`] or [`Self::access`].
    pub fn merchant(&self, scope: &str) -> Result<&MerchantId> {
        let caller = self.scoped(scope)?;
        match caller.1 {
            None => Ok(caller.0),
            Some(b) => Err(b.refusal("this endpoint")),
        }
    }

    /// The merchant credential with `scope`, bound or not (the route enforces the binding);
    /// operators get 403 `merchant_key_required`.
    pub fn caller(&self, scope: &str) -> Result<MerchantCaller> {
        let (id, binding) = self.scoped(scope)?;
        Ok(MerchantCaller {
            id: id.clone(),
            binding: binding.cloned(),
        })
    }

    /// What the caller may read with `scope`: everything for an operator (operators hold no
    /// scopes and need none), or the merchant's objects within its binding.
    pub fn access(&self, scope: &str) -> Result<Access> {
        match self {
            Principal::Operator { .. } => Ok(Access::Operator),
            Principal::Merchant { .. } => self.caller(scope).map(Access::Merchant),
        }
    }

    fn scoped(&self, scope: &str) -> Result<(&MerchantId, Option<&Binding>)> {
        match self {
            Principal::Merchant {
                id,
                scopes,
                binding,
                ..
            } if scopes.iter().any(|s| s == scope) => Ok((id, binding.as_ref())),
            Principal::Merchant { .. } => Err(Error::Forbidden {
                code: "insufficient_scope",
                message: format!("this credential lacks the `{scope}` scope"),
            }),
            Principal::Operator { .. } => Err(Error::Forbidden {
                code: "merchant_key_required",
                message: "this endpoint needs a merchant key or token".to_owned(),
            }),
        }
    }

    /// Succeeds for operators only.
    pub fn operator(&self) -> Result<()> {
        match self {
            Principal::Operator { .. } => Ok(()),
            Principal::Merchant { .. } => Err(Error::Forbidden {
                code: "operator_key_required",
                message: "this endpoint needs an operator key".to_owned(),
            }),
        }
    }

    /// The key id, for rate limiting and audit.
    pub fn key_id(&self) -> &ApiKeyId {
        match self {
            Principal::Operator { key_id } | Principal::Merchant { key_id, .. } => key_id,
        }
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::Unauthenticated {
        code: "invalid_api_key",
        message: message.to_owned(),
    }
}

/// Resolves a bearer credential. The account store may cache keys for at most a second
/// (`adapters::cached_accounts`): a revoked key is refused within that.
pub async fn authenticate(state: &AppState, bearer: &str) -> Result<Principal> {
    let now = chrono::Utc::now();
    if bearer.starts_with(keys::OPERATOR_PREFIX) || bearer.starts_with(keys::MERCHANT_PREFIX) {
        let key = state
            .accounts
            .api_key_by_hash(&keys::hash_secret(bearer))
            .await?
            .ok_or_else(|| unauthenticated("unknown API key"))?;
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now) {
            return Err(unauthenticated("this API key is revoked or expired"));
        }
        touch_last_used(state, &key.id, now);
        return match (key.merchant_id, bearer.starts_with(keys::OPERATOR_PREFIX)) {
            (None, true) => Ok(Principal::Operator { key_id: key.id }),
            (Some(id), false) => Ok(Principal::Merchant {
                id,
                key_id: key.id,
                scopes: jwt::effective_scopes(key.scopes),
                via_token: false,
                binding: key.binding,
            }),
            _ => Err(unauthenticated("unknown API key")),
        };
    }
    let claims = state.tokens.verify(bearer)?;
    let key_id = ApiKeyId::parse(&claims.key).map_err(|_| unauthenticated("invalid token"))?;
    let merchant = MerchantId::parse(&claims.sub).map_err(|_| unauthenticated("invalid token"))?;
    // The minting key must still be live: revoking a key revokes its tokens too.
    let key = state
        .accounts
        .api_key(&key_id)
        .await?
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now))
        .filter(|k| k.merchant_id.as_ref() == Some(&merchant))
        .ok_or_else(|| unauthenticated("the key behind this token is revoked"))?;
    touch_last_used(state, &key.id, now);
    // A token is bound as it was minted, never wider than its key: a key's binding is fixed at
    // its creation, so a token claiming more was not minted by it.
    let claimed = Binding::from_parts(claims.store_id.as_deref(), claims.terminal_id.as_deref())
        .map_err(|()| unauthenticated("invalid token"))?;
    let binding = match (claimed, key.binding) {
        (Some(c), Some(k)) if !k.contains(&c) => return Err(unauthenticated("invalid token")),
        (Some(c), _) => Some(c),
        (None, k) => k,
    };
    let key_scopes = jwt::effective_scopes(key.scopes);
    Ok(Principal::Merchant {
        id: merchant,
        key_id: key.id,
        scopes: claims
            .scope
            .split_whitespace()
            .filter(|s| key_scopes.iter().any(|k| k == s))
            .map(str::to_owned)
            .collect(),
        via_token: true,
        binding,
    })
}

/// How often one process records a key's use: the list shows "last used" to the minute, and a
/// write per request would put every authenticated call behind SQLite's writer lock.
const TOUCH_EVERY_SECS: i64 = 60;

/// Records that `key` was used, at most once a minute per process, off the request's path.
fn touch_last_used(state: &AppState, key: &ApiKeyId, now: chrono::DateTime<chrono::Utc>) {
    static LAST: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<ApiKeyId, i64>>> =
        std::sync::OnceLock::new();
    let due = {
        let mut last = LAST
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(key) {
            Some(at) if now.timestamp() - at < TOUCH_EVERY_SECS => false,
            _ => {
                last.insert(key.clone(), now.timestamp());
                true
            }
        }
    };
    if due {
        let (accounts, key) = (state.accounts.clone(), key.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = accounts.touch_api_key(&key, now).await {
                tracing::debug!(error = %e, "cannot record an API key's last use");
            }
        });
    }
}

impl FromRequest for Principal {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Principal>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| Error::Unavailable("application state missing".to_owned()))?;
            let header = header.ok_or_else(|| Error::Unauthenticated {
                code: "missing_api_key",
                message: "send `Authorization: Bearer <key or token>`".to_owned(),
            })?;
            let bearer = header
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| unauthenticated("expected a Bearer credential"))?;
            let principal = authenticate(&state, bearer).await?;
            // The server's request span declares `merchant_id`: every log line of this request
            // then names the tenant.
            if let Principal::Merchant { id, .. } = &principal {
                tracing::Span::current().record("merchant_id", tracing::field::display(id));
            }
            state
                .rate_limiter
                .check(principal.key_id().as_str())
                .await?;
            Ok(principal)
        })
    }
}

//! Short-lived scoped tokens (`POST /v1/tokens`): HS256 JWTs with a `kid` so signing keys can
//! rotate. New tokens use the current key; tokens of a previous key verify only while that key
//! is still configured as previous (`master_key_previous` / `jwt_signing_key_previous`): the
//! overlap is as long as the operator keeps it, and removing the old key ends it. Every token
//! names its audience ([`AUDIENCE`]) and tokens for any other audience are refused, so a JWT
//! another service signs with a shared key cannot be replayed against the tenant API.

use crate::error::{Error, Result};
use domain::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `aud` of every payfac merchant token, checked on each request.
pub const AUDIENCE: &str = "payfac:tenant-api";

/// Every scope a merchant credential can carry.
pub const ALL_SCOPES: &[&str] = &[
    "payments:read",
    "payments:write",
    "refunds:read",
    "refunds:write",
    "webhooks:read",
    "webhooks:write",
    "keys:write",
    "stores:read",
    "stores:write",
];

/// What "all scopes" was before the webhook scopes existed: a key stored with exactly this set
/// was issued with the default and managed webhooks with its secret, so it keeps doing so.
const LEGACY_ALL_SCOPES: &[&str] = &[
    "payments:read",
    "payments:write",
    "refunds:read",
    "refunds:write",
];

/// What "all scopes" was before the store scopes existed: a key stored with exactly this set
/// was issued with the default, which now includes managing the merchant's stores.
const PRE_STORES_ALL_SCOPES: &[&str] = &[
    "payments:read",
    "payments:write",
    "refunds:read",
    "refunds:write",
    "webhooks:read",
    "webhooks:write",
    "keys:write",
];

/// The scopes a stored key actually holds (see `LEGACY_ALL_SCOPES` and
/// `PRE_STORES_ALL_SCOPES`): a key stored with an earlier default set holds today's.
pub fn effective_scopes(stored: Vec<String>) -> Vec<String> {
    let is = |set: &[&str]| {
        stored.len() == set.len() && set.iter().all(|l| stored.iter().any(|s| s == l))
    };
    let legacy_default = is(LEGACY_ALL_SCOPES) || is(PRE_STORES_ALL_SCOPES);
    if legacy_default {
        ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        stored
    }
}

/// The claims of a payfac token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The merchant id.
    pub sub: String,
    /// The API key that minted it (revoking the key kills its tokens).
    pub key: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issuer, always `payfac`.
    pub iss: String,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// The store the token is bound to (`store_…`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// The terminal the token is bound to (`term_…`), if any (with its store in `store_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

/// Signs and verifies tokens with a set of HS256 keys by `kid`.
pub struct TokenIssuer {
    current: String,
    keys: HashMap<String, Secret>,
}

impl TokenIssuer {
    /// `keys` are `(kid, secret)`; the first is used to sign. Secrets shorter than 32 bytes
    /// are refused: HS256 is only as strong as its key.
    pub fn new(keys: Vec<(String, Secret)>) -> Result<Self> {
        let current = keys
            .first()
            .map(|(kid, _)| kid.clone())
            .ok_or_else(|| Error::Unavailable("no token signing key configured".to_owned()))?;
        if keys.iter().any(|(_, s)| s.expose().len() < 32) {
            return Err(Error::Unavailable(
                "token signing keys must be at least 32 bytes".to_owned(),
            ));
        }
        Ok(Self {
            current,
            keys: keys.into_iter().collect(),
        })
    }

    /// A `kid` naming `secret` without revealing it: a digest prefix, so the same key gets the
    /// same id in every process and after every restart.
    pub fn kid_for(prefix: &str, secret: &Secret) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(secret.expose().as_bytes());
        format!("{prefix}-{}", hex::encode(&digest[..4]))
    }

    /// Mints a token.
    pub fn mint(&self, claims: &Claims) -> Result<String> {
        let secret = self
            .keys
            .get(&self.current)
            .ok_or_else(|| Error::Unavailable("signing key missing".to_owned()))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret.expose().as_bytes()),
        )
        .map_err(|e| Error::Unavailable(format!("token signing failed: {e}")))
    }

    /// Verifies signature, `kid`, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let invalid = || Error::Unauthenticated {
            code: "invalid_token",
            message: "the token is invalid or expired".to_owned(),
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let secret = header
            .kid
            .as_ref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["payfac"]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.expose().as_bytes()),
            &validation,
        )
        .map(|d| d.claims)
        .map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "mer_01J0000000000000000000000".into(),
            key: "key_x".into(),
            scope: "payments:read".into(),
            iat: now,
            exp: now + exp_in,
            iss: "payfac".into(),
            aud: AUDIENCE.into(),
            store_id: None,
            terminal_id: None,
        }
    }

    fn key(c: char) -> Secret {
        Secret::new(std::iter::repeat_n(c, 32).collect::<String>())
    }

    #[test]
    fn only_the_old_default_set_gains_the_webhook_scopes() {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let legacy = v(LEGACY_ALL_SCOPES);
        assert_eq!(effective_scopes(legacy), v(ALL_SCOPES));
        assert_eq!(effective_scopes(v(PRE_STORES_ALL_SCOPES)), v(ALL_SCOPES));
        let narrow = v(&["payments:read", "payments:write"]);
        assert_eq!(effective_scopes(narrow.clone()), narrow);
        let current = v(ALL_SCOPES);
        assert_eq!(effective_scopes(current.clone()), current);
    }

    #[test]
    fn tokens_verify_across_rotation_and_expire() {
        let old = TokenIssuer::new(vec![("k1".into(), key('a'))]).expect("issuer");
        let rotated = TokenIssuer::new(vec![("k2".into(), key('b')), ("k1".into(), key('a'))])
            .expect("issuer");
        let t = old.mint(&claims(60)).expect("mint");
        assert_eq!(
            rotated.verify(&t).expect("still valid").scope,
            "payments:read"
        );
        let t2 = rotated.mint(&claims(60)).expect("mint");
        assert!(old.verify(&t2).is_err(), "unknown kid is refused");
        let expired = old.mint(&claims(-5)).expect("mint");
        assert!(old.verify(&expired).is_err());
        let mut tampered = t.clone();
        tampered.push('x');
        assert!(old.verify(&tampered).is_err());
    }

    #[test]
    fn a_previous_key_verifies_only_while_it_is_configured() {
        let old = TokenIssuer::new(vec![("k1".into(), key('a'))]).expect("issuer");
        let t = old.mint(&claims(60)).expect("mint");
        let overlap = TokenIssuer::new(vec![("k2".into(), key('b')), ("k1".into(), key('a'))])
            .expect("issuer");
        assert!(overlap.verify(&t).is_ok(), "during the overlap");
        let after = TokenIssuer::new(vec![("k2".into(), key('b'))]).expect("issuer");
        assert!(after.verify(&t).is_err(), "after the overlap");
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let issuer = TokenIssuer::new(vec![("k1".into(), key('a'))]).expect("issuer");
        let mut c = claims(60);
        c.aud = "some-other-service".into();
        let t = issuer.mint(&c).expect("mint");
        assert!(issuer.verify(&t).is_err());
    }

    #[test]
    fn a_token_without_audience_is_refused() {
        #[derive(Serialize)]
        struct NoAud {
            sub: String,
            key: String,
            scope: String,
            iat: i64,
            exp: i64,
            iss: String,
        }
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let t = jsonwebtoken::encode(
            &header,
            &NoAud {
                sub: "mer_x".into(),
                key: "key_x".into(),
                scope: "payments:read".into(),
                iat: now,
                exp: now + 60,
                iss: "payfac".into(),
            },
            &EncodingKey::from_secret(key('a').expose().as_bytes()),
        )
        .expect("encode");
        let issuer = TokenIssuer::new(vec![("k1".into(), key('a'))]).expect("issuer");
        assert!(issuer.verify(&t).is_err());
    }
}

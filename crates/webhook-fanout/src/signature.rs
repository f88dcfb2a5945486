//! Standard Webhooks v1 signatures (symmetric, HMAC-SHA256).
//!
//! A message is signed over `"{webhook-id}.{webhook-timestamp}.{body}"` with the raw body bytes:
//! signing bytes rather than a re-serialised JSON value is what lets a receiver verify without
//! knowing how payfac formats JSON. `webhook-signature` carries one space-separated `v1,<base64>`
//! entry per live secret, so during a rotation receivers holding either secret verify.

use crate::WebhookError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use domain::Secret;
use hmac::{Hmac, KeyInit, Mac};
use rand::TryRngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The prefix every payfac webhook secret carries.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header: the event id, stable across retries (receivers dedupe on it).
pub const HEADER_ID: &str = "webhook-id";
/// Header: unix seconds of this attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The tolerance receivers (and [`verify`]) apply to `webhook-timestamp`, as in the spec.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;
/// Bytes of key material in a freshly generated secret (the spec recommends 24 to 64).
const SECRET_KEY_BYTES: usize = 32;

/// An endpoint's signing secret: the `whsec_…` text (shown once to the merchant) and its key.
#[derive(Clone)]
pub struct WebhookSecret {
    text: Secret,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A fresh secret from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, WebhookError> {
        let mut key = vec![0u8; SECRET_KEY_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| WebhookError::Random(e.to_string()))?;
        let text = Secret::new(format!("{SECRET_PREFIX}{}", B64.encode(&key)));
        Ok(Self { text, key })
    }

    /// Parses `whsec_<base64>`; the prefix is optional, as in the reference libraries.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(WebhookError::InvalidSecret("empty"));
        }
        let key = B64
            .decode(encoded)
            .map_err(|_| WebhookError::InvalidSecret("not base64"))?;
        if key.is_empty() {
            return Err(WebhookError::InvalidSecret("empty key"));
        }
        Ok(Self {
            text: Secret::new(format!("{SECRET_PREFIX}{encoded}")),
            key,
        })
    }

    /// The `whsec_…` text; call only to show it once or to encrypt it for storage.
    pub fn expose(&self) -> &str {
        self.text.expose()
    }

    /// The `v1,<base64>` signature of one message under this secret.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        self.hmac(msg_id, timestamp, body)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    fn hmac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; `parse` already refused an empty one.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// True when `signature` (raw bytes) is this secret's MAC of the message, in constant time.
    fn matches(&self, msg_id: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.hmac(msg_id, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// The three Standard Webhooks headers of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (unix seconds).
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
}

/// Signs `body` with every live secret: the `webhook-signature` value.
pub fn sign(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<SignedHeaders, WebhookError> {
    if secrets.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    let signature = secrets
        .iter()
        .map(|s| s.signature(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(SignedHeaders {
        id: msg_id.to_owned(),
        timestamp,
        signature,
    })
}

/// Verifies a received message the way a receiver does: timestamp within `tolerance_secs` of
/// `now` and at least one `v1` entry matching one of `secrets`. Unknown versions are ignored.
pub fn verify(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    if msg_id.is_empty() {
        return Err(WebhookError::InvalidHeader { header: HEADER_ID });
    }
    let timestamp: i64 =
        timestamp_header
            .trim()
            .parse()
            .map_err(|_| WebhookError::InvalidHeader {
                header: HEADER_TIMESTAMP,
            })?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err(WebhookError::TimestampOutOfTolerance);
    }
    if signature_header.trim().is_empty() {
        return Err(WebhookError::InvalidHeader {
            header: HEADER_SIGNATURE,
        });
    }
    let matched = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        .any(|sig| {
            secrets
                .iter()
                .any(|s| s.matches(msg_id, timestamp, body, &sig))
        });
    if matched {
        Ok(())
    } else {
        Err(WebhookError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published Standard Webhooks vectors (spec repository, reference library tests).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_secret() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_SECRET).unwrap()
    }

    #[test]
    fn the_published_vector_signs_to_the_published_signature() {
        let h = sign(&[vector_secret()], VECTOR_ID, VECTOR_TS, VECTOR_BODY).unwrap();
        assert_eq!(h.signature, VECTOR_SIG);
        assert_eq!(h.id, VECTOR_ID);
        assert_eq!(h.timestamp, VECTOR_TS);
    }

    #[test]
    fn the_rust_reference_vector_signs_too() {
        // Second published vector (the reference Rust library's sign test).
        let s = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            s.signature("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_published_vector_verifies_with_and_without_prefix() {
        for text in [VECTOR_SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            let s = WebhookSecret::parse(text).unwrap();
            let ts = VECTOR_TS.to_string();
            verify(
                &[s],
                VECTOR_ID,
                &ts,
                VECTOR_SIG,
                VECTOR_BODY,
                VECTOR_TS,
                300,
            )
            .unwrap();
        }
    }

    #[test]
    fn a_multi_signature_header_verifies_when_one_entry_matches() {
        // The reference suite's "multi sig payload": junk v1, a v2 entry, then the real one.
        let header = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
             v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {VECTOR_SIG} \
             v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        let ts = VECTOR_TS.to_string();
        verify(
            &[vector_secret()],
            VECTOR_ID,
            &ts,
            &header,
            VECTOR_BODY,
            VECTOR_TS,
            300,
        )
        .unwrap();
    }

    #[test]
    fn tampering_with_anything_signed_fails() {
        let s = vector_secret();
        let ts = VECTOR_TS.to_string();
        let v = |id: &str, ts: &str, sig: &str, body: &[u8]| {
            verify(std::slice::from_ref(&s), id, ts, sig, body, VECTOR_TS, 300)
        };
        assert!(matches!(
            v(VECTOR_ID, &ts, VECTOR_SIG, br#"{"test": 2432232315}"#),
            Err(WebhookError::SignatureMismatch)
        ));
        assert!(v("msg_other", &ts, VECTOR_SIG, VECTOR_BODY).is_err());
        assert!(v(VECTOR_ID, &ts, "v1,dawfeoifkpqwoekfpqoekf", VECTOR_BODY).is_err());
        assert!(v(VECTOR_ID, &ts, &VECTOR_SIG[..8], VECTOR_BODY).is_err());
        assert!(v(VECTOR_ID, &ts, "v1,", VECTOR_BODY).is_err());
        assert!(v(VECTOR_ID, &ts, "", VECTOR_BODY).is_err());
        assert!(v(VECTOR_ID, "hello", VECTOR_SIG, VECTOR_BODY).is_err());
        assert!(v("", &ts, VECTOR_SIG, VECTOR_BODY).is_err());
        // The same signature under another timestamp is not valid: the timestamp is signed.
        let later = (VECTOR_TS + 1).to_string();
        assert!(
            verify(
                std::slice::from_ref(&s),
                VECTOR_ID,
                &later,
                VECTOR_SIG,
                VECTOR_BODY,
                VECTOR_TS,
                300
            )
            .is_err()
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused() {
        let s = vector_secret();
        let ts = VECTOR_TS.to_string();
        for now in [VECTOR_TS - 301, VECTOR_TS + 301] {
            assert!(matches!(
                verify(
                    std::slice::from_ref(&s),
                    VECTOR_ID,
                    &ts,
                    VECTOR_SIG,
                    VECTOR_BODY,
                    now,
                    300
                ),
                Err(WebhookError::TimestampOutOfTolerance)
            ));
        }
        verify(
            &[s],
            VECTOR_ID,
            &ts,
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS + 300,
            300,
        )
        .unwrap();
    }

    #[test]
    fn generated_secrets_are_whsec_with_32_random_bytes_and_distinct() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(B64.decode(&a.expose()[6..]).unwrap().len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(
            WebhookSecret::parse(a.expose()).unwrap().expose(),
            a.expose()
        );
    }

    #[test]
    fn rotation_signs_with_both_secrets_and_either_verifies() {
        let old = WebhookSecret::generate().unwrap();
        let new = WebhookSecret::generate().unwrap();
        let h = sign(&[new.clone(), old.clone()], "evt_1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(h.signature.split(' ').count(), 2);
        let ts = h.timestamp.to_string();
        for s in [old, new] {
            verify(&[s], "evt_1", &ts, &h.signature, b"{}", 1_700_000_000, 300).unwrap();
        }
        let stranger = WebhookSecret::generate().unwrap();
        assert!(
            verify(
                &[stranger],
                "evt_1",
                &ts,
                &h.signature,
                b"{}",
                1_700_000_000,
                300
            )
            .is_err()
        );
    }

    #[test]
    fn bad_secrets_and_no_secret_are_errors_not_panics() {
        assert!(WebhookSecret::parse("").is_err());
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::parse("whsec_!!!not base64").is_err());
        assert!(matches!(
            sign(&[], "evt", 1, b""),
            Err(WebhookError::NoSecret)
        ));
    }

    #[test]
    fn a_secret_never_prints_itself() {
        let s = WebhookSecret::generate().unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret(***)");
    }
}

//! API key secrets: generation, hashing, display prefixes.
//!
//! Secrets are 32 random bytes (base62-ish via hex would be longer; we use URL-safe base64) so
//! guessing is hopeless; that is why a single SHA-256 is the right hash here and not a slow
//! password hash: the input has full entropy, and every request must verify its key cheaply.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of operator keys.
pub const OPERATOR_PREFIX: &str = "op_";
/// Prefix of merchant secret keys.
pub const MERCHANT_PREFIX: &str = "sk_";
/// How many leading characters of a secret are kept for display.
const DISPLAY_LEN: usize = 11;

/// A freshly generated secret with the given prefix (`op_` or `sk_`).
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Hex SHA-256 of a secret: what is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The display prefix kept beside the hash (`sk_AbCdEf12`).
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(DISPLAY_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_prefixed_and_hash_stably() {
        let a = generate_secret(MERCHANT_PREFIX);
        let b = generate_secret(MERCHANT_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 3 + 43);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(display_prefix(&a).len(), 11);
    }
}

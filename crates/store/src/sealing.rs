//! Secrets at rest: AES-256-GCM under the operator's master key.
//!
//! Private keys and webhook secrets are sealed before they reach a row and opened only where
//! used. Each sealed value is bound to its row through the associated data (`table:id:column`),
//! so a ciphertext copied into another row or column does not open. The sealed text names the key
//! that made it (`v1.<key id>.<base64>`), so the master key can be rotated: configure the new key
//! as current and the old one as previous, re-seal at leisure, then drop the old one.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::Secret;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";

/// The row bindings of every sealed column: one place, so the writer, the reader and the
/// master-key rewrap agree.
pub mod binding {
    /// `gateway_accounts.private_key_ciphertext`.
    pub fn gateway_private_key(account_id: &str) -> String {
        format!("gateway_accounts:{account_id}:private_key")
    }

    /// `webhook_endpoints.secret_ciphertext`.
    pub fn webhook_secret(endpoint_id: &str) -> String {
        format!("webhook_endpoints:{endpoint_id}:secret")
    }

    /// `webhook_endpoints.previous_secret_ciphertext`.
    pub fn webhook_previous_secret(endpoint_id: &str) -> String {
        format!("webhook_endpoints:{endpoint_id}:previous_secret")
    }

    /// `idempotency_keys.response_body`.
    pub fn idempotency_response(owner_id: &str, key: &str) -> String {
        format!("idempotency_keys:{owner_id}:{key}")
    }
}

/// Why a value could not be sealed or opened (never includes the plaintext or the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealing: {0}")]
pub struct SealingError(pub String);

/// Result of sealing operations.
pub type SealResult<T> = Result<T, SealingError>;

/// One AES-256-GCM key with its short id.
struct SealingKey {
    id: String,
    key: LessSafeKey,
    derivation: aws_lc_rs::hmac::Key,
}

impl SealingKey {
    fn from_base64(text: &str) -> SealResult<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealingError("master key must be base64 of 32 bytes".into()))?;
        if bytes.len() != 32 {
            return Err(SealingError(format!(
                "master key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| SealingError("master key rejected by AES-256-GCM".into()))?;
        // The id is a digest prefix: it tells keys apart without revealing anything usable.
        let id = hex::encode(&Sha256::digest(&bytes)[..4]);
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
            derivation: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes),
        })
    }
}

/// The current master key plus any previous ones still accepted for opening.
pub struct MasterKeyring {
    current: SealingKey,
    previous: Vec<SealingKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MasterKeyring(current={}, previous={})",
            self.current.id,
            self.previous.len()
        )
    }
}

impl MasterKeyring {
    /// Builds a keyring from base64 keys: the current one seals, all of them open.
    pub fn new(current: &str, previous: &[String]) -> SealResult<Self> {
        Ok(Self {
            current: SealingKey::from_base64(current)?,
            previous: previous
                .iter()
                .map(|k| SealingKey::from_base64(k))
                .collect::<SealResult<_>>()?,
            rng: SystemRandom::new(),
        })
    }

    /// A fresh random master key, base64 (for first start of the embedded mode).
    pub fn generate_key() -> SealResult<Secret> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealingError("no randomness available".into()))?;
        Ok(Secret::new(STANDARD.encode(bytes)))
    }

    /// Id of the key that seals now.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` bound to `binding` (`table:row id:column`).
    pub fn seal(&self, plaintext: &[u8], binding: &str) -> SealResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| SealingError("no randomness available".into()))?;
        let mut buf = plaintext.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealingError("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current.id,
            STANDARD.encode(out)
        ))
    }

    /// Opens a value sealed by [`MasterKeyring::seal`] with the same `binding`.
    pub fn open(&self, sealed: &str, binding: &str) -> SealResult<Secret> {
        let bytes = self.open_bytes(sealed, binding)?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| SealingError("sealed value is not text".into()))
    }

    /// Like [`MasterKeyring::open`] for binary plaintexts.
    pub fn open_bytes(&self, sealed: &str, binding: &str) -> SealResult<Vec<u8>> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealingError("not a sealed value".into()));
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| SealingError(format!("sealed with unknown master key {key_id}")))?;
        let raw = STANDARD
            .decode(body)
            .map_err(|_| SealingError("corrupt sealed value".into()))?;
        if raw.len() < NONCE_LEN {
            return Err(SealingError("corrupt sealed value".into()));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealingError("corrupt sealed value".into()))?;
        let mut buf = ciphertext.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut buf)
            .map_err(|_| SealingError("sealed value does not open (wrong key or row)".into()))?;
        Ok(plain.to_vec())
    }

    /// A 32-byte key for another purpose (e.g. signing merchant JWTs), derived from the current
    /// master key with HMAC-SHA256 over `label`, hex encoded; stable for the same master key.
    pub fn derive_subkey(&self, label: &str) -> Secret {
        Secret::new(hex::encode(
            aws_lc_rs::hmac::sign(&self.current.derivation, label.as_bytes()).as_ref(),
        ))
    }

    /// [`MasterKeyring::derive_subkey`] for every key of the ring, current first, each with its
    /// key id: what verifies values (tokens) signed before the master key rotated.
    pub fn derive_subkeys(&self, label: &str) -> Vec<(String, Secret)> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| {
                let sub =
                    hex::encode(aws_lc_rs::hmac::sign(&k.derivation, label.as_bytes()).as_ref());
                (k.id.clone(), Secret::new(sub))
            })
            .collect()
    }

    /// True when `sealed` was made by an older key and should be re-sealed.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.current.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> MasterKeyring {
        let key = MasterKeyring::generate_key().expect("key");
        MasterKeyring::new(key.expose(), &[]).expect("ring")
    }

    #[test]
    fn sealed_values_open_only_in_their_row() {
        let ring = ring();
        let sealed = ring
            .seal(
                b"-----BEGIN PRIVATE KEY-----",
                "gateway_accounts:gwa_1:private_key",
            )
            .expect("seal");
        assert!(!sealed.contains("BEGIN"));
        let opened = ring
            .open(&sealed, "gateway_accounts:gwa_1:private_key")
            .expect("open");
        assert_eq!(opened.expose(), "-----BEGIN PRIVATE KEY-----");
        assert!(
            ring.open(&sealed, "gateway_accounts:gwa_2:private_key")
                .is_err()
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(
            ring.open(&tampered, "gateway_accounts:gwa_1:private_key")
                .is_err()
        );
    }

    #[test]
    fn a_rotated_keyring_opens_old_values_and_seals_with_the_new_key() {
        let old = MasterKeyring::generate_key().expect("key");
        let new = MasterKeyring::generate_key().expect("key");
        let before = MasterKeyring::new(old.expose(), &[]).expect("ring");
        let sealed = before
            .seal(b"whsec_x", "webhook_endpoints:we_1:secret")
            .expect("seal");
        let after = MasterKeyring::new(new.expose(), &[old.expose().to_owned()]).expect("ring");
        assert!(after.needs_reseal(&sealed));
        assert_eq!(
            after
                .open(&sealed, "webhook_endpoints:we_1:secret")
                .expect("open")
                .expose(),
            "whsec_x"
        );
        let resealed = after
            .seal(b"whsec_x", "webhook_endpoints:we_1:secret")
            .expect("seal");
        assert!(!after.needs_reseal(&resealed));
        let only_new = MasterKeyring::new(new.expose(), &[]).expect("ring");
        assert!(
            only_new
                .open(&sealed, "webhook_endpoints:we_1:secret")
                .is_err()
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(MasterKeyring::new("not base64!", &[]).is_err());
        assert!(MasterKeyring::new("c2hvcnQ=", &[]).is_err());
    }
}

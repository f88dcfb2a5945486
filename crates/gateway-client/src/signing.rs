//! CodePay RSA2 signing: the canonical string, SHA256withRSA PKCS#1 v1.5 signatures
//! in standard base64, and RSA keys read from whatever format an operator pastes in.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};

use crate::error::{KeyError, SignatureError};

/// CodePay uses RSA-2048; anything weaker is refused when a key is loaded.
const MIN_BITS: u32 = 2048;

/// The string CodePay signs: every top-level field but `sign`, null and `""` values dropped, keys
/// sorted by byte order, `key=value` joined with `&`, values rendered raw (no escaping).
pub fn canonical_string(msg: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&str, String)> = msg
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .filter_map(|(k, v)| render(v).map(|text| (k.as_str(), text)))
        .collect();
    // serde_json here has `preserve_order`, so the map iterates in insertion order: sort explicitly.
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A value as text for the canonical string, or `None` when the field is left out.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        // Compact JSON of a serde_json value cannot fail: its keys are always strings.
        Value::Array(_) | Value::Object(_) => serde_json::to_string(value).ok(),
    }
}

/// Adds (or replaces) the `sign` field of a message with its RSA2 signature.
pub fn sign_message(msg: &mut Map<String, Value>, key: &PrivateKey) {
    let signature = key.sign(canonical_string(msg).as_bytes());
    msg.insert("sign".to_owned(), Value::String(signature));
}

/// Checks the `sign` field of a message against its canonical string.
pub fn verify_message(msg: &Map<String, Value>, key: &PublicKey) -> Result<(), SignatureError> {
    let signature = match msg.get("sign") {
        None | Some(Value::Null) => return Err(SignatureError::Missing),
        Some(Value::String(s)) if s.is_empty() => return Err(SignatureError::Missing),
        Some(Value::String(s)) => s,
        Some(_) => return Err(SignatureError::Invalid),
    };
    if key.verify(canonical_string(msg).as_bytes(), signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// An RSA private key that signs CodePay messages; its `Debug` never shows the key.
///
/// Signatures are made by aws-lc-rs, not by the `rsa` crate: the `rsa` crate's private-key
/// operation is covered by RUSTSEC-2023-0071 (timing side channel) and is several times slower,
/// and every upstream call costs one signature. `rsa` still reads and writes the key formats and
/// verifies (public-key operations leak nothing). See docs/security.md and docs/benchmarks.md.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<rsa::PrivateKey>,
    signer: Arc<aws_lc_rs::signature::RsaKeyPair>,
    /// PKCS#8 DER, kept so export never fails; zeroised on drop by `SecretDocument`.
    pkcs8_der: Arc<rsa::pkcs8::SecretDocument>,
}

impl PrivateKey {
    /// Reads a PKCS#8 PEM, PKCS#1 PEM, or bare base64 DER of either.
    pub fn from_pem_or_base64(text: &str) -> Result<Self, KeyError> {
        let key = match parse_armor(text)? {
            Armor::Pem { label, der } => match label.as_str() {
                "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_der(&der)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
                "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
                _ => return Err(KeyError::UnsupportedLabel(label)),
            },
            Armor::Bare(der) => rsa::PrivateKey::from_pkcs8_der(&der)
                .or_else(|_| rsa::PrivateKey::from_pkcs1_der(&der))
                .map_err(|e| KeyError::Malformed(e.to_string()))?,
        };
        Self::from_rsa(key)
    }

    /// Generates a fresh RSA-2048 key (tests, the simulator, `payfac` key setup).
    pub fn generate_2048() -> Result<Self, KeyError> {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
            .map_err(|e| KeyError::Generation(e.to_string()))?;
        Self::from_rsa(key)
    }

    fn from_rsa(key: rsa::PrivateKey) -> Result<Self, KeyError> {
        check_size(key.n_bits_precision())?;
        let pkcs8_der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let signer = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8_der.as_bytes())
            .map_err(|e| KeyError::Malformed(format!("rejected by aws-lc-rs: {e}")))?;
        Ok(Self {
            inner: Arc::new(key),
            signer: Arc::new(signer),
            pkcs8_der: Arc::new(pkcs8_der),
        })
    }

    /// The key as PKCS#8 PEM, wrapped so it cannot be logged by accident.
    pub fn to_pkcs8_pem(&self) -> domain::Secret {
        domain::Secret::new(to_pem("PRIVATE KEY", self.pkcs8_der.as_bytes()))
    }

    /// The public half, to hand to CodePay or to the simulator.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_rsa(self.inner.to_public_key())
    }

    /// SHA256withRSA (PKCS#1 v1.5) over `data`, in standard base64 with padding.
    ///
    /// Signing with a key aws-lc-rs accepted cannot fail short of the OS RNG failing (it feeds
    /// blinding); in that case the result is an empty string, which CodePay rejects as unsigned,
    /// and the failure is logged: a panic here would take a request down with it.
    pub fn sign(&self, data: &[u8]) -> String {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.signer.public_modulus_len()];
        match self.signer.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &rng,
            data,
            &mut sig,
        ) {
            Ok(()) => STANDARD.encode(sig),
            Err(e) => {
                tracing::error!(error = %e, "RSA signing failed");
                String::new()
            }
        }
    }

    /// Signs with the `rsa` crate instead of aws-lc-rs: kept for the benchmark and the tests that
    /// show both produce identical signatures (PKCS#1 v1.5 is deterministic).
    #[doc(hidden)]
    pub fn sign_with_rsa_crate(&self, data: &[u8]) -> String {
        self.inner
            .pkcs1v15_sign::<Sha256>(data)
            .map(|sig| STANDARD.encode(sig))
            .unwrap_or_default()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

/// An RSA public key that verifies CodePay signatures (the gateway's, or an app's in the simulator).
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<rsa::PublicKey>,
    /// The key as PKCS#1 DER, verified through aws-lc-rs: about 3× faster than the `rsa`
    /// crate (docs/benchmarks.md), and every CodePay answer and notification is verified.
    pkcs1_der: Arc<[u8]>,
}

impl PublicKey {
    /// Reads an SPKI PEM (`PUBLIC KEY`), PKCS#1 PEM (`RSA PUBLIC KEY`), or bare base64 DER of either.
    pub fn from_pem_or_base64(text: &str) -> Result<Self, KeyError> {
        let key = match parse_armor(text)? {
            Armor::Pem { label, der } => match label.as_str() {
                "PUBLIC KEY" => rsa::PublicKey::from_public_key_der(&der)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
                "RSA PUBLIC KEY" => rsa::PublicKey::from_pkcs1_der(&der)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
                _ => return Err(KeyError::UnsupportedLabel(label)),
            },
            Armor::Bare(der) => rsa::PublicKey::from_public_key_der(&der)
                .or_else(|_| rsa::PublicKey::from_pkcs1_der(&der))
                .map_err(|e| KeyError::Malformed(e.to_string()))?,
        };
        check_size(key.n_bits_precision())?;
        Ok(Self::from_rsa(key))
    }

    fn from_rsa(key: rsa::PublicKey) -> Self {
        use rsa::pkcs1::EncodeRsaPublicKey;
        // Encoding a decoded or generated key cannot fail; an empty DER only fails verification.
        let pkcs1_der: Arc<[u8]> = key
            .to_pkcs1_der()
            .map(|d| Arc::from(d.as_bytes()))
            .unwrap_or_else(|_| Arc::from(&[][..]));
        Self {
            inner: Arc::new(key),
            pkcs1_der,
        }
    }

    /// The key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form CodePay's portal takes.
    pub fn to_pem(&self) -> String {
        match self.inner.to_public_key_der() {
            Ok(doc) => to_pem("PUBLIC KEY", doc.as_bytes()),
            // Encoding a key that was decoded or generated cannot fail; stay total anyway.
            Err(_) => String::new(),
        }
    }

    /// True when `signature_b64` is a valid SHA256withRSA signature of `data` under this key.
    ///
    /// Line breaks and spaces inside the base64 are tolerated (some SDKs wrap at 76 columns);
    /// anything else that is not strict standard base64 is invalid.
    pub fn verify(&self, data: &[u8], signature_b64: &str) -> bool {
        let compact: String = signature_b64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let Ok(sig) = STANDARD.decode(compact.as_bytes()) else {
            return false;
        };
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &*self.pkcs1_der,
        )
        .verify(data, &sig)
        .is_ok()
    }

    /// Verifies with the `rsa` crate instead of aws-lc-rs: kept for the benchmark and the test
    /// that shows both accept and refuse the same signatures.
    #[doc(hidden)]
    pub fn verify_with_rsa_crate(&self, data: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = STANDARD.decode(signature_b64.as_bytes()) else {
            return false;
        };
        self.inner.pkcs1v15_verify::<Sha256>(data, &sig).is_ok()
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.inner.n_bits_precision()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(rsa-{})", self.bits())
    }
}

fn check_size(bits: u32) -> Result<(), KeyError> {
    if bits < MIN_BITS {
        return Err(KeyError::TooSmall(bits));
    }
    Ok(())
}

/// Key text after the armour is taken off.
enum Armor {
    Pem { label: String, der: Vec<u8> },
    Bare(Vec<u8>),
}

/// Reads PEM leniently (CRLF, one long line, stray indentation: all seen in pasted keys) or bare
/// base64; the strict PEM parser of the `pem-rfc7468` crate refuses most of those.
fn parse_armor(text: &str) -> Result<Armor, KeyError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("-----BEGIN ") {
        let (label, rest) = rest
            .split_once("-----")
            .ok_or_else(|| KeyError::Encoding("unterminated BEGIN line".into()))?;
        let end_marker = format!("-----END {label}-----");
        let (body, _) = rest
            .split_once(&end_marker)
            .ok_or_else(|| KeyError::Encoding(format!("no {end_marker:?} line")))?;
        if body.contains(':') {
            // RFC 1421 headers mean a legacy encrypted key, which payfac does not read.
            return Err(KeyError::UnsupportedLabel(format!("{label} (encrypted)")));
        }
        let der = decode_b64(body)?;
        Ok(Armor::Pem {
            label: label.to_owned(),
            der,
        })
    } else {
        decode_b64(text).map(Armor::Bare)
    }
}

fn decode_b64(text: &str) -> Result<Vec<u8>, KeyError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(KeyError::Encoding("empty key".into()));
    }
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| KeyError::Encoding(e.to_string()))
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so splitting on byte boundaries is safe.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests;

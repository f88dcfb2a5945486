//! Wrappers for secrets (private keys, API keys, webhook secrets, wallet auth codes) and for
//! URLs that may carry one (database and Redis URLs with a password).
//!
//! [`Secret`]'s `Debug`, `Display` and `Serialize` print `***`, so a secret that ends up in a
//! log line or a response body by accident shows nothing. [`SecretUrl`] prints the URL with its
//! password masked, so the host and database stay visible to whoever reads the log. Either value
//! is reached only through `expose()`, which makes every real use easy to find in review.

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A value that must never be printed.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with another value in time independent of where they differ.
    pub fn constant_time_eq(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `deserialize_any`, not `deserialize_string`: asked for a string, serde_json reports a
        // number it finds instead by itself, quoting it, before the visitor sees it.
        d.deserialize_any(SecretVisitor)
    }
}

/// Accepts strings only, like `String` does, but never quotes a rejected value in the error:
/// `String`'s own visitor would answer ``invalid type: integer `12345` `` for an all-digit key.
struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a boolean"), &self))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a number"), &self))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a number"), &self))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a number"), &self))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a number"), &self))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a number"), &self))
    }

    fn visit_char<E: de::Error>(self, _: char) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("a character"), &self))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other("bytes"), &self))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// A URL that may carry a secret: a password in its user-info (`postgres://u:pw@db/x`) or in
/// its query string (`postgres://u@db/x?password=pw`).
///
/// `Debug`, `Display` and `Serialize` show the URL with those passwords replaced by `***` and
/// everything else (scheme, user, host, port, path, other parameters) as given, so the target
/// stays recognisable in logs and in `payfac config check`.
#[derive(Clone)]
pub struct SecretUrl(Secret);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url))
    }

    /// The URL itself, password included; call only where it is really needed.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The URL with its passwords replaced by `***`.
    pub fn masked(&self) -> String {
        mask_url(self.0.expose())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.masked(), f)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Secret::deserialize(d).map(SecretUrl)
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        SecretUrl(Secret(value))
    }
}

/// What a masked password shows instead.
const MASK: &str = "***";

/// `url` with the password of its user-info and the values of password parameters in its query
/// replaced by [`MASK`]. Works on the text, without normalising the URL, so the rest reads
/// exactly as configured. The user-info is found as URL parsers find it (the authority ends at
/// the first `/`, `?` or `#`; the user-info at its last `@`), and a fragment after a query stays
/// part of the last parameter's value, so a stray `#` in a password cannot unmask its tail.
fn mask_url(url: &str) -> String {
    match url.split_once('?') {
        Some((before, query)) => format!("{}?{}", mask_user_info(before), mask_query(query)),
        None => mask_user_info(url),
    }
}

/// Masks `pw` in `scheme://user:pw@host/path`.
fn mask_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].split_once(':') {
        Some((user, password)) if !password.is_empty() => format!(
            "{}{user}:{MASK}{}",
            &url[..scheme_end],
            &url[scheme_end + at..]
        ),
        _ => url.to_owned(),
    }
}

/// Masks the values of `password`-like parameters in `a=1&password=pw&b=2`.
fn mask_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !value.is_empty() && is_password_key(key) => {
                format!("{key}={MASK}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `password`, `sslpassword` (libpq) and the like, however the key is cased or percent-encoded.
fn is_password_key(key: &str) -> bool {
    let key = percent_decode(key).to_ascii_lowercase();
    key.ends_with("password") || matches!(key.as_str(), "pass" | "pwd")
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_itself() {
        let s = Secret::new("sk_live_very_secret");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"***\""));
        assert!(s.constant_time_eq("sk_live_very_secret"));
        assert!(!s.constant_time_eq("sk_live_very_secreT"));
        assert!(!s.constant_time_eq("short"));
    }

    #[test]
    fn a_secret_rejects_a_non_string_without_quoting_it() {
        let err = serde_json::from_str::<Secret>("12345")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("expected a string"), "{err}");
        assert!(!err.contains("12345"), "{err}");
        let ok = serde_json::from_str::<Secret>("\"12345\"");
        assert_eq!(ok.ok().as_ref().map(Secret::expose), Some("12345"));
    }

    fn masked(url: &str) -> String {
        SecretUrl::new(url).to_string()
    }

    #[test]
    fn a_url_password_in_the_user_info_is_masked() {
        assert_eq!(
            masked("postgres://payfac:hunter2@db.internal:5432/payfac"),
            "postgres://payfac:***@db.internal:5432/payfac"
        );
        assert_eq!(
            masked("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            masked("postgres://payfac:p@ss:w@rd@db/payfac"),
            "postgres://payfac:***@db/payfac"
        );
        assert_eq!(
            masked("rediss://default:hunter2@cache"),
            "rediss://default:***@cache"
        );
    }

    #[test]
    fn a_url_password_in_the_query_string_is_masked() {
        assert_eq!(
            masked("postgres://u@db/payfac?password=hunter2"),
            "postgres://u@db/payfac?password=***"
        );
        assert_eq!(
            masked("postgres://db/payfac?user=u&PassWord=hunter2&sslmode=require"),
            "postgres://db/payfac?user=u&PassWord=***&sslmode=require"
        );
        assert_eq!(
            masked("postgres://db/x?sslpassword=hunter2&pass%77ord=hunt#er3"),
            "postgres://db/x?sslpassword=***&pass%77ord=***"
        );
        assert_eq!(
            masked("postgres://u:hunter1@db/x?password=hunter2"),
            "postgres://u:***@db/x?password=***"
        );
    }

    #[test]
    fn a_url_without_a_password_reads_as_configured() {
        for url in [
            "postgres://payfac@db.internal/payfac?sslmode=require",
            "postgres://payfac:@db/payfac?password=",
            "sqlite://./data/payfac.db",
            "sqlite:///tmp/a@b:c.db",
            "redis://cache:6379",
            "https://codepay-open.codepay.us",
            "not a url",
        ] {
            assert_eq!(masked(url), url);
        }
    }

    #[test]
    fn a_secret_url_never_prints_its_password() {
        let url = SecretUrl::new("postgres://u:hunter1@db/payfac?password=hunter2");
        let shown = format!(
            "{url} {url:?} {}",
            serde_json::to_string(&url).unwrap_or_default()
        );
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("db/payfac"), "{shown}");
        assert_eq!(
            url.expose(),
            "postgres://u:hunter1@db/payfac?password=hunter2"
        );
        let parsed: Option<SecretUrl> = serde_json::from_str("\"redis://:pw@cache\"").ok();
        assert_eq!(
            parsed.as_ref().map(SecretUrl::expose),
            Some("redis://:pw@cache")
        );
    }
}

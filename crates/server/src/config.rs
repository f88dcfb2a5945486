//! Layered configuration: defaults → optional TOML file → `PAYFAC_*` environment variables.
//!
//! Every key is flat so that each one has exactly one obvious environment variable
//! (`database_url` ↔ `PAYFAC_DATABASE_URL`). Unknown keys are errors in the file and in the
//! environment alike: a misspelt `PAYFAC_DATABSE_URL` silently falling back to SQLite would be
//! the worst kind of surprise in production.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable naming an optional TOML config file.
pub const CONFIG_FILE_ENV: &str = "PAYFAC_CONFIG";

/// Why the configuration could not be loaded. Always rendered as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed, or holds an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value parsed but makes no sense.
    #[error("invalid configuration: `{key}`: {reason}")]
    Value {
        /// The config key (its env var is `PAYFAC_` + upper case).
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Output format of the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the embedded default).
    Text,
    /// One JSON object per line (containers).
    Json,
}

/// The effective configuration of one `payfac` process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds (`PAYFAC_LISTEN`, or `--listen`).
    pub listen: String,
    /// Where the embedded default keeps its SQLite file and generated keys.
    pub data_dir: PathBuf,
    /// `postgres://…` for production; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Size of the database connection pool.
    pub db_pool_size: u32,
    /// `redis://…`; unset means in-process coordination (one process only).
    pub redis_url: Option<String>,
    /// Externally reachable base URL (CodePay `notify_url`, pay page and QR links).
    pub public_url: Option<String>,
    /// Base64 of 32 bytes; encrypts private keys and webhook secrets at rest.
    pub master_key: Option<String>,
    /// Previous master keys (comma-separated base64), still accepted for opening during rotation.
    pub master_key_previous: Option<String>,
    /// Creates an operator key with exactly this value at start when missing.
    pub bootstrap_operator_key: Option<String>,
    /// Signing key for merchant JWTs; derived from the master key when unset.
    pub jwt_signing_key: Option<String>,
    /// Use the built-in CodePay simulator as the upstream. Defaults to true when no CodePay
    /// base URL is configured.
    pub sandbox: Option<bool>,
    /// Run database migrations at start (default: true for `serve`, false for `api`/`worker`).
    pub auto_migrate: Option<bool>,
    /// CodePay gateway base URL (`https://codepay-open.codepay.us`).
    pub codepay_base_url: Option<String>,
    /// CodePay app id.
    pub codepay_app_id: Option<String>,
    /// The app's RSA private key (PEM or base64), inline.
    pub codepay_private_key: Option<String>,
    /// The app's RSA private key, from a file (Kubernetes secret mount).
    pub codepay_private_key_file: Option<PathBuf>,
    /// CodePay's gateway public key, inline.
    pub codepay_gateway_public_key: Option<String>,
    /// CodePay's gateway public key, from a file.
    pub codepay_gateway_public_key_file: Option<PathBuf>,
    /// Per-call timeout towards CodePay, in milliseconds.
    pub codepay_timeout_ms: u64,
    /// Interval between `order.query` polls of an unsettled CPM payment, in milliseconds.
    pub cpm_poll_interval_ms: u64,
    /// How long a CPM payment may stay unsettled before payfac reverses it, in seconds.
    pub cpm_deadline_seconds: u64,
    /// Default lifetime of an MPM QR code, in seconds.
    pub mpm_expires_seconds: u64,
    /// Webhook retry schedule (`0s,5s,5m,…`); unset means the documented default.
    pub webhook_retry_schedule: Option<String>,
    /// Allow webhook endpoints on private/loopback addresses (development only).
    pub webhook_allow_private: Option<bool>,
    /// Allow plain-http webhook endpoints (development only).
    pub webhook_allow_http: Option<bool>,
    /// Per-attempt webhook request timeout (`15s`).
    pub webhook_timeout: Option<String>,
    /// Webhook requests in flight per worker process.
    pub webhook_concurrency: Option<u32>,
    /// Webhook requests in flight per endpoint.
    pub webhook_endpoint_concurrency: Option<u32>,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub webhook_breaker_failures: Option<u32>,
    /// How long an open breaker waits before a probe (`30s`).
    pub webhook_breaker_cool_down: Option<String>,
    /// An endpoint failing this long is disabled (`5d`).
    pub webhook_disable_after: Option<String>,
    /// How long a rotated-out webhook secret keeps signing (`24h`).
    pub webhook_secret_overlap: Option<String>,
    /// Lease on a claimed webhook delivery job (default: `webhook_timeout` + 45 s; must exceed
    /// the timeout by at least 1 s).
    pub webhook_lease: Option<String>,
    /// Requests per second allowed per API key.
    pub rate_limit_per_second: u32,
    /// Seconds to finish in-flight requests and jobs after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// After SIGTERM, milliseconds to keep accepting while readiness is already false, so load
    /// balancers stop routing before the listener closes (Kubernetes' preStop sleep does the
    /// same from outside; keep one of the two).
    pub shutdown_drain_ms: u64,
    /// Concurrent background jobs per worker process.
    pub worker_concurrency: u32,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter (`info`, `payfac=debug,info`, …).
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_pool_size: 16,
            redis_url: None,
            public_url: None,
            master_key: None,
            master_key_previous: None,
            bootstrap_operator_key: None,
            jwt_signing_key: None,
            sandbox: None,
            auto_migrate: None,
            codepay_base_url: None,
            codepay_app_id: None,
            codepay_private_key: None,
            codepay_private_key_file: None,
            codepay_gateway_public_key: None,
            codepay_gateway_public_key_file: None,
            codepay_timeout_ms: 10_000,
            cpm_poll_interval_ms: 2_000,
            cpm_deadline_seconds: 60,
            mpm_expires_seconds: 900,
            webhook_retry_schedule: None,
            webhook_allow_private: None,
            webhook_allow_http: None,
            webhook_timeout: None,
            webhook_concurrency: None,
            webhook_endpoint_concurrency: None,
            webhook_breaker_failures: None,
            webhook_breaker_cool_down: None,
            webhook_disable_after: None,
            webhook_secret_overlap: None,
            webhook_lease: None,
            rate_limit_per_second: 100,
            shutdown_grace_seconds: 30,
            shutdown_drain_ms: 0,
            worker_concurrency: 32,
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

/// Which database backend a URL selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// PostgreSQL at this URL.
    Postgres(String),
    /// SQLite at this file path.
    Sqlite(PathBuf),
}

impl Config {
    /// Loads defaults, then the file named by `file` (or `PAYFAC_CONFIG`), then `PAYFAC_*` env vars.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let env_file = std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from);
        if let Some(path) = file.map(Path::to_path_buf).or(env_file) {
            if !path.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} not found",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // `PAYFAC_TEST_*` belongs to the test harness and `PAYFAC_CONFIG` names the file:
        // neither is a config key.
        let env = Env::prefixed("PAYFAC_")
            .filter(|key| key.as_str() != "config" && !key.as_str().starts_with("test_"));
        let config: Config = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that serde cannot (addresses, URL schemes, key lengths).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.database_target()?;
        if let Some(url) = &self.redis_url {
            let parsed = url::Url::parse(url).map_err(|e| ConfigError::Value {
                key: "redis_url",
                reason: format!("not a URL ({e})"),
            })?;
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(ConfigError::Value {
                    key: "redis_url",
                    reason: format!(
                        "scheme must be redis:// or rediss://, got {}://",
                        parsed.scheme()
                    ),
                });
            }
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| ConfigError::Value {
                key: "public_url",
                reason: format!("not a URL ({e})"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::Value {
                    key: "public_url",
                    reason: "must be http(s)://".into(),
                });
            }
        }
        if let Some(url) = &self.codepay_base_url {
            url::Url::parse(url).map_err(|e| ConfigError::Value {
                key: "codepay_base_url",
                reason: format!("not a URL ({e})"),
            })?;
        }
        if self.db_pool_size == 0 {
            return Err(ConfigError::Value {
                key: "db_pool_size",
                reason: "must be at least 1".into(),
            });
        }
        if self.cpm_poll_interval_ms == 0 || self.cpm_deadline_seconds == 0 {
            return Err(ConfigError::Value {
                key: "cpm_poll_interval_ms",
                reason: "must be positive".into(),
            });
        }
        if self.worker_concurrency == 0 {
            return Err(ConfigError::Value {
                key: "worker_concurrency",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Value {
            key: "listen",
            reason: format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
        })
    }

    /// The database the URL selects, or the embedded SQLite file.
    pub fn database_target(&self) -> Result<DatabaseTarget, ConfigError> {
        let Some(url) = &self.database_url else {
            return Ok(DatabaseTarget::Sqlite(self.data_dir.join("payfac.db")));
        };
        let invalid = |reason: String| ConfigError::Value {
            key: "database_url",
            reason,
        };
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(invalid(
                    "sqlite URL needs a file path (sqlite://./data/payfac.db)".into(),
                ));
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("not a URL ({e})")))?;
        match parsed.scheme() {
            "postgres" | "postgresql" => {
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("postgres URL needs a host".into()));
                }
                Ok(DatabaseTarget::Postgres(url.clone()))
            }
            other => Err(invalid(format!(
                "unsupported scheme {other}:// (use postgres:// or sqlite://)"
            ))),
        }
    }

    /// Whether the built-in simulator is the upstream.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox.unwrap_or(self.codepay_base_url.is_none())
    }

    /// The value of a setting by its environment name (`PAYFAC_WEBHOOK_TIMEOUT`), as text; for
    /// components that read their own settings by those names.
    pub fn lookup(&self, env_name: &str) -> Option<String> {
        let key = env_name.strip_prefix("PAYFAC_")?.to_ascii_lowercase();
        match serde_json::to_value(self).ok()?.get(&key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The effective configuration as TOML-like `key = value` lines, secrets masked.
    pub fn render_masked(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        if let serde_json::Value::Object(map) = value {
            for (key, v) in map {
                let shown = match (&v, is_secret_key(&key)) {
                    (serde_json::Value::Null, _) => "(unset)".to_owned(),
                    (_, true) => "\"***\"".to_owned(),
                    (serde_json::Value::String(s), false) if key.ends_with("_url") => {
                        format!("{:?}", mask_url_password(s))
                    }
                    (other, false) => other.to_string(),
                };
                let _ = writeln!(out, "{key} = {shown}");
            }
        }
        out
    }
}

fn is_secret_key(key: &str) -> bool {
    matches!(
        key,
        "master_key"
            | "master_key_previous"
            | "bootstrap_operator_key"
            | "jwt_signing_key"
            | "codepay_private_key"
    )
}

/// Replaces the password of a URL with `***` (for logs, errors and `config check`).
pub fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// An error text on one line: each line's whitespace collapsed, lines joined with `: `.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_database(url: &str) -> Config {
        Config {
            database_url: Some(url.into()),
            ..Config::default()
        }
    }

    #[test]
    fn database_urls_select_the_backend() {
        assert!(matches!(
            with_database("postgres://u:p@db:5432/payfac").database_target(),
            Ok(DatabaseTarget::Postgres(_))
        ));
        assert_eq!(
            with_database("sqlite:///tmp/x.db").database_target().ok(),
            Some(DatabaseTarget::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert_eq!(
            Config::default().database_target().ok(),
            Some(DatabaseTarget::Sqlite(PathBuf::from("./data/payfac.db")))
        );
        assert!(with_database("mysql://x/y").database_target().is_err());
        assert!(with_database("not a url").database_target().is_err());
        assert!(
            with_database("postgres:///nohost")
                .database_target()
                .is_err()
        );
    }

    #[test]
    fn secrets_and_passwords_are_masked() {
        let config = Config {
            master_key: Some("c2VjcmV0".into()),
            database_url: Some("postgres://payfac:hunter2@db/payfac".into()),
            ..Config::default()
        };
        let shown = config.render_masked();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("master_key = \"***\""), "{shown}");
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let config = Config {
            listen: "localhost".into(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}

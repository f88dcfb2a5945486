//! Layered configuration: defaults → optional TOML file → `PAYFAC_*` environment variables.
//!
//! Every key is flat so that each one has exactly one obvious environment variable
//! (`database_url` ↔ `PAYFAC_DATABASE_URL`). Unknown keys are errors in the file and in the
//! environment alike: a misspelt `PAYFAC_DATABSE_URL` silently falling back to SQLite would be
//! the worst kind of surprise in production.
//!
//! Secret settings are [`Secret`]s and URLs that may carry a password are [`SecretUrl`]s, so
//! `Debug`, `payfac config check` and [`Config::lookup`] mask them by their type.

use domain::{Secret, SecretUrl};
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
    /// A second address serving `/metrics`, `/readyz` and `/healthz` only
    /// (`PAYFAC_METRICS_LISTEN`, e.g. `0.0.0.0:9090`). When set, the main listener no longer
    /// serves `/metrics` and `/readyz`, so an Ingress routing only the main port never exposes
    /// them. Unset: everything on `listen` (the embedded default).
    pub metrics_listen: Option<String>,
    /// Where the embedded default keeps its SQLite file and generated keys.
    pub data_dir: PathBuf,
    /// `postgres://…` for production; unset means SQLite in `data_dir`.
    pub database_url: Option<SecretUrl>,
    /// Size of the database connection pool.
    pub db_pool_size: u32,
    /// `redis://…`; unset means in-process coordination (one process only).
    pub redis_url: Option<SecretUrl>,
    /// Externally reachable base URL (CodePay `notify_url`, pay page and QR links).
    pub public_url: Option<String>,
    /// Base64 of 32 bytes; encrypts private keys and webhook secrets at rest.
    pub master_key: Option<Secret>,
    /// Previous master keys (comma-separated base64), still accepted for opening during rotation.
    pub master_key_previous: Option<Secret>,
    /// Creates an operator key with exactly this value at start when missing.
    pub bootstrap_operator_key: Option<Secret>,
    /// Signing key for merchant JWTs; derived from the master key when unset.
    pub jwt_signing_key: Option<Secret>,
    /// Previous JWT signing keys (comma-separated), still accepted for verifying tokens during
    /// a rotation; remove them once the longest token lifetime (1 h) has passed.
    pub jwt_signing_key_previous: Option<Secret>,
    /// Use the built-in CodePay simulator as the upstream. Defaults to true when no CodePay
    /// base URL is configured.
    pub sandbox: Option<bool>,
    /// Run database migrations at start (default: true for `serve`, false for `api`/`worker`).
    pub auto_migrate: Option<bool>,
    /// CodePay gateway base URL (`https://codepay-open.codepay.us`).
    pub codepay_base_url: Option<SecretUrl>,
    /// CodePay app id.
    pub codepay_app_id: Option<String>,
    /// The app's RSA private key (PEM or base64), inline.
    pub codepay_private_key: Option<Secret>,
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
    /// Live webhook endpoints per merchant; the next create is refused with 422
    /// `webhook_endpoint_limit_reached`. Each endpoint multiplies every event's fan-out.
    pub webhook_max_endpoints: u32,
    /// Redeliveries (`POST /v1/events/{id}/redeliver`) of one event; the next is refused with
    /// 422 `redelivery_limit_reached`.
    pub webhook_max_redeliveries: u32,
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
    /// How long replayable `Idempotency-Key` answers are kept (`24h`; `off` keeps them; a key
    /// is never purged before it expires).
    pub retention_idempotency: String,
    /// How long finished (`done`) jobs are kept (`7d`; dead jobs stay for inspection).
    pub retention_jobs: String,
    /// How long webhook delivery attempts are kept (`30d`).
    pub retention_delivery_attempts: String,
    /// How long received CodePay notifications are kept (`30d`).
    pub retention_upstream_notifications: String,
    /// How often the worker role runs the retention job (`10m`).
    pub retention_interval: String,
    /// Rows deleted per retention transaction (500): small, so API writes never wait long.
    pub retention_batch_size: u32,
    /// When a business day ends for settlement statements: a local time and an IANA time zone
    /// (`00:00 UTC`, `18:30 Asia/Shanghai`); docs/books.md.
    pub settlement_cutoff: String,
    /// The share of a close's wall time it spends working, in percent (1–100): between batches
    /// of merchants a close pauses so that it leaves the rest to the API (docs/books.md).
    pub settlement_close_duty_percent: u32,
    /// Reconciliation queries per second to CodePay, per gateway account.
    pub reconciliation_queries_per_second: u32,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter (`info`, `payfac=debug,info`, …).
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            metrics_listen: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_pool_size: 16,
            redis_url: None,
            public_url: None,
            master_key: None,
            master_key_previous: None,
            bootstrap_operator_key: None,
            jwt_signing_key: None,
            jwt_signing_key_previous: None,
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
            webhook_max_endpoints: 20,
            webhook_max_redeliveries: 10,
            rate_limit_per_second: 100,
            shutdown_grace_seconds: 30,
            shutdown_drain_ms: 0,
            worker_concurrency: 32,
            retention_idempotency: "24h".into(),
            retention_jobs: "7d".into(),
            retention_delivery_attempts: "30d".into(),
            retention_upstream_notifications: "30d".into(),
            retention_interval: "10m".into(),
            retention_batch_size: 500,
            settlement_cutoff: "00:00 UTC".into(),
            settlement_close_duty_percent: payments::books::CLOSE_DUTY_PERCENT,
            reconciliation_queries_per_second: 10,
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

/// Which database backend a URL selects.
#[derive(Clone, Debug)]
pub enum DatabaseTarget {
    /// PostgreSQL at this URL.
    Postgres(SecretUrl),
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
        self.metrics_listen_addr()?;
        self.database_target()?;
        crate::retention::Retention::from_config(self)?;
        if let Some(url) = &self.redis_url {
            let parsed = url::Url::parse(url.expose()).map_err(|e| ConfigError::Value {
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
            url::Url::parse(url.expose()).map_err(|e| ConfigError::Value {
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
        if self.webhook_max_endpoints == 0 {
            return Err(ConfigError::Value {
                key: "webhook_max_endpoints",
                reason: "must be at least 1".into(),
            });
        }
        if self.worker_concurrency == 0 {
            return Err(ConfigError::Value {
                key: "worker_concurrency",
                reason: "must be at least 1".into(),
            });
        }
        self.settlement_cutoff()?;
        if !(1..=100).contains(&self.settlement_close_duty_percent) {
            return Err(ConfigError::Value {
                key: "settlement_close_duty_percent",
                reason: "must be from 1 to 100".into(),
            });
        }
        if self.reconciliation_queries_per_second == 0 {
            return Err(ConfigError::Value {
                key: "reconciliation_queries_per_second",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The settlement cut-off (`settlement_cutoff`).
    pub fn settlement_cutoff(&self) -> Result<ledger::Cutoff, ConfigError> {
        ledger::Cutoff::parse(&self.settlement_cutoff).map_err(|e| ConfigError::Value {
            key: "settlement_cutoff",
            reason: e.to_string(),
        })
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Value {
            key: "listen",
            reason: format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
        })
    }

    /// The separate metrics/readiness address, when configured.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_listen
            .as_deref()
            .map(|addr| {
                addr.parse().map_err(|_| ConfigError::Value {
                    key: "metrics_listen",
                    reason: format!("`{addr}` is not an address such as 0.0.0.0:9090"),
                })
            })
            .transpose()
    }

    /// The database the URL selects, or the embedded SQLite file.
    pub fn database_target(&self) -> Result<DatabaseTarget, ConfigError> {
        let Some(secret_url) = &self.database_url else {
            return Ok(DatabaseTarget::Sqlite(self.data_dir.join("payfac.db")));
        };
        let url = secret_url.expose();
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
                Ok(DatabaseTarget::Postgres(secret_url.clone()))
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
    /// components that read their own settings by those names. Secrets come back masked, as
    /// they serialize: their values are reached only through the typed fields.
    pub fn lookup(&self, env_name: &str) -> Option<String> {
        let key = env_name.strip_prefix("PAYFAC_")?.to_ascii_lowercase();
        match serde_json::to_value(self).ok()?.get(&key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The effective configuration as TOML-like `key = value` lines. Secrets are masked by
    /// their types' `Serialize`: a [`Secret`] shows `***`, a [`SecretUrl`] its URL without
    /// passwords.
    pub fn render_masked(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        if let serde_json::Value::Object(map) = value {
            for (key, v) in map {
                let shown = match v {
                    serde_json::Value::Null => "(unset)".to_owned(),
                    other => other.to_string(),
                };
                let _ = writeln!(out, "{key} = {shown}");
            }
        }
        out
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
            database_url: Some(SecretUrl::new(url)),
            ..Config::default()
        }
    }

    fn is_sqlite_at(target: Result<DatabaseTarget, ConfigError>, path: &str) -> bool {
        matches!(target, Ok(DatabaseTarget::Sqlite(p)) if p == Path::new(path))
    }

    #[test]
    fn database_urls_select_the_backend() {
        assert!(matches!(
            with_database("postgres://u:p@db:5432/payfac").database_target(),
            Ok(DatabaseTarget::Postgres(url)) if url.expose() == "postgres://u:p@db:5432/payfac"
        ));
        assert!(is_sqlite_at(
            with_database("sqlite:///tmp/x.db").database_target(),
            "/tmp/x.db"
        ));
        assert!(is_sqlite_at(
            Config::default().database_target(),
            "./data/payfac.db"
        ));
        assert!(with_database("mysql://x/y").database_target().is_err());
        assert!(with_database("not a url").database_target().is_err());
        assert!(
            with_database("postgres:///nohost")
                .database_target()
                .is_err()
        );
    }

    /// A config holding every secret the type system knows of, each containing `hunter`.
    fn full_of_secrets() -> Config {
        Config {
            database_url: Some(SecretUrl::new("postgres://payfac:hunter1@db/payfac")),
            redis_url: Some(SecretUrl::new("redis://:hunter2@cache:6379")),
            master_key: Some(Secret::new("hunter3")),
            master_key_previous: Some(Secret::new("hunter4,hunter5")),
            bootstrap_operator_key: Some(Secret::new("op_hunter6")),
            jwt_signing_key: Some(Secret::new("hunter7")),
            codepay_base_url: Some(SecretUrl::new("https://app:hunter8@codepay.example")),
            codepay_private_key: Some(Secret::new("-----BEGIN hunter9")),
            ..Config::default()
        }
    }

    #[test]
    fn secrets_and_passwords_are_masked() {
        let shown = full_of_secrets().render_masked();
        assert!(!shown.contains("hunter"), "{shown}");
        for key in [
            "master_key",
            "master_key_previous",
            "bootstrap_operator_key",
            "jwt_signing_key",
            "codepay_private_key",
        ] {
            assert!(
                shown.contains(&format!("\n{key} = \"***\"\n")),
                "{key}: {shown}"
            );
        }
        assert!(
            shown.contains("database_url = \"postgres://payfac:***@db/payfac\""),
            "{shown}"
        );
        assert!(
            shown.contains("redis_url = \"redis://:***@cache:6379\""),
            "{shown}"
        );
        assert!(shown.contains("listen = \"127.0.0.1:8080\""), "{shown}");
        assert!(shown.contains("public_url = (unset)"), "{shown}");
    }

    #[test]
    fn a_password_in_the_query_string_is_masked() {
        let shown = with_database("postgres://u@db/payfac?password=hunter2").render_masked();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("database_url = \"postgres://u@db/payfac?password=***\""),
            "{shown}"
        );
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let config = full_of_secrets();
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("db/payfac"), "{shown}");
        let target = format!("{:?}", config.database_target().ok());
        assert!(
            !target.contains("hunter") && target.contains("Postgres"),
            "{target}"
        );
    }

    #[test]
    fn lookup_masks_secrets_too() {
        let config = full_of_secrets();
        assert_eq!(config.lookup("PAYFAC_MASTER_KEY").as_deref(), Some("***"));
        assert_eq!(config.lookup("PAYFAC_LOG_LEVEL").as_deref(), Some("info"));
    }

    #[test]
    fn a_non_string_secret_in_the_file_is_refused_without_echoing_it() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("payfac.toml");
        std::fs::write(&file, "master_key = 31415926535\n").map_err(|e| e.to_string())?;
        let err = match Config::load(Some(&file)) {
            Ok(_) => return Err("a number is not a master key".into()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("master_key"), "{err}");
        assert!(!err.contains("31415926535"), "{err}");
        Ok(())
    }

    #[test]
    fn the_close_duty_is_a_percentage() {
        for (percent, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            let config = Config {
                settlement_close_duty_percent: percent,
                ..Config::default()
            };
            assert_eq!(config.validate().is_ok(), ok, "{percent}");
        }
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

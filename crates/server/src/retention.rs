//! The retention job: every `retention_interval` the worker role deletes what only grows —
//! replayable idempotency answers, finished jobs, webhook delivery attempts and received CodePay
//! notifications — once older than its configured period, in small batches
//! ([`store::retention`]) so the API's writes never wait behind one long delete.
//!
//! Several worker replicas may each run it: the deletes are idempotent, and a batch another
//! replica already took simply comes back short.

use crate::config::{Config, ConfigError};
use std::time::Duration;
use store::retention::{Table, purge_all};
use store::{Database, StoreResult, clock::now_ms};
use tokio::sync::watch;

/// Batches per table and run: bounds one run's work; the next run continues.
const MAX_BATCHES_PER_RUN: usize = 200;

/// The retention periods (`None`: keep forever) and how the job paces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// `idempotency_keys` (default 24 h; a key is never purged before it expires).
    pub idempotency: Option<Duration>,
    /// `jobs` in state `done` (default 7 d).
    pub done_jobs: Option<Duration>,
    /// `delivery_attempts` (default 30 d).
    pub delivery_attempts: Option<Duration>,
    /// `upstream_notifications` (default 30 d).
    pub upstream_notifications: Option<Duration>,
    /// Between runs (default 10 min).
    pub interval: Duration,
    /// Rows per delete transaction (default 500).
    pub batch: i64,
}

/// Parses `30s`, `10m`, `24h`, `30d` (or plain seconds); `0` or `off` means keep forever.
fn period(key: &'static str, value: &str) -> Result<Option<Duration>, ConfigError> {
    let value = value.trim();
    if value == "0" || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (digits, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = digits.parse().map_err(|_| ConfigError::Value {
        key,
        reason: format!("`{value}` is not a duration such as 24h, 30d or off"),
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(ConfigError::Value {
                key,
                reason: format!("unknown unit in `{value}` (use s, m, h or d)"),
            });
        }
    };
    Ok(Some(Duration::from_secs(secs)))
}

impl Retention {
    /// Reads the `retention_*` keys of `config`.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let interval =
            period("retention_interval", &config.retention_interval)?.ok_or_else(|| {
                ConfigError::Value {
                    key: "retention_interval",
                    reason: "must be positive".to_owned(),
                }
            })?;
        if config.retention_batch_size == 0 {
            return Err(ConfigError::Value {
                key: "retention_batch_size",
                reason: "must be positive".to_owned(),
            });
        }
        Ok(Self {
            idempotency: period("retention_idempotency", &config.retention_idempotency)?,
            done_jobs: period("retention_jobs", &config.retention_jobs)?,
            delivery_attempts: period(
                "retention_delivery_attempts",
                &config.retention_delivery_attempts,
            )?,
            upstream_notifications: period(
                "retention_upstream_notifications",
                &config.retention_upstream_notifications,
            )?,
            interval,
            batch: i64::from(config.retention_batch_size),
        })
    }

    fn period_of(&self, table: Table) -> Option<Duration> {
        match table {
            Table::IdempotencyKeys => self.idempotency,
            Table::DoneJobs => self.done_jobs,
            Table::DeliveryAttempts => self.delivery_attempts,
            Table::UpstreamNotifications => self.upstream_notifications,
        }
    }

    /// One pass over every table as of `now` (ms since the epoch); returns rows deleted per
    /// table.
    pub async fn run_once(&self, db: &Database, now: i64) -> StoreResult<Vec<(Table, usize)>> {
        let mut deleted = Vec::new();
        for table in Table::ALL {
            let Some(period) = self.period_of(table) else {
                continue;
            };
            let cutoff = now - i64::try_from(period.as_millis()).unwrap_or(i64::MAX / 2);
            let n = purge_all(db, table, cutoff, now, self.batch, MAX_BATCHES_PER_RUN).await?;
            deleted.push((table, n));
        }
        Ok(deleted)
    }

    /// Runs [`Retention::run_once`] every `interval` until `stopped` changes.
    pub async fn run(self, db: Database, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            match self.run_once(&db, now_ms()).await {
                Ok(deleted) => {
                    for (table, n) in deleted.into_iter().filter(|(_, n)| *n > 0) {
                        tracing::info!(table = table.name(), deleted = n, "retention purged rows");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention run failed; retrying next interval")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_off_disables() {
        assert_eq!(
            period("k", "24h").unwrap(),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            period("k", "30d").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(period("k", "90").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(period("k", "off").unwrap(), None);
        assert_eq!(period("k", "0").unwrap(), None);
        assert!(period("k", "3w").is_err());
        assert!(period("k", "h").is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let r = Retention::from_config(&Config::default()).expect("defaults");
        assert_eq!(r.idempotency, Some(Duration::from_secs(86_400)));
        assert_eq!(r.done_jobs, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(r.delivery_attempts, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            r.upstream_notifications,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(r.interval, Duration::from_secs(600));
        assert_eq!(r.batch, 500);
    }
}

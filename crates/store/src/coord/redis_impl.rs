//! Coordination on Redis, through a reconnecting `ConnectionManager`.

use super::{Coordinator, LockToken, RateCount, RateDecision, WakeInner, WakeReceiver};
use crate::{StoreError, StoreResult, clock};
use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::mpsc;

/// Releases only when the stored token is the caller's: GET and DEL in one atomic step.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Fixed window from the first call: INCR, arm the expiry on the first hit, report count and
/// time left. Re-arms a key that somehow lost its TTL so it cannot block forever.
const RATE: &str = r"
local c = redis.call('INCRBY', KEYS[1], ARGV[2])
if c == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}
";

/// Coordination through Redis; every call gives up after `op_timeout`.
#[derive(Clone)]
pub struct RedisCoordinator {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
    unlock: redis::Script,
    rate: redis::Script,
}

impl RedisCoordinator {
    /// Connects to `url`; every key and channel is namespaced under `prefix` (e.g. `payfac:`).
    pub async fn connect(url: &str, prefix: &str, op_timeout: Duration) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Coordination(format!("invalid redis url: {}", e.to_string().trim()))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            op_timeout * 3,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::CoordinationTimeout(op_timeout * 3))??;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            op_timeout,
            unlock: redis::Script::new(UNLOCK),
            rate: redis::Script::new(RATE),
        })
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>> + Send,
    ) -> StoreResult<T> {
        // A Redis round trip is request time spent waiting on a store, like SQL.
        match crate::waits::timed_database(tokio::time::timeout(self.op_timeout, fut)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::CoordinationTimeout(self.op_timeout)),
        }
    }
}

#[async_trait]
impl Coordinator for RedisCoordinator {
    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<LockToken>> {
        let token = LockToken::generate();
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("lock", key))
            .arg(token.as_str())
            .arg("NX")
            .arg("PX")
            .arg(clock::ms(ttl).max(1));
        let reply: Option<String> = self.timed(cmd.query_async(&mut conn)).await?;
        Ok(reply.map(|_| token))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let mut inv = self.unlock.prepare_invoke();
        inv.key(self.key("lock", key)).arg(token.as_str());
        let n: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(n == 1)
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        let c = self.rate_add(key, 1, window).await?;
        Ok(RateDecision::from_count(c.count, limit, c.window_left))
    }

    async fn rate_add(&self, key: &str, calls: u32, window: Duration) -> StoreResult<RateCount> {
        let mut conn = self.conn.clone();
        let mut inv = self.rate.prepare_invoke();
        inv.key(self.key("rl", key))
            .arg(clock::ms(window).max(1))
            .arg(calls);
        let (count, ttl_ms): (i64, i64) = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(RateCount {
            count: u64::try_from(count).unwrap_or(0),
            window_left: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }

    async fn wake(&self, channel: &str) {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.key("wake", channel)).arg(1);
        if let Err(e) = self.timed(cmd.query_async::<i64>(&mut conn)).await {
            // runners also poll, so a lost wake-up only delays work
            tracing::debug!(error = %e, channel, "wake-up not published");
        }
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<WakeReceiver> {
        let name = self.key("wake", channel);
        let client = self.client.clone();
        let pubsub = self
            .timed(async move {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&name).await?;
                Ok(pubsub)
            })
            .await?;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    msg = messages.next() => match msg {
                        // a full channel already holds a pending wake-up: coalesce
                        Some(_) => if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) { break },
                        None => break,
                    },
                }
            }
        });
        Ok(WakeReceiver {
            inner: WakeInner::Remote(rx),
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: String = self
            .timed(redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(())
    }
}

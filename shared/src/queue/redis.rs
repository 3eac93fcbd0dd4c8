//! The Redis queue: a ready list, the set of ids in it, a processing sorted set, and
//! completed and failed lists, all under one key prefix. Each operation is one script
//! call, so a batch costs one round trip.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, Script};
use async_trait::async_trait;
use uuid::Uuid;

use super::{Queue, QueueError, QueueStats, RateLimit, Settled, COMPLETED_KEPT};
use crate::config::{ConfigError, RedisSettings};

/// Builds connection details from `REDIS_URL`, or else from the `REDIS_*` parts.
pub fn redis_connection_info(settings: &RedisSettings) -> Result<ConnectionInfo, ConfigError> {
    if let Some(url) = &settings.url {
        return url.expose().into_connection_info().map_err(|e| {
            ConfigError::new(
                "REDIS_URL",
                format!(
                    "is not a valid redis URL ({e}); expected redis://[:password@]host:port[/db]"
                ),
            )
        });
    }
    let mut redis = RedisConnectionInfo::default().set_db(settings.db);
    if !settings.password.expose().is_empty() {
        redis = redis.set_password(settings.password.expose());
    }
    let info = (settings.host.clone(), settings.port)
        .into_connection_info()
        .map_err(|e| ConfigError::new("REDIS_HOST", format!("is not usable: {e}")))?;
    Ok(info.set_redis_settings(redis))
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    ready: String,
    ready_set: String,
    processing: String,
    scheduled: String,
    upcoming: String,
    completed: String,
    failed: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            ready: format!("{prefix}:ready"),
            ready_set: format!("{prefix}:ready:ids"),
            processing: format!("{prefix}:processing"),
            scheduled: format!("{prefix}:scheduled"),
            upcoming: format!("{prefix}:upcoming"),
            completed: format!("{prefix}:completed"),
            failed: format!("{prefix}:failed"),
        }
    }
}

/// The queue in Redis, over one multiplexed connection that reconnects on its own.
#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    keys: Keys,
    push: Script,
    push_untaken: Script,
    pop: Script,
    ack: Script,
    due: Script,
    release: Script,
    take_token: Script,
    prefix: String,
}

impl RedisQueue {
    /// A queue whose connection is made on first use and remade after a failure.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn connect_lazy(info: ConnectionInfo, key_prefix: &str) -> Result<Self, QueueError> {
        let client = ::redis::Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            keys: Keys::new(key_prefix),
            push: Script::new(include_str!("lua/push.lua")),
            push_untaken: Script::new(include_str!("lua/push_untaken.lua")),
            pop: Script::new(include_str!("lua/pop.lua")),
            ack: Script::new(include_str!("lua/ack.lua")),
            due: Script::new(include_str!("lua/due.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            take_token: Script::new(include_str!("lua/take_token.lua")),
            prefix: key_prefix.to_string(),
        })
    }
}

fn parse_ids(raw: Vec<String>) -> Result<Vec<Uuid>, QueueError> {
    raw.into_iter()
        .map(|s| Uuid::parse_str(&s).map_err(|_| QueueError::BadItem(s)))
        .collect()
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl Queue for RedisQueue {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = ::redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    async fn push(&self, ids: &[Uuid]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.push.key(&self.keys.ready);
        invocation.key(&self.keys.ready_set);
        for id in ids {
            invocation.arg(id.to_string());
        }
        let added: usize = invocation.invoke_async(&mut conn).await?;
        Ok(added)
    }

    async fn push_untaken(
        &self,
        ids: &[Uuid],
        taken_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.push_untaken.key(&self.keys.ready);
        invocation
            .key(&self.keys.ready_set)
            .key(&self.keys.processing)
            .arg(taken_since.timestamp_millis());
        for id in ids {
            invocation.arg(id.to_string());
        }
        let added: usize = invocation.invoke_async(&mut conn).await?;
        Ok(added)
    }

    async fn repush(&self, ids: &[Uuid]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let members: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let _: i64 = ::redis::cmd("SREM")
            .arg(&self.keys.ready_set)
            .arg(&members)
            .query_async(&mut conn)
            .await?;
        self.push(ids).await
    }

    async fn push_upcoming(
        &self,
        items: &[(Uuid, chrono::DateTime<chrono::Utc>)],
    ) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let members: Vec<(i64, String)> = items
            .iter()
            .map(|(id, at)| (at.timestamp_millis(), id.to_string()))
            .collect();
        let _: i64 = ::redis::cmd("ZADD")
            .arg(&self.keys.upcoming)
            .arg(members)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn release_upcoming(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<usize, QueueError> {
        let mut conn = self.conn.clone();
        let released: usize = self
            .release
            .key(&self.keys.upcoming)
            .key(&self.keys.ready)
            .key(&self.keys.ready_set)
            .arg(now.timestamp_millis())
            .arg(max)
            .invoke_async(&mut conn)
            .await?;
        Ok(released)
    }

    async fn pop(&self, max: usize) -> Result<Vec<Uuid>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let raw: Vec<String> = self
            .pop
            .key(&self.keys.ready)
            .key(&self.keys.ready_set)
            .key(&self.keys.processing)
            .arg(max)
            .arg(now_millis())
            .invoke_async(&mut conn)
            .await?;
        parse_ids(raw)
    }

    async fn settle(&self, items: &[(Uuid, Settled)]) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.ack.key(&self.keys.processing);
        invocation
            .key(&self.keys.completed)
            .key(&self.keys.failed)
            .key(&self.keys.scheduled)
            .arg(COMPLETED_KEPT);
        for (id, how) in items {
            let kind = match how {
                Settled::Completed => "c".to_string(),
                Settled::Failed => "f".to_string(),
                Settled::Dropped => "d".to_string(),
                Settled::Retry { due } => format!("r:{}", due.timestamp_millis()),
            };
            invocation.arg(id.to_string()).arg(kind);
        }
        let _settled: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(())
    }

    async fn take_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<Uuid>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let raw: Vec<String> = self
            .due
            .key(&self.keys.scheduled)
            .arg(now.timestamp_millis())
            .arg(max)
            .invoke_async(&mut conn)
            .await?;
        parse_ids(raw)
    }

    async fn take_token(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<Option<Duration>, QueueError> {
        let mut conn = self.conn.clone();
        let (taken, wait_ms): (i64, i64) = self
            .take_token
            .key(format!("{}:ratelimit:{bucket}", self.prefix))
            .arg(limit.burst.max(1))
            .arg(limit.per_second.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok((taken == 0).then(|| Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0))))
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut conn = self.conn.clone();
        let (ready, scheduled, upcoming, processing, completed, failed): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
        ) = ::redis::pipe()
            .llen(&self.keys.ready)
            .zcard(&self.keys.scheduled)
            .zcard(&self.keys.upcoming)
            .zcard(&self.keys.processing)
            .llen(&self.keys.completed)
            .llen(&self.keys.failed)
            .query_async(&mut conn)
            .await?;
        Ok(QueueStats {
            ready,
            scheduled: scheduled + upcoming,
            processing,
            completed,
            failed,
        })
    }
}

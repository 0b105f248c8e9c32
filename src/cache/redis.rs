//! The Redis cache: MGET for batched reads, a pipelined SET EX for writes, DEL for
//! invalidation. One multiplexed connection, opened lazily and dropped on any error so the
//! next call reconnects: Redis may be down at start or restart while we serve.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::{Cache, CacheError};

pub struct RedisCache {
    client: redis::Client,
    /// The shared connection; a tokio Mutex because connecting awaits while holding it (so
    /// that a burst of requests opens one connection, not one each).
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Bound on every call, connection included.
    timeout: Duration,
}

impl RedisCache {
    pub fn new(client: redis::Client, timeout: Duration) -> RedisCache {
        RedisCache {
            client,
            conn: Mutex::new(None),
            timeout,
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| CacheError("redis connect timed out".into()))?
            .map_err(|e| CacheError(format!("redis connect: {e}")))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs one command (or pipeline) with the timeout; on failure forgets the connection.
    async fn run<T: redis::FromRedisValue>(&self, cmd: impl RedisCall) -> Result<T, CacheError> {
        let mut conn = self.connection().await?;
        let result = tokio::time::timeout(self.timeout, cmd.call(&mut conn)).await;
        let outcome = match result {
            Err(_) => Err(CacheError("redis call timed out".into())),
            Ok(Err(e)) => Err(CacheError(format!("redis: {e}"))),
            Ok(Ok(v)) => {
                redis::from_redis_value(v).map_err(|e| CacheError(format!("redis reply: {e}")))
            }
        };
        if outcome.is_err() {
            *self.conn.lock().await = None;
        }
        outcome
    }
}

/// A command or a pipeline, so `run` can time either out.
trait RedisCall {
    fn call<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> redis::RedisFuture<'a, redis::Value>;
}

impl RedisCall for redis::Cmd {
    fn call<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(self.query_async(conn))
    }
}

impl RedisCall for redis::Pipeline {
    fn call<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(self.query_async(conn))
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        cmd.arg(keys);
        self.run(cmd).await
    }

    async fn set_many(
        &self,
        entries: &[(String, String)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(k)
                .arg(v)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
        }
        self.run::<()>(pipe).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        self.run::<i64>(cmd).await.map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

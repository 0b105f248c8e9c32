//! One lazily opened, self-healing Redis connection with a timeout on every call, shared by
//! the cache and the event bus: Redis may be down at start or restart while we serve, and a
//! slow Redis must never hold a request for long.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// A cheap-to-clone handle on one multiplexed connection, opened on first use and dropped
/// after any error so that the next call reconnects.
#[derive(Clone)]
pub struct LazyRedis {
    client: redis::Client,
    /// The open connection, cloned out under a lock held for no await (every call takes it).
    conn: Arc<std::sync::Mutex<Option<MultiplexedConnection>>>,
    /// Held while connecting, so that a burst of requests opens one connection, not one each.
    connecting: Arc<tokio::sync::Mutex<()>>,
    /// Bound on every call, connecting included.
    timeout: Duration,
}

impl LazyRedis {
    pub fn new(client: redis::Client, timeout: Duration) -> LazyRedis {
        LazyRedis {
            client,
            conn: Arc::default(),
            connecting: Arc::default(),
            timeout,
        }
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        if let Some(c) = self.slot().as_ref() {
            return Ok(c.clone());
        }
        let _connecting = self.connecting.lock().await;
        // Someone else may have connected while this call waited.
        if let Some(c) = self.slot().as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "redis connect timed out".to_owned())?
            .map_err(|e| format!("redis connect: {e}"))?;
        *self.slot() = Some(c.clone());
        Ok(c)
    }

    /// Runs one command (or pipeline) within the timeout; on failure forgets the connection.
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: impl RedisCall) -> Result<T, String> {
        let mut conn = self.connection().await?;
        let result = tokio::time::timeout(self.timeout, cmd.call(&mut conn)).await;
        let outcome = match result {
            Err(_) => Err("redis call timed out".to_owned()),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Ok(Ok(v)) => redis::from_redis_value(v).map_err(|e| format!("redis reply: {e}")),
        };
        if outcome.is_err() {
            *self.slot() = None;
        }
        outcome
    }
}

/// A command or a pipeline, so `run` can time either out.
pub trait RedisCall {
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

//! The Redis cache: MGET for batched reads, one script of GETRANGEs for their heads, a
//! pipelined SET EX for writes, DEL for invalidation, over the shared self-healing connection
//! of [`crate::redis_conn`].

use std::time::Duration;

use super::{Cache, CacheError};
use crate::redis_conn::LazyRedis;

/// The first `ARGV[1] + 1` bytes of each of `KEYS`.
const HEADS: &str = "local out = {} \
for i, key in ipairs(KEYS) do out[i] = redis.call('GETRANGE', key, 0, ARGV[1]) end \
return out";

pub struct RedisCache {
    conn: LazyRedis,
}

impl RedisCache {
    pub fn new(conn: LazyRedis) -> RedisCache {
        RedisCache { conn }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: impl crate::redis_conn::RedisCall,
    ) -> Result<T, CacheError> {
        self.conn.run(cmd).await.map_err(CacheError)
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

    async fn get_heads(
        &self,
        keys: &[String],
        len: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() || len == 0 {
            return Ok(keys.iter().map(|_| None).collect());
        }
        // One command rather than a pipeline of GETRANGEs: building and reading 50 commands
        // cost the server about as much as reading the values whole.
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(HEADS).arg(keys.len()).arg(keys).arg(len - 1);
        // A missing key reads as an empty string; no value stored is empty.
        let heads: Vec<Vec<u8>> = self.run(cmd).await?;
        Ok(heads
            .into_iter()
            .map(|h| (!h.is_empty()).then_some(h))
            .collect())
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

//! The nonces of signed notifications seen within the freshness window, so that a captured
//! notification cannot be played again: in Redis when configured (every instance refuses a
//! nonce any of them saw), else in-process (bounded, with `moka`).
//!
//! A nonce is remembered for twice the window ([`REMEMBER_FOR`]): a signature is believed up
//! to [`WINDOW`] either side of now, so a nonce older than that is refused as stale anyway.
//! A store that cannot answer (Redis down) refuses nothing and believes nothing: the
//! notification fails and the provider sends it again.

use std::time::Duration;

use crate::redis_conn::LazyRedis;

/// How far a signature's timestamp may be from now.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// How long a nonce is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(2 * 5 * 60);

/// Where seen nonces are kept.
#[async_trait::async_trait]
pub trait NonceStore: Send + Sync {
    /// Records `nonce`; `false` when it was recorded before (a replay). Atomic: of two
    /// concurrent calls with one nonce, one gets `true`.
    async fn first_seen(&self, nonce: &str) -> anyhow::Result<bool>;
}

/// In-process: this instance's nonces only.
pub struct MemoryNonces {
    seen: moka::future::Cache<String, ()>,
}

impl MemoryNonces {
    pub fn new(ttl: Duration) -> MemoryNonces {
        MemoryNonces {
            // A million nonces in ten minutes is far past any provider's notification rate;
            // beyond it the oldest go first (they are the nearest to stale anyway).
            seen: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl NonceStore for MemoryNonces {
    async fn first_seen(&self, nonce: &str) -> anyhow::Result<bool> {
        Ok(self
            .seen
            .entry(nonce.to_owned())
            .or_insert(())
            .await
            .is_fresh())
    }
}

/// In Redis, shared by every instance: `SET key 1 NX EX ttl`.
pub struct RedisNonces {
    redis: LazyRedis,
    prefix: String,
    ttl_seconds: u64,
}

impl RedisNonces {
    /// Keys are `<namespace>:pay:nonce:<nonce>`.
    pub fn new(redis: LazyRedis, namespace: &str, ttl: Duration) -> RedisNonces {
        RedisNonces {
            redis,
            prefix: format!("{namespace}:pay:nonce:"),
            ttl_seconds: ttl.as_secs().max(1),
        }
    }
}

#[async_trait::async_trait]
impl NonceStore for RedisNonces {
    async fn first_seen(&self, nonce: &str) -> anyhow::Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{nonce}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl_seconds);
        let set: Option<String> = self.redis.run(cmd).await.map_err(anyhow::Error::msg)?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nonce_is_first_seen_once_even_when_raced() {
        let store = std::sync::Arc::new(MemoryNonces::new(REMEMBER_FOR));
        let tries = (0..32).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.first_seen("n1").await.unwrap() })
        });
        let firsts = futures_util::future::join_all(tries)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(firsts, 1);
        assert!(store.first_seen("n2").await.unwrap());
    }
}

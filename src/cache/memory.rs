//! The in-process cache: moka, bounded in entries, with a TTL.

use std::time::Duration;

use super::{Cache, CacheError};

pub struct MemoryCache {
    inner: moka::future::Cache<String, String>,
}

impl MemoryCache {
    /// At most `capacity` entries, each dropped `ttl` after it was written.
    pub fn new(capacity: u64, ttl: Duration) -> MemoryCache {
        MemoryCache {
            inner: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.inner.get(k).await);
        }
        Ok(out)
    }

    /// The TTL is fixed when the cache is built (moka has one per cache).
    async fn set_many(
        &self,
        entries: &[(String, String)],
        _ttl: Duration,
    ) -> Result<(), CacheError> {
        for (k, v) in entries {
            self.inner.insert(k.clone(), v.clone()).await;
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        for k in keys {
            self.inner.invalidate(k).await;
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

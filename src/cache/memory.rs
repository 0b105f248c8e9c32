//! The in-process cache: moka, bounded in entries, with a TTL.

use std::sync::Arc;
use std::time::Duration;

use super::{Cache, CacheError};

pub struct MemoryCache {
    /// Values shared, so that reading a head copies the head alone.
    inner: moka::future::Cache<String, Arc<str>>,
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
            out.push(self.inner.get(k).await.map(|v| v.to_string()));
        }
        Ok(out)
    }

    async fn get_heads(
        &self,
        keys: &[String],
        len: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let value = self.inner.get(k).await;
            out.push(value.map(|v| v.as_bytes()[..len.min(v.len())].to_vec()));
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
            self.inner.insert(k.clone(), Arc::from(v.as_str())).await;
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

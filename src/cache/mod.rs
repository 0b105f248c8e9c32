//! A small key–value cache with two implementations behind one trait: Redis when
//! `REDIS_URL` is set (shared by every instance), an in-process moka cache otherwise.
//!
//! Callers treat every cache error as a miss: the cache makes reads cheaper, it is never
//! needed for a read to succeed. Errors are returned (so callers can log and count them),
//! never panicked on, and every Redis call is bounded by a timeout so a hung Redis cannot
//! hold a request.

mod memory;
mod redis;

use std::time::Duration;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

/// Why a cache call failed.
#[derive(Debug)]
pub struct CacheError(pub String);

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[async_trait::async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The values of `keys`, in order; `None` for a miss. One round trip.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError>;
    /// The first `len` bytes of each value of `keys` (all of a shorter one), in order; `None`
    /// for a miss. One round trip: for values that start with a tag of their content, to
    /// learn whether a copy in hand is current without reading the value.
    async fn get_heads(
        &self,
        keys: &[String],
        len: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, CacheError>;
    /// Stores every entry with a time to live. One round trip.
    async fn set_many(&self, entries: &[(String, String)], ttl: Duration)
    -> Result<(), CacheError>;
    /// Removes `keys`. One round trip.
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;
    /// `redis` or `memory`, for metrics labels.
    fn backend(&self) -> &'static str;
}

//! Where answers are kept, under versions: one interface, two implementations — Redis,
//! shared by every instance, and in-process.
//!
//! Every answer is stored with the value its version had when the request that computed it
//! *began*, and is served only while that value is current: one bump of a version drops
//! every answer under it, and an answer computed while a change commits (begun before the
//! bump that follows the commit) is never served. The catalog has one version; each member
//! has its own, for its own answers.
//!
//! A store never fails a request: what goes wrong is logged and counted
//! (`pushhand_response_cache_total{outcome="error"}`), and the request then runs without it.

mod memory;
mod redis;

use std::time::Duration;

use uuid::Uuid;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use super::Answer;

/// Larger answers are sent but not stored.
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// Bound on an in-process store, in bytes of bodies.
const MEMORY_BYTES: u64 = 64 << 20;

/// Which version an answer is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Anonymous catalog answers.
    Catalog,
    /// A member's own answers.
    Member(Uuid),
}

/// What a store holds under a key.
pub enum Found {
    /// An answer stored at the current value of its version.
    Hit(Answer),
    /// Nothing current: store the answer at this value of the version.
    Miss(u64),
    /// Run the request without the cache (the store failed, or cannot tell what is current).
    Unusable,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The answer under `key` if it was stored at `version`'s current value; else that
    /// value, to store the answer under once computed.
    async fn find(&self, version: Version, key: u128) -> Found;
    /// Stores `answer` under `key`, at `at`, the value [`Store::find`] gave (skipped when
    /// the version has moved on since, where the store can tell).
    async fn put(&self, version: Version, at: u64, key: u128, answer: &Answer);
    /// Moves `versions` on: answers stored under their older values are never served
    /// again, on any instance the store is shared by. An error means the store did not take
    /// it (already logged and counted).
    async fn bump(&self, versions: &[Version]) -> Result<(), String>;
}

/// Answers under the value of the version they were computed at, at most [`MEMORY_BYTES`]
/// of them, each for `ttl`.
type Bodies = moka::future::Cache<u128, (u64, Answer)>;

fn bodies(ttl: Duration) -> Bodies {
    moka::future::Cache::builder()
        .max_capacity(MEMORY_BYTES)
        .weigher(|_: &u128, (_, answer): &(u64, Answer)| {
            u32::try_from(answer.weight())
                .unwrap_or(u32::MAX)
                .saturating_add(64)
        })
        .time_to_live(ttl)
        .build()
}

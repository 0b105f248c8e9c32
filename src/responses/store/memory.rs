//! The in-process store of one instance: an `AtomicU64` catalog version and a moka cache
//! bounded at 64 MiB of bodies; members' versions in a moka map (a forgotten one restarts at
//! a number never used before) and their answers in another 64 MiB. Not shared: instances
//! without Redis see each other's changes only after the TTL (run several instances with
//! Redis).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use uuid::Uuid;

use super::{Bodies, Found, Store, Version, bodies};
use crate::responses::Answer;

/// Members whose version is kept (a forgotten one starts over at a new number, which only
/// costs its answers).
const MEMBER_VERSIONS: u64 = 1_000_000;

pub struct MemoryStore {
    catalog: AtomicU64,
    /// Catalog answers.
    entries: Bodies,
    /// Each member's version; a (re)created one takes the next number of `next`, so it
    /// never repeats a version an older answer carries.
    members: moka::future::Cache<Uuid, u64>,
    next: AtomicU64,
    /// Members' own answers (apart from `entries`, which every catalog change empties).
    own: Bodies,
}

impl MemoryStore {
    /// Keeps each answer for `ttl` at most.
    pub fn new(ttl: Duration) -> MemoryStore {
        MemoryStore {
            catalog: AtomicU64::new(0),
            entries: bodies(ttl),
            members: moka::future::Cache::new(MEMBER_VERSIONS),
            next: AtomicU64::new(0),
            own: bodies(ttl),
        }
    }

    fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn find(&self, version: Version, key: u128) -> Found {
        let (current, bodies) = match version {
            Version::Catalog => (self.catalog.load(Ordering::SeqCst), &self.entries),
            Version::Member(m) => {
                let start = async { self.next() };
                (self.members.get_with(m, start).await, &self.own)
            }
        };
        match bodies.get(&key).await {
            Some((v, answer)) if v == current => Found::Hit(answer),
            _ => Found::Miss(current),
        }
    }

    async fn put(&self, version: Version, at: u64, key: u128, answer: &Answer) {
        // A bump while the request ran made this answer stale: skip it.
        match version {
            Version::Catalog if self.catalog.load(Ordering::SeqCst) == at => {
                self.entries.insert(key, (at, answer.clone())).await;
            }
            Version::Member(m) if self.members.get(&m).await == Some(at) => {
                self.own.insert(key, (at, answer.clone())).await;
            }
            _ => {}
        }
    }

    async fn bump(&self, versions: &[Version]) -> Result<(), String> {
        for version in versions {
            match version {
                Version::Catalog => {
                    self.catalog.fetch_add(1, Ordering::SeqCst);
                    // Stale now: free the memory early rather than at the TTL.
                    self.entries.invalidate_all();
                }
                Version::Member(m) => self.members.insert(*m, self.next()).await,
            }
        }
        Ok(())
    }
}

//! The Redis store, shared by every instance on one database.
//!
//! The catalog version is `pushhand:catalog:version:<namespace>` (INCR; it lives a week from
//! its creation); an entry is `resp:v2:<namespace>:<key>` holding
//! `"<version>\n<j or g><body>"` (JSON, or gzip when there is a gzip form) with the TTL; a
//! lookup without a copy (below) is one round trip, `MGET version entry`. The namespace names
//! the database ([`crate::db::namespace`]), so deployments and test databases that share one
//! Redis never see each other's answers. A member's version is
//! `pushhand:member:version:<namespace>:<id>`, kept the same way.
//!
//! Each instance also keeps a copy of the entries it read or wrote, with their version
//! (bounded like the in-process store, and as long-lived): a hit on a copy asks Redis for
//! the version alone (`GET`), and concurrent asks for one version share a `GET` without
//! ever being answered by one sent before they began ([`crate::redis_reads`]), so a change
//! is still seen by the next request on every instance. A copy whose version is no longer
//! current is a miss of the copy, and the lookup goes on to `MGET`.
//!
//! A missing version key (new, expired, flushed or evicted) is recreated (`SET NX`) at the
//! current time in microseconds — never at a value an old entry could carry — by the first
//! lookup or bump that finds it missing; only the lookup that created it stores its answer
//! under it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Bodies, Found, MAX_ENTRY_BYTES, Store, Version, bodies};
use crate::metrics::Metrics;
use crate::redis_conn::LazyRedis;
use crate::redis_reads::CoalescedReads;
use crate::responses::Answer;

/// Lifetime of a Redis version counter from its creation (INCR keeps it): it is then
/// recreated like an evicted one, so counters of databases that are gone (test databases)
/// do not pile up in a shared Redis.
const VERSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct RedisStore {
    conn: LazyRedis,
    /// `pushhand:catalog:version:<namespace>`
    catalog_key: String,
    /// `pushhand:member:version:<namespace>:`, followed by the member's id.
    member_prefix: String,
    /// `resp:v2:<namespace>:`
    entry_prefix: String,
    /// This instance's copies of the answers it read from or wrote to Redis, with the
    /// version they carry there: a hit on a copy asks Redis for the version alone.
    near: Bodies,
    /// Version reads of hits on `near`, coalesced.
    versions: CoalescedReads,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

impl RedisStore {
    /// The store every instance on the database named `namespace` shares; entries live
    /// `ttl`.
    pub fn new(
        conn: LazyRedis,
        namespace: &str,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> RedisStore {
        RedisStore {
            conn: conn.clone(),
            catalog_key: format!("pushhand:catalog:version:{namespace}"),
            member_prefix: format!("pushhand:member:version:{namespace}:"),
            entry_prefix: format!("resp:v2:{namespace}:"),
            near: bodies(ttl),
            versions: CoalescedReads::new(conn),
            ttl,
            metrics,
        }
    }

    fn version_key(&self, version: Version) -> Cow<'_, str> {
        match version {
            Version::Catalog => Cow::Borrowed(&self.catalog_key),
            Version::Member(m) => Cow::Owned(format!("{}{m}", self.member_prefix)),
        }
    }

    fn entry_key(&self, key: u128) -> String {
        format!("{}{key:032x}", self.entry_prefix)
    }

    fn failed(&self, what: &str, e: &str) {
        tracing::warn!(error = %e, "response cache: {what}");
        self.metrics.count_response_cache("error");
    }

    /// The version under `version_key`: `None` if it is missing, unreadable or Redis
    /// failed (counted; the lookup then goes on to [`RedisStore::lookup`], which deals with
    /// each).
    async fn current(&self, version_key: &str) -> Option<u64> {
        match self.versions.get(version_key).await {
            Ok(v) => parse_version(&v?),
            Err(e) => {
                self.failed("version read failed", &e);
                None
            }
        }
    }

    /// `MGET version entry`: the entry if it carries the current version, else where to
    /// store the answer. A missing version is started (`SET NX`) at the time in
    /// microseconds; only the lookup that started it may store under it. A hit is also kept
    /// in `near`, this instance's copies.
    async fn lookup(&self, version_key: &str, key: u128) -> Found {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(version_key).arg(self.entry_key(key));
        match self
            .conn
            .run::<(Option<Vec<u8>>, Option<Vec<u8>>)>(cmd)
            .await
        {
            Err(e) => {
                self.failed("read failed; running the request", &e);
                Found::Unusable
            }
            Ok((None, _)) => {
                let start = fresh_version();
                let mut init = redis::cmd("SET");
                init.arg(version_key)
                    .arg(start)
                    .arg("NX")
                    .arg("EX")
                    .arg(VERSION_TTL.as_secs());
                match self.conn.run::<Option<String>>(init).await {
                    Ok(Some(_)) => Found::Miss(start),
                    // Another lookup started it just now: its value is not ours to store under.
                    Ok(None) => Found::Unusable,
                    Err(e) => {
                        self.failed("version start failed", &e);
                        Found::Unusable
                    }
                }
            }
            Ok((Some(v), entry)) => match parse_version(&v) {
                None => {
                    self.failed("version is not a number", "unreadable version");
                    Found::Unusable
                }
                Some(current) => match entry.and_then(|e| answer_at(e, current)) {
                    Some(answer) => {
                        self.near.insert(key, (current, answer.clone())).await;
                        Found::Hit(answer)
                    }
                    None => Found::Miss(current),
                },
            },
        }
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn find(&self, version: Version, key: u128) -> Found {
        let version_key = self.version_key(version);
        if let Some((at, answer)) = self.near.get(&key).await
            && self.current(&version_key).await == Some(at)
        {
            return Found::Hit(answer);
        }
        self.lookup(&version_key, key).await
    }

    async fn put(&self, _version: Version, at: u64, key: u128, answer: &Answer) {
        self.near.insert(key, (at, answer.clone())).await;
        let mut value = format!("{at}\n").into_bytes();
        value.extend_from_slice(&answer.to_stored());
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.entry_key(key))
            .arg(value)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1));
        if let Err(e) = self.conn.run::<()>(cmd).await {
            self.failed("write failed", &e);
        }
    }

    async fn bump(&self, versions: &[Version]) -> Result<(), String> {
        if versions.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for version in versions {
            bump(&mut pipe, &self.version_key(*version));
        }
        self.conn.run::<()>(pipe).await.inspect_err(|e| {
            self.failed("invalidation failed; cached answers live out their TTL", e)
        })
    }
}

/// Adds the increment of a Redis version counter to `pipe`. Recreated after a flush or an
/// eviction, a counter starts at the time, so it never repeats a version an entry still
/// carries.
fn bump(pipe: &mut redis::Pipeline, version_key: &str) {
    pipe.cmd("SET")
        .arg(version_key)
        .arg(fresh_version())
        .arg("NX")
        .arg("EX")
        .arg(VERSION_TTL.as_secs())
        .ignore()
        .cmd("INCR")
        .arg(version_key)
        .ignore();
}

fn parse_version(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

/// The answer of a Redis entry `"<version>\n<stored answer>"` if it was computed at
/// `current` ([`Answer::to_stored`]).
fn answer_at(entry: Vec<u8>, current: u64) -> Option<Answer> {
    let newline = entry.iter().position(|b| *b == b'\n')?;
    if parse_version(&entry[..newline])? != current {
        return None;
    }
    Answer::from_stored(Bytes::from(entry).slice(newline + 1..), MAX_ENTRY_BYTES)
}

/// A starting value for a (re)created Redis counter: the time in microseconds.
fn fresh_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

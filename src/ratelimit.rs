//! Limits on failed credential attempts — logins, password changes, registrations, invite
//! codes and partner links — and the cap on password hashing those attempts share.
//!
//! An attempt is counted *before* it runs: it reserves a place on each of its counters, and
//! when it ends the place becomes a failure (a wrong password or code, a taken email or
//! phone, or an attempt abandoned midway) or is given back (success, bad input, a dependency
//! down). A counter at its limit of failures refuses with `RATE_LIMITED`; one whose failures
//! and attempts in flight together reach the limit makes the next attempt wait (up to
//! [`WAIT`]) for one of them to end. So a burst of concurrent guesses runs at most the
//! allowed number, however fast it arrives, while a burst of good attempts (a room of people
//! registering with invite codes behind one address) only queues. The counters, each a
//! fixed one-minute window:
//! - per account (a login's normalised email or phone, a member changing its password):
//!   `PUSHHAND_AUTH_FAILURES_PER_MINUTE` (5). Failures on one account never block another.
//! - per client address for code guesses (invite codes, partner links), whatever the code:
//!   the same 5.
//! - per client address, all of the above plus registrations refused as `EMAIL_TAKEN` /
//!   `PHONE_TAKEN`: `PUSHHAND_AUTH_ADDRESS_FAILURES_PER_MINUTE` (50), generous because many
//!   people may share an address (IPv6 addresses count per /64).
//!
//! With Redis the counters are shared by every instance: a hash per counter (`f` failures,
//! `i` in flight) that one Lua script checks and reserves for all of an attempt's counters
//! atomically, and another settles; keys are namespaced by database like the response
//! cache's. Without Redis, or while it fails, the counters are in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::redis_conn::LazyRedis;
use crate::service::auth::Hashing;

/// The window every counter counts in.
const WINDOW: Duration = Duration::from_secs(60);
/// How long an attempt may wait for attempts in flight on its counters to end.
pub const WAIT: Duration = Duration::from_secs(5);
/// Bound on each Redis call: a slow Redis falls back to the in-process counters.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a waiting attempt asks Redis again (attempts ending on this instance wake it
/// at once).
const REDIS_POLL: Duration = Duration::from_millis(25);

/// For each `KEYS[i]` with limit `ARGV[i + 1]`: 0 when its failures are at the limit
/// (refused), else 2 when failures and attempts in flight reach it (wait), else — all of
/// them below — one more in flight on each, a new window (`ARGV[1]` ms) where there was
/// none, and 1.
const RESERVE: &str = r"
local busy = false
for i, key in ipairs(KEYS) do
  local f = tonumber(redis.call('HGET', key, 'f') or '0')
  local n = tonumber(redis.call('HGET', key, 'i') or '0')
  local limit = tonumber(ARGV[i + 1])
  if f >= limit then return 0 end
  if f + n >= limit then busy = true end
end
if busy then return 2 end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'i', 1)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
";

/// Ends an attempt on each of `KEYS`: one less in flight, one more failure if `ARGV[2]` is
/// 1 (window `ARGV[1]` ms where there was none).
const SETTLE: &str = r"
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'i') or '0')
  if n > 0 then redis.call('HINCRBY', key, 'i', -1) end
  if ARGV[2] == '1' then redis.call('HINCRBY', key, 'f', 1) end
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
";

/// What an attempt counts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// One account, by a stable name (e.g. `login:email:a@b.cn`, `member:<id>`).
    Account(String),
    /// Code guesses from one client address.
    Codes(IpAddr),
    /// Every failure from one client address.
    Address(IpAddr),
}

/// An address as counted: IPv6 by its /64 (one subscriber's usual allocation), an
/// IPv4-mapped IPv6 address as the IPv4 address.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Account(name) => format!("account:{name}"),
            Key::Codes(ip) => format!("codes:{}", address_key(*ip)),
            Key::Address(ip) => format!("address:{}", address_key(*ip)),
        }
    }

    fn limit(&self, config: &crate::config::Config) -> u32 {
        match self {
            Key::Account(_) | Key::Codes(_) => config.auth_failures_per_minute,
            Key::Address(_) => config.auth_address_failures_per_minute,
        }
        .max(1)
    }
}

/// An attempt's places on its counters, until [`Reservation::settle`] says how it ended. A
/// reservation dropped unsettled (the request went away midway) counts as a failure.
#[must_use]
pub struct Reservation {
    shared: Arc<Shared>,
    names: Vec<String>,
    /// The connection and keys, when Redis counted them.
    redis: Option<(LazyRedis, Vec<String>)>,
    settled: bool,
}

impl Reservation {
    /// Ends the attempt: a failure stays counted for the window, anything else is given
    /// back.
    pub async fn settle(mut self, failed: bool) {
        self.settled = true;
        match self.redis.take() {
            Some((conn, keys)) => settle_in_redis(&conn, &keys, failed).await,
            None => self.shared.settle(&self.names, failed),
        }
        self.shared.changed.notify_waiters();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match self.redis.take() {
            Some((conn, keys)) => {
                let shared = self.shared.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        settle_in_redis(&conn, &keys, true).await;
                        shared.changed.notify_waiters();
                    });
                }
            }
            None => {
                self.shared.settle(&self.names, true);
                self.shared.changed.notify_waiters();
            }
        }
    }
}

async fn settle_in_redis(conn: &LazyRedis, keys: &[String], failed: bool) {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SETTLE)
        .arg(keys.len())
        .arg(keys)
        .arg(WINDOW.as_millis() as u64)
        .arg(u8::from(failed));
    if let Err(e) = conn.run::<i64>(cmd).await {
        // The places stay in flight until their window ends: stricter, never laxer.
        tracing::warn!(error = %e, "failure limits: an attempt's end did not reach Redis");
    }
}

struct Window {
    failures: u32,
    in_flight: u32,
    ends: Instant,
}

/// What a counter check decided.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Reserved,
    Refused,
    Wait,
}

/// The in-process counters, and the signal that an attempt ended.
#[derive(Default)]
struct Shared {
    /// A std Mutex: held for map operations only.
    windows: Mutex<HashMap<String, Window>>,
    changed: tokio::sync::Notify,
}

impl Shared {
    /// The in-process counterpart of [`RESERVE`].
    fn reserve(&self, counted: &[(String, u32)]) -> Check {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = false;
        for (name, limit) in counted {
            let (failures, in_flight) = windows.get(name).map_or((0, 0), |w| {
                (if w.ends > now { w.failures } else { 0 }, w.in_flight)
            });
            if failures >= *limit {
                return Check::Refused;
            }
            wait |= failures + in_flight >= *limit;
        }
        if wait {
            return Check::Wait;
        }
        for (name, _) in counted {
            let w = windows.entry(name.clone()).or_insert(Window {
                failures: 0,
                in_flight: 0,
                ends: now + WINDOW,
            });
            if w.ends <= now {
                // A new window; attempts in flight stay in flight.
                w.failures = 0;
                w.ends = now + WINDOW;
            }
            w.in_flight += 1;
        }
        Check::Reserved
    }

    /// The in-process counterpart of [`SETTLE`].
    fn settle(&self, names: &[String], failed: bool) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            if let Some(w) = windows.get_mut(name) {
                w.in_flight = w.in_flight.saturating_sub(1);
                if w.ends <= now {
                    w.failures = 0;
                    w.ends = now + WINDOW;
                }
                if failed {
                    w.failures += 1;
                }
            }
        }
    }
}

fn rate_limited() -> Error {
    Error::rule(
        "RATE_LIMITED",
        "too many failed attempts; try again in a minute",
    )
}

pub struct FailureLimiter {
    /// The in-process counters (without Redis, or while it fails).
    shared: Arc<Shared>,
    /// The Redis connection, opened from the state's client on first use.
    redis: OnceLock<LazyRedis>,
    /// The Redis key prefix: per database, so that deployments (and test databases) sharing
    /// a Redis never share counters, and instances sharing a database do.
    prefix: tokio::sync::OnceCell<String>,
    /// The hashing cap, sized from the configuration on first use.
    hashing: OnceLock<Hashing>,
}

impl FailureLimiter {
    /// `per_minute` is `PUSHHAND_AUTH_FAILURES_PER_MINUTE`, which the configuration also
    /// carries: every limit is read from the state's configuration when counting.
    pub fn new(per_minute: u32) -> FailureLimiter {
        tracing::debug!(per_minute, "credential failure limits");
        FailureLimiter {
            shared: Arc::default(),
            redis: OnceLock::new(),
            prefix: tokio::sync::OnceCell::new(),
            hashing: OnceLock::new(),
        }
    }

    /// The cap on password hashing for requests ([`Hashing`]).
    pub fn hashing(&self, config: &crate::config::Config) -> &Hashing {
        self.hashing.get_or_init(|| Hashing::from_config(config))
    }

    /// Reserves a place on each of `keys`: `RATE_LIMITED` (reserving nothing) when any is at
    /// its limit of failures, or when attempts in flight kept it full for [`WAIT`].
    /// `redis` and `db` locate the counters shared by every instance (when Redis is set).
    pub async fn reserve(
        &self,
        config: &crate::config::Config,
        redis: Option<&redis::Client>,
        db: &sea_orm::DatabaseConnection,
        keys: &[Key],
    ) -> Result<Reservation> {
        let counted: Vec<(String, u32)> =
            keys.iter().map(|k| (k.name(), k.limit(config))).collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        let shared = self.shared(redis, db).await;
        loop {
            // Listening before checking, so that an attempt ending in between is not missed.
            let ended = self.shared.changed.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let (check, redis) = match shared {
                Some((conn, prefix)) => {
                    let keys: Vec<String> = counted
                        .iter()
                        .map(|(name, _)| format!("{prefix}{name}"))
                        .collect();
                    match reserve_in_redis(conn, &keys, &counted).await {
                        Ok(check) => (check, Some((conn.clone(), keys))),
                        Err(e) => {
                            tracing::warn!(error = %e, "failure limits: Redis failed; counting in process");
                            (self.shared.reserve(&counted), None)
                        }
                    }
                }
                None => (self.shared.reserve(&counted), None),
            };
            match check {
                Check::Reserved => {
                    return Ok(Reservation {
                        shared: self.shared.clone(),
                        names: counted.into_iter().map(|(name, _)| name).collect(),
                        redis,
                        settled: false,
                    });
                }
                Check::Refused => return Err(rate_limited()),
                Check::Wait => {
                    // Attempts ending elsewhere are only seen by asking again.
                    let until = match redis {
                        Some(_) => deadline.min(tokio::time::Instant::now() + REDIS_POLL),
                        None => deadline,
                    };
                    let _ = tokio::time::timeout_at(until, ended).await;
                    if tokio::time::Instant::now() >= deadline {
                        return Err(rate_limited());
                    }
                }
            }
        }
    }

    /// Redis and the key prefix, when Redis is configured and the prefix could be read.
    async fn shared(
        &self,
        redis: Option<&redis::Client>,
        db: &sea_orm::DatabaseConnection,
    ) -> Option<(&LazyRedis, &str)> {
        let client = redis?;
        let conn = self
            .redis
            .get_or_init(|| LazyRedis::new(client.clone(), REDIS_TIMEOUT));
        let prefix = self
            .prefix
            .get_or_try_init(|| async {
                crate::db::namespace(db)
                    .await
                    .map(|ns| format!("pushhand:limit:{ns}:"))
            })
            .await
            .inspect_err(|e| tracing::warn!(error = ?e, "failure limits: no Redis namespace"))
            .ok()?;
        Some((conn, prefix.as_str()))
    }

    /// Forgets counters whose window has ended with nothing in flight (called periodically
    /// to bound memory).
    pub fn prune(&self) {
        let now = Instant::now();
        self.shared
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, w| w.ends > now || w.in_flight > 0);
    }
}

async fn reserve_in_redis(
    conn: &LazyRedis,
    keys: &[String],
    counted: &[(String, u32)],
) -> std::result::Result<Check, String> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RESERVE)
        .arg(keys.len())
        .arg(keys)
        .arg(WINDOW.as_millis() as u64);
    for (_, limit) in counted {
        cmd.arg(*limit);
    }
    Ok(match conn.run::<i64>(cmd).await? {
        1 => Check::Reserved,
        0 => Check::Refused,
        _ => Check::Wait,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_counters_refuse_at_the_limit_and_wait_while_full() {
        let shared = Shared::default();
        let account = ("account:a".to_owned(), 2);
        let address = ("address:p".to_owned(), 3);
        let both = [account.clone(), address.clone()];
        assert_eq!(shared.reserve(&both), Check::Reserved);
        assert_eq!(shared.reserve(&both), Check::Reserved);
        // Two in flight on the account: the third waits, counting nothing.
        assert_eq!(shared.reserve(&both), Check::Wait);
        // One succeeds (given back): room again.
        shared.settle(&[account.0.clone(), address.0.clone()], false);
        assert_eq!(shared.reserve(&both), Check::Reserved);
        // Both fail: the account is refused, another account on the address is not.
        shared.settle(&[account.0.clone(), address.0.clone()], true);
        shared.settle(&[account.0.clone(), address.0.clone()], true);
        assert_eq!(shared.reserve(&both), Check::Refused);
        let other = [("account:b".to_owned(), 2), address.clone()];
        assert_eq!(shared.reserve(&other), Check::Reserved);
        // The address has 2 failures and 1 in flight of 3: full, so waiting.
        assert_eq!(shared.reserve(&other), Check::Wait);
        shared.settle(&[other[0].0.clone(), address.0.clone()], true);
        assert_eq!(shared.reserve(&other), Check::Refused);
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key(mapped), "10.0.0.1");
    }
}

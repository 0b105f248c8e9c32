//! Per-client limits on failed credential attempts — logins, invite codes and partner
//! links: more than five failures a minute from one client address blocks that client's
//! attempts (right or wrong) for a minute with `RATE_LIMITED`.
//!
//! Counting is governor's GCRA limiter keyed by IP address, per instance. Cluster-wide, the
//! same keys would go to Redis (an `INCR` + `EXPIRE` per failure, or a Redis-backed GCRA such
//! as redis-cell) so that a client cannot spread its guesses over instances.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

pub struct FailureLimiter {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Clients over the limit, until when. A std Mutex: held for a map operation only.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    block_for: Duration,
}

impl FailureLimiter {
    /// Allows `per_minute` failures a minute per client (at least 1).
    pub fn new(per_minute: u32) -> FailureLimiter {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        FailureLimiter {
            failures: RateLimiter::keyed(Quota::per_minute(per_minute)),
            blocked: Mutex::new(HashMap::new()),
            block_for: Duration::from_secs(60),
        }
    }

    /// Refuses a client that is blocked.
    pub fn check(&self, client: IpAddr) -> Result<()> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&client) {
            Some(until) if *until > Instant::now() => Err(Error::rule(
                "RATE_LIMITED",
                "too many failed attempts; try again in a minute",
            )),
            Some(_) => {
                blocked.remove(&client);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt. The one over the limit blocks the client and is itself
    /// answered `RATE_LIMITED` (the `Err`).
    pub fn record_failure(&self, client: IpAddr) -> Result<()> {
        if self.failures.check_key(&client).is_err() {
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            blocked.insert(client, Instant::now() + self.block_for);
            drop(blocked);
            return self.check(client);
        }
        Ok(())
    }

    /// Forgets clients that have been quiet (called periodically to bound memory).
    pub fn prune(&self) {
        self.failures.retain_recent();
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

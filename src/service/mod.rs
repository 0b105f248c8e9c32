//! Business rules, one module per domain. Services take a database connection (or a
//! transaction) and plain values, return [`crate::error::Result`], and know nothing of
//! GraphQL or HTTP: the API, the CLI, the seed and the tests call the same functions.
//!
//! Functions whose outcome depends on the time take `now` as an argument; the API passes the
//! app's [`Clock`], so tests can move time forward without sleeping.
//!
//! Writes that lock several rows take them in one order, so that no two transactions wait
//! for each other in a circle (PostgreSQL would abort one as a deadlock): an order's row
//! first; then its lines and SKUs (by id); earnings (by id); the membership-reward day
//! counters (by key, [`reward_days`]); team counters (nearest upline first, [`hierarchy`]);
//! and the money counters last, months then balances, each by key ([`writes::Writes`]).
//! Binding changes take the hierarchy's lock row before any of theirs. A new write path
//! keeps to this order, and gets a test that races it against the paths it shares rows with
//! (`tests/api/earnings.rs`, `…_never_deadlock`).

pub mod auth;
pub mod batch;
pub mod catalog;
pub mod curation;
pub mod earnings;
pub mod hierarchy;
pub mod immutable;
pub mod ledger;
pub mod members;
pub mod orders;
pub mod page;
pub mod reward_days;
pub mod team;
pub mod units_sold;
pub mod withdrawals;
pub mod writes;

use std::sync::Mutex;

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// The current time at millisecond precision.
///
/// Every stored timestamp goes through here. SQLite keeps timestamps as RFC 3339 text with
/// as many fraction digits as the value needs; at a fixed precision the text sorts in time
/// order, which the keyset cursors rely on. PostgreSQL would keep microseconds either way.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Where the app reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// The real time plus an offset that tests move forward (binding expiry, settlement windows).
#[derive(Default)]
pub struct ManualClock {
    /// A std Mutex: nothing awaits while it is held.
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

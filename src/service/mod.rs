//! Business rules, one module per domain. Services take a database connection (or a
//! transaction) and plain values, return [`crate::error::Result`], and know nothing of
//! GraphQL or HTTP: the API, the CLI, the seed and the tests call the same functions.

pub mod catalog;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at millisecond precision.
///
/// Every stored timestamp goes through here. SQLite keeps timestamps as RFC 3339 text with
/// as many fraction digits as the value needs; at a fixed precision the text sorts in time
/// order, which the keyset cursors rely on. PostgreSQL would keep microseconds either way.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

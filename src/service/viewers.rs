//! Signed-in members' rows remembered between their requests: a member's next request within
//! the time to live (`PUSHHAND_VIEWER_TTL_MS`, 1 s by default) needs no read of its row, unless
//! an event said the row may have changed.
//!
//! Every write to a member row publishes an event naming the member — the response cache's
//! own answers rely on the same rule ([`crate::responses`]) — of a kind for
//! which [`may_change_row`] holds: `CHANGED` (roles, bindings, partner applications, an
//! unfreeze) or `TOKENS_REVOKED` (a password change, a freeze). [`crate::events::Events::publish`]
//! hands every batch to [`Viewers`] after the commit and before the write answers, so on this
//! instance the next request reads the new row: a revoked token is refused at once, a new
//! role is in force at once. Other instances hear of revocations — `TOKENS_REVOKED` is a live
//! event, which the bus carries to every instance (Redis pub/sub) — and forget on delivery,
//! milliseconds later; when the bus may have lost events (its subscriber reconnected) they
//! forget every row. Other changes (`CHANGED` stays on its instance) reach them through the
//! time to live: a new role is in force there within it.
//!
//! A row read while a change commits may predate it. So a read remembers its row only if no
//! member was forgotten between the start of the read and the remembering, checked after
//! inserting: a forgetting that races the insertion still wins. The count is one for all
//! members, so where changes are frequent (every payment with uplines names them in a
//! `CHANGED`) fewer reads are remembered — never a stale one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use entity::member;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::auth::{Credentials, Viewer, viewer_of};
use crate::error::Result;
use crate::events::{Event, Kind};
use crate::metrics::Metrics;

type Rows = moka::sync::Cache<Uuid, Arc<member::Model>>;

pub struct Viewers {
    /// `None` when rows are not remembered (a zero time to live).
    rows: Option<Rows>,
    /// Counts forgettings: a read that saw it move may hold a row older than a change.
    forgotten: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Viewers {
    /// Remembers at most `capacity` members (least recently used go first; a row takes
    /// ~1 KiB), each for `ttl` at most; a zero `ttl` remembers nothing.
    pub fn new(capacity: u64, ttl: Duration, metrics: Arc<Metrics>) -> Viewers {
        Viewers {
            rows: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build()
            }),
            forgotten: AtomicU64::new(0),
            metrics,
        }
    }

    /// The viewer `credentials` make, as [`viewer_of`] makes it: a token's member comes from
    /// memory when its row is remembered at the token's version, else from one primary-key
    /// read, which is then remembered.
    pub async fn viewer(
        &self,
        db: &impl ConnectionTrait,
        credentials: Credentials,
    ) -> Result<Viewer> {
        let (
            Some(rows),
            Credentials::Token {
                member, version, ..
            },
        ) = (&self.rows, credentials)
        else {
            return viewer_of(db, credentials).await;
        };
        if let Some(row) = rows.get(&member)
            && row.token_version == version
        {
            self.metrics.count_viewer_row("remembered");
            return Ok(Viewer::Member(row));
        }
        self.metrics.count_viewer_row("read");
        let before = self.forgotten.load(Ordering::SeqCst);
        let viewer = viewer_of(db, credentials).await?;
        if let Viewer::Member(row) = &viewer {
            self.remember(rows, row.clone(), before);
        }
        Ok(viewer)
    }

    /// Remembers `row`, read after the count of forgettings was `before`, unless a member
    /// was forgotten since.
    fn remember(&self, rows: &Rows, row: Arc<member::Model>, before: u64) {
        let id = row.id;
        rows.insert(id, row);
        if self.forgotten.load(Ordering::SeqCst) != before {
            rows.invalidate(&id);
        }
    }

    /// Forgets every row.
    fn forget_all(&self) {
        if let Some(rows) = &self.rows {
            self.forgotten.fetch_add(1, Ordering::SeqCst);
            rows.invalidate_all();
        }
    }

    /// Forgets the rows of the members that `batch` says may have changed.
    pub fn forget(&self, batch: &[Event]) {
        let Some(rows) = &self.rows else {
            return;
        };
        for e in batch.iter().filter(|e| may_change_row(e.kind)) {
            self.forgotten.fetch_add(1, Ordering::SeqCst);
            rows.invalidate(&e.member);
        }
    }
}

/// Whether an event of `kind` may come with a change of its member's row. Exhaustive: a new
/// kind must say.
pub fn may_change_row(kind: Kind) -> bool {
    match kind {
        Kind::Changed | Kind::TokensRevoked => true,
        Kind::EarningCreated
        | Kind::EarningSettled
        | Kind::EarningReversed
        | Kind::WithdrawalChanged
        | Kind::OrderChanged
        | Kind::CatalogChanged
        | Kind::PassportChanged
        | Kind::OwnChanged
        | Kind::NoteChanged
        | Kind::CatalogRowChanged => false,
    }
}

#[async_trait::async_trait]
impl crate::events::Listener for Viewers {
    async fn published(&self, batch: &[Event]) {
        self.forget(batch);
    }
}

/// Deliveries from the bus: revocations made on other instances.
impl crate::events::Observer for Viewers {
    fn delivered(&self, batch: &[Event]) {
        self.forget(batch);
    }

    fn resynced(&self) {
        self.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn row(id: Uuid) -> Arc<member::Model> {
        Arc::new(member::Model {
            id,
            email: Some("m@example.com".into()),
            phone: None,
            password_hash: String::new(),
            display_name: "m".into(),
            tier: member::Tier::PushHand,
            staff_role: None,
            invite_code: None,
            partner_link_code: None,
            partner_application: None,
            upline_id: None,
            frozen_at: None,
            frozen_reason: None,
            token_version: 0,
            created_at: Utc::now(),
            merchant_id: None,
        })
    }

    fn viewers() -> (Viewers, Rows) {
        let viewers = Viewers::new(10, Duration::from_secs(60), Metrics::new());
        let rows = viewers.rows.clone().expect("remembering");
        (viewers, rows)
    }

    #[test]
    fn a_read_that_a_forgetting_overtook_is_not_remembered() {
        let (viewers, rows) = viewers();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let before = viewers.forgotten.load(Ordering::SeqCst);
        viewers.remember(&rows, row(a), before);
        assert!(rows.get(&a).is_some(), "remembered");

        // Another member's change is also a forgetting: the read cannot tell whose it was.
        let before = viewers.forgotten.load(Ordering::SeqCst);
        viewers.forget(&[Event::new(b, Kind::Changed, b)]);
        viewers.remember(&rows, row(b), before);
        assert!(rows.get(&b).is_none(), "read before the change");
    }

    #[test]
    fn only_kinds_that_may_change_a_row_forget_it() {
        let (viewers, rows) = viewers();
        let a = Uuid::from_u128(1);
        viewers.remember(&rows, row(a), 0);
        let live = [
            Kind::EarningCreated,
            Kind::EarningSettled,
            Kind::EarningReversed,
            Kind::WithdrawalChanged,
            Kind::OrderChanged,
        ];
        viewers.forget(&live.map(|k| Event::new(a, k, a)));
        assert!(rows.get(&a).is_some(), "no row change");
        viewers.forget(&[Event::new(a, Kind::TokensRevoked, a)]);
        assert!(rows.get(&a).is_none(), "revoked");
        viewers.remember(&rows, row(a), viewers.forgotten.load(Ordering::SeqCst));
        viewers.forget(&[Event::new(a, Kind::Changed, a)]);
        assert!(rows.get(&a).is_none(), "changed");
    }
}

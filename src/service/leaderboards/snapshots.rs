//! Each instance's copies of the boards being asked about: a rank is a binary search in one
//! ([`super::standing`]), not a count of the index entries ahead of the member.
//!
//! A [`Snapshot`] is every positive counter of one board and period (frozen members
//! included: who is frozen is read fresh on every rank), in the board's order, read by one
//! scan of the board's index; with it, the members whose counters **changed since the scan
//! began**, as events told this instance. A rank reads fresh the counters of those members
//! and of the viewer, and the frozen members' (one statement), sets their copied entries
//! aside and counts them at their fresh amounts: so it is exact as soon as the event of
//! each change is heard.
//!
//! # What tells a snapshot that a counter moved
//! A counter moves only in a transaction that settles an earning ([`Kind::EarningSettled`]
//! of its member) or books a settled claw-back ([`Kind::EarningCreated`]); both are live
//! events. They are heard twice: as a [`Listener`] on the publishing instance, before
//! `publish` returns (so the request that settled, and every later one on that instance, sees
//! the change), and as an [`Observer`] of the bus (every instance, milliseconds later with
//! Redis). A member marked changed is read fresh on every rank until the next snapshot. When
//! events may have been lost ([`Observer::resynced`]: the Redis subscriber reconnected),
//! every snapshot is dropped and the next rank scans again.
//!
//! [`Kind::EarningCreated`] does not say whether the earning was booked settled, so every
//! earning booked — pending ones too, whose counters do not move — marks its member: with
//! orders flowing, a copy is rescanned every [`REBUILD_AFTER`] distinct earners (in the
//! background). A kind of its own for settled claw-backs would spare those rescans.
//!
//! Staleness, then: a rank on an instance that has not yet heard of a settlement committed
//! on another counts the other member at the amount before it — for as long as the bus takes
//! to carry the event (milliseconds), never longer than until a resync. The viewer's own
//! amount, and who is frozen, are always read fresh.
//!
//! # Cost and memory
//! A scan reads the board's index once (400,000 entries in 0.2–0.5 s for the benchmark's
//! week); it is done by the first rank of a board and period on the instance, while later
//! ones wait for it (one scan at a time per board), and again when more than
//! [`REBUILD_AFTER`] members have changed (in the background: the old copy keeps answering,
//! exactly, meanwhile). An entry is 24 bytes plus 4 of an index by member: 11 MB for a
//! board of 400,000. Only boards someone asked about are held, and a board nobody asked
//! about for [`IDLE`] is dropped (a past period's, once its period ended, soon after).
//!
//! # Why not counts per amount, kept by settlement
//! A count of members per amount (or per amount bucket), moved in the settlement's
//! transaction, makes a rank a sum over the amounts above the member's — as many as there
//! are distinct amounts (thousands on a busy board), not O(log n) — and puts one more hot
//! row in every settlement: concurrent settlements of the same amount (whole-yuan prices
//! make them common) queue on it on PostgreSQL, and the frozen members still have to be
//! subtracted. A snapshot costs settlements nothing: they already publish the events it
//! hears.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use super::{Board, Period, statement};
use crate::error::Result;
use crate::events::{Event, Kind, Listener, Observer};

/// Members changed since a snapshot's scan beyond which the next rank scans again in the
/// background (each rank reads their counters fresh until then).
pub const REBUILD_AFTER: usize = 256;

/// Changed members beyond which a snapshot is not used at all (ranks count in the database,
/// as without snapshots) until the new scan is in.
pub const GIVE_UP_AFTER: usize = 4_096;

/// How long a board nobody asks about is kept.
pub const IDLE: Duration = Duration::from_secs(300);

/// One board in one period: (board, period, the date it starts on).
pub type BoardKey = (Board, Period, String);

/// The members whose counters changed since a scan began, as heard.
#[derive(Debug, Default)]
struct Changes {
    members: HashSet<Uuid>,
    /// Events may have been lost since the scan began: the copy cannot be trusted.
    lost: bool,
}

/// A copy of one board.
pub struct Snapshot {
    /// `(-amount, member)` ascending: amount descending, then member id ascending — the
    /// board's order. Every positive counter at the scan, frozen members included.
    entries: Vec<(i64, Uuid)>,
    /// Positions in `entries`, by member id ascending.
    by_member: Vec<u32>,
    changes: Arc<Mutex<Changes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Snapshot {
    /// A copy of `entries` (any order), with the changes heard since its scan began.
    fn new(mut entries: Vec<(i64, Uuid)>, changes: Arc<Mutex<Changes>>) -> Snapshot {
        if !entries.is_sorted() {
            entries.sort_unstable();
        }
        entries.shrink_to_fit();
        let mut by_member: Vec<u32> = (0..entries.len() as u32).collect();
        by_member.sort_unstable_by_key(|&i| entries[i as usize].1);
        Snapshot {
            entries,
            by_member,
            changes,
        }
    }

    /// How many members are on the copy.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The members changed since the scan, or None when the copy cannot be used (events
    /// lost, or too many changes).
    fn changed(&self) -> Option<Vec<Uuid>> {
        let c = lock(&self.changes);
        (!c.lost && c.members.len() <= GIVE_UP_AFTER).then(|| c.members.iter().copied().collect())
    }

    fn changed_count(&self) -> usize {
        lock(&self.changes).members.len()
    }

    /// `member`'s amount on the copy.
    fn amount_of(&self, member: Uuid) -> Option<i64> {
        self.by_member
            .binary_search_by(|&i| self.entries[i as usize].1.cmp(&member))
            .ok()
            .map(|at| -self.entries[self.by_member[at] as usize].0)
    }

    /// Entries of the copy ahead of `key` (`(-amount, member)`).
    fn before(&self, key: (i64, Uuid)) -> usize {
        self.entries.partition_point(|e| *e < key)
    }

    /// Where `who`, with `amount` fen now, stands: `(rank, gap)` as
    /// [`super::Standing`] has them (the gap in fen), given the members whose copied
    /// entries are not to be trusted — `changed`, with their amounts now (`now`; absent:
    /// no counter) — and the members frozen now. `who` must not be frozen.
    pub fn place(
        &self,
        who: Uuid,
        amount: i64,
        changed: &[Uuid],
        now: &HashMap<Uuid, i64>,
        frozen: &HashSet<Uuid>,
    ) -> (Option<u64>, Option<i64>) {
        // The copied entries set aside: changed, frozen, and the viewer's own.
        let mut aside: HashSet<Uuid> = changed.iter().copied().collect();
        aside.extend(frozen.iter().copied());
        aside.insert(who);
        let set_aside: Vec<(i64, Uuid)> = aside
            .iter()
            .filter_map(|m| self.amount_of(*m).map(|a| (-a, *m)))
            .collect();
        // The entries counted at their amounts now instead.
        let fresh: Vec<(i64, Uuid)> = changed
            .iter()
            .filter(|m| **m != who && !frozen.contains(*m))
            .filter_map(|m| now.get(m).filter(|a| **a > 0).map(|a| (-*a, *m)))
            .collect();
        let ahead_of = |key: (i64, Uuid)| -> u64 {
            let copied = self.before(key) - set_aside.iter().filter(|e| **e < key).count();
            (copied + fresh.iter().filter(|e| **e < key).count()) as u64
        };
        let mut rank = None;
        let mut tied_ahead = false;
        if amount > 0 {
            let ahead = ahead_of((-amount, who));
            let above = ahead_of((-amount, Uuid::nil()));
            rank = Some(ahead + 1);
            tied_ahead = ahead > above;
        }
        if tied_ahead {
            return (rank, Some(1));
        }
        // The smallest amount above the member's (above zero off the board).
        let floor = amount.max(0);
        let copied = self.entries[..self.before((-floor, Uuid::nil()))]
            .iter()
            .rev()
            .find(|e| !aside.contains(&e.1))
            .map(|e| -e.0);
        let next = fresh
            .iter()
            .map(|e| -e.0)
            .filter(|a| *a > floor)
            .chain(copied)
            .min();
        (rank, next.map(|next| next - amount + 1))
    }
}

/// One board's slot: its copy, the scans under way, and when it was last asked about.
struct Slot {
    snapshot: Option<Arc<Snapshot>>,
    /// The changes heard by each scan under way, since it began.
    scans: Vec<Arc<Mutex<Changes>>>,
    /// One scan at a time.
    scan: Arc<tokio::sync::Mutex<()>>,
    used: Instant,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            snapshot: None,
            scans: Vec::new(),
            scan: Arc::default(),
            used: Instant::now(),
        }
    }
}

/// This instance's board copies ([`Snapshot`]): the boards asked about in the last
/// [`IDLE`].
pub struct Snapshots {
    slots: Mutex<HashMap<BoardKey, Slot>>,
    /// Whether a task drops idle boards.
    sweeping: Mutex<bool>,
    me: Weak<Snapshots>,
}

#[derive(FromQueryResult)]
struct Row {
    member_id: Uuid,
    amount: i64,
}

impl Snapshots {
    pub fn new() -> Arc<Snapshots> {
        Arc::new_cyclic(|me| Snapshots {
            slots: Mutex::default(),
            sweeping: Mutex::new(false),
            me: me.clone(),
        })
    }

    /// Boards held now (for tests and metrics).
    pub fn held(&self) -> usize {
        lock(&self.slots)
            .values()
            .filter(|s| s.snapshot.is_some())
            .count()
    }

    /// Tells every copy, and every scan under way, that `members`' counters may have moved.
    pub fn changed(&self, members: impl IntoIterator<Item = Uuid>) {
        let slots = lock(&self.slots);
        if slots.is_empty() {
            return;
        }
        let members: Vec<Uuid> = members.into_iter().collect();
        if members.is_empty() {
            return;
        }
        for slot in slots.values() {
            let copies = slot.snapshot.iter().map(|s| &s.changes);
            for changes in copies.chain(&slot.scans) {
                lock(changes).members.extend(members.iter().copied());
            }
        }
    }

    /// Events may have been lost: every copy and scan under way is dropped.
    pub fn lost(&self) {
        let mut slots = lock(&self.slots);
        for slot in slots.values_mut() {
            slot.snapshot = None;
            for changes in &slot.scans {
                lock(changes).lost = true;
            }
        }
    }

    /// The copy of `key` with the members changed since its scan, scanning it first when
    /// there is none (or waiting for the scan under way); None when no copy can be used —
    /// events were lost during the scan, or too many members changed — and the rank must be
    /// counted in the database.
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        key: &BoardKey,
    ) -> Result<Option<(Arc<Snapshot>, Vec<Uuid>)>> {
        let scan = {
            let mut slots = lock(&self.slots);
            let slot = slots.entry(key.clone()).or_insert_with(Slot::new);
            slot.used = Instant::now();
            match &slot.snapshot {
                Some(s) => {
                    if s.changed_count() > REBUILD_AFTER {
                        self.rescan_in_background(db, key, slot.scan.clone());
                    }
                    return Ok(s.changed().map(|c| (s.clone(), c)));
                }
                None => slot.scan.clone(),
            }
        };
        let _one = scan.lock().await;
        // Another task's scan may have finished meanwhile.
        if let Some(s) = lock(&self.slots).get(key).and_then(|s| s.snapshot.clone()) {
            return Ok(s.changed().map(|c| (s.clone(), c)));
        }
        let s = self.scan(db, key).await?;
        Ok(s.and_then(|s| s.changed().map(|c| (s, c))))
    }

    /// Scans `key` again unless a scan is under way, the old copy answering meanwhile.
    fn rescan_in_background(
        &self,
        db: &DatabaseConnection,
        key: &BoardKey,
        scan: Arc<tokio::sync::Mutex<()>>,
    ) {
        let Ok(one) = scan.try_lock_owned() else {
            return;
        };
        let (Some(me), db, key) = (self.me.upgrade(), db.clone(), key.clone()) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = me.scan(&db, &key).await {
                tracing::warn!(error = ?e, board = ?key, "a leaderboard scan failed");
            }
            drop(one);
        });
    }

    /// Reads the board through its index and keeps the copy (unless events were lost
    /// meanwhile). Call holding the slot's scan lock.
    async fn scan(&self, db: &DatabaseConnection, key: &BoardKey) -> Result<Option<Arc<Snapshot>>> {
        let changes = Arc::new(Mutex::new(Changes::default()));
        {
            let mut slots = lock(&self.slots);
            let slot = slots.entry(key.clone()).or_insert_with(Slot::new);
            slot.scans.push(changes.clone());
        }
        let read = read_board(db, key).await;
        let mut slots = lock(&self.slots);
        let slot = slots.entry(key.clone()).or_insert_with(Slot::new);
        slot.scans.retain(|c| !Arc::ptr_eq(c, &changes));
        let entries = read?;
        if lock(&changes).lost {
            return Ok(None);
        }
        let snapshot = Arc::new(Snapshot::new(entries, changes));
        slot.snapshot = Some(snapshot.clone());
        drop(slots);
        self.sweep_later();
        Ok(Some(snapshot))
    }

    /// Starts the task that drops boards idle for [`IDLE`], unless it runs; it ends when no
    /// board is left.
    fn sweep_later(&self) {
        {
            let mut sweeping = lock(&self.sweeping);
            if *sweeping {
                return;
            }
            *sweeping = true;
        }
        let me = self.me.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE / 4).await;
                let Some(this) = me.upgrade() else { return };
                if this.sweep(IDLE) == 0 {
                    let mut sweeping = lock(&this.sweeping);
                    // A scan may have kept a board since: only stop with none held.
                    if lock(&this.slots).is_empty() {
                        *sweeping = false;
                        return;
                    }
                }
            }
        });
    }

    /// Drops the boards not asked about for `idle` (and no scan under way); returns how many
    /// are left.
    pub fn sweep(&self, idle: Duration) -> usize {
        let mut slots = lock(&self.slots);
        slots.retain(|_, s| !s.scans.is_empty() || s.used.elapsed() < idle);
        slots.len()
    }
}

/// Every positive counter of the board, in its order: one scan of its index, streamed.
async fn read_board(db: &DatabaseConnection, key: &BoardKey) -> Result<Vec<(i64, Uuid)>> {
    let (board, period, starts_on) = key;
    let sql = "SELECT member_id, amount FROM leaderboard_counters{rank} \
               WHERE board = $1 AND period = $2 AND starts_on = $3 AND amount > 0 \
               ORDER BY amount DESC, member_id ASC";
    let stmt = statement(
        sea_orm::ConnectionTrait::get_database_backend(db),
        sql,
        vec![
            board.as_str().into(),
            period.as_str().into(),
            starts_on.clone().into(),
        ],
    );
    let mut rows = Row::find_by_statement(stmt).stream(db).await?;
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        out.push((-r.amount, r.member_id));
    }
    Ok(out)
}

/// Whether an event of `kind` may come with a leaderboard counter's move. Exhaustive: a new
/// kind must say.
pub fn may_move_counter(kind: Kind) -> bool {
    match kind {
        // Settlement; a settled claw-back (a negative adjustment); a reversal, to be safe.
        Kind::EarningSettled | Kind::EarningCreated | Kind::EarningReversed => true,
        Kind::WithdrawalChanged
        | Kind::OrderChanged
        | Kind::TokensRevoked
        | Kind::Changed
        | Kind::CatalogChanged
        | Kind::PassportChanged
        | Kind::OwnChanged
        | Kind::NoteChanged
        | Kind::CatalogRowChanged => false,
    }
}

fn moved(batch: &[Event]) -> impl Iterator<Item = Uuid> + '_ {
    batch
        .iter()
        .filter(|e| may_move_counter(e.kind))
        .map(|e| e.member)
}

#[async_trait::async_trait]
impl Listener for Snapshots {
    async fn published(&self, batch: &[Event]) {
        self.changed(moved(batch));
    }
}

impl Observer for Snapshots {
    fn delivered(&self, batch: &[Event]) {
        self.changed(moved(batch));
    }

    fn resynced(&self) {
        self.lost();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// The board recomputed: members with positive amounts, not frozen, in order.
    fn recount(amounts: &HashMap<Uuid, i64>, frozen: &HashSet<Uuid>) -> Vec<(i64, Uuid)> {
        let mut v: Vec<(i64, Uuid)> = amounts
            .iter()
            .filter(|(m, a)| **a > 0 && !frozen.contains(*m))
            .map(|(m, a)| (-*a, *m))
            .collect();
        v.sort_unstable();
        v
    }

    fn expected(
        amounts: &HashMap<Uuid, i64>,
        frozen: &HashSet<Uuid>,
        who: Uuid,
    ) -> (Option<u64>, Option<i64>) {
        let board = recount(amounts, frozen);
        let own = amounts.get(&who).copied().unwrap_or(0);
        let place = board.iter().position(|e| e.1 == who);
        let ahead = match place {
            Some(0) => None,
            Some(i) => Some(-board[i - 1].0),
            None => board.last().map(|e| -e.0),
        };
        (place.map(|i| i as u64 + 1), ahead.map(|a| a - own + 1))
    }

    #[test]
    fn a_copy_with_its_changes_ranks_as_a_recount() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(30);
        for round in 0..200 {
            let n = rng.random_range(0..40u128);
            let mut amounts: HashMap<Uuid, i64> = (1..=n)
                .map(|i| (id(i), rng.random_range(-2..8i64) * 100))
                .collect();
            let copied = amounts
                .iter()
                .filter(|(_, a)| **a > 0)
                .map(|(m, a)| (-*a, *m))
                .collect();
            let snapshot = Snapshot::new(copied, Arc::default());
            // Some members change (some new), some are frozen.
            let mut changed = Vec::new();
            for i in 1..=n + 3 {
                if rng.random_bool(0.3) {
                    amounts.insert(id(i), rng.random_range(-2..8i64) * 100);
                    changed.push(id(i));
                }
            }
            let frozen: HashSet<Uuid> = (1..=n + 3)
                .filter(|_| rng.random_bool(0.1))
                .map(id)
                .collect();
            let now: HashMap<Uuid, i64> = changed.iter().map(|m| (*m, amounts[m])).collect();
            for i in 1..=n + 4 {
                let who = id(i);
                if frozen.contains(&who) {
                    continue;
                }
                let own = amounts.get(&who).copied().unwrap_or(0);
                assert_eq!(
                    snapshot.place(who, own, &changed, &now, &frozen),
                    expected(&amounts, &frozen, who),
                    "round {round}, member {i}"
                );
            }
        }
    }

    #[test]
    fn changes_heard_during_a_scan_reach_its_copy_and_a_resync_drops_it() {
        let s = Snapshots::new();
        let key: BoardKey = (Board::Earnings, Period::Week, "2026-11-30".into());
        let changes = Arc::new(Mutex::new(Changes::default()));
        lock(&s.slots)
            .entry(key.clone())
            .or_insert_with(Slot::new)
            .scans
            .push(changes.clone());
        s.changed([id(1)]);
        assert!(lock(&changes).members.contains(&id(1)));
        s.lost();
        assert!(lock(&changes).lost);
        // Nothing held: events cost nothing.
        let empty = Snapshots::new();
        empty.changed([id(2)]);
        assert_eq!(empty.held(), 0);
    }
}

//! Leaderboards (排行榜, issue #30 item 5): members ranked by the **net settled** money of a
//! week or a month, read from counters that settlement keeps, never from the ledger.
//!
//! # What counts
//! - `EARNINGS`: a member's earnings of every kind, counted when they **settle** (become
//!   withdrawable) — pending money counts nowhere, so an order refunded within its return
//!   window (its earnings `REVERSED`) never reaches a board, and neither does an unpaid,
//!   unshipped or uncompleted one. Money taken back after settlement (a settled negative
//!   `ADJUSTMENT` of a later refund) comes off the period **its earning settled in**, so a
//!   week won with sales that are refunded afterwards is corrected, whenever the refund comes.
//!   A pending adjustment (part of a line refunded before settlement) settles with its earning
//!   and counts where it settles, like any earning.
//! - `TEAM_SALES`: the sales of the member's team — the paid amount (after its coupon share,
//!   shipping never included) of each line on which the member earned a `TEAM_REBATE`, as the
//!   upline (level 2) of the line's earner or, with three commission levels, its upline
//!   (level 3) — counted when that earning settles, and taken back in proportion to the units
//!   refunded, by the same rule as `EARNINGS`. It is the sale's amount, not the rebate; it
//!   comes from the same settlement write (the earning names its member and level), so it
//!   costs no walk up a tree of a million ancestors. Sales whose team rebate was zero (a
//!   product without one) or that paid nobody at that level are on no one's `TEAM_SALES`.
//! - There is **no board by number of recruits**: ranking people by how many they brought in
//!   rewards recruitment itself (拉人头), the mark of pyramid selling that Chinese law
//!   forbids (禁止传销条例); every figure here is money from real, settled product sales.
//!
//! # Periods
//! Asia/Shanghai civil time (UTC+8, no daylight saving), as the merchants' statements
//! ([`super::statements`]): a week runs from Monday 00:00 to the next Monday 00:00, a month
//! from the 1st 00:00 to the next 1st. A counter is keyed by the date its period starts on.
//!
//! # Order, ties and who is left out
//! Amount descending; equal amounts by member id ascending — ids are time-ordered (UUIDv7),
//! so of two members with the same amount the one who joined earlier ranks first. Ranks are
//! positions (1, 2, 3, …: no two members share one). Only positive amounts are on a board;
//! frozen members are left out (their counters keep moving, so an unfreeze restores them at
//! their true place) and the members behind move up.
//!
//! # The counters and their cost
//! `leaderboard_counters` holds (board, period, start, member) → amount, moved by an upsert
//! in the transaction that settles or claws back the money ([`super::writes::Writes`]),
//! after the ledger rows and before the months and balances (the lock order of
//! [`super`]). The index (board, period, start, amount DESC, member) is the board: the
//! top N is its first N entries, joined to the members to drop the frozen and read the
//! names ([`top`]: one statement, costing what N is).
//!
//! # Ranks: a copy of the board per instance
//! Counting the entries ahead of a member costs what its position is: half a million index
//! entries at the median of the benchmark's million-member board (S14-rank: 13 ranks a
//! second, p50 4.9 s). So a rank ([`standing`]) is a binary search in this instance's copy
//! of the board ([`Snapshots`]: the board's positive counters, read by one scan of the
//! index when the board is first asked about), corrected by what changed since — the
//! members whose counters moved, which the settlements' events name, and who is frozen
//! now, read fresh with the viewer's own counter in one statement. Exact once the events
//! of the changes are heard: at once on the instance that settled, over Redis within the
//! bus's delay; see [`snapshots`] for the staleness, the memory, and why not counts per
//! amount kept by settlement. Without a usable copy, [`counted`] counts in the database.
//!
//! # Names
//! Display names are masked ([`mask`]): the first character, then `**`, whatever the length
//! (王小明 → 王**, Alice → A**). Entries carry no member id, so a board cannot be joined
//! back to profiles.
//!
//! The boards are **not cached**: neither `leaderboard` nor `Member.rank` is among the
//! response cache's fields ([`crate::responses`]), as every settlement moves them (the
//! copies ranks search are kept exact by the settlements' events, above).

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use entity::{Money, leaderboard_counter as counter, member};
use sea_orm::sea_query::{Expr, InsertStatement, OnConflict};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryTrait, Statement,
};
use uuid::Uuid;

use crate::error::{Error, Result};

mod snapshots;
pub use snapshots::{Snapshot, Snapshots};

/// What a board ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Board {
    /// Net settled earnings of every kind.
    Earnings,
    /// Net settled sales of the member's team (lines on which it earned a team rebate).
    TeamSales,
}

impl Board {
    pub fn as_str(self) -> &'static str {
        match self {
            Board::Earnings => "EARNINGS",
            Board::TeamSales => "TEAM_SALES",
        }
    }
}

/// The length of a board's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// Monday 00:00 to Monday 00:00, Asia/Shanghai.
    Week,
    /// The 1st 00:00 to the next 1st 00:00, Asia/Shanghai.
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Week => "WEEK",
            Period::Month => "MONTH",
        }
    }

    /// The period of this length that `t` falls in.
    pub fn of(self, t: DateTime<Utc>) -> Span {
        let local = t.with_timezone(&shanghai()).date_naive();
        let (start, end) = match self {
            Period::Week => {
                let monday =
                    local - Duration::days(i64::from(local.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Period::Month => {
                let first = local.with_day(1).unwrap_or(local);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                (first, next.unwrap_or(first + Duration::days(31)))
            }
        };
        Span {
            period: self,
            starts_on: start,
            starts_at: midnight(start),
            ends_at: midnight(end),
        }
    }
}

/// Asia/Shanghai: UTC+8 all year.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// 00:00 Asia/Shanghai of `day`, in UTC.
fn midnight(day: NaiveDate) -> DateTime<Utc> {
    shanghai()
        .from_local_datetime(&day.and_time(NaiveTime::MIN))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// One period of a board: its length, the local date it starts on, and its instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub period: Period,
    /// The Asia/Shanghai date it starts on (a Monday, or the 1st): the counters' key.
    pub starts_on: NaiveDate,
    pub starts_at: DateTime<Utc>,
    /// Exclusive.
    pub ends_at: DateTime<Utc>,
}

impl Span {
    /// The counters' key of the period: `YYYY-MM-DD`, the date it starts on.
    pub fn key(&self) -> String {
        self.starts_on.format("%Y-%m-%d").to_string()
    }
}

/// A counter row: one member on one board in one period.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub board: Board,
    pub period: Period,
    /// `YYYY-MM-DD`, the date the period starts on.
    pub starts_on: String,
    pub member: Uuid,
}

/// The counter moves of money that settled (or, negative, was taken back) at `at`, for an
/// earning of `member` at `level`: `amount` fen on `EARNINGS` and, for a team rebate (level 2
/// or 3), `sales` fen on `TEAM_SALES`, in the week and the month of `at`.
pub fn moves(
    member: Uuid,
    level: i16,
    amount: i64,
    sales: i64,
    at: DateTime<Utc>,
) -> Vec<(Key, i64)> {
    let mut out = Vec::with_capacity(4);
    for period in [Period::Week, Period::Month] {
        let starts_on = period.of(at).key();
        let mut push = |board: Board, fen: i64| {
            if fen != 0 {
                out.push((
                    Key {
                        board,
                        period,
                        starts_on: starts_on.clone(),
                        member,
                    },
                    fen,
                ));
            }
        };
        push(Board::Earnings, amount);
        if level >= 2 {
            push(Board::TeamSales, sales);
        }
    }
    out
}

/// Adds each row's fen to its counter: one upsert. Keys must be distinct (sum them first)
/// and there must be at least one.
pub fn add(rows: impl IntoIterator<Item = (Key, i64)>) -> InsertStatement {
    counter::Entity::insert_many(rows.into_iter().map(|(k, fen)| counter::ActiveModel {
        board: Set(k.board.as_str().to_owned()),
        period: Set(k.period.as_str().to_owned()),
        starts_on: Set(k.starts_on),
        member_id: Set(k.member),
        amount: Set(Money::from_fen(fen)),
    }))
    .on_conflict(
        OnConflict::columns([
            counter::Column::Board,
            counter::Column::Period,
            counter::Column::StartsOn,
            counter::Column::MemberId,
        ])
        .value(
            counter::Column::Amount,
            Expr::cust("leaderboard_counters.amount + excluded.amount"),
        )
        .to_owned(),
    )
    .into_query()
}

/// The masked form of a display name shown on boards: its first character, then `**`,
/// whatever the length (王小明 → 王**, Alice Smith → A**), so the length is not told either.
pub fn mask(name: &str) -> String {
    let first = name.trim().chars().next();
    let mut out = String::with_capacity(8);
    if let Some(c) = first {
        out.push(c);
    }
    out.push_str("**");
    out
}

/// Reads `first`: 20 by default, 1 to 100, else `VALIDATION` on `first`.
pub fn board_size(first: Option<i32>) -> Result<u64> {
    match first.unwrap_or(20) {
        n @ 1..=100 => Ok(n as u64),
        _ => Err(Error::validation("first", "must be between 1 and 100")),
    }
}

/// One place on a board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1 for the first place.
    pub rank: u64,
    /// Kept for `isViewer`; never shown.
    pub member_id: Uuid,
    /// The masked display name ([`mask`]).
    pub name: String,
    pub amount: Money,
}

#[derive(FromQueryResult)]
struct TopRow {
    member_id: Uuid,
    amount: i64,
    display_name: String,
}

/// `$n` placeholders for PostgreSQL, `?n` for SQLite; `{rank}` after a counters table reads
/// it through the board's index — on SQLite by `INDEXED BY`, since without statistics its
/// planner may take the primary key (the same three leading columns) and sort the period's
/// whole board for the first N; PostgreSQL's planner sees the order and the limit.
fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql.replace("{rank}", ""),
        _ => sql
            .replace("{rank}", " INDEXED BY leaderboard_counters_rank")
            .replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The first `first` places of `board` in the period of `period` containing `now`: one
/// statement, the board's index read in order and joined to the members by key.
pub async fn top(
    db: &impl ConnectionTrait,
    board: Board,
    period: Period,
    first: u64,
    now: DateTime<Utc>,
) -> Result<(Span, Vec<Entry>)> {
    let span = period.of(now);
    // CROSS JOIN: SQLite then reads the counters first, in the index's order, and stops at
    // the limit; PostgreSQL plans it as the inner join it is.
    let sql = format!(
        "SELECT c.member_id, c.amount, m.display_name \
         FROM leaderboard_counters c{{rank}} CROSS JOIN members m \
         WHERE c.board = $1 AND c.period = $2 AND c.starts_on = $3 AND c.amount > 0 \
         AND m.id = c.member_id AND m.frozen_at IS NULL \
         ORDER BY c.amount DESC, c.member_id ASC LIMIT {}",
        super::page::written_limit(first)
    );
    let backend = db.get_database_backend();
    let rows = TopRow::find_by_statement(statement(
        backend,
        &sql,
        vec![
            board.as_str().into(),
            period.as_str().into(),
            span.key().into(),
        ],
    ))
    .all(db)
    .await?;
    let entries = rows
        .into_iter()
        .take(first as usize)
        .enumerate()
        .map(|(i, r)| Entry {
            rank: i as u64 + 1,
            member_id: r.member_id,
            name: mask(&r.display_name),
            amount: Money::from_fen(r.amount),
        })
        .collect();
    Ok((span, entries))
}

/// Where a member stands on a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub span: Span,
    /// The member's net settled amount in the period (zero without any; may be negative).
    pub amount: Money,
    /// The member's place; `None` when not on the board (no positive amount, or frozen).
    pub rank: Option<u64>,
    /// What more would move the member up one place: the amount of the member just ahead,
    /// less the member's own, plus 0.01 (the one ahead wins a tie). For a member not on the
    /// board, what would put them just ahead of its last place. `None` when nobody is ahead
    /// (first place, or an empty board) and for a frozen member.
    pub gap: Option<Money>,
}

#[derive(FromQueryResult)]
struct Ahead {
    above: i64,
    tied: i64,
    frozen_above: i64,
    frozen_tied: i64,
}

#[derive(FromQueryResult)]
struct Amount {
    amount: i64,
}

#[derive(FromQueryResult)]
struct Fresh {
    member_id: Uuid,
    amount: i64,
    frozen: i32,
}

/// Where `m` stands on `board` in the period of `period` containing `now`, from this
/// instance's copy of the board ([`Snapshots`]): one statement reads the counters of `m` and
/// of the members changed since the copy was made, and those of the frozen members; the rank
/// is then a binary search in the copy, the gap its neighbour. Without a usable copy (events
/// lost during its scan, or too many changes since), counted in the database
/// ([`counted`]).
pub async fn standing(
    db: &DatabaseConnection,
    snapshots: &Snapshots,
    board: Board,
    period: Period,
    m: &member::Model,
    now: DateTime<Utc>,
) -> Result<Standing> {
    let span = period.of(now);
    let key = (board, period, span.key());
    let Some((copy, changed)) = snapshots.get(db, &key).await? else {
        return counted(db, board, period, m, now).await;
    };
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![
        board.as_str().into(),
        period.as_str().into(),
        key.2.clone().into(),
        m.id.into(),
    ];
    let mut listed = String::from("$4");
    for (i, c) in changed.iter().enumerate() {
        listed.push_str(&format!(", ${}", i + 5));
        values.push((*c).into());
    }
    // Members first (CROSS JOIN): SQLite, without statistics, would otherwise read the whole
    // board through its covering rank index to find the few members listed.
    let sql = format!(
        "SELECT c.member_id, c.amount, 0 AS frozen FROM members m CROSS JOIN leaderboard_counters c \
         WHERE m.id IN ({listed}) AND c.board = $1 AND c.period = $2 AND c.starts_on = $3 \
         AND c.member_id = m.id \
         UNION ALL \
         SELECT c.member_id, c.amount, 1 AS frozen FROM members m CROSS JOIN leaderboard_counters c \
         WHERE m.frozen_at IS NOT NULL AND c.board = $1 AND c.period = $2 \
         AND c.starts_on = $3 AND c.member_id = m.id"
    );
    let rows = Fresh::find_by_statement(statement(backend, &sql, values))
        .all(db)
        .await?;
    let mut amounts = std::collections::HashMap::with_capacity(changed.len() + 1);
    let mut frozen = std::collections::HashSet::new();
    for r in rows {
        if r.frozen != 0 {
            frozen.insert(r.member_id);
        } else {
            amounts.insert(r.member_id, r.amount);
        }
    }
    let amount = amounts.get(&m.id).copied().unwrap_or(0);
    let mut out = Standing {
        span,
        amount: Money::from_fen(amount),
        rank: None,
        gap: None,
    };
    if m.frozen_at.is_some() {
        return Ok(out);
    }
    frozen.remove(&m.id);
    let (rank, gap) = copy.place(m.id, amount, &changed, &amounts, &frozen);
    out.rank = rank;
    out.gap = gap.map(Money::from_fen);
    Ok(out)
}

/// Where `m` stands, counted in the database: its counter, the count of entries ahead of it
/// less the frozen ones (one statement), and the amount of the entry just ahead (one more).
/// Costs what the member's position is; [`standing`] falls back to it only without a copy.
pub async fn counted(
    db: &impl ConnectionTrait,
    board: Board,
    period: Period,
    m: &member::Model,
    now: DateTime<Utc>,
) -> Result<Standing> {
    let span = period.of(now);
    let key = span.key();
    let backend = db.get_database_backend();
    let amount = counter::Entity::find_by_id((
        board.as_str().to_owned(),
        period.as_str().to_owned(),
        key.clone(),
        m.id,
    ))
    .one(db)
    .await?
    .map_or(0, |c| c.amount.fen());
    let mut out = Standing {
        span,
        amount: Money::from_fen(amount),
        rank: None,
        gap: None,
    };
    if m.frozen_at.is_some() {
        return Ok(out);
    }
    let base = || -> Vec<sea_orm::Value> {
        vec![
            board.as_str().into(),
            period.as_str().into(),
            key.clone().into(),
        ]
    };
    let mut tied_ahead = false;
    if amount > 0 {
        let in_board = "board = $1 AND period = $2 AND starts_on = $3";
        let frozen = "FROM members m CROSS JOIN leaderboard_counters c \
                      WHERE m.frozen_at IS NOT NULL AND c.board = $1 AND c.period = $2 \
                      AND c.starts_on = $3 AND c.member_id = m.id";
        let sql = format!(
            "SELECT \
             (SELECT COUNT(*) FROM leaderboard_counters{{rank}} WHERE {in_board} AND amount > $4) \
              AS above, \
             (SELECT COUNT(*) FROM leaderboard_counters{{rank}} WHERE {in_board} AND amount = $4 \
              AND member_id < $5) AS tied, \
             (SELECT COUNT(*) {frozen} AND c.amount > $4) AS frozen_above, \
             (SELECT COUNT(*) {frozen} AND c.amount = $4 AND c.member_id < $5) AS frozen_tied"
        );
        let mut values = base();
        values.extend([sea_orm::Value::from(amount), sea_orm::Value::from(m.id)]);
        let a = Ahead::find_by_statement(statement(backend, &sql, values))
            .one(db)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the rank count returned no row")))?;
        let tied = a.tied - a.frozen_tied;
        out.rank = Some((a.above - a.frozen_above + tied).max(0) as u64 + 1);
        tied_ahead = tied > 0;
    }
    out.gap = if tied_ahead {
        // A member with the same amount is ahead: one fen more passes them.
        Some(Money::from_fen(1))
    } else {
        // The smallest amount above the member's (above zero for a member not on the board).
        let sql = "SELECT c.amount FROM leaderboard_counters c{rank} CROSS JOIN members m \
                   WHERE c.board = $1 AND c.period = $2 AND c.starts_on = $3 AND c.amount > $4 \
                   AND m.id = c.member_id AND m.frozen_at IS NULL \
                   ORDER BY c.amount ASC LIMIT 1";
        let mut values = base();
        values.push(amount.max(0).into());
        Amount::find_by_statement(statement(backend, sql, values))
            .one(db)
            .await?
            .map(|next| Money::from_fen(next.amount - amount + 1))
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_in_shanghai() {
        // Sunday 2026-12-06 23:30 in Shanghai is 15:30 UTC: still the week of Monday the 30th.
        let sunday_night = at("2026-12-06T15:30:00Z");
        let w = Period::Week.of(sunday_night);
        assert_eq!(w.key(), "2026-11-30");
        assert_eq!(w.starts_at, at("2026-11-29T16:00:00Z"));
        assert_eq!(w.ends_at, at("2026-12-06T16:00:00Z"));
        // Half an hour later it is Monday the 7th in Shanghai: a new week.
        assert_eq!(
            Period::Week.of(at("2026-12-06T16:00:00Z")).key(),
            "2026-12-07"
        );
        // 2026-11-30T17:00Z is 01:00 on 1 December in Shanghai.
        let m = Period::Month.of(at("2026-11-30T17:00:00Z"));
        assert_eq!(m.key(), "2026-12-01");
        assert_eq!(m.starts_at, at("2026-11-30T16:00:00Z"));
        assert_eq!(m.ends_at, at("2026-12-31T16:00:00Z"));
        assert_eq!(
            Period::Month.of(at("2026-11-30T15:59:59Z")).key(),
            "2026-11-01"
        );
    }

    #[test]
    fn names_keep_their_first_character_only() {
        assert_eq!(mask("王小明"), "王**");
        assert_eq!(mask("王"), "王**");
        assert_eq!(mask("Alice Smith"), "A**");
        assert_eq!(mask("  bob"), "b**");
        assert_eq!(mask(""), "**");
    }

    #[test]
    fn a_team_rebate_moves_both_boards_and_other_earnings_one() {
        let m = Uuid::from_u128(7);
        let t = at("2026-12-02T04:00:00Z");
        let own = moves(m, 1, 2_985, 19_900, t);
        assert_eq!(own.len(), 2, "EARNINGS of the week and the month: {own:?}");
        assert!(own.iter().all(|(k, _)| k.board == Board::Earnings));
        let team = moves(m, 2, 995, 19_900, t);
        assert_eq!(team.len(), 4);
        assert!(
            team.iter()
                .any(|(k, fen)| k.board == Board::TeamSales && *fen == 19_900)
        );
        assert!(moves(m, 2, 0, 0, t).is_empty());
    }

    #[test]
    fn first_is_between_one_and_a_hundred() {
        assert_eq!(board_size(None).ok(), Some(20));
        assert_eq!(board_size(Some(100)).ok(), Some(100));
        for bad in [0, -1, 101] {
            assert_eq!(
                board_size(Some(bad)).err().map(|e| e.code()),
                Some("VALIDATION")
            );
        }
    }
}

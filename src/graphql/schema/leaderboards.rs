//! Leaderboards in GraphQL: `leaderboard(kind, period, first)` and `me.rank(kind, period)`.
//! The rules — what counts, the periods, ties, masking, the counters — are
//! [`crate::service::leaderboards`]'s. Neither field is served from the response cache.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::context::{state, viewer};
use crate::graphql::scalars::Dec;
use crate::graphql::transport::plain::{self, Fast, plain_enums, plain_object};
use crate::service::leaderboards::{self as svc, Entry, Span};

/// The rules of every board, in words, for clients to show.
const RULES: &str = "Ranked by net settled money in the period (Asia/Shanghai time; weeks \
     start on Monday 00:00, months on the 1st): money counts when it settles, after the \
     return window; pending and refunded money never counts, and money taken back after it \
     settled comes off the period it settled in. EARNINGS: the member's earnings of every \
     kind. TEAM_SALES: the paid amounts of the team's sales on which the member earned a \
     team rebate. Frozen members are left out. Equal amounts: the member who joined earlier \
     ranks first. Names show their first character only. There is no ranking by number of \
     recruits.";

/// What a leaderboard ranks. Never the number of people recruited: ranking recruitment
/// rewards 拉人头 (pulling in heads), the mark of pyramid selling Chinese law forbids; every
/// board ranks money from real, settled sales.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::service::leaderboards::Board")]
pub enum LeaderboardKind {
    /// Net settled earnings of every kind (self-purchase, promotion, bound and team rebates,
    /// partner and membership rewards), less what refunds took back after settlement.
    Earnings,
    /// Net settled team sales: the paid amount (after its coupon share, without shipping) of
    /// every line on which the member earned a team rebate (as the upline of the line's
    /// earner, or with three commission levels its upline), counted when that rebate settles,
    /// less the refunded units' part.
    TeamSales,
}

/// A leaderboard's period: the current one, in Asia/Shanghai time (UTC+8).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::service::leaderboards::Period")]
pub enum LeaderboardPeriod {
    /// This week: from Monday 00:00 to the next Monday 00:00, Asia/Shanghai.
    Week,
    /// This month: from the 1st 00:00 to the next 1st 00:00, Asia/Shanghai.
    Month,
}

/// One place on a leaderboard, as answered.
pub struct LeaderboardEntry {
    rank: i32,
    name: String,
    amount: Dec,
    is_viewer: bool,
}

plain_enums!(LeaderboardKind, LeaderboardPeriod);

plain_object! {
    /// One place on a leaderboard.
    impl LeaderboardEntry => LeaderboardEntry as "LeaderboardEntry" {
        |this| this;
        |r, e|
        /// The place, 1 first; no two entries share one (equal amounts: the member who joined
        /// earlier ranks first).
        rank "rank": i32 = r.rank;
        /// The member's display name, masked: its first character, then `**` (王小明 → 王**,
        /// Alice → A**).
        name "name": &str = &r.name;
        /// The member's net settled amount in the period, CNY.
        amount "amount": Dec = r.amount;
        /// Whether this is the signed-in viewer (false for anonymous requests).
        is_viewer "isViewer": bool = r.is_viewer;
    }
    plain |s, field, out| {}
    resolvers {}
}

fn rank(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A leaderboard of the current week or month, as answered.
pub struct Leaderboard {
    kind: LeaderboardKind,
    span: Span,
    entries: Vec<LeaderboardEntry>,
}

impl Leaderboard {
    fn new(kind: LeaderboardKind, span: Span, entries: Vec<Entry>, viewer: Option<Uuid>) -> Self {
        let entries = entries
            .into_iter()
            .map(|e| LeaderboardEntry {
                rank: rank(e.rank),
                is_viewer: viewer == Some(e.member_id),
                name: e.name,
                amount: e.amount.into(),
            })
            .collect();
        Leaderboard {
            kind,
            span,
            entries,
        }
    }
}

plain_object! {
    /// The top of a leaderboard of the current week or month: members ranked by net settled
    /// money, frozen members left out, names masked.
    impl Leaderboard => Leaderboard as "Leaderboard" {
        |this| this;
        |r, e|
        /// What it ranks.
        kind "kind": LeaderboardKind = r.kind;
        /// Its period.
        period "period": LeaderboardPeriod = r.span.period.into();
        /// When the period started (00:00 Asia/Shanghai of a Monday, or of the 1st).
        starts_at "startsAt": DateTime<Utc> = r.span.starts_at;
        /// When it ends (exclusive): the next period's start.
        ends_at "endsAt": DateTime<Utc> = r.span.ends_at;
        /// How every board ranks, in words.
        rules "rules": &str = RULES;
    }
    plain |s, field, out| {
        "entries" => plain::list(&s.entries, e, &field.selection_set.node, out)?,
    }
    resolvers {
        /// The first places, best first: at most `first`, only members with a positive amount.
        async fn entries(&self) -> &[LeaderboardEntry] {
            &self.entries
        }
    }
}

/// Where a member stands on a leaderboard of the current week or month, even outside its
/// top.
#[derive(SimpleObject)]
pub struct LeaderboardStanding {
    /// The board.
    pub kind: LeaderboardKind,
    /// Its period.
    pub period: LeaderboardPeriod,
    /// When the period started (Asia/Shanghai midnight).
    pub starts_at: DateTime<Utc>,
    /// When it ends (exclusive).
    pub ends_at: DateTime<Utc>,
    /// The member's place (1 first), counted over the whole board; null when the member is
    /// not on it (no positive net settled amount in the period, or frozen). The member's own
    /// amount and who is frozen are current; other members' settlements count as soon as
    /// this server hears of them (at once on the server that settled them, within
    /// milliseconds on the others).
    pub rank: Option<i32>,
    /// The member's net settled amount in the period, CNY (0.00 without any; negative when
    /// refunds took back more than settled in it).
    pub amount: Dec,
    /// How much more net settled money would move the member up one place: the amount of
    /// the member just ahead, less the member's own, plus 0.01 (the one ahead wins a tie).
    /// For a member not on the board, what would put them just ahead of its last place.
    /// Null when nobody is ahead (first place, or an empty board) and for a frozen member.
    pub gap_to_next: Option<Dec>,
}

/// `Member.rank`: where the member stands on the board.
pub(crate) async fn standing_of(
    ctx: &Context<'_>,
    m: &entity::member::Model,
    kind: LeaderboardKind,
    period: LeaderboardPeriod,
) -> Result<LeaderboardStanding> {
    let st = state(ctx)?;
    let s = svc::standing(
        &st.db,
        &st.leaderboards,
        kind.into(),
        period.into(),
        m,
        st.clock.now(),
    )
    .await?;
    Ok(LeaderboardStanding {
        kind,
        period,
        starts_at: s.span.starts_at,
        ends_at: s.span.ends_at,
        rank: s.rank.map(rank),
        amount: s.amount.into(),
        gap_to_next: s.gap.map(Into::into),
    })
}

#[derive(Default)]
pub struct LeaderboardsQuery;

#[Object]
impl LeaderboardsQuery {
    /// The top of a leaderboard (排行榜) of the current week or month, for anyone (signed in
    /// or not): members ranked by **net settled** money — pending, refunded and unsettled
    /// money does not count, and money taken back after it settled comes off the period it
    /// settled in — frozen members left out, equal amounts ranked by who joined earlier,
    /// names masked (王**). The viewer's own place, even outside the top, is
    /// `me.rank(kind, period)`. Read from counters kept by settlement, never from the ledger;
    /// not cached. `VALIDATION` (`first`) outside 1–100.
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to rank.")] kind: LeaderboardKind,
        #[graphql(desc = "The current week or month (Asia/Shanghai).")] period: LeaderboardPeriod,
        #[graphql(desc = "How many places, 1–100 (default 20).")] first: Option<i32>,
    ) -> Result<Fast<Leaderboard>> {
        let first = svc::board_size(first)?;
        let st = state(ctx)?;
        let viewer = viewer(ctx)?.member().ok().map(|m| m.id);
        let (span, entries) =
            svc::top(&st.db, kind.into(), period.into(), first, st.clock.now()).await?;
        Ok(Fast(Leaderboard::new(kind, span, entries, viewer)))
    }
}

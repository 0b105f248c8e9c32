//! The boards of S14: leaderboard counters for the million members of S5's tree, as the
//! settlements of a busy week and month would have left them — 40 % of the members with net
//! settled earnings this week, 70 % this month (amounts in whole yuan, so ties are many and
//! the id decides them), every 100th member with team sales — and the five best of the week
//! frozen, so the board's top skips them as it must.

use chrono::{DateTime, Utc};
use pushhand::service::leaderboards::{Board, Period};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::bulk::{Format, Loader, Rows};

/// What was written.
pub struct Boards {
    /// Counter rows.
    pub rows: usize,
    /// Members frozen (the week's five best).
    pub frozen: usize,
    /// The index (in the tree's order, so `m{index:07}@bench.example`) of a member whose
    /// week's earnings are the median of the board: S14-rank's viewer.
    pub median_member: usize,
}

/// The keys of the periods of `period` the run may read: `now`'s, and the next one's if it
/// starts within [`RUN_HORIZON`].
fn period_keys(period: Period, now: DateTime<Utc>) -> Vec<String> {
    let this = period.of(now).key();
    let then = period.of(now + RUN_HORIZON).key();
    if then == this {
        vec![this]
    } else {
        vec![this, then]
    }
}

/// A member's amount in fen: skewed (most small, a few large), in whole yuan.
fn amount(rng: &mut ChaCha8Rng, most: f64) -> i64 {
    let u: f64 = rng.random();
    (1 + (u * u * u * most) as i64) * 100
}

/// How long after `now` the run may still read the boards: a full run measures S14 some
/// minutes after the data is written (up to ~15 on a slow machine), so this is ample.
const RUN_HORIZON: chrono::Duration = chrono::Duration::hours(2);

/// Writes the counters of `members` (the tree's ids, root first) for the week and month of
/// `now`, then freezes the week's five best. Should a week or a month turn within
/// [`RUN_HORIZON`] (Monday 00:00 in China is Sunday 16:00 UTC), the next one's board gets
/// the same counters: the run then reads a full board whichever side of the turn it measures
/// on, where a run crossing the turn found the new week's board empty and failed S14's check.
pub async fn generate(
    db: &DatabaseConnection,
    members: &[Uuid],
    now: DateTime<Utc>,
) -> anyhow::Result<Boards> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1EAD_E2B0_2026);
    // Each member's amounts: (week earnings, month earnings, month team sales).
    let mut week = Vec::with_capacity(members.len());
    let mut month = Vec::with_capacity(members.len());
    let mut team = Vec::with_capacity(members.len() / 100 + 1);
    for i in 0..members.len() {
        let w = (rng.random::<f64>() < 0.4).then(|| amount(&mut rng, 3_000.0));
        let m = match w {
            Some(w) => Some(w + amount(&mut rng, 6_000.0)),
            None => (rng.random::<f64>() < 0.5).then(|| amount(&mut rng, 6_000.0)),
        };
        week.push(w);
        month.push(m);
        if i % 100 == 0 {
            team.push((i, amount(&mut rng, 200_000.0)));
        }
    }
    let (mut loader, format) = Loader::begin(db).await?;
    let mut rows = Rows::new(
        "leaderboard_counters",
        "board, period, starts_on, member_id, amount",
        format,
    );
    let present = |amounts: &[Option<i64>]| -> Vec<(usize, i64)> {
        amounts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (i, a)))
            .collect()
    };
    // Group by group, members in id order: the primary key grows at its end.
    let groups = [
        (Board::Earnings, Period::Week, present(&week)),
        (Board::Earnings, Period::Month, present(&month)),
        (
            Board::TeamSales,
            Period::Week,
            team.iter().map(|(i, a)| (*i, *a / 4)).collect(),
        ),
        (Board::TeamSales, Period::Month, team.clone()),
    ];
    let mut written = 0;
    for ((board, period, amounts), key) in groups
        .iter()
        .flat_map(|g| period_keys(g.1, now).into_iter().map(move |k| (g, k)))
    {
        for (i, fen) in amounts {
            rows.row()
                .text(board.as_str())
                .text(period.as_str())
                .text(&key)
                .uuid(members[*i])
                .int(*fen)
                .end();
            written += 1;
            if rows.rows >= format.chunk() {
                loader.flush(&mut rows).await?;
            }
        }
    }
    loader.flush(&mut rows).await?;
    loader.commit().await?;
    if format == Format::PostgresCopy {
        // As autovacuum would after a load this size: statistics, and the visibility map
        // that lets a rank count read the index alone.
        db.execute_unprepared("VACUUM (ANALYZE) leaderboard_counters")
            .await?;
    }

    // The week's five best frozen: the board's top must skip them.
    let mut best: Vec<(i64, usize)> = week
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|a| (a, i)))
        .collect();
    best.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(members[a.1].cmp(&members[b.1])));
    // Not the root: it signs in for S5.
    let frozen: Vec<Uuid> = best
        .iter()
        .filter(|(_, i)| *i != 0)
        .take(5)
        .map(|(_, i)| members[*i])
        .collect();
    entity::member::Entity::update_many()
        .col_expr(entity::member::Column::FrozenAt, Expr::value(now))
        .col_expr(
            entity::member::Column::FrozenReason,
            Expr::value("benchmark: frozen members are left off the boards"),
        )
        .filter(entity::member::Column::Id.is_in(frozen.clone()))
        .exec(db)
        .await?;
    let median_member = best.get(best.len() / 2).map_or(0, |(_, i)| *i);
    Ok(Boards {
        rows: written,
        frozen: frozen.len(),
        median_member,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn a_run_near_a_turn_writes_the_next_periods_board_too() {
        // Sunday 2026-12-06 15:00 UTC: the week turns at 16:00 UTC (Monday in China).
        let before_turn = at("2026-12-06T15:00:00Z");
        assert_eq!(
            period_keys(Period::Week, before_turn),
            ["2026-11-30", "2026-12-07"]
        );
        assert_eq!(period_keys(Period::Month, before_turn), ["2026-12-01"]);
        // Midweek: one week, one month.
        let midweek = at("2026-12-02T09:00:00Z");
        assert_eq!(period_keys(Period::Week, midweek), ["2026-11-30"]);
        // 2026-12-31 23:00 in China: the month (and here not the week) turns within the hour.
        let new_year = at("2026-12-31T15:00:00Z");
        assert_eq!(
            period_keys(Period::Month, new_year),
            ["2026-12-01", "2027-01-01"]
        );
        assert_eq!(period_keys(Period::Week, new_year), ["2026-12-28"]);
    }
}
